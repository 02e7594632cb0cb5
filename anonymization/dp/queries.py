"""Differentially private count, sum, mean, histogram, category counts and quantile.

Every query takes a DataFrame, the name of its pupil identifier column, ``epsilon`` and a
public contribution bound ``max_contributions`` (``m``, default 1 for one row per pupil), and
returns a :class:`~anonymization.dp.accounting.DPResult`: the noisy value and its accounting.

The common contract:

- **Neighbouring datasets** differ by adding or removing one pupil with all of their rows
  (unbounded DP, Dwork & Roth 2014, Definition 2.4 applied to pupils). Rows beyond ``m`` per
  pupil are dropped first (:mod:`anonymization.dp.contributions`), so a pupil moves at most
  ``m`` rows and each sensitivity below is ``m`` times that of one row.
- **Bounds are explicit.** Values are clipped to the caller's ``bounds``; a missing bound is
  :class:`~anonymization.exceptions.MissingBoundsError`, never replaced by the data's minimum
  and maximum. diffprivlib's ``PrivacyLeakWarning`` is turned into
  :class:`~anonymization.exceptions.PrivacyLeakError`.
- **Secure noise.** Mechanisms are diffprivlib's, built with ``random_state=None``, so their
  noise comes from ``secrets.SystemRandom``; the caller's ``rng`` only chooses which rows a
  pupil keeps. Laplace noise uses diffprivlib's sampler hardened against floating-point
  attacks (Holohan & Braghin 2021, *Secure random sampling in differential privacy*).
- **No public size.** diffprivlib's ``tools.sum`` and ``tools.mean`` treat the number of rows as
  public (bounded DP) and truncate the noisy sum to ``[n*lower, n*upper]``, which reveals ``n``;
  count, sum and mean therefore call diffprivlib's mechanisms directly with the sensitivities
  below. Histogram and quantile use ``diffprivlib.tools`` (no size is revealed there).
- **Accounting.** Each function states its mechanism and sensitivity ``Δ``; the accounting
  record lists them, and the epsilons of a query's mechanisms add up to ``epsilon``.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from anonymization.dp import _diffprivlib as dpl
from anonymization.dp._inputs import (
    check_bounds,
    check_column,
    check_edges,
    check_epsilon,
    check_frame,
    check_max_contributions,
    check_no_missing,
    check_rng,
    no_privacy_leak,
    numeric_values,
)
from anonymization.dp.accounting import DPResult, MechanismUse, compose
from anonymization.dp.contributions import kept_rows
from anonymization.exceptions import DPParameterError, InvalidBoundsError, MissingBoundsError

__all__ = ["Histogram", "dp_category_counts", "dp_count", "dp_histogram", "dp_mean",
           "dp_quantile", "dp_sum"]

_VERSION = dpl.__version__


@dataclass(frozen=True)
class Histogram:
    """Noisy counts per bin and the bin edges (``len(edges) == len(counts) + 1``).

    Bins are half-open ``[edges[i], edges[i+1])`` except the last, which includes its right
    edge (numpy's convention); values outside ``[edges[0], edges[-1]]`` are not counted.
    """

    counts: np.ndarray
    edges: np.ndarray


def _common(function: str, data: object, pupil: str, epsilon: object, max_contributions: object,
            rng: object) -> tuple[pd.DataFrame, float, int]:
    frame = check_frame(function, data)
    eps = check_epsilon(function, epsilon)
    m = check_max_contributions(function, max_contributions)
    check_rng(function, rng)
    check_no_missing(function, check_column(function, frame, pupil))
    return frame, eps, m


def _bounded(function: str, frame: pd.DataFrame, values: np.ndarray, pupil: str, m: int,
             rng: np.random.Generator | None) -> np.ndarray:
    kept = kept_rows(frame, pupil, m, rng, function=function)
    return values if kept is None else values[kept]


def _noisy_count(function: str, count: int, epsilon: float, m: int,
                 purpose: str) -> tuple[int, MechanismUse]:
    """Two-sided geometric mechanism, truncated at 0: ``Δ = m``, ``α = exp(-ε/Δ)``."""
    mechanism = dpl.mechanisms.GeometricTruncated(epsilon=epsilon, sensitivity=m, lower=0,
                                                  upper=sys.maxsize, random_state=None)
    with no_privacy_leak(function):
        noisy = int(mechanism.randomise(int(count)))
    return noisy, MechanismUse("GeometricTruncated", epsilon, 0.0, float(m), m / epsilon,
                               purpose)


def _noisy_sum(function: str, total: float, epsilon: float, sensitivity: float,
               purpose: str) -> tuple[float, MechanismUse]:
    """Laplace mechanism: ``value + Lap(b)``, ``b = Δ/ε``."""
    mechanism = dpl.mechanisms.Laplace(epsilon=epsilon, delta=0.0, sensitivity=sensitivity,
                                       random_state=None)
    with no_privacy_leak(function):
        noisy = float(mechanism.randomise(float(total)))
    return noisy, MechanismUse("Laplace", epsilon, 0.0, sensitivity, sensitivity / epsilon,
                               purpose)


def dp_count(data: pd.DataFrame, *, pupil: str, epsilon: float, max_contributions: int = 1,
             rng: np.random.Generator | None = None) -> DPResult[int]:
    """Noisy number of rows (events) after bounding each pupil to ``max_contributions`` rows.

    Mechanism: diffprivlib's ``GeometricTruncated`` (the two-sided geometric mechanism of Ghosh,
    Roughgarden & Sundararajan 2009, the discrete Laplace, truncated at 0 by post-processing)
    with sensitivity ``Δ = m``: adding or removing one pupil changes the count by at most ``m``.
    ``P(noise = k) ∝ α^|k|`` with ``α = exp(-ε/Δ)``, variance ``2α/(1-α)²`` (Dwork & Roth 2014,
    Theorem 3.6 for the Laplace analogue; diffprivlib docs, ``mechanisms.GeometricTruncated``).
    Count distinct pupils with ``max_contributions=1``.
    """
    function = "dp_count"
    frame, eps, m = _common(function, data, pupil, epsilon, max_contributions, rng)
    kept = kept_rows(frame, pupil, m, rng, function=function)
    rows = len(frame) if kept is None else int(kept.size)
    value, use = _noisy_count(function, rows, eps, m, "count of rows")
    return DPResult(value, compose("count", (use,), None, m, _VERSION))


def dp_sum(data: pd.DataFrame, column: str, *, pupil: str,
           bounds: tuple[float, float] | None = None, epsilon: float,
           max_contributions: int = 1, rng: np.random.Generator | None = None
           ) -> DPResult[float]:
    """Noisy sum of ``column`` clipped to ``bounds = (L, U)``, each pupil bounded to ``m`` rows.

    Mechanism: diffprivlib's ``Laplace`` with sensitivity ``Δ = m · max(|L|, |U|)`` (adding or
    removing one pupil adds or removes at most ``m`` values in ``[L, U]``) and scale
    ``b = Δ/ε``, noise variance ``2b²`` (Dwork & Roth 2014, Definition 3.3 and Theorem 3.6;
    diffprivlib docs, ``mechanisms.Laplace``). Choose bounds that contain 0 tightly: the
    sensitivity grows with the largest absolute bound.
    """
    function = "dp_sum"
    frame, eps, m = _common(function, data, pupil, epsilon, max_contributions, rng)
    lower, upper = check_bounds(function, bounds)
    values = _bounded(function, frame, numeric_values(function, frame, column), pupil, m, rng)
    total = math.fsum(np.clip(values, lower, upper).tolist())
    sensitivity = m * max(abs(lower), abs(upper))
    value, use = _noisy_sum(function, total, eps, sensitivity, f"sum of {column}")
    return DPResult(value, compose("sum", (use,), (lower, upper), m, _VERSION))


def dp_mean(data: pd.DataFrame, column: str, *, pupil: str,
            bounds: tuple[float, float] | None = None, epsilon: float,
            max_contributions: int = 1, rng: np.random.Generator | None = None
            ) -> DPResult[float]:
    """Noisy mean of ``column`` clipped to ``bounds = (L, U)``: a noisy sum over a noisy count.

    With the midpoint ``c = (L+U)/2``, the centred sum ``S = Σ (x - c)`` has sensitivity
    ``Δ_S = m · (U-L)/2`` and the count ``N`` has ``Δ_N = m``; each gets ``ε/2`` (sequential
    composition, Dwork & Roth 2014, Theorem 3.16): ``S̃ = S + Lap(Δ_S/(ε/2))`` by diffprivlib's
    ``Laplace``, ``Ñ`` by its ``GeometricTruncated``, and the result is
    ``clip(c + S̃ / max(Ñ, 1), L, U)`` (post-processing). Unlike ``diffprivlib.tools.mean``,
    which uses ``Δ = (U-L)/n`` with ``n`` public, no size is assumed public (the construction
    of Li, Lyu, Su & Yang, *Differential Privacy: From Theory to Practice*, 2016, section 2.5).
    """
    function = "dp_mean"
    frame, eps, m = _common(function, data, pupil, epsilon, max_contributions, rng)
    lower, upper = check_bounds(function, bounds)
    values = _bounded(function, frame, numeric_values(function, frame, column), pupil, m, rng)
    centre = (lower + upper) / 2
    centred = math.fsum((np.clip(values, lower, upper) - centre).tolist())
    half = eps / 2
    noisy_sum, sum_use = _noisy_sum(function, centred, half, m * (upper - lower) / 2,
                                    f"centred sum of {column}")
    noisy_count, count_use = _noisy_count(function, values.size, half, m, "count of rows")
    value = min(max(centre + noisy_sum / max(noisy_count, 1), lower), upper)
    return DPResult(value, compose("mean", (sum_use, count_use), (lower, upper), m, _VERSION))


def _histogram(function: str, values: np.ndarray, edges: np.ndarray, eps: float,
               m: int) -> tuple[np.ndarray, MechanismUse]:
    """diffprivlib's ``tools.histogram`` at ``ε/m``: per-bin geometric noise of scale ``m/ε``."""
    accountant = dpl.BudgetAccountant(epsilon=eps / m, delta=0.0)
    with no_privacy_leak(function):
        counts, _ = dpl.tools.histogram(values, epsilon=eps / m, bins=edges,
                                        range=(float(edges[0]), float(edges[-1])),
                                        random_state=None, accountant=accountant)
    return (np.asarray(counts, dtype=np.int64),
            MechanismUse("GeometricTruncated", eps, 0.0, float(m), m / eps, "bin counts"))


