"""Optimal secondary suppression by mixed-integer programming with cut generation.

Fischetti & Salazar-González (2000, "Models and algorithms for optimizing cell suppression in
tabular data with linear constraints", JASA 95:916-928), as in tau-ARGUS "optimal":

- binary ``y_c`` = 1 when cell ``c`` of the grid with margins is suppressed; primaries fixed
  to 1; minimise ``sum_c cost_c * y_c``;
- the attacker may move each cell by ``delta_c`` with ``-LB_c y_c <= delta_c <= UB_c y_c``
  (``LB_c = x_c - lower_bound_c``, ``UB_c = upper_bound_c - x_c``, capped at the sum of all
  cells so it is finite) keeping every relation ``A delta = 0``; primary ``p`` is protected
  upwards when ``max delta_p >= upper_p`` (downwards: ``max -delta_p >= lower_p``);
- by LP duality that holds iff ``sum_c (alpha_c UB_c + beta_c LB_c) y_c >= upper_p`` for
  every dual solution ``(gamma, alpha, beta) >= 0`` with ``A^T gamma + alpha - beta = e_p``;
  as ``y`` is binary, each coefficient is lowered to at most the right-hand side
  (coefficient strengthening), which keeps the cut valid and tightens the relaxation.

Those capacity constraints are too many to list, so they are generated: solve the master MILP
(``scipy.optimize.milp``, HiGHS) starting from the cuts of single relations, solve each
primary's attacker LP on the master's pattern, add the dual cut of every violated protection,
and repeat until none is violated. The last pattern is optimal (each cut is valid for every
protected pattern); it is then audited by LP with the true bounds and complementary cells an
attacker recovers exactly are published.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from output_control.suppression.audit import Attacker, audit_pattern, drop_exact_complements
from output_control.suppression.exceptions import (
    InfeasibleProtection,
    SuppressionError,
    UnprotectedPattern,
)
from output_control.suppression.problem import SuppressionProblem
from output_control.suppression.result import SuppressionResult

MAX_ITERATIONS = 500
# Small weight on published cells in the dual objective: among optimal dual solutions, prefer
# one that asks little of cells not yet suppressed, which gives tighter cuts.
_EPSILON = 1e-3


def suppress_optimal(
    problem: SuppressionProblem,
    *,
    time_limit: float = 60.0,
    max_iterations: int = MAX_ITERATIONS,
) -> SuppressionResult:
    """The cheapest protected pattern, proved protected by the LP audit.

    ``time_limit`` (seconds) bounds the whole search. Raises InfeasibleProtection when no
    pattern protects every primary cell, SuppressionError when the search stops (time or
    iteration limit) before proving optimality: ``suppress_hypercube`` then gives a protected,
    if costlier, pattern quickly.
    """
    deadline = time.monotonic() + time_limit
    model = _Model(problem)
    cuts: list[tuple[np.ndarray, float]] = model.relation_cuts()
    seen: set[bytes] = set()
    for iteration in range(1, max_iterations + 1):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SuppressionError(
                f"no optimal pattern within {time_limit:g} s ({iteration - 1} rounds of cuts); "
                "use suppress_hypercube or a longer time_limit"
            )
        y = model.solve_master(cuts, remaining)
        suppressed = (y > 0.5).reshape(problem.shape)
        if suppressed.tobytes() in seen:  # a cut failed to cut: numerical trouble, fail closed
            raise SuppressionError("the suppression MILP returned a pattern it had already cut")
        seen.add(suppressed.tobytes())
        attacker = Attacker(problem, suppressed)
        new = model.violated_cuts(y, model.reaches(attacker))
        if not new:
            report = audit_pattern(problem, suppressed, attacker=attacker)
            if not report.protected:  # cannot happen unless the solver misbehaves: fail closed
                raise UnprotectedPattern(report.describe())
            suppressed, report = drop_exact_complements(problem, suppressed, report)
            return SuppressionResult(problem, suppressed, "optimal", report, iteration)
        cuts.extend(new)
    raise SuppressionError(f"no optimal pattern after {max_iterations} rounds of cuts")


class _Model:
    """The master problem and the attacker subproblems of one suppression problem."""

    def __init__(self, problem: SuppressionProblem) -> None:
        self.problem = problem
        values = problem.values.ravel()
        cap = float(np.abs(values).sum()) + 1.0
        self.fall = values - problem.lower_bounds.ravel()  # LB_c
        self.rise = np.minimum(problem.upper_bounds.ravel() - values, cap)  # UB_c
        self.relations = problem.relations.tocsr()
        self.primary = np.flatnonzero(problem.primary.ravel())
        self.tol = problem.tolerance
        self.targets = [
            (int(p), direction, float(level))
            for p in self.primary
            for direction, level in ((1.0, problem.upper.ravel()[p]),
                                     (-1.0, problem.lower.ravel()[p]))
            if level > 0
        ]  # fmt: skip

    def relation_cuts(self) -> list[tuple[np.ndarray, float]]:
        """Cuts from one relation at a time: if p moves, the relation's other cells must
        absorb the move within their room."""
        cuts = []
        size = self.problem.size
        for p, direction, level in self.targets:
            column = self.relations[:, [p]].toarray().ravel()
            for relation in np.flatnonzero(column):
                row = self.relations.getrow(relation)
                coefs = np.zeros(size)
                a_p = column[relation] * direction
                for c, a_c in zip(row.indices, row.data, strict=True):
                    if c == p:
                        continue
                    # same sign as p's move must go down, opposite sign must go up
                    coefs[c] = self.fall[c] if a_c * a_p > 0 else self.rise[c]
                cuts.append((np.minimum(coefs, level), level))
        return cuts

    def solve_master(self, cuts: list[tuple[np.ndarray, float]], time_limit: float) -> np.ndarray:
        problem = self.problem
        lower = problem.primary.ravel().astype(float)
        constraints = []
        if cuts:
            matrix = sp.csr_matrix(np.vstack([c for c, _ in cuts]))
            rhs = np.array([r for _, r in cuts])
            constraints.append(LinearConstraint(matrix, rhs - self.tol, np.inf))
        result = milp(
            problem.costs.ravel(),
            constraints=constraints,
            integrality=np.ones(problem.size),
            bounds=Bounds(lower, np.ones(problem.size)),
            options={"time_limit": time_limit, "mip_rel_gap": 0.0},
        )
        if result.status == 2:
            raise InfeasibleProtection(
                "no suppression pattern protects every primary cell within its bounds"
            )
        if result.status != 0 or result.x is None:
            raise SuppressionError(
                f"the suppression MILP did not finish ({result.message}); use "
                "suppress_hypercube or a longer time_limit"
            )
        return np.round(result.x)

    def reaches(self, attacker: Attacker) -> dict[int, tuple[float, float]]:
        """Per primary cell, (low, high) values some feasible table of the attacker attains:
        beyond the protection interval when it is reachable, else the exact LP extremes. A
        protection proved by a table already found costs no LP (``Attacker.reach``)."""
        values = self.problem.values.ravel()
        known = {int(p): (float(values[p]), float(values[p])) for p in self.primary}
        for p, direction, level in self.targets:
            low, high = known[p]
            target = direction * values[p] + level - self.tol
            reached = direction * attacker.reach(p, direction, target)
            known[p] = (low, reached) if direction > 0 else (reached, high)
        return known

    def violated_cuts(
        self, y: np.ndarray, known: dict[int, tuple[float, float]]
    ) -> list[tuple[np.ndarray, float]]:
        """Dual cuts of every protection the pattern ``y`` misses, given what the attacker can
        reach for each primary cell on that pattern (``reaches``; with the true
        bounds, which are never tighter than the capped ones, so a miss is also a miss of the
        capped model and its cut is violated)."""
        values = self.problem.values.ravel()
        cuts = []
        for p, direction, level in self.targets:
            low, high = known[p]
            reach = high - values[p] if direction > 0 else values[p] - low
            if reach >= level - self.tol:
                continue
            cut = self._dual_cut(y, p, direction, _EPSILON)
            if cut @ y >= level - self.tol:  # the perturbed dual was not tight: use the exact one
                cut = self._dual_cut(y, p, direction, 0.0)
            # For binary y, a coefficient above the right-hand side can be lowered to it: the
            # cut stays valid and its LP relaxation is much tighter.
            cuts.append((np.minimum(cut, level), level))
        return cuts

    def _dual_cut(self, y: np.ndarray, p: int, direction: float, epsilon: float) -> np.ndarray:
        """Coefficients ``alpha_c UB_c + beta_c LB_c`` of a dual optimum at ``y`` (+ epsilon)."""
        size = self.problem.size
        n_rel = self.relations.shape[0]
        weight = y + epsilon
        # variables: gamma (free, n_rel), alpha (>= 0, size), beta (>= 0, size)
        objective = np.concatenate([np.zeros(n_rel), self.rise * weight, self.fall * weight])
        identity = sp.identity(size, format="csr")
        a_eq = sp.hstack([self.relations.T, identity, -identity], format="csr")
        b_eq = np.zeros(size)
        b_eq[p] = direction
        bounds = [(None, None)] * n_rel + [(0, None)] * (2 * size)
        result = linprog(objective, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
        if result.status != 0:
            raise SuppressionError(f"an attacker dual LP failed ({result.message})")
        alpha = result.x[n_rel : n_rel + size]
        beta = result.x[n_rel + size :]
        coefs = np.maximum(alpha * self.rise + beta * self.fall, 0.0)
        coefs[np.abs(coefs) < 1e-12] = 0.0
        return coefs
