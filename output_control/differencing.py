"""Disclosure by differencing across tables: pure, no database, no files.

Two tables that are each safe can disclose together. The classic attack: a table of every
pupil by (sexe, niveau) and the same table restricted to one académie are both above the
minimum count in every cell, but subtracting the second from the first gives the table of the
pupils *outside* that académie, and one of its cells may count 3 pupils. Output-checking
guidance names this "disclosure by differencing" and asks the checker to compare a new output
with earlier releases on the same data:

- Brandt, M. et al. (2010), *Guidelines for the checking of output based on microdata
  research*, ESSnet SDC (the GSS/Eurostat guidance), section "Differencing": tables built on
  nested or overlapping sub-populations or categories, released together or one after the
  other, can be subtracted to produce a table of a small residual population; the checker keeps
  track of what a project released and applies the rules to the implied difference.
- Hundepool, A. et al. (2012), *Statistical Disclosure Control*, Wiley, ch. 4 (linked tables:
  a cell of one table recovered by subtraction from another sharing its margins) and 4.2.2
  (the p% and (n, k) dominance rules applied to a cell's contributions).
- Griffiths, E. et al. (2019), *Handbook on Statistical Disclosure Control for Outputs*
  (Safe Data Access Professionals), "Differencing": the same population rules apply to the
  difference between two released tables of nested populations.

What this module decides, and why:

- A **population** is a dataset, an extract version and filters in a canonical structure
  (:func:`parse_population`): per variable either a set of labels (``{"in": [...]}``) or a
  closed numeric interval (``{"min": a, "max": b}``). Two populations of the same dataset and
  extract version are compared variable by variable (:func:`relation`): one is WITHIN the other
  when every filter of the larger is matched by a narrower or equal filter of the smaller.
- Two tables are comparable when they share their margins (the same row and column variables,
  in any order) and their measure (counts, or the cell totals of one variable for sums and
  means, which reveal the total).
- For a nested pair, each cell of the larger table minus the same cell of the smaller one is a
  cell of the residual population. It is disclosive if it counts between 1 and ``threshold - 1``
  distinct units (the minimum count rule), or, for totals, if the contributions known to lie in
  the residual already dominate it ((n, k) rule, p% rule). The contributions known to lie in
  the residual are the larger cell's top per-pupil contributions that exceed the smaller cell's
  largest one: such a pupil cannot be in the smaller cell. This assumes a pupil's contribution
  to a cell is the same in both populations (filters on pupils, not on events); it only ever
  uses lower bounds of the residual's top contributions, so what it flags is truly dominated.
- When the populations are not described, or belong to different extract versions of the same
  dataset, nesting cannot be established or excluded: the pair is checked in the direction in
  which every cell of one table is at most the same cell of the other (a necessary condition of
  nesting); the explanation says the relation is unknown.
- Populations that overlap without nesting, or are disjoint, give no cell of a population by
  subtracting two tables, and are not flagged; if the intersection (or the union) is released
  too, the nested pair it forms with each table is checked. Cells present in one table only,
  and cells not published (redacted) in either, give the attacker nothing new and are skipped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from output_control.table import SidecarTable, TableKind
from output_control.verdicts import CellFinding, Outcome, RuleVerdict

RULE = "differencing"
MAX_FILTER_VALUES = 10_000

CellKey = tuple[tuple[str, str], ...]  # ((variable, label), ...) sorted by variable


class PopulationError(ValueError):
    """A population description that is not in the canonical structure."""


class Relation(StrEnum):
    """How two populations relate, seen from the first."""

    SAME = "same"
    WITHIN = "within"  # the first is a strict sub-population of the second
    CONTAINS = "contains"  # the second is a strict sub-population of the first
    OVERLAP = "overlap"
    DISJOINT = "disjoint"
    UNRELATED = "unrelated"  # different datasets
    UNKNOWN = "unknown"  # undescribed, different extract versions, or incomparable filters


@dataclass(frozen=True)
class Filter:
    """A filter on one variable: a set of labels, or a closed numeric interval."""

    values: frozenset[str] | None = None
    low: float | None = None
    high: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The canonical JSON form."""
        if self.values is not None:
            return {"in": sorted(self.values)}
        out: dict[str, Any] = {}
        if self.low is not None:
            out["min"] = _number_json(self.low)
        if self.high is not None:
            out["max"] = _number_json(self.high)
        return out

    def words(self, variable: str) -> str:
        """Plain words: ``académie in {Lyon}``, ``annee from 2020 to 2022``."""
        if self.values is not None:
            return f"{variable} in {{{', '.join(sorted(self.values))}}}"
        low = "-inf" if self.low is None else _number_json(self.low)
        high = "+inf" if self.high is None else _number_json(self.high)
        return f"{variable} from {low} to {high}"


