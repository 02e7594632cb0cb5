"""Audit of a suppression pattern by linear programming: what can an attacker derive?

For every suppressed cell ``c`` the attacker solves ``min x_c`` and ``max x_c`` subject to the
table's relations (row and column sums equal their margins), the published cells fixed at their
values and the a-priori bounds ``lower_bounds <= x <= upper_bounds`` (``scipy.optimize.linprog``,
HiGHS). A primary cell is protected when its interval ``[low, high]`` reaches its protection
interval: ``high >= x_p + upper_p`` and ``low <= x_p - lower_p`` (Hundepool et al. 2012,
section 4.3, "audit"). A suppressed cell whose interval has width 0 is recoverable exactly:
publishing it changes nothing for the other cells, so complementary ones are dropped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog
from scipy.sparse.csgraph import connected_components

from output_control.suppression.exceptions import SuppressionError, UnprotectedPattern
from output_control.suppression.problem import SuppressionProblem

# How close (relative) an LP solution must come to a cell's a-priori bound to count as on it:
# well within HiGHS's feasibility tolerance (1e-7), so the bound is the LP optimum as well.
_BOUND_SLACK = 1e-9


@dataclass(frozen=True)
class CellInterval:
    """What an attacker can derive about one suppressed cell, and what protection it needs."""

    cell: tuple[int, int]
    value: float
    low: float
    high: float
    primary: bool
    needed_low: float
    needed_high: float
    tolerance: float = 0.0

    @property
    def protected(self) -> bool:
        """Whether the interval reaches the protection interval (always true for complements)."""
        if not self.primary:
            return True
        return (
            self.high >= self.needed_high - self.tolerance
            and self.low <= self.needed_low + self.tolerance
        )

    @property
    def exact(self) -> bool:
        """Whether the attacker recovers the cell's value exactly."""
        return self.high - self.low <= self.tolerance


@dataclass(frozen=True)
class AuditReport:
    """Intervals of every suppressed cell of a pattern; ``protected`` when no primary fails."""

    intervals: tuple[CellInterval, ...]

    @property
    def failures(self) -> tuple[CellInterval, ...]:
        """Primary cells an attacker can narrow below their protection interval."""
        return tuple(i for i in self.intervals if not i.protected)

    @property
    def protected(self) -> bool:
        """Whether every primary cell keeps its protection interval."""
        return not self.failures

    def interval(self, cell: tuple[int, int]) -> CellInterval:
        """The interval of ``cell``; KeyError if it is not suppressed."""
        for item in self.intervals:
            if item.cell == cell:
                return item
        raise KeyError(cell)

    def describe(
        self,
        row_labels: Sequence[str] | None = None,
        column_labels: Sequence[str] | None = None,
    ) -> str:
        """Plain words: every failing primary cell with its interval and the one it needs."""
        if self.protected:
            return (
                f"all primary cells keep their protection interval ({len(self.intervals)} "
                "suppressed cells audited)"
            )
        parts = []
        for item in self.failures:
            r, c = item.cell
            name = (
                f"({row_labels[r]}, {column_labels[c]})"
                if row_labels is not None and column_labels is not None
                else f"(row {r}, column {c})"
            )
            parts.append(
                f"{name} value {item.value:g} can be narrowed to [{item.low:g}, {item.high:g}] "
                f"but needs at least [{item.needed_low:g}, {item.needed_high:g}]"
            )
        head = "1 primary cell is" if len(parts) == 1 else f"{len(parts)} primary cells are"
        return f"{head} not protected: " + "; ".join(parts)


