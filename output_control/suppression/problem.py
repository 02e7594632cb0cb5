"""A secondary-suppression problem: a 2-D table with its margins, primary cells and protection.

The table with margins is an ``(m+1) x (n+1)`` grid ``X``: the last column holds row totals, the
last row column totals, the corner the grand total. It satisfies ``m+n+2`` linear relations,
one per grid row ``r`` (``sum_{c<n} X[r,c] = X[r,n]``) and one per grid column ``c``
(``sum_{r<m} X[r,c] = X[m,c]``), which is all an attacker knows besides the published cells and
the a-priori bounds ``lower_bounds <= X <= upper_bounds`` (non-negativity by default).

A primary cell ``p`` of value ``x_p`` is protected when an attacker cannot narrow it below its
protection interval: the largest value consistent with what is published is at least
``x_p + upper[p]`` and the smallest at most ``x_p - lower[p]`` (tau-ARGUS upper and lower
protection levels; Hundepool et al. 2012, section 4.3).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike

from output_control.suppression.exceptions import InfeasibleProtection, SuppressionError

DEFAULT_PROTECTION = 0.3
CostModel = Literal["value", "cells"]
_TOLERANCE = 1e-7


@dataclass(frozen=True, eq=False)
class SuppressionProblem:
    """The grid with margins, which cells are primary, their protection levels, the attacker's
    a-priori bounds and the cost of suppressing each cell (all arrays of the grid's shape)."""

    values: np.ndarray
    primary: np.ndarray
    upper: np.ndarray
    lower: np.ndarray
    lower_bounds: np.ndarray
    upper_bounds: np.ndarray
    costs: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        """Shape of the grid with margins, ``(m+1, n+1)``."""
        rows, cols = self.values.shape
        return int(rows), int(cols)

    @property
    def size(self) -> int:
        """Number of cells of the grid, margins included."""
        return int(self.values.size)

    @cached_property
    def relations(self) -> sp.csr_matrix:
        """The ``(m+1)+(n+1)`` relations as a sparse matrix ``A`` with ``A @ X.ravel() = 0``."""
        return relations_matrix(self.shape)

    @cached_property
    def tolerance(self) -> float:
        """Absolute slack for comparing intervals, relative to the table's magnitude."""
        return _TOLERANCE * max(1.0, float(np.abs(self.values).max(initial=0.0)))

    def cell(self, flat: int) -> tuple[int, int]:
        """(row, column) of the flat index ``flat``."""
        r, c = divmod(int(flat), self.shape[1])
        return r, c


def relations_matrix(shape: tuple[int, int]) -> sp.csr_matrix:
    """Row relations then column relations of a grid with margins, over row-major cells."""
    rows, cols = shape
    flat = np.arange(rows * cols)
    row_coef = np.ones(shape)
    row_coef[:, -1] = -1.0
    col_coef = np.ones(shape)
    col_coef[-1, :] = -1.0
    data = np.concatenate([row_coef.ravel(), col_coef.ravel()])
    relation = np.concatenate([flat // cols, rows + flat % cols])
    return sp.csr_matrix(
        (data, (relation, np.concatenate([flat, flat]))), shape=(rows + cols, rows * cols)
    )


def with_margins(table: ArrayLike) -> np.ndarray:
    """``table`` (m x n) with its row totals, column totals and grand total appended."""
    inner = _as_grid(table, "table")
    grid = np.zeros((inner.shape[0] + 1, inner.shape[1] + 1))
    grid[:-1, :-1] = inner
    grid[:-1, -1] = inner.sum(axis=1)
    grid[-1, :-1] = inner.sum(axis=0)
    grid[-1, -1] = inner.sum()
    return grid


def make_problem(
    table: ArrayLike,
    primary: ArrayLike,
    *,
    margins: Literal["compute", "given"] = "compute",
    protection: float | tuple[ArrayLike, ArrayLike] = DEFAULT_PROTECTION,
    min_protection: float = 1.0,
    cost: CostModel | ArrayLike = "value",
    lower_bounds: float | ArrayLike = 0.0,
    upper_bounds: float | ArrayLike = np.inf,
) -> SuppressionProblem:
    """Build and validate a problem.

    ``table`` is the m x n interior (``margins="compute"``) or the full grid with margins
    (``margins="given"``, checked for consistency). ``primary`` is a boolean mask of the
    interior or of the full grid (margins may be primary). ``protection`` is either a fraction:
    both levels are ``max(fraction * |x|, min_protection)``, the lower one capped at the cell's
    distance to its lower bound (so a zero can only be protected upwards); or a pair of arrays
    ``(upper, lower)`` of absolute levels. ``cost`` is ``"value"`` (``|x| + 1``: the suppressed
    total, each suppression costing 1 more so fewer cells win ties and no cell is free),
    ``"cells"`` (1 each: the number of suppressions) or an array of positive weights.
    """
    grid = _as_grid(table, "table")
    if margins == "compute":
        grid = with_margins(grid)
    elif margins != "given":
        raise SuppressionError(f"margins must be 'compute' or 'given', got {margins!r}")
    if grid.shape[0] < 2 or grid.shape[1] < 2:
        raise SuppressionError("a table with margins needs at least one row and one column")
    mask = _mask(primary, grid.shape)
    lower_b = _broadcast(lower_bounds, grid.shape, "lower_bounds")
    upper_b = _broadcast(upper_bounds, grid.shape, "upper_bounds", allow_inf=True)
    if np.any(grid < lower_b - _TOLERANCE) or np.any(grid > upper_b + _TOLERANCE):
        raise SuppressionError("some cells lie outside their a-priori bounds")
    residual = relations_matrix(grid.shape) @ grid.ravel()
    scale = max(1.0, float(np.abs(grid).max()))
    if np.abs(residual).max() > 1e-9 * scale * grid.size:
        raise SuppressionError("the margins do not add up: row or column totals are wrong")
    upper, lower = _levels(grid, mask, protection, min_protection, lower_b)
    costs = _costs(grid, cost)
    problem = SuppressionProblem(
        values=grid,
        primary=mask,
        upper=upper,
        lower=lower,
        lower_bounds=lower_b,
        upper_bounds=upper_b,
        costs=costs,
    )
    _check_feasible(problem)
    return problem


def p_percent_protection(total: float, x1: float, x2: float, p: float) -> float:
    """Protection level a p%-sensitive cell needs (tau-ARGUS; Hundepool et al. 2012, 4.3.1):
    ``p/100 * x1 - (X - x1 - x2)``, what the rest of the cell lacks to hide the largest
    contributor within p percent from the second largest; 0 when the cell is safe."""
    return max(0.0, p / 100.0 * x1 - (total - x1 - x2))


def _as_grid(table: ArrayLike, what: str) -> np.ndarray:
    grid = np.asarray(table, dtype=np.float64)
    if grid.ndim != 2 or grid.size == 0:
        raise SuppressionError(f"{what} must be a non-empty 2-D array, got shape {grid.shape}")
    if not np.all(np.isfinite(grid)):
        raise SuppressionError(f"{what} must hold finite numbers")
    return grid


def _mask(primary: ArrayLike, shape: tuple[int, int]) -> np.ndarray:
    mask = np.asarray(primary)
    if mask.dtype != bool:
        raise SuppressionError("primary must be a boolean mask")
    if mask.shape == (shape[0] - 1, shape[1] - 1):
        full = np.zeros(shape, dtype=bool)
        full[:-1, :-1] = mask
        return full
    if mask.shape != shape:
        raise SuppressionError(f"primary has shape {mask.shape}, expected the table's")
    return mask.copy()


def _broadcast(
    value: float | ArrayLike, shape: tuple[int, int], what: str, *, allow_inf: bool = False
) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 2 and array.shape == (shape[0] - 1, shape[1] - 1):
        raise SuppressionError(f"{what} must cover the margins too (shape {shape})")
    try:
        array = np.broadcast_to(array, shape).copy()
    except ValueError:
        raise SuppressionError(f"{what} does not fit the table's shape {shape}") from None
    if np.any(np.isnan(array)) or (not allow_inf and not np.all(np.isfinite(array))):
        raise SuppressionError(f"{what} must hold finite numbers")
    return array


def _levels(
    grid: np.ndarray,
    mask: np.ndarray,
    protection: float | tuple[ArrayLike, ArrayLike],
    min_protection: float,
    lower_b: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(protection, tuple):
        upper = _broadcast(protection[0], grid.shape, "upper protection")
        lower = _broadcast(protection[1], grid.shape, "lower protection")
    else:
        if not float(protection) >= 0 or not np.isfinite(protection):
            raise SuppressionError(f"protection must be a fraction >= 0, got {protection!r}")
        if min_protection < 0:
            raise SuppressionError(f"min_protection must be >= 0, got {min_protection!r}")
        level = np.maximum(float(protection) * np.abs(grid), float(min_protection))
        upper = level
        lower = np.minimum(level, grid - lower_b)
    if np.any(upper < 0) or np.any(lower < 0):
        raise SuppressionError("protection levels must be >= 0")
    upper = np.where(mask, upper, 0.0)
    lower = np.where(mask, lower, 0.0)
    if np.any(mask & (upper + lower <= 0)):
        raise SuppressionError(
            "a primary cell has no protection level: it would be suppressed yet recoverable"
        )
    return upper, lower


def _costs(grid: np.ndarray, cost: CostModel | ArrayLike) -> np.ndarray:
    if isinstance(cost, str):
        if cost == "value":
            return np.abs(grid) + 1.0
        if cost == "cells":
            return np.ones_like(grid)
        raise SuppressionError(f"cost must be 'value', 'cells' or an array, got {cost!r}")
    costs = _broadcast(cost, grid.shape, "cost")
    if np.any(costs <= 0):
        raise SuppressionError("costs must be > 0, or a suppression could be free")
    return costs


def _check_feasible(problem: SuppressionProblem) -> None:
    down = problem.values - problem.lower_bounds
    up = problem.upper_bounds - problem.values
    bad = problem.primary & (
        (problem.lower > down + problem.tolerance) | (problem.upper > up + problem.tolerance)
    )
    if np.any(bad):
        cells = [tuple(int(i) for i in cell) for cell in np.argwhere(bad)]
        raise InfeasibleProtection(
            f"cells {cells[:5]} cannot be protected: their protection interval goes beyond "
            "their a-priori bounds"
        )