@dataclass(frozen=True)
class Population:
    """Who a table counts: dataset, extract version and canonical filters."""

    dataset: str
    extract_version: str | None = None
    filters: tuple[tuple[str, Filter], ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The canonical JSON form (keys sorted, labels sorted)."""
        return {"dataset": self.dataset, "extract_version": self.extract_version,
                "filters": {v: f.to_json() for v, f in self.filters}}

    def words(self) -> str:
        """Plain words for explanations."""
        scope = self.dataset + (f" (extract {self.extract_version})"
                                if self.extract_version is not None else "")
        if not self.filters:
            return f"all of {scope}"
        return f"{scope} where " + " and ".join(f.words(v) for v, f in self.filters)


def _number_json(x: float) -> int | float:
    return int(x) if float(x).is_integer() else float(x)


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PopulationError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def _label(value: object, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise PopulationError(f"{what} must hold text or numbers, got {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PopulationError(f"{what} must hold finite numbers, got {value!r}")
        return str(_number_json(value))
    return str(value)


def _parse_filter(variable: str, spec: object) -> Filter:
    what = f"the filter on {variable!r}"
    if isinstance(spec, Mapping):
        keys = set(spec)
        if keys == {"in"}:
            spec = spec["in"]
        elif keys and keys <= {"min", "max"}:
            low = _number(spec["min"], what + " min") if "min" in spec else None
            high = _number(spec["max"], what + " max") if "max" in spec else None
            if low is not None and high is not None and low > high:
                raise PopulationError(f"{what} has min {low} above max {high}")
            return Filter(low=low, high=high)
        else:
            raise PopulationError(f"{what} must be {{'in': [...]}} or {{'min': .., 'max': ..}}, "
                                  f"got keys {sorted(map(str, keys))}")
    if isinstance(spec, (str, int, float)) and not isinstance(spec, bool):
        spec = [spec]
    if not isinstance(spec, (list, tuple)) or not spec:
        raise PopulationError(f"{what} must be a non-empty list of labels")
    if len(spec) > MAX_FILTER_VALUES:
        raise PopulationError(f"{what} has more than {MAX_FILTER_VALUES} labels")
    return Filter(values=frozenset(_label(v, what) for v in spec))


def parse_population(description: Mapping[str, Any] | None) -> Population | None:
    """The canonical population of a sidecar's ``population`` object; None if undescribed.

    Accepted: ``{"dataset": "eleves", "extract_version": 2, "filters": {"academie": ["Lyon"],
    "annee": {"min": 2020, "max": 2022}}}``; a single label stands for a one-label list and
    ``{"in": [...]}`` for the list. Anything else raises :class:`PopulationError`.
    """
    if description is None:
        return None
    if not isinstance(description, Mapping):
        raise PopulationError("a population must be an object")
    if len(description) == 0:
        return None
    unknown = set(description) - {"dataset", "extract_version", "filters"}
    if unknown:
        raise PopulationError(f"unknown population keys {sorted(map(str, unknown))}")
    dataset = description.get("dataset")
    if not isinstance(dataset, str) or not dataset:
        raise PopulationError("a population names its dataset (text)")
    version = description.get("extract_version")
    if version is not None:
        version = _label(version, "extract_version")
    filters = description.get("filters") or {}
    if not isinstance(filters, Mapping) or not all(isinstance(k, str) for k in filters):
        raise PopulationError("population filters must be an object keyed by variable")
    return Population(dataset, version,
                      tuple(sorted((v, _parse_filter(v, s)) for v, s in filters.items())))


def canonical_population(description: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The canonical JSON form of a population description (None if undescribed)."""
    population = parse_population(description)
    return None if population is None else population.to_json()


# -- relations between populations ---------------------------------------------------------

def _compare_filters(a: Filter | None, b: Filter | None) -> str:
    """'equal', 'sub' (a narrower), 'super', 'overlap', 'disjoint' or 'unknown'."""
    if a is None and b is None:
        return "equal"
    if b is None:
        return "sub"
    if a is None:
        return "super"
    if a.values is not None and b.values is not None:
        if a.values == b.values:
            return "equal"
        if a.values < b.values:
            return "sub"
        if a.values > b.values:
            return "super"
        return "overlap" if a.values & b.values else "disjoint"
    if a.values is None and b.values is None:
        alo, ahi = _bounds(a)
        blo, bhi = _bounds(b)
        if (alo, ahi) == (blo, bhi):
            return "equal"
        if ahi < blo or bhi < alo:
            return "disjoint"
        if blo <= alo and ahi <= bhi:
            return "sub"
        if alo <= blo and bhi <= ahi:
            return "super"
        return "overlap"
    labels, interval, flipped = (a, b, False) if a.values is not None else (b, a, True)
    assert labels.values is not None  # noqa: S101 (one of the two is a label set)
    lo, hi = _bounds(interval)
    inside = [_as_number(v) for v in labels.values]
    if any(x is None for x in inside):
        return "unknown"
    hits = [lo <= x <= hi for x in inside if x is not None]
    if not any(hits):
        return "disjoint"
    if all(hits):
        return "super" if flipped else "sub"
    return "unknown"


def _bounds(f: Filter) -> tuple[float, float]:
    return (-math.inf if f.low is None else f.low, math.inf if f.high is None else f.high)


def _as_number(label: str) -> float | None:
    try:
        x = float(label)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def relation(a: Population | None, b: Population | None) -> Relation:
    """How population ``a`` relates to ``b``."""
    if a is None or b is None:
        return Relation.UNKNOWN
    if a.dataset != b.dataset:
        return Relation.UNRELATED
    if a.extract_version != b.extract_version:
        return Relation.UNKNOWN
    fa, fb = dict(a.filters), dict(b.filters)
    seen = {_compare_filters(fa.get(v), fb.get(v)) for v in set(fa) | set(fb)}
    if "disjoint" in seen:
        return Relation.DISJOINT
    if "unknown" in seen:
        return Relation.UNKNOWN
    if seen <= {"equal"}:
        return Relation.SAME
    if seen <= {"equal", "sub"}:
        return Relation.WITHIN
    if seen <= {"equal", "super"}:
        return Relation.CONTAINS
    return Relation.OVERLAP


# -- tables as differencing sees them -------------------------------------------------------

@dataclass(frozen=True)
class CellData:
    """A published cell: distinct units counted, and for totals the sum and top contributions."""

    units: int
    total: float | None = None
    top: tuple[float, ...] = ()


@dataclass(frozen=True)
class TableCells:
    """A table's cells keyed by ``((variable, label), ...)``, with its population and measure.

    ``measure`` is ``"count"`` for a frequency table, ``"total:<variable>"`` for a sum or mean
    of ``<variable>``; ``name`` says which table it is in explanations (request and file).
    """

    name: str
    margins: tuple[str, ...]
    measure: str
    cells: Mapping[CellKey, CellData]
    population: Population | None = None
    unit: str = "distinct_pupils"

    def to_json(self) -> dict[str, Any]:
        """JSON form for the release ledger."""
        return {"name": self.name, "margins": list(self.margins), "measure": self.measure,
                "unit": self.unit,
                "population": None if self.population is None else self.population.to_json(),
                "cells": [{"key": [list(p) for p in key], "units": c.units, "total": c.total,
                           "top": list(c.top)} for key, c in sorted(self.cells.items())]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TableCells:
        """Inverse of :meth:`to_json`."""
        cells = {tuple((str(v), str(label)) for v, label in item["key"]):
                 CellData(int(item["units"]),
                          None if item["total"] is None else float(item["total"]),
                          tuple(float(x) for x in item["top"]))
                 for item in data["cells"]}
        return cls(name=str(data["name"]), margins=tuple(map(str, data["margins"])),
                   measure=str(data["measure"]), cells=cells,
                   population=parse_population(data["population"]),
                   unit=str(data.get("unit", "distinct_pupils")))


def table_cells(table: SidecarTable, name: str,
                population: Mapping[str, Any] | None = None) -> TableCells | None:
    """The differencing view of a checked table; None when differencing does not apply
    (model outputs; medians, extremes and deviations, which do not add up across tables).

    ``population`` defaults to the sidecar's own description; a malformed one raises
    :class:`PopulationError`.
    """
    if table.kind is TableKind.FREQUENCY_TABLE:
        measure = "count"
    elif (table.kind is TableKind.MAGNITUDE_TABLE and table.magnitude is not None
          and table.magnitude.statistic.linear):
        measure = f"total:{table.magnitude.variable}"
    else:
        return None
    pop = parse_population(population if population is not None
                           else table.metadata.get("population"))
    variables = (*table.index, *table.columns)
    cells: dict[CellKey, CellData] = {}
    for cell in table.cells:
        if cell.published is None:
            continue  # not published: nothing to subtract from or with
        key = tuple(sorted(zip(variables, cell.labels, strict=True)))
        cells[key] = CellData(cell.units, cell.total, tuple(cell.top))
    return TableCells(name, tuple(sorted(variables)), measure, cells, pop, table.unit.value)


# -- findings ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class DifferenceCell:
    """One disclosive cell of the residual population ``larger - smaller``."""

    key: CellKey
    larger_units: int
    smaller_units: int
    rule: str  # minimum_count, nk_dominance or p_percent
    message: str

    @property
    def units(self) -> int:
        """Distinct units of the residual cell."""
        return self.larger_units - self.smaller_units

    @property
    def labels(self) -> tuple[str, ...]:
        """``variable=label`` for each margin, as findings name the cell."""
        return tuple(f"{v}={label}" for v, label in self.key)


@dataclass(frozen=True)
class DifferencingHit:
    """A pair of tables whose difference discloses, and the cells it discloses."""

    larger: str
    smaller: str
    relation: Relation  # of the smaller population to the larger
    larger_population: Population | None
    smaller_population: Population | None
    cells: tuple[DifferenceCell, ...] = field(default_factory=tuple)

    def explain(self) -> str:
        """Plain words naming the two tables, their populations and the cells."""
        def pop(p: Population | None) -> str:
            return "population not described" if p is None else p.words()

        how = ("is a sub-population of" if self.relation is Relation.WITHIN else
               "may be a sub-population of (the populations cannot be compared; every cell "
               "of it is at most the same cell of)")
        shown = "; ".join(f"({', '.join(c.labels)}): {c.message}" for c in self.cells[:10])
        more = len(self.cells) - 10
        return (f"{self.smaller} [{pop(self.smaller_population)}] {how} {self.larger} "
                f"[{pop(self.larger_population)}]: subtracting it gives the table of the "
                f"remaining units, where {shown}" + (f"; and {more} more cells" if more > 0
                                                     else ""))


def _residual_cells(larger: TableCells, smaller: TableCells, threshold: int,
                    nk_pairs: Sequence[tuple[int, float]], p: float | None
                    ) -> list[DifferenceCell]:
    found = []
    for key, big in sorted(larger.cells.items()):
        small = smaller.cells.get(key)
        if small is None:
            continue
        d = big.units - small.units
        if d <= 0:
            continue
        if d < threshold:
            found.append(DifferenceCell(key, big.units, small.units, "minimum_count",
                                        f"{big.units} - {small.units} = {d} units, below the "
                                        f"minimum of {threshold}"))
            continue
        if big.total is None or small.total is None:
            continue
        total = big.total - small.total
        if total <= 0:
            continue
        largest_small = max(small.top, default=0.0) if small.units else 0.0
        known = sorted((t for t in big.top if t > largest_small), reverse=True)
        if not known:
            continue
        for n, k in nk_pairs:
            share = sum(known[:n])
            if 100 * share > k * total:
                found.append(DifferenceCell(
                    key, big.units, small.units, "nk_dominance",
                    f"the residual total {_fmt(total)} has {min(n, len(known))} known "
                    f"contribution(s) summing to {_fmt(share)}, more than {_fmt(k)}% of it"))
                break
        else:
            if p is not None:
                x1 = known[0]
                x2 = known[1] if len(known) > 1 else 0.0
                if 100 * (total - x1 - x2) < p * x1:
                    found.append(DifferenceCell(
                        key, big.units, small.units, "p_percent",
                        f"the residual total {_fmt(total)} minus its two largest known "
                        f"contributions is less than {_fmt(p)}% of the largest ({_fmt(x1)})"))
    return found


def _fmt(x: float) -> str:
    return str(_number_json(round(x, 6)))


def _plausibly_within(small: TableCells, big: TableCells) -> bool:
    common = [k for k in small.cells if k in big.cells]
    return bool(common) and all(small.cells[k].units <= big.cells[k].units for k in common)


def find_differencing(new: TableCells, others: Iterable[TableCells], *, threshold: int,
                      nk_pairs: Sequence[tuple[int, float]] = (),
                      p: float | None = None) -> list[DifferencingHit]:
    """Pairs of ``new`` with each of ``others`` whose difference yields a disclosive cell.

    ``threshold`` is the minimum count (distinct units); ``nk_pairs`` the (n, k%) dominance
    pairs and ``p`` the p% rule's p, applied to residual totals of magnitude tables.
    """
    if type(threshold) is not int or threshold < 1:
        raise ValueError(f"threshold must be an integer >= 1, got {threshold!r}")
    hits = []
    for other in others:
        if other.margins != new.margins or other.measure != new.measure:
            continue
        rel = relation(new.population, other.population)
        if rel is Relation.WITHIN:
            pairs = [(other, new, Relation.WITHIN)]
        elif rel is Relation.CONTAINS:
            pairs = [(new, other, Relation.WITHIN)]
        elif rel is Relation.UNKNOWN:
            pairs = [(big, small, Relation.UNKNOWN) for big, small in ((other, new), (new, other))
                     if _plausibly_within(small, big)]
        else:
            continue  # same, overlapping, disjoint or unrelated populations
        for big, small, how in pairs:
            cells = _residual_cells(big, small, threshold, nk_pairs, p)
            if cells:
                hits.append(DifferencingHit(big.name, small.name, how, big.population,
                                            small.population, tuple(cells)))
                break  # one direction is enough to explain the pair
    return hits


def differencing_verdict(new: TableCells | None, hits: Sequence[DifferencingHit],
                         compared: int, *, threshold: int) -> RuleVerdict:
    """The ``differencing`` verdict of one file: REVIEW with the explanation if any pair
    discloses, else PASS saying how many tables it was compared with."""
    params = {"threshold": threshold, "compared_with": compared}
    if new is None:
        return RuleVerdict(RULE, Outcome.PASS, "differencing does not apply to this kind of "
                           "output", parameters=params)
    if not hits:
        return RuleVerdict(RULE, Outcome.PASS,
                           f"compared with {compared} earlier or accompanying table(s): no "
                           "difference of two tables on the same margins gives a disclosive "
                           "cell", parameters=params)
    findings = tuple(CellFinding(RULE, cell.labels, cell.units,
                                 f"{hit.larger} minus {hit.smaller}: {cell.message}")
                     for hit in hits for cell in hit.cells)
    message = " | ".join(hit.explain() for hit in hits)
    return RuleVerdict(RULE, Outcome.REVIEW, message, findings, params)