def audit_pattern(
    problem: SuppressionProblem,
    suppressed: np.ndarray,
    *,
    known: Mapping[int, tuple[float, float]] | None = None,
    attacker: Attacker | None = None,
) -> AuditReport:
    """LP intervals of every suppressed cell of ``suppressed`` (a boolean grid); every primary
    cell must be in the pattern, else SuppressionError. ``known`` holds intervals already
    computed for this very pattern (flat cell index -> (low, high)), which are not solved
    again; ``attacker`` an Attacker already built for this very pattern, whose LP optima are
    reused."""
    mask = np.asarray(suppressed, dtype=bool)
    if mask.shape != problem.shape:
        raise SuppressionError(f"the pattern has shape {mask.shape}, expected {problem.shape}")
    if np.any(problem.primary & ~mask):
        raise SuppressionError("the pattern publishes a primary cell")
    if attacker is None:
        attacker = Attacker(problem, mask)
    intervals = []
    for flat in np.flatnonzero(mask.ravel()):
        if known is not None and int(flat) in known:
            low, high = known[int(flat)]
        else:
            low, high = attacker.interval(int(flat))
        cell = problem.cell(int(flat))
        value = float(problem.values[cell])
        intervals.append(
            CellInterval(
                cell=cell,
                value=value,
                low=low,
                high=high,
                primary=bool(problem.primary[cell]),
                needed_low=value - float(problem.lower[cell]),
                needed_high=value + float(problem.upper[cell]),
                tolerance=problem.tolerance,
            )
        )
    return AuditReport(tuple(intervals))


def require_protected(
    problem: SuppressionProblem, suppressed: np.ndarray
) -> AuditReport:
    """The audit of ``suppressed``; raises UnprotectedPattern when a primary cell is exposed."""
    report = audit_pattern(problem, suppressed)
    if not report.protected:
        raise UnprotectedPattern(report.describe())
    return report


def drop_exact_complements(
    problem: SuppressionProblem, suppressed: np.ndarray, report: AuditReport
) -> tuple[np.ndarray, AuditReport]:
    """Publish the complementary cells an attacker recovers exactly anyway.

    Fixing a cell at the only value it can take leaves the attacker's feasible set unchanged,
    so every other interval, and every protection, stays as audited.
    """
    exact = [i.cell for i in report.intervals if i.exact and not i.primary]
    if not exact:
        return suppressed, report
    kept = suppressed.copy()
    for cell in exact:
        kept[cell] = False
    return kept, AuditReport(tuple(i for i in report.intervals if i.cell not in set(exact)))


class Attacker:
    """The attacker's linear program for one pattern, reduced to the suppressed cells.

    The program splits into independent parts: two suppressed cells interact only through a
    relation holding both, so the connected components of "shares a relation" are separate
    LPs (a cell alone in a relation is recovered exactly, with no LP at all). Each part's
    matrix is built once and reused for the min and max of every cell in it, and every LP
    solution is kept: it is a table the attacker cannot rule out, so a later cell found at
    its a-priori bound in one of them has that bound as its extreme with no LP (on counts
    many cells sit at 0 in LP vertices), and ``reach`` settles "can the attacker get beyond
    this value" from them when it can. A dense pattern is often one part; the saving then
    comes from the kept tables (378 LPs down to 144 on the benchmark's 30 x 30 counts).
    """

    def __init__(self, problem: SuppressionProblem, suppressed: np.ndarray) -> None:
        flat = suppressed.ravel()
        self.columns = np.flatnonzero(flat)
        self.position = {int(c): i for i, c in enumerate(self.columns)}
        relations = problem.relations
        hidden = sp.csr_matrix(relations[:, self.columns])
        shown = relations[:, np.flatnonzero(~flat)]
        rhs = -(shown @ problem.values.ravel()[~flat])
        used = np.flatnonzero(np.diff(hidden.indptr))
        self.a_eq = hidden[used]
        self.b_eq = np.asarray(rhs)[used]
        self.bounds = np.column_stack(
            [problem.lower_bounds.ravel()[self.columns], problem.upper_bounds.ravel()[self.columns]]
        )
        if self.a_eq.shape[0]:
            pattern = abs(self.a_eq)
            _, self.labels = connected_components(pattern.T @ pattern, directed=False)
        else:
            self.labels = np.arange(len(self.columns))
        self._parts: dict[int, _Part] = {}

    def interval(self, flat: int) -> tuple[float, float]:
        """(min, max) of cell ``flat`` over the attacker's feasible tables."""
        part, k = self._locate(flat)
        if part.fixed is not None:
            return part.fixed, part.fixed
        return -part.maximum(k, -1.0), part.maximum(k, 1.0)

    def reach(self, flat: int, sign: float, target: float) -> float:
        """A value of ``sign * x`` (cell ``flat``) some feasible table attains: at least
        ``target`` when any table attains it, else the exact maximum. Tables found by earlier
        LPs of the same part are tried first, so one LP often settles many cells at once."""
        part, k = self._locate(flat)
        if part.fixed is not None:
            return sign * part.fixed
        return part.reach(k, sign, target)

    def _locate(self, flat: int) -> tuple[_Part, int]:
        i = self.position[flat]
        part = self._part(int(self.labels[i]))
        return part, int(np.searchsorted(part.members, i))

    def _part(self, label: int) -> _Part:
        part = self._parts.get(label)
        if part is None:
            members = np.flatnonzero(self.labels == label)
            block = self.a_eq[:, members]
            rows = np.flatnonzero(np.diff(sp.csr_matrix(block).indptr))
            part = _Part(members, block[rows].toarray(), self.b_eq[rows], self.bounds[members])
            self._parts[label] = part
        return part


