"""Information-loss (utility) measures between original and protected data (sdcMicro ``dUtility``).

Records are compared by position: row ``i`` of the protected data is the protection of row
``i`` of the original, so both frames must have the same number of rows (every method of
this package keeps rows in place).

* **IL1s** (Mateo-Sanz, Sebe & Domingo-Ferrer 2004, PSD, LNCS 3050; Templ, Kowarik & Meindl
  2015, section 4.2): ``IL1s = 1/(n p) sum_j sum_i |x_ij - x'_ij| / (sqrt(2) S_j)`` over
  ``n`` records and ``p`` variables, ``S_j`` the standard deviation (``n - 1``) of original
  variable ``j``. A pair with a missing value adds nothing to the sum but still counts in
  ``n`` (as sdcMicro's ``na.rm = TRUE``). A constant variable (``S_j = 0``) adds 0 where the
  value is unchanged and infinity where it changed. sdcMicro's current ``dUtility(method =
  "IL1s")`` returns the sum without the ``1/(n p)`` factor; its ``"IL1old"`` is this mean.
* **Moments**: means and variances (``n - 1``) before and after, their differences and ratio.
* **Correlations**: the change of the Pearson correlation matrix (pairwise complete records).
* **Suppressions**: values present in the original and missing in the protected data.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from anonymization.exceptions import ProtectionParameterError
from anonymization.protection._common import check_columns, check_frame, numeric_values

__all__ = [
    "UtilityReport",
    "correlation_changes",
    "il1s",
    "il1s_by_variable",
    "moment_changes",
    "suppression_counts",
    "utility_report",
]

_SQRT2 = float(np.sqrt(2.0))


def _pair(
    method: str,
    original: pd.DataFrame,
    protected: pd.DataFrame,
    variables: Hashable | Sequence[Hashable],
) -> list[Hashable]:
    check_frame(method, original)
    check_frame(method, protected)
    if len(original) != len(protected):
        raise ProtectionParameterError(
            method,
            "protected",
            f"as many rows as the original ({len(original)}); rows are compared by position",
            len(protected),
        )
    if isinstance(variables, str) or not isinstance(variables, Sequence):
        variables = [variables]
    names = check_columns(method, original, "variables", variables)
    check_columns(method, protected, "variables", names)
    return names


def _finite_sd(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.std(ddof=1)) if len(finite) > 1 else float("nan")


def il1s_by_variable(
    original: pd.DataFrame, protected: pd.DataFrame, variables: Hashable | Sequence[Hashable]
) -> pd.Series:
    """Per variable ``j``: ``1/n sum_i |x_ij - x'_ij| / (sqrt(2) S_j)`` (module docstring)."""
    method = "il1s"
    names = _pair(method, original, protected, variables)
    n = len(original)
    scores = []
    for column in names:
        x = numeric_values(method, original, column)
        y = numeric_values(method, protected, column)
        difference = np.abs(x - y)
        present = np.isfinite(difference)
        sd = _finite_sd(x)
        if not n or not present.any():
            scores.append(0.0)
        elif sd > 0:
            scores.append(float(difference[present].sum() / (_SQRT2 * sd) / n))
        else:  # constant (or single) original: any change is infinitely large
            scores.append(float("inf") if (difference[present] > 0).any() else 0.0)
    return pd.Series(scores, index=pd.Index(names, name="variable"), name="il1s", dtype=float)


def il1s(
    original: pd.DataFrame, protected: pd.DataFrame, variables: Hashable | Sequence[Hashable]
) -> float:
    """IL1s over all `variables`: the mean of `il1s_by_variable` (0 for identical data)."""
    scores = il1s_by_variable(original, protected, variables)
    return float(scores.mean())


