"""Fast heuristic secondary suppression: the hypercube (rectangle) method.

For each primary cell ``p`` (largest first) the method chooses the cheapest rectangle of four
cells of the grid with margins that contains ``p`` and protects it on its own (Repsilber's
hypercube method in two dimensions, as in tau-ARGUS "hypercube"/GHMITER; Hundepool et al. 2012,
section 4.4.2). Four cells ``(i,j), (i,j2), (i2,j), (i2,j2)`` can move together by ``d`` times
signs ``u_r * v_c`` without breaking any relation, where ``u = e_i - e_i2`` for two interior
rows and ``u = e_i + e_i2`` when one of them is the margin row (likewise for columns). Moving
``p`` up is limited by the cells that then decrease (down to their lower bound) or increase (up
to their upper bound); the rectangle protects ``p`` when both moves reach its levels. Cells
already suppressed cost nothing more. Suppressing more cells only widens every interval, so
the union of the chosen rectangles protects every primary cell; the LP audit confirms it.
A primary cell no single rectangle protects gets several, added until the audit passes.
"""

from __future__ import annotations

import numpy as np

from output_control.suppression.audit import (
    audit_pattern,
    drop_exact_complements,
    require_protected,
)
from output_control.suppression.exceptions import InfeasibleProtection
from output_control.suppression.problem import SuppressionProblem
from output_control.suppression.result import SuppressionResult

MAX_RECTANGLES = 25


def suppress_hypercube(problem: SuppressionProblem) -> SuppressionResult:
    """A protected pattern found by the rectangle heuristic, audited by LP (raises
    UnprotectedPattern if the audit disagrees, InfeasibleProtection if no pattern is found)."""
    suppressed = problem.primary.copy()
    order = sorted(
        ((int(r), int(c)) for r, c in np.argwhere(problem.primary)),
        key=lambda cell: (-abs(float(problem.values[cell])), cell),
    )
    for cell in order:
        _protect(problem, suppressed, cell)
    report = require_protected(problem, suppressed)
    suppressed, report = drop_exact_complements(problem, suppressed, report)
    return SuppressionResult(problem, suppressed, "hypercube", report)


def rectangles(
    problem: SuppressionProblem, cell: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For every partner (i2, j2) of ``cell``: (i2 grid, j2 grid, upward slack, downward slack)
    of the rectangle, i.e. how far ``cell`` can move up and down with it alone."""
    i, j = cell
    rows, cols = problem.shape
    m, n = rows - 1, cols - 1
    i2 = np.array([r for r in range(rows) if r != i])
    j2 = np.array([c for c in range(cols) if c != j])
    # Sign of the partner row/column relative to p's: opposite when both are interior.
    s_row = np.where((i2 != m) & (i != m), -1.0, 1.0)[:, None]
    s_col = np.where((j2 != n) & (j != n), -1.0, 1.0)[None, :]
    down_room = problem.values - problem.lower_bounds  # how far each cell can decrease
    up_room = problem.upper_bounds - problem.values  # how far each cell can increase
    shape = (len(i2), len(j2))

    def full(a: np.ndarray | float) -> np.ndarray:
        return np.broadcast_to(a, shape)

    corners = [  # (sign, room to rise, room to fall) of p, (i, j2), (i2, j), (i2, j2)
        (full(1.0), full(up_room[i, j]), full(down_room[i, j])),
        (full(s_col), full(up_room[i, j2][None, :]), full(down_room[i, j2][None, :])),
        (full(s_row), full(up_room[i2, j][:, None]), full(down_room[i2, j][:, None])),
        (s_row * s_col, up_room[np.ix_(i2, j2)], down_room[np.ix_(i2, j2)]),
    ]
    up = np.full(shape, np.inf)
    down = np.full(shape, np.inf)
    for sign, can_rise, can_fall in corners:
        up = np.minimum(up, np.where(sign > 0, can_rise, can_fall))
        down = np.minimum(down, np.where(sign > 0, can_fall, can_rise))
    return i2, j2, up, down


def _protect(problem: SuppressionProblem, suppressed: np.ndarray, cell: tuple[int, int]) -> None:
    i, j = cell
    i2, j2, up, down = rectangles(problem, cell)
    extra = np.where(suppressed, 0.0, problem.costs)
    cost = extra[i2, j][:, None] + extra[i, j2][None, :] + extra[np.ix_(i2, j2)]
    tol = problem.tolerance
    enough = (up >= problem.upper[cell] - tol) & (down >= problem.lower[cell] - tol)
    if enough.any():
        a, b = np.unravel_index(np.argmin(np.where(enough, cost, np.inf)), cost.shape)
        _add(suppressed, cell, int(i2[a]), int(j2[b]))
        return
    # No rectangle suffices alone: add the most protective ones until the audit passes.
    ratio_up = up / problem.upper[cell] if problem.upper[cell] > 0 else np.ones_like(up)
    ratio_down = down / problem.lower[cell] if problem.lower[cell] > 0 else np.ones_like(down)
    score = np.minimum(np.minimum(ratio_up, ratio_down), 1.0)
    ranked = np.lexsort((cost.ravel(), -score.ravel()))
    for k in ranked[:MAX_RECTANGLES]:
        if score.ravel()[k] <= 0:
            break
        a, b = np.unravel_index(k, cost.shape)
        _add(suppressed, cell, int(i2[a]), int(j2[b]))
        if audit_pattern(problem, suppressed).interval(cell).protected:
            return
    raise InfeasibleProtection(
        f"the rectangle heuristic found no pattern protecting cell {cell}; use the optimal "
        "method"
    )


def _add(suppressed: np.ndarray, cell: tuple[int, int], i2: int, j2: int) -> None:
    i, j = cell
    suppressed[i, j2] = suppressed[i2, j] = suppressed[i2, j2] = True
