"""The outcome of secondary suppression: which cells to withhold, at what cost, audited."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from output_control.suppression.audit import AuditReport
from output_control.suppression.problem import SuppressionProblem


@dataclass(frozen=True, eq=False)
class SuppressionResult:
    """A protected pattern: ``suppressed`` (boolean grid with margins), how it was found, its
    total cost and the LP audit that proved every primary cell keeps its interval."""

    problem: SuppressionProblem
    suppressed: np.ndarray
    method: str
    audit: AuditReport
    iterations: int = 0

    @property
    def cost(self) -> float:
        """Sum of the costs of the suppressed cells (primary ones included)."""
        return float(self.problem.costs[self.suppressed].sum())

    @property
    def complementary(self) -> np.ndarray:
        """Cells suppressed only to protect primary ones."""
        return self.suppressed & ~self.problem.primary

    def published(self) -> np.ndarray:
        """The grid with margins as released: suppressed cells are NaN."""
        return np.where(self.suppressed, np.nan, self.problem.values)
