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

from output_control.suppression.exceptions import SuppressionError, UnprotectedPattern
from output_control.suppression.problem import SuppressionProblem


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
) -> AuditReport:
    """LP intervals of every suppressed cell of ``suppressed`` (a boolean grid); every primary
    cell must be in the pattern, else SuppressionError. ``known`` holds intervals already
    computed for this very pattern (flat cell index -> (low, high)), which are not solved
    again."""
    mask = np.asarray(suppressed, dtype=bool)
    if mask.shape != problem.shape:
        raise SuppressionError(f"the pattern has shape {mask.shape}, expected {problem.shape}")
    if np.any(problem.primary & ~mask):
        raise SuppressionError("the pattern publishes a primary cell")
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
    """The attacker's linear program for one pattern, reduced to the suppressed cells."""

    def __init__(self, problem: SuppressionProblem, suppressed: np.ndarray) -> None:
        flat = suppressed.ravel()
        self.columns = np.flatnonzero(flat)
        self.position = {int(c): i for i, c in enumerate(self.columns)}
        relations = problem.relations
        hidden = relations[:, self.columns]
        shown = relations[:, np.flatnonzero(~flat)]
        rhs = -(shown @ problem.values.ravel()[~flat])
        used = np.flatnonzero(np.diff(sp.csr_matrix(hidden).indptr))
        self.a_eq = sp.csr_matrix(hidden)[used]
        self.b_eq = np.asarray(rhs)[used]
        low = problem.lower_bounds.ravel()[self.columns]
        high = problem.upper_bounds.ravel()[self.columns]
        self.bounds = [
            (float(lo), None if math.isinf(hi) else float(hi))
            for lo, hi in zip(low, high, strict=True)
        ]

    def interval(self, flat: int) -> tuple[float, float]:
        """(min, max) of cell ``flat`` over the attacker's feasible tables."""
        i = self.position[flat]
        return self._extreme(i, 1.0), -self._extreme(i, -1.0)

    def _extreme(self, i: int, sign: float) -> float:
        objective = np.zeros(len(self.columns))
        objective[i] = sign
        result = linprog(
            objective,
            A_eq=self.a_eq if self.a_eq.shape[0] else None,
            b_eq=self.b_eq if self.a_eq.shape[0] else None,
            bounds=self.bounds,
            method="highs",
        )
        if result.status == 3:  # unbounded: the attacker learns nothing on that side
            return -math.inf
        if result.status != 0:
            raise SuppressionError(f"the audit LP failed ({result.message})")
        return float(result.fun)