def dp_histogram(data: pd.DataFrame, column: str, *, pupil: str,
                 bins: int | Sequence[float], bounds: tuple[float, float] | None = None,
                 epsilon: float, max_contributions: int = 1,
                 rng: np.random.Generator | None = None) -> DPResult[Histogram]:
    """Noisy counts of ``column`` per bin: ``bins`` equal bins over ``bounds``, or given edges.

    Mechanism: ``diffprivlib.tools.histogram`` (the truncated geometric mechanism on each bin,
    independently) run at ``ε/m``. One pupil's ``m`` rows change the bin counts by at most
    ``m`` in L1 norm, so the histogram's sensitivity is ``Δ = m`` and per-bin noise of scale
    ``Δ/ε = m/ε`` gives ``ε``-DP for the whole histogram (Dwork & Roth 2014, Example 3.2 and
    Theorem 3.6; group privacy, section 2.3). The edges are public: ``bins`` as an integer
    needs ``bounds``; explicit edges must be finite and increasing.
    """
    function = "dp_histogram"
    frame, eps, m = _common(function, data, pupil, epsilon, max_contributions, rng)
    if isinstance(bins, numbers.Integral) and not isinstance(bins, bool):
        if int(bins) < 1:
            raise DPParameterError(function, "bins", "an integer >= 1 or a sequence of edges",
                                   bins)
        lower, upper = check_bounds(function, bounds)
        edges = np.linspace(lower, upper, int(bins) + 1)
    elif isinstance(bins, str | bytes | bool) or bins is None:
        raise InvalidBoundsError(function, "bins", "bins must be a number of bins or the edges "
                                 "(a rule such as 'auto' would read the edges from the data)")
    else:
        edges = check_edges(function, bins)
        if bounds is not None and check_bounds(function, bounds) != (edges[0], edges[-1]):
            raise InvalidBoundsError(function, "bounds", "they differ from the first and last "
                                     "bin edges; give the edges alone")
    values = _bounded(function, frame, numeric_values(function, frame, column), pupil, m, rng)
    counts, use = _histogram(function, values, edges, eps, m)
    accounting = compose("histogram", (use,), (float(edges[0]), float(edges[-1])), m, _VERSION)
    return DPResult(Histogram(counts, edges), accounting)


