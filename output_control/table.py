"""The in-memory form of a table asked for release, as the disclosure rules see it.

A frequency table is a grid of cells; each cell records how many rows of data and how many
distinct statistical units (pupils) it counts, because disclosure rules count people, not events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

from output_control.exceptions import InvalidTable
from output_control.labels import label_problem


class Unit(StrEnum):
    """What a count counts."""

    DISTINCT_PUPILS = "distinct_pupils"
    ROWS = "rows"

    @property
    def words(self) -> str:
        """Plain words for messages."""
        return self.value.replace("_", " ")


class TableKind(StrEnum):
    """The kinds of output the rules know; anything else is rejected."""

    FREQUENCY_TABLE = "frequency_table"


@dataclass(frozen=True)
class Cell:
    """One cell: its row labels, its column labels, its row count and its unit count."""

    row: tuple[str, ...]
    column: tuple[str, ...]
    rows: int
    units: int

    @property
    def labels(self) -> tuple[str, ...]:
        """Row labels then column labels, as rule findings name the cell."""
        return self.row + self.column


@dataclass(frozen=True)
class SidecarTable:
    """A checked-shape table: labels per axis and two aligned count matrices (rows, units).

    A one-way table has no column variables and a single column whose key is ``()``. Building
    one validates every invariant, so a rule never sees an inconsistent or unsafe table.
    ``metadata`` (from a read sidecar) holds population, provenance, policy, created_at,
    justification and ``checks``, the CheckResult recorded when the output was written.
    """

    index: tuple[str, ...]
    columns: tuple[str, ...]
    row_labels: tuple[tuple[str, ...], ...]
    column_labels: tuple[tuple[str, ...], ...]
    rows: tuple[tuple[int, ...], ...]
    units: tuple[tuple[int, ...], ...]
    unit: Unit = Unit.DISTINCT_PUPILS
    unit_column: str = "eleve"
    kind: TableKind = TableKind.FREQUENCY_TABLE
    file_name: str = ""
    sha256: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        _validate(self)

    @cached_property
    def cells(self) -> tuple[Cell, ...]:
        """Every cell, row-major."""
        return tuple(
            Cell(row=r, column=c, rows=self.rows[i][j], units=self.units[i][j])
            for i, r in enumerate(self.row_labels)
            for j, c in enumerate(self.column_labels)
        )

    def count(self, cell: Cell, unit: Unit) -> int:
        """The count of ``cell`` in ``unit``; raises InvalidTable if this table lacks that unit."""
        if unit is Unit.ROWS:
            return cell.rows
        if unit is not self.unit:
            raise InvalidTable(f"the table counts {self.unit.words}, not {unit.words}")
        return cell.units


def _validate(table: SidecarTable) -> None:
    """Raise InvalidTable naming the first broken invariant."""
    k, m = len(table.index), len(table.columns)
    if k == 0:
        raise InvalidTable("a table needs at least one row variable")
    names = (*table.index, *table.columns)
    if len(set(names)) != len(names):
        raise InvalidTable(f"variable names repeat: {list(names)}")
    if table.unit_column in names:
        raise InvalidTable(f"the unit column {table.unit_column!r} cannot be a table variable")
    for name in names:
        if not isinstance(name, str) or not name:
            raise InvalidTable(f"variable name {name!r} is not a non-empty text")
        _safe(name, f"variable name {name!r}")
    _check_keys(table.row_labels, k, "row", table.index)
    if m == 0:
        if table.column_labels != ((),):
            raise InvalidTable("a one-way table has exactly one column, keyed ()")
    else:
        _check_keys(table.column_labels, m, "column", table.columns)
    shape = (len(table.row_labels), len(table.column_labels))
    for what, matrix in (("row", table.rows), ("unit", table.units)):
        if len(matrix) != shape[0] or any(len(line) != shape[1] for line in matrix):
            raise InvalidTable(f"the {what} counts are not a {shape[0]}x{shape[1]} grid")
        for line in matrix:
            for value in line:
                if type(value) is not int or value < 0:
                    raise InvalidTable(f"{what} count {value!r} is not a non-negative integer")
    for i, (row_line, unit_line) in enumerate(zip(table.rows, table.units, strict=True)):
        for j, (n_rows, n_units) in enumerate(zip(row_line, unit_line, strict=True)):
            where = (*table.row_labels[i], *table.column_labels[j])
            if n_units > n_rows:
                raise InvalidTable(f"cell {where} counts more units ({n_units}) than rows")
            if (n_units == 0) != (n_rows == 0):
                raise InvalidTable(f"cell {where} has {n_rows} rows but {n_units} units")


def _check_keys(
    keys: tuple[tuple[str, ...], ...], width: int, axis: str, variables: tuple[str, ...]
) -> None:
    if not keys:
        raise InvalidTable(f"a table needs at least one {axis}")
    if len(set(keys)) != len(keys):
        raise InvalidTable(f"{axis} labels repeat")
    for key in keys:
        if len(key) != width:
            raise InvalidTable(f"{axis} label {key!r} does not have {width} parts")
        for variable, label in zip(variables, key, strict=True):
            if not isinstance(label, str):
                raise InvalidTable(f"{axis} label {label!r} of {variable!r} is not text")
            _safe(label, f"{axis} label {label!r} of variable {variable!r}")


def _safe(text: str, what: str) -> None:
    problem = label_problem(text)
    if problem is not None:
        raise InvalidTable(f"{what} {problem}; recode it before asking for release")
