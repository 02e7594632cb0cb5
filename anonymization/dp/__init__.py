"""Differential privacy for the enclave's statistics: DP queries through diffprivlib.

A pure library (numpy, pandas, diffprivlib; no database): each query takes explicit bounds
(a missing bound is an error, never read from the data), bounds every pupil's contributions to
``max_contributions`` rows, draws its noise from a secure generator, and returns the value with
an accounting record (epsilon, delta, mechanisms, sensitivities, bounds, contribution bound).
Keeping the total spend within a budget is the enclave's job (``enclave.privacy_budget``).

- :mod:`~anonymization.dp.queries`: ``dp_count``, ``dp_sum``, ``dp_mean``, ``dp_histogram``,
  ``dp_category_counts``, ``dp_quantile``;
- :mod:`~anonymization.dp.contributions`: ``bound_contributions`` (at most ``m`` rows a pupil);
- :mod:`~anonymization.dp.accounting`: ``DPResult``, ``Accounting``, ``MechanismUse``.

Sources: C. Dwork and A. Roth, *The Algorithmic Foundations of Differential Privacy*, 2014;
diffprivlib's documentation (https://diffprivlib.readthedocs.io), version 0.6.
"""

from anonymization.dp.accounting import SOURCES, Accounting, DPResult, MechanismUse
from anonymization.dp.contributions import bound_contributions, kept_rows
from anonymization.dp.queries import (
    Histogram,
    dp_category_counts,
    dp_count,
    dp_histogram,
    dp_mean,
    dp_quantile,
    dp_sum,
)

__all__ = [
    "SOURCES",
    "Accounting",
    "DPResult",
    "Histogram",
    "MechanismUse",
    "bound_contributions",
    "dp_category_counts",
    "dp_count",
    "dp_histogram",
    "dp_mean",
    "dp_quantile",
    "dp_sum",
    "kept_rows",
]