def moment_changes(
    original: pd.DataFrame, protected: pd.DataFrame, variables: Hashable | Sequence[Hashable]
) -> pd.DataFrame:
    """Means and variances before and after, per variable (missing values left out).

    Columns: ``mean_original``, ``mean_protected``, ``mean_difference`` (after - before),
    ``mean_relative_difference`` (difference / |mean before|), ``variance_original``,
    ``variance_protected``, ``variance_ratio`` (after / before; NaN when before is 0).
    """
    method = "moment_changes"
    names = _pair(method, original, protected, variables)
    rows = []
    for column in names:
        x = numeric_values(method, original, column)
        y = numeric_values(method, protected, column)
        rows.append(_moments(x) + _moments(y))
    table = pd.DataFrame(
        rows,
        index=pd.Index(names, name="variable"),
        columns=["mean_original", "variance_original", "mean_protected", "variance_protected"],
    )
    table["mean_difference"] = table["mean_protected"] - table["mean_original"]
    base = table["mean_original"].abs()
    table["mean_relative_difference"] = (table["mean_difference"] / base).where(base > 0)
    original_variance = table["variance_original"]
    table["variance_ratio"] = (table["variance_protected"] / original_variance).where(
        original_variance > 0
    )
    return table[
        [
            "mean_original",
            "mean_protected",
            "mean_difference",
            "mean_relative_difference",
            "variance_original",
            "variance_protected",
            "variance_ratio",
        ]
    ]


def _moments(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    mean = float(finite.mean()) if len(finite) else float("nan")
    variance = float(finite.var(ddof=1)) if len(finite) > 1 else float("nan")
    return mean, variance


def correlation_changes(
    original: pd.DataFrame, protected: pd.DataFrame, variables: Hashable | Sequence[Hashable]
) -> pd.DataFrame:
    """Protected minus original Pearson correlation matrix (pairwise complete records)."""
    method = "correlation_changes"
    names = _pair(method, original, protected, variables)
    before = pd.DataFrame({c: numeric_values(method, original, c) for c in names})
    after = pd.DataFrame({c: numeric_values(method, protected, c) for c in names})
    return after.corr() - before.corr()


def suppression_counts(
    original: pd.DataFrame, protected: pd.DataFrame, variables: Hashable | Sequence[Hashable]
) -> pd.Series:
    """Per variable, the values present in the original and missing in the protected data."""
    names = _pair("suppression_counts", original, protected, variables)
    counts = [
        int((original[c].notna().to_numpy() & protected[c].isna().to_numpy()).sum()) for c in names
    ]
    return pd.Series(
        counts, index=pd.Index(names, name="variable"), name="suppressions", dtype=np.int64
    )


@dataclass(frozen=True)
class UtilityReport:
    """The utility measures of one protection, for numeric and categorical variables.

    The numeric measures are empty (IL1s NaN) when no numeric variable is given;
    ``max_correlation_change`` is the largest absolute change of a correlation.
    """

    il1s: float
    il1s_by_variable: pd.Series
    moments: pd.DataFrame
    correlation_change: pd.DataFrame
    max_correlation_change: float
    suppressions: pd.Series


def utility_report(
    original: pd.DataFrame,
    protected: pd.DataFrame,
    *,
    numeric: Sequence[Hashable] = (),
    categorical: Sequence[Hashable] = (),
) -> UtilityReport:
    """All measures at once: IL1s, moments and correlations of the `numeric` variables, and
    suppressions in both the `numeric` and the `categorical` ones."""
    numeric = list(numeric)
    every = numeric + [c for c in categorical if c not in numeric]
    if not every:
        raise ProtectionParameterError(
            "utility_report", "numeric/categorical", "at least one variable", every
        )
    suppressions = suppression_counts(original, protected, every)
    if numeric:
        by_variable = il1s_by_variable(original, protected, numeric)
        moments = moment_changes(original, protected, numeric)
        change = correlation_changes(original, protected, numeric)
        values = np.abs(change.to_numpy())
        largest = float(np.nanmax(values)) if np.isfinite(values).any() else float("nan")
        score = float(by_variable.mean())
    else:
        by_variable = pd.Series(dtype=float, name="il1s")
        moments = pd.DataFrame()
        change = pd.DataFrame()
        largest = float("nan")
        score = float("nan")
    return UtilityReport(
        il1s=score,
        il1s_by_variable=by_variable,
        moments=moments,
        correlation_change=change,
        max_correlation_change=largest,
        suppressions=suppressions,
    )
