"""The accounting record every DP query returns with its value: what was spent, and how.

A record states the privacy loss of the query (epsilon, delta), each mechanism run with its
own epsilon, sensitivity and noise scale, the bounds and the contribution bound. It holds only
parameters the caller chose, never anything computed from the data (a count of clipped values
or of dropped events would itself leak), so it may be stored and shown as it is.

Epsilons of the mechanisms of one query add up (basic sequential composition, Dwork & Roth
2014, Theorem 3.16), so ``epsilon`` is their sum and ``delta`` the sum of their deltas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")

#: Where the formulas of this package come from.
SOURCES = (
    "C. Dwork and A. Roth, The Algorithmic Foundations of Differential Privacy, Foundations "
    "and Trends in Theoretical Computer Science 9(3-4), 2014",
    "N. Holohan et al., Diffprivlib: The IBM Differential Privacy Library, 2019, and its "
    "documentation (diffprivlib.readthedocs.io), version 0.6",
)


@dataclass(frozen=True)
class MechanismUse:
    """One run of a diffprivlib mechanism: its epsilon, delta, sensitivity and noise scale.

    ``sensitivity`` is the query's sensitivity at the level of one pupil (all of their
    contributions); ``scale`` is the noise parameter that follows from it: ``b = Δ/ε`` for the
    Laplace mechanism, ``Δ/ε`` for the geometric mechanism (whose ``α = exp(-1/scale)``), and
    ``2Δ/ε`` for the exponential mechanism (weights ``exp(u/scale)``, ``Δ`` the utility's
    sensitivity).
    """

    mechanism: str
    epsilon: float
    delta: float
    sensitivity: float
    scale: float
    purpose: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable mapping (for the audit trail and the budget ledger)."""
        return {"mechanism": self.mechanism, "epsilon": self.epsilon, "delta": self.delta,
                "sensitivity": self.sensitivity, "scale": self.scale, "purpose": self.purpose}


@dataclass(frozen=True)
class Accounting:
    """The privacy spend of one DP query and the parameters that justify it."""

    query: str
    epsilon: float
    delta: float
    mechanisms: tuple[MechanismUse, ...]
    bounds: tuple[float, float] | None
    max_contributions: int
    neighbouring: str = "add or remove one pupil with all of their (bounded) contributions"
    library: str = "diffprivlib"
    library_version: str = ""

    @property
    def mechanism(self) -> str:
        """The mechanisms used, joined by ``+`` in the order they ran."""
        return "+".join(use.mechanism for use in self.mechanisms)

    @property
    def sensitivity(self) -> float:
        """The sensitivity of the query's first (main) mechanism, at the level of one pupil."""
        return self.mechanisms[0].sensitivity

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable mapping (for the audit trail and the budget ledger)."""
        return {"query": self.query, "epsilon": self.epsilon, "delta": self.delta,
                "mechanism": self.mechanism,
                "mechanisms": [use.to_dict() for use in self.mechanisms],
                "bounds": list(self.bounds) if self.bounds is not None else None,
                "max_contributions": self.max_contributions,
                "neighbouring": self.neighbouring, "library": self.library,
                "library_version": self.library_version}


def compose(query: str, mechanisms: tuple[MechanismUse, ...], bounds: tuple[float, float] | None,
            max_contributions: int, library_version: str) -> Accounting:
    """The accounting of a query made of ``mechanisms`` run in sequence (epsilons add up)."""
    return Accounting(query=query,
                      epsilon=math.fsum(use.epsilon for use in mechanisms),
                      delta=math.fsum(use.delta for use in mechanisms),
                      mechanisms=mechanisms, bounds=bounds, max_contributions=max_contributions,
                      library_version=library_version)


@dataclass(frozen=True)
class DPResult(Generic[T]):
    """A differentially private value and the accounting record of the query that made it."""

    value: T
    accounting: Accounting
