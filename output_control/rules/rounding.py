"""Rounding to a base, an alternative mitigation to suppression (frequency tables).

Counts are published rounded to the nearest multiple of ``base`` (halves up) and cells of 1 to
``redact_at_most`` units are redacted, i.e. not published: e.g. OpenSAFELY's historical
practice, "redact counts <= 7 and round to the nearest 5" (ACRO ``safe_round_base`` = 5).
``checked.crosstab(..., mitigation="round")`` applies the policy's parameters and records them
in the sidecar. This rule checks a table declared rounded: its base must be a multiple of the
policy's base, it must redact at least what the policy redacts, and every published count must
be a multiple of its base, within half a base of the true count, with every small cell
redacted. A table that is not rounded fails only when the policy says ``required = true``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from output_control.rules.common import cells_word
from output_control.rules.registry import (
    Parameter,
    RuleSpec,
    boolean,
    non_negative_int,
    positive_int,
)
from output_control.table import Published, Rounding, SidecarTable, TableKind
from output_control.verdicts import CellFinding, Outcome, RuleVerdict

NAME = "rounding"


def inconsistent_cells(
    rounding: Rounding, rows: int, units: int, published: Published
) -> str | None:
    """Why a cell's published count breaks ``rounding``, or None when it is consistent."""
    if 0 < units <= rounding.redact_at_most:
        return None if published is None else f"{units} units but published, not redacted"
    if published is None:
        return f"redacted though it counts {units} units"
    if type(published) is not int or published % rounding.base:
        return f"published {published!r}, not a multiple of {rounding.base}"
    if 2 * abs(published - rows) > rounding.base:
        return f"published {published} for a true count of {rows}"
    return None


def check_rounding(table: SidecarTable, parameters: Mapping[str, Any]) -> RuleVerdict:
    """Check a rounded table against the policy; a plain table passes unless rounding is
    required."""
    base, redact, required = (
        int(parameters["base"]),
        int(parameters["redact_at_most"]),
        bool(parameters["required"]),
    )
    params = {"base": base, "redact_at_most": redact, "required": required}
    declared = table.rounding
    if declared is None:
        if required:
            return RuleVerdict(
                rule=NAME,
                outcome=Outcome.FAIL,
                message=(
                    f"the policy requires counts rounded to {base} with cells of at most "
                    f"{redact} units redacted; write the table with mitigation='round'"
                ),
                parameters=params,
            )
        return RuleVerdict(
            rule=NAME,
            outcome=Outcome.PASS,
            message="the table is not rounded (optional); the other rules check its counts",
            parameters=params,
        )
    problems = []
    if declared.base % base:
        problems.append(f"its base {declared.base} is not a multiple of the policy's {base}")
    if declared.redact_at_most < redact:
        problems.append(
            f"it redacts cells of at most {declared.redact_at_most} units, the policy asks "
            f"{redact}"
        )
    findings = []
    for cell in table.cells:
        why = inconsistent_cells(declared, cell.rows, cell.units, cell.published)
        if why is not None:
            findings.append(CellFinding(rule=NAME, cell=cell.labels, value=None, message=why))
    if findings:
        problems.append(f"{cells_word(len(findings))} are not rounded as declared")
    if problems:
        return RuleVerdict(
            rule=NAME,
            outcome=Outcome.FAIL,
            message="the table is declared rounded but " + "; ".join(problems),
            cells=tuple(findings),
            parameters=params,
        )
    return RuleVerdict(
        rule=NAME,
        outcome=Outcome.PASS,
        message=(
            f"counts are rounded to {declared.base} and cells of at most "
            f"{declared.redact_at_most} units are redacted"
        ),
        parameters=params,
    )


RULE = RuleSpec(
    name=NAME,
    description=__doc__.strip().splitlines()[0] if __doc__ else NAME,
    check=check_rounding,
    parameters=(
        Parameter("base", "base the published counts are rounded to", positive_int),
        Parameter(
            "redact_at_most", "cells of 1..this many units are redacted", non_negative_int, 0
        ),
        Parameter("required", "whether every frequency table must be rounded", boolean, False),
    ),
    kinds=frozenset({TableKind.FREQUENCY_TABLE}),
)
