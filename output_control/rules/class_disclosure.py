"""Class disclosure: a row or column whose units all fall in one cell.

When every pupil of a row (or column) is in a single cell and the row's other cells are empty,
the table tells that *all* members of that group share the attribute of that cell (Hundepool et
al. 2012, section 5.2 "group disclosure"; GSS/Eurostat output-checking guidance "class
disclosure"). A row (or column) is flagged when it has at least two cells that are not
structural zeros and exactly one of them counts units. In a one-way table the single column is
the group: all units in one category. The outcome (FAIL or REVIEW) comes from the policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from output_control.rules.common import verdict
from output_control.rules.registry import Parameter, RuleSpec, outcome_choice
from output_control.table import Cell, SidecarTable
from output_control.verdicts import CellFinding, Outcome, RuleVerdict

NAME = "class_disclosure"


def check_class_disclosure(table: SidecarTable, parameters: Mapping[str, Any]) -> RuleVerdict:
    """Flag each row and column whose units all fall in one of its (non-structural) cells."""
    outcome = Outcome(parameters["outcome"])
    params = {"outcome": outcome.value}
    n_rows, n_cols = table.shape
    cells = table.cells
    findings: list[CellFinding] = []
    if table.columns:
        for i, row in enumerate(table.row_labels):
            line = cells[i * n_cols : (i + 1) * n_cols]
            findings.extend(_single(line, "row", ", ".join(row)))
    for j, column in enumerate(table.column_labels):
        line = cells[j::n_cols]
        what = ", ".join(column) if column else "the table"
        findings.extend(_single(line, "column" if column else "table", what))
    n = len(findings)
    return verdict(
        NAME,
        findings,
        outcome=outcome,
        flagged=(
            f"{n} {'group has' if n == 1 else 'groups have'} all their units in a single cell "
            "(class disclosure)"
        ),
        passed=f"no row or column of the {n_rows}x{n_cols} table has all its units in one cell",
        parameters=params,
    )


def _single(line: Sequence[Cell], axis: str, name: str) -> list[CellFinding]:
    candidates = [cell for cell in line if not cell.structural]
    full = [cell for cell in candidates if cell.units > 0]
    if len(candidates) < 2 or len(full) != 1:
        return []
    (cell,) = full
    where = f"{axis} ({name})" if axis != "table" else "the table"
    return [
        CellFinding(
            rule=NAME,
            cell=cell.labels,
            value=cell.units,
            message=f"all {cell.units} units of {where} are in this cell; its other cells are "
            "empty",
        )
    ]


RULE = RuleSpec(
    name=NAME,
    description=__doc__.strip().splitlines()[0] if __doc__ else NAME,
    check=check_class_disclosure,
    parameters=(
        Parameter(
            "outcome", "outcome when a group falls in one cell", outcome_choice, default="fail"
        ),
    ),
)
