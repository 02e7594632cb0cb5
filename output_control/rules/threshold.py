"""Minimum-count (threshold) rule.

Each cell of a frequency table must count at least ``threshold`` statistical units (ACRO default
10; GSS/Eurostat output-checking guidance: "minimum frequency rule"); counted in distinct pupils
for event-level data, since one pupil's thousand learning-trace events are still one pupil.
A cell is flagged when ``0 < count < threshold``. A cell of 0 is NOT a threshold failure: empty
cells are a separate disclosure question (structural or disclosive zeros), left to a later rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from output_control.rules.registry import Parameter, RuleSpec, one_of, positive_int
from output_control.table import SidecarTable, Unit
from output_control.verdicts import CellFinding, Outcome, RuleVerdict

NAME = "minimum_count"


def check_minimum_count(table: SidecarTable, parameters: Mapping[str, Any]) -> RuleVerdict:
    """Flag every cell counting between 1 and ``threshold - 1`` units; zeros are not flagged."""
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
    findings = []
    for cell in table.cells:
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
    if findings:
        n = len(findings)
        verb = "cell counts" if n == 1 else "cells count"
        return RuleVerdict(
            rule=NAME,
            outcome=Outcome.FAIL,
            message=f"{n} {verb} fewer than {threshold} {unit.words}",
            cells=tuple(findings),
            parameters=params,
        )
    return RuleVerdict(
        rule=NAME,
        outcome=Outcome.PASS,
        message=(
            f"all {len(table.cells)} cells count at least {threshold} {unit.words} or are empty"
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