def dp_category_counts(data: pd.DataFrame, column: str, *, pupil: str,
                       categories: Sequence[Hashable] | None = None, epsilon: float,
                       max_contributions: int = 1, rng: np.random.Generator | None = None
                       ) -> DPResult[pd.Series]:
    """Noisy number of rows per category of ``column``, for a public list of ``categories``.

    The list of categories plays the role of the bounds: taken from the data it would reveal
    that a rare category occurs, so it must be given, and rows whose value is not listed are
    not counted. Mechanism and sensitivity as :func:`dp_histogram` (``Δ = m`` in L1 norm,
    per-category geometric noise of scale ``m/ε``, through ``diffprivlib.tools.histogram``).
    """
    function = "dp_category_counts"
    frame, eps, m = _common(function, data, pupil, epsilon, max_contributions, rng)
    if categories is None:
        raise MissingBoundsError(function, "categories")
    labels = list(categories)
    if not labels or len(set(labels)) != len(labels):
        raise DPParameterError(function, "categories", "a non-empty list of distinct labels",
                               f"{len(labels)} label(s)")
    series = check_column(function, frame, column)
    check_no_missing(function, series)
    codes = pd.Index(labels).get_indexer(series).astype(float)
    codes = _bounded(function, frame, codes, pupil, m, rng)
    edges = np.arange(len(labels) + 1, dtype=float) - 0.5
    counts, use = _histogram(function, codes[codes >= 0], edges, eps, m)
    value = pd.Series(counts, index=pd.Index(labels, name=column), name="count")
    return DPResult(value, compose("category_counts", (use,), None, m, _VERSION))


