"""Negative or missing contributions in a magnitude table.

Dominance (p% and (n, k) rules) is undefined when contributions can be negative: the largest
contributions no longer bound the others (Hundepool et al. 2012, section 4.2.2; ACRO sends such
tables to review, "dominance not defined when negative values are present"). Missing values are
silently left out of a statistic, so the cell describes fewer pupils than it seems and the
missingness itself may be disclosive (ACRO ``check_missing_values``). Each cell with either is
listed for REVIEW (or FAIL, as the policy says). Negatives are flagged for sums and means, where
dominance is used; missing values for every statistic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from output_control.rules.common import cells_word, verdict
from output_control.rules.registry import Parameter, RuleSpec, outcome_choice
from output_control.table import SidecarTable, TableKind
from output_control.verdicts import CellFinding, Outcome, RuleVerdict, worst

NAME = "negative_or_missing"


def check_negative_or_missing(table: SidecarTable, parameters: Mapping[str, Any]) -> RuleVerdict:
    """List cells with negative (sums, means) or missing (any statistic) contributions."""
    negative_outcome = Outcome(parameters["negative"])
    missing_outcome = Outcome(parameters["missing"])
    params = {"negative": negative_outcome.value, "missing": missing_outcome.value}
    mag = table.magnitude
    linear = mag is not None and mag.statistic.linear
    findings: list[CellFinding] = []
    fired: list[Outcome] = []
    negatives = [c for c in table.cells if linear and c.negative]
    missing = [c for c in table.cells if c.missing]
    for cell in negatives:
        findings.append(
            CellFinding(
                rule=NAME,
                cell=cell.labels,
                value=None,
                message="negative contributions: dominance rules are undefined",
            )
        )
    for cell in missing:
        findings.append(
            CellFinding(
                rule=NAME,
                cell=cell.labels,
                value=None,
                message="missing values were left out of the statistic",
            )
        )
    parts = []
    if negatives:
        fired.append(negative_outcome)
        parts.append(f"{cells_word(len(negatives))} with negative contributions")
    if missing:
        fired.append(missing_outcome)
        parts.append(f"{cells_word(len(missing))} with missing values")
    return verdict(
        NAME,
        findings,
        outcome=worst(fired) if fired else Outcome.PASS,
        flagged="; ".join(parts) + "; a controller must check them",
        passed="no negative or missing contribution",
        parameters=params,
    )


RULE = RuleSpec(
    name=NAME,
    description=__doc__.strip().splitlines()[0] if __doc__ else NAME,
    check=check_negative_or_missing,
    parameters=(
        Parameter("negative", "outcome for negative contributions", outcome_choice, "review"),
        Parameter("missing", "outcome for missing values", outcome_choice, "review"),
    ),
    kinds=frozenset({TableKind.MAGNITUDE_TABLE}),
)
