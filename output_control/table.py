"""The in-memory form of an output asked for release, as the disclosure rules see it.

Three kinds share one grid shape (row labels x column labels):

- a **frequency table**: each cell records how many rows of data and how many distinct
  statistical units (pupils) it counts, because disclosure rules count people, not events; its
  published counts may be rounded to a base with small counts redacted (``Rounding``);
- a **magnitude table** (sum, mean, median, std, min or max of a variable per cell): each cell
  also records, for the sidecar only, the sum of the contributions aggregated per pupil, the
  largest per-pupil contributions and whether any contribution is negative or missing
  (``Magnitude``), which the dominance rules need; the published statistic is ``values``;
- a **model output** (e.g. regression coefficients): ``values`` holds the published estimates
  and ``model`` the residual degrees of freedom.

Building a table validates every invariant, so a rule never sees an inconsistent or unsafe one.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any, TypeVar

from output_control.exceptions import InvalidTable
from output_control.labels import label_problem

T = TypeVar("T")
Grid = tuple[tuple[T, ...], ...]
Published = int | float | None

# Relative slack allowed when comparing float sums of contributions (sum order differs).
_FLOAT_SLACK = 1e-9


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
    MAGNITUDE_TABLE = "magnitude_table"
    MODEL_OUTPUT = "model_output"

    @property
    def words(self) -> str:
        """Plain words for messages."""
        return self.value.replace("_", " ")


TABLE_KINDS = frozenset({TableKind.FREQUENCY_TABLE, TableKind.MAGNITUDE_TABLE})


class Statistic(StrEnum):
    """The statistic a magnitude table shows in each cell (pandas aggregation names)."""

    SUM = "sum"
    MEAN = "mean"
    MEDIAN = "median"
    STD = "std"
    MIN = "min"
    MAX = "max"
    #: A quantile at the level of its column (``Magnitude.levels``); not a pandas aggfunc
    #: name here: ``output_control.analysis.quantiles`` computes it with its level.
    QUANTILE = "quantile"

    @property
    def linear(self) -> bool:
        """A sum or a mean reveals the cell total, so dominance rules apply to it."""
        return self in (Statistic.SUM, Statistic.MEAN)

    @property
    def single_unit(self) -> bool:
        """A minimum, maximum, median or other quantile is the value of one pupil (or two,
        interpolated)."""
        return self in (Statistic.MIN, Statistic.MAX, Statistic.MEDIAN, Statistic.QUANTILE)


@dataclass(frozen=True)
class Rounding:
    """Published counts rounded to ``base`` (half up), cells of 1..``redact_at_most`` units
    redacted (not published): the OpenSAFELY-style mitigation, an alternative to suppression."""

    base: int
    redact_at_most: int = 0

    def __post_init__(self) -> None:
        if type(self.base) is not int or self.base < 1:
            raise InvalidTable(f"rounding base {self.base!r} is not an integer >= 1")
        if type(self.redact_at_most) is not int or self.redact_at_most < 0:
            raise InvalidTable(
                f"rounding redact_at_most {self.redact_at_most!r} is not an integer >= 0"
            )

    def publish(self, rows: int, units: int) -> int | None:
        """The published count of a cell of ``rows`` rows and ``units`` units (None: redacted)."""
        if 0 < units <= self.redact_at_most:
            return None
        return round_half_up(rows, self.base)


def round_half_up(count: int, base: int) -> int:
    """``count`` rounded to the nearest multiple of ``base``, halves rounded up."""
    return ((count + base // 2) // base) * base


@dataclass(frozen=True)
class Magnitude:
    """Per-cell contribution data of a magnitude table, kept in the sidecar and never released.

    ``totals[i][j]`` is the sum of the cell's contributions, each pupil's values being added up
    first (one pupil's many rows are one contributor); ``top[i][j]`` the ``top_n`` largest of
    those per-pupil sums, largest first; ``negative``/``missing`` whether any row value of the
    cell is negative / missing (dominance is then undefined, or the statistic hides rows).
    ``levels`` gives, for a ``quantile`` table only, the level (strictly between 0 and 1) of
    each column of the grid: the cells of column ``j`` are quantiles at ``levels[j]``.
    """

    variable: str
    statistic: Statistic
    top_n: int
    totals: Grid[float]
    top: Grid[tuple[float, ...]]
    negative: Grid[bool]
    missing: Grid[bool]
    levels: tuple[float, ...] | None = None


@dataclass(frozen=True)
class ModelFit:
    """What the rules need to know of a fitted model: its size and residual degrees of freedom."""

    estimator: str
    n_obs: int
    dof: int


@dataclass(frozen=True)
class Cell:
    """One cell: labels, row and unit counts, the published value and contribution data."""

    row: tuple[str, ...]
    column: tuple[str, ...]
    rows: int
    units: int
    published: Published = None
    total: float | None = None
    top: tuple[float, ...] = ()
    negative: bool = False
    missing: bool = False
    structural: bool = False

    @property
    def labels(self) -> tuple[str, ...]:
        """Row labels then column labels, as rule findings name the cell."""
        return self.row + self.column

    @property
    def redacted(self) -> bool:
        """Whether the cell's value is not published (redacted by rounding, or undefined)."""
        return self.published is None


@dataclass(frozen=True)
class SidecarTable:
    """A checked-shape output: labels per axis and aligned grids (rows, units, and per kind).

    A one-way table has no column variables and a single column whose key is ``()``.
    ``metadata`` (from a read sidecar) holds population, provenance, policy, created_at,
    justification and ``checks``, the CheckResult recorded when the output was written.
    ``structural_zeros`` names cells (row labels then column labels) declared empty by
    construction (e.g. no pupil of "CP" in a "college"): the zeros rule does not flag them.
    """

    index: tuple[str, ...]
    columns: tuple[str, ...]
    row_labels: tuple[tuple[str, ...], ...]
    column_labels: tuple[tuple[str, ...], ...]
    rows: Grid[int]
    units: Grid[int]
    unit: Unit = Unit.DISTINCT_PUPILS
    unit_column: str = "eleve"
    kind: TableKind = TableKind.FREQUENCY_TABLE
    file_name: str = ""
    sha256: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    values: Grid[float | None] | None = None
    structural_zeros: tuple[tuple[str, ...], ...] = ()
    rounding: Rounding | None = None
    magnitude: Magnitude | None = None
    model: ModelFit | None = None

    def __post_init__(self) -> None:
        _validate(self)

    @cached_property
    def published(self) -> Grid[Published]:
        """What the released CSV shows per cell: counts (maybe rounded/redacted) or values."""
        if self.kind is not TableKind.FREQUENCY_TABLE:
            assert self.values is not None  # noqa: S101 (guaranteed by _validate)
            return self.values
        if self.rounding is None:
            return self.rows
        rounding = self.rounding
        return tuple(
            tuple(rounding.publish(r, u) for r, u in zip(rl, ul, strict=True))
            for rl, ul in zip(self.rows, self.units, strict=True)
        )

    @cached_property
    def cells(self) -> tuple[Cell, ...]:
        """Every cell, row-major."""
        structural = set(self.structural_zeros)
        mag = self.magnitude
        published = self.published
        result = []
        for i, r in enumerate(self.row_labels):
            for j, c in enumerate(self.column_labels):
                result.append(
                    Cell(
                        row=r,
                        column=c,
                        rows=self.rows[i][j],
                        units=self.units[i][j],
                        published=published[i][j],
                        total=mag.totals[i][j] if mag else None,
                        top=mag.top[i][j] if mag else (),
                        negative=mag.negative[i][j] if mag else False,
                        missing=mag.missing[i][j] if mag else False,
                        structural=(r + c) in structural,
                    )
                )
        return tuple(result)

    @property
    def shape(self) -> tuple[int, int]:
        """(number of rows, number of columns) of the grid."""
        return len(self.row_labels), len(self.column_labels)

    def count(self, cell: Cell, unit: Unit) -> int:
        """The count of ``cell`` in ``unit``; raises InvalidTable if this table lacks that unit."""
        if unit is Unit.ROWS:
            return cell.rows
        if unit is not self.unit:
            raise InvalidTable(f"the table counts {self.unit.words}, not {unit.words}")
        return cell.units


def _validate(table: SidecarTable) -> None:
    """Raise InvalidTable naming the first broken invariant."""
    if not isinstance(table.kind, TableKind):
        raise InvalidTable(f"unknown output kind {table.kind!r}")
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
    shape = table.shape
    for what, matrix in (("row", table.rows), ("unit", table.units)):
        _check_grid(matrix, shape, f"the {what} counts")
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
    _validate_kind(table)
    _validate_structural_zeros(table)


def _validate_kind(table: SidecarTable) -> None:
    kind = table.kind
    extras: dict[str, object] = {
        "values": table.values,
        "magnitude": table.magnitude,
        "model": table.model,
    }
    needed: set[str] = {
        TableKind.FREQUENCY_TABLE: set(),
        TableKind.MAGNITUDE_TABLE: {"values", "magnitude"},
        TableKind.MODEL_OUTPUT: {"values", "model"},
    }[kind]
    for name, value in extras.items():
        if name in needed and value is None:
            raise InvalidTable(f"a {kind.words} needs {name!r}")
        if name not in needed and value is not None:
            raise InvalidTable(f"a {kind.words} has no {name!r}")
    if table.rounding is not None and kind is not TableKind.FREQUENCY_TABLE:
        raise InvalidTable(f"only frequency tables are rounded, not a {kind.words}")
    if table.rounding is not None and not isinstance(table.rounding, Rounding):
        raise InvalidTable("'rounding' must be a Rounding")
    if table.values is not None:
        _check_grid(table.values, table.shape, "the values")
        for line in table.values:
            for number in line:
                if number is not None and not _finite(number):
                    raise InvalidTable(f"value {number!r} is not a finite number or empty")
    if table.magnitude is not None:
        _validate_magnitude(table, table.magnitude)
    if table.model is not None:
        _validate_model(table.model)


def _validate_magnitude(table: SidecarTable, mag: Magnitude) -> None:
    if not isinstance(mag.statistic, Statistic):
        raise InvalidTable(f"unknown statistic {mag.statistic!r}")
    if not isinstance(mag.variable, str) or not mag.variable:
        raise InvalidTable("the magnitude variable must be a non-empty text")
    _safe(mag.variable, f"variable name {mag.variable!r}")
    if mag.variable in (*table.index, *table.columns, table.unit_column):
        raise InvalidTable(f"the value variable {mag.variable!r} cannot be a table variable")
    _validate_levels(table, mag)
    if type(mag.top_n) is not int or mag.top_n < 2:
        raise InvalidTable(f"top_n {mag.top_n!r} is not an integer >= 2")
    shape = table.shape
    for what, grid in (
        ("totals", mag.totals),
        ("top contributions", mag.top),
        ("negative flags", mag.negative),
        ("missing flags", mag.missing),
    ):
        _check_grid(grid, shape, f"the {what}")
    assert table.values is not None  # noqa: S101 (checked by _validate_kind)
    for i in range(shape[0]):
        for j in range(shape[1]):
            _validate_magnitude_cell(table, mag, i, j)


def _validate_levels(table: SidecarTable, mag: Magnitude) -> None:
    """A quantile table states one level in (0, 1) per column; no other statistic has any."""
    if mag.statistic is not Statistic.QUANTILE:
        if mag.levels is not None:
            raise InvalidTable(f"a {mag.statistic.value} table has no quantile levels")
        return
    levels = mag.levels
    if not isinstance(levels, tuple) or len(levels) != table.shape[1]:
        raise InvalidTable(f"a quantile table needs one level per column ({table.shape[1]})")
    for level in levels:
        if not _finite(level) or not 0 < level < 1:  # type: ignore[operator]
            raise InvalidTable(f"quantile level {level!r} is not a number strictly between 0 "
                               "and 1 (minima and maxima are the min and max statistics)")


def _validate_magnitude_cell(table: SidecarTable, mag: Magnitude, i: int, j: int) -> None:
    where = (*table.row_labels[i], *table.column_labels[j])
    units = table.units[i][j]
    total, top = mag.totals[i][j], mag.top[i][j]
    negative, missing = mag.negative[i][j], mag.missing[i][j]
    if type(negative) is not bool or type(missing) is not bool:
        raise InvalidTable(f"cell {where} negative/missing flags must be true or false")
    if not _finite(total):
        raise InvalidTable(f"cell {where} total {total!r} is not a finite number")
    if not isinstance(top, tuple) or not all(_finite(x) for x in top):
        raise InvalidTable(f"cell {where} top contributions must be finite numbers")
    if len(top) != min(units, mag.top_n):
        raise InvalidTable(
            f"cell {where} records {len(top)} top contributions for {units} contributors "
            f"(expected {min(units, mag.top_n)})"
        )
    if any(a < b for a, b in itertools.pairwise(top)):
        raise InvalidTable(f"cell {where} top contributions are not in decreasing order")
    assert table.values is not None  # noqa: S101
    if units == 0 and (total != 0 or table.values[i][j] is not None):
        raise InvalidTable(f"empty cell {where} has a total or a value")
    if not negative and top:
        slack = _FLOAT_SLACK * max(1.0, abs(total))
        if top[-1] < 0 or sum(top) > total + slack:
            raise InvalidTable(
                f"cell {where} top contributions do not fit its total without negative values"
            )


def _validate_model(model: ModelFit) -> None:
    if not isinstance(model.estimator, str) or not model.estimator:
        raise InvalidTable("the model estimator must be a non-empty text")
    _safe(model.estimator, f"estimator {model.estimator!r}")
    for name in ("n_obs", "dof"):
        value = getattr(model, name)
        if type(value) is not int or value < 0:
            raise InvalidTable(f"model {name} {value!r} is not a non-negative integer")
    if model.dof > model.n_obs:
        raise InvalidTable(f"model dof {model.dof} exceeds its {model.n_obs} observations")


def _validate_structural_zeros(table: SidecarTable) -> None:
    if not table.structural_zeros:
        return
    if table.kind is TableKind.MODEL_OUTPUT:
        raise InvalidTable("a model output has no structural zeros")
    positions = {
        r + c: table.units[i][j]
        for i, r in enumerate(table.row_labels)
        for j, c in enumerate(table.column_labels)
    }
    if len(set(table.structural_zeros)) != len(table.structural_zeros):
        raise InvalidTable("structural zeros repeat")
    for labels in table.structural_zeros:
        if not isinstance(labels, tuple) or labels not in positions:
            raise InvalidTable(f"structural zero {labels!r} is not a cell of the table")
        if positions[labels] != 0:
            raise InvalidTable(
                f"cell {labels} is declared a structural zero but counts {positions[labels]} "
                "units"
            )


def _check_grid(grid: object, shape: tuple[int, int], what: str) -> None:
    if (
        not isinstance(grid, tuple)
        or len(grid) != shape[0]
        or any(not isinstance(line, tuple) or len(line) != shape[1] for line in grid)
    ):
        raise InvalidTable(f"{what} are not a {shape[0]}x{shape[1]} grid")


def _finite(value: object) -> bool:
    return type(value) in (int, float) and math.isfinite(value)  # type: ignore[arg-type]


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
