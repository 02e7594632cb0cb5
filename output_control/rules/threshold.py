"""Minimum-count (threshold) rule.

Each published cell of a frequency or magnitude table must count at least ``threshold``
statistical units (ACRO default 10; GSS/Eurostat output-checking guidance: "minimum frequency
rule"); counted in distinct pupils for event-level data, since one pupil's thousand
learning-trace events are still one pupil. A magnitude cell counts the pupils contributing a
non-missing value. A cell is flagged when ``0 < count < threshold`` (a cell exactly at the
threshold passes). A cell of 0 is NOT a threshold failure: empty cells are the zeros rule's
question. A cell redacted by rounding (not published) is not flagged either.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from output_control.rules.common import cells_word, verdict
from output_control.rules.registry import Parameter, RuleSpec, one_of, positive_int
from output_control.table import SidecarTable, Unit
from output_control.verdicts import CellFinding, Outcome, RuleVerdict

NAME = "minimum_count"


def check_minimum_count(table: SidecarTable, parameters: Mapping[str, Any]) -> RuleVerdict:
    """Flag every published cell counting between 1 and ``threshold - 1`` units."""
    threshold = int(parameters["threshold"])
    unit = Unit(parameters["unit"])
    params = {"threshold": threshold, "unit": unit.value}
    if unit is not Unit.ROWS and table.unit is not unit:
        return RuleVerdict(
            rule=NAME,
            outcome=Outcome.FAIL,
            message=f"the policy counts {unit.words} but the table records {table.unit.words}",
            parameters=params,
        )
    rounded = table.rounding is not None
    findings = []
    for cell in table.cells:
        if rounded and cell.redacted:
            continue
        count = table.count(cell, unit)
        if 0 < count < threshold:
            findings.append(
                CellFinding(
                    rule=NAME,
                    cell=cell.labels,
                    value=count,
                    message=f"{count} {unit.words}, fewer than {threshold}",
                )
            )
    n = len(findings)
    verb = "counts" if n == 1 else "count"
    return verdict(
        NAME,
        findings,
        outcome=Outcome.FAIL,
        flagged=f"{cells_word(n)} {verb} fewer than {threshold} {unit.words}",
        passed=(
            f"all {len(table.cells)} cells count at least {threshold} {unit.words} or are empty"
            + (" or redacted" if rounded else "")
        ),
        parameters=params,
    )


RULE = RuleSpec(
    name=NAME,
    description=__doc__.strip().splitlines()[0] if __doc__ else NAME,
    check=check_minimum_count,
    parameters=(
        Parameter("threshold", "smallest allowed non-zero count of units per cell", positive_int),
        Parameter("unit", "what is counted", one_of(*(u.value for u in Unit))),
    ),
)