class _Part:
    """One independent piece of the attacker's LP: its cells (positions in the suppressed
    list), the relations among them only, their right-hand sides and the cells' bounds, with
    the exact optima and the feasible tables (LP solutions) found so far."""

    def __init__(
        self, members: np.ndarray, a_eq: np.ndarray, b_eq: np.ndarray, bounds: np.ndarray
    ) -> None:
        self.members = members
        self.a_eq = a_eq
        self.b_eq = b_eq
        self.bounds = bounds
        self.optima: dict[tuple[int, float], float] = {}
        self.tables: list[np.ndarray] = []
        # A cell alone in a relation: that relation gives its value, whatever the bounds.
        self.fixed = (
            float(b_eq[0] / a_eq[0, 0]) if len(members) == 1 and a_eq.shape[0] else None
        )

    def reach(self, k: int, sign: float, target: float) -> float:
        """See ``Attacker.reach``."""
        if (k, sign) in self.optima:
            return self.optima[(k, sign)]
        if self.tables:
            best = max(sign * float(table[k]) for table in self.tables)
            if best >= target:
                return best
        return self.maximum(k, sign)

    def maximum(self, k: int, sign: float) -> float:
        """``max sign * x_k`` over the part's feasible set (``inf`` when unbounded)."""
        if (k, sign) in self.optima:
            return self.optima[(k, sign)]
        # A table found earlier with the cell at its a-priori bound proves that bound is the
        # extreme (no table goes beyond it): on counts, many cells sit at 0 in LP vertices.
        limit = float(self.bounds[k, 1] if sign > 0 else -self.bounds[k, 0])
        slack = _BOUND_SLACK * max(1.0, abs(limit))
        if math.isfinite(limit) and any(sign * t[k] >= limit - slack for t in self.tables):
            self.optima[(k, sign)] = limit
            return limit
        objective = np.zeros(len(self.members))
        objective[k] = -sign
        has_rows = self.a_eq.shape[0] > 0
        result = linprog(
            objective,
            A_eq=self.a_eq if has_rows else None,
            b_eq=self.b_eq if has_rows else None,
            bounds=self.bounds,
            method="highs",
        )
        if result.status == 3:  # unbounded: the attacker learns nothing on that side
            value = math.inf
        elif result.status != 0:
            raise SuppressionError(f"the audit LP failed ({result.message})")
        else:
            value = -float(result.fun)
            self.tables.append(np.asarray(result.x, dtype=float))
        self.optima[(k, sign)] = value
        return value