def dp_quantile(data: pd.DataFrame, column: str, quantile: float, *, pupil: str,
                bounds: tuple[float, float] | None = None, epsilon: float,
                max_contributions: int = 1, rng: np.random.Generator | None = None
                ) -> DPResult[float]:
    """Noisy ``quantile`` (in [0, 1]) of ``column`` clipped to ``bounds = (L, U)``.

    Mechanism: ``diffprivlib.tools.quantile``, Smith's exponential mechanism (Smith 2011,
    *Privacy-preserving statistical estimation with optimal convergence rates*; McSherry &
    Talwar 2007): the sorted values and the bounds cut ``[L, U]`` into intervals, interval
    ``i`` is drawn with probability ``∝ length_i · exp(ε·u_i / (2Δ))`` where
    ``u_i = -|i - q·n|``, then a point uniformly inside it. One row changes the utilities by at
    most 1, one pupil by at most ``m``: ``Δ = m``, obtained by running diffprivlib at ``ε/m``
    (Dwork & Roth 2014, Theorem 3.10 and section 2.3). The final uniform draw inside the chosen
    interval is diffprivlib's and uses numpy's global generator; the choice of the interval,
    which carries the privacy guarantee, uses ``secrets.SystemRandom``.
    """
    function = "dp_quantile"
    frame, eps, m = _common(function, data, pupil, epsilon, max_contributions, rng)
    if (not isinstance(quantile, numbers.Real) or isinstance(quantile, bool)
            or not 0 <= float(quantile) <= 1):
        raise DPParameterError(function, "quantile", "a number in [0, 1]", quantile)
    lower, upper = check_bounds(function, bounds)
    values = _bounded(function, frame, numeric_values(function, frame, column), pupil, m, rng)
    accountant = dpl.BudgetAccountant(epsilon=eps / m, delta=0.0)
    with no_privacy_leak(function):
        value = float(dpl.tools.quantile(values, float(quantile), epsilon=eps / m,
                                         bounds=(lower, upper), random_state=None,
                                         accountant=accountant))
    use = MechanismUse("Exponential", eps, 0.0, float(m), 2 * m / eps,
                       f"quantile {float(quantile)} of {column}")
    return DPResult(value, compose("quantile", (use,), (lower, upper), m, _VERSION))
