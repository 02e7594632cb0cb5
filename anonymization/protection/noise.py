"""Noise addition to continuous variables (sdcMicro ``addNoise``).

Three of sdcMicro's methods (Brand 2002, "Microdata protection through noise addition",
LNCS 2316; Kim 1986, "A method for limiting disclosure in microdata based on random noise
and transformation", ASA Proc. Survey Research Methods; Hundepool et al. 2012, 3.4.7):

* ``"additive"``: ``x'_j = x_j + e_j`` with ``e_j ~ N(0, (noise/100)^2 var(x_j))``,
  independently per variable: the variance grows by the factor ``1 + (noise/100)^2`` and
  correlations shrink.
* ``"correlated"``: ``x' = x + e`` with ``e ~ N(0, (noise/100) Sigma)``, ``Sigma`` the
  covariance matrix of the variables (complete records): the covariance becomes
  ``(1 + noise/100) Sigma``, so correlations are kept (sdcMicro's scaling, not squared).
* ``"correlated2"`` (Kim 1986): ``x' = d x + (1 - d) mean(x) + delta e`` with
  ``d = sqrt(1 - delta^2)`` and ``e ~ N(0, Sigma)``: means and the whole covariance matrix
  are preserved in expectation (``d^2 Sigma + delta^2 Sigma = Sigma``).

Variances use the ``n - 1`` denominator, as R's ``var``. A missing value stays missing and is
left out of the moments. Draws come from the caller's Generator.

Difference from sdcMicro: its ``correlated2`` code draws the noise independently per variable
(``e_j ~ N(0, var(x_j))``), which keeps means and variances but shrinks covariances by
``1 - delta^2``; we draw ``e ~ N(0, Sigma)`` as in Kim's method and sdcMicro's documentation
("preserves the covariances"). With one variable the two coincide. ``"correlated"`` also
accepts a single variable (then it is additive noise of variance ``(noise/100) var(x)``).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from anonymization.exceptions import ProtectionParameterError
from anonymization.protection._common import (
    check_columns,
    check_frame,
    check_generator,
    check_real,
    numeric_values,
)

__all__ = ["add_noise"]

_METHOD = "add_noise"
NoiseMethod = Literal["additive", "correlated", "correlated2"]


def _covariance(values: np.ndarray) -> np.ndarray:
    """Covariance (n - 1 denominator) of the complete rows; zeros if fewer than two."""
    complete = values[np.isfinite(values).all(axis=1)]
    if len(complete) < 2:
        return np.zeros((values.shape[1], values.shape[1]))
    return np.atleast_2d(np.cov(complete, rowvar=False, ddof=1))


def _sd(column: np.ndarray) -> float:
    """Standard deviation (n - 1 denominator) of the finite values; 0 if fewer than two."""
    finite = column[np.isfinite(column)]
    return float(finite.std(ddof=1)) if len(finite) > 1 else 0.0


def _mean(column: np.ndarray) -> float:
    """Mean of the finite values; 0 if there are none."""
    finite = column[np.isfinite(column)]
    return float(finite.mean()) if len(finite) else 0.0


def _gaussian(rng: np.random.Generator, covariance: np.ndarray, n: int) -> np.ndarray:
    """n draws of N(0, covariance), covariance possibly singular (eigen decomposition)."""
    d = covariance.shape[0]
    return rng.multivariate_normal(np.zeros(d), covariance, size=n, method="eigh")


def add_noise(
    data: pd.DataFrame,
    variables: Hashable | Sequence[Hashable],
    rng: np.random.Generator,
    *,
    method: NoiseMethod = "additive",
    noise: float = 150.0,
    delta: float = 0.1,
) -> pd.DataFrame:
    """Return a copy of `data` with noise added to the numeric `variables` (module docstring).

    `noise` is a percentage (sdcMicro's default 150) used by ``"additive"`` and
    ``"correlated"``; `delta` in (0, 1) is the weight of the noise in ``"correlated2"``
    (default 0.1). The variables come back as float64. Pass
    ``numpy.random.default_rng()`` (seeded by the operating system) in production.
    """
    frame = check_frame(_METHOD, data)
    rng = check_generator(_METHOD, rng)
    if isinstance(variables, str) or not isinstance(variables, Sequence):
        variables = [variables]
    names = check_columns(_METHOD, frame, "variables", variables)
    if method not in ("additive", "correlated", "correlated2"):
        raise ProtectionParameterError(
            _METHOD, "method", "'additive', 'correlated' or 'correlated2'", method
        )
    noise = check_real(_METHOD, "noise", noise, 0.0, None)
    delta = check_real(_METHOD, "delta", delta, 0.0, 1.0)
    if method == "correlated2" and not 0.0 < delta < 1.0:
        raise ProtectionParameterError(_METHOD, "delta", "strictly between 0 and 1", delta)
    n = len(frame)
    values = (
        np.column_stack([numeric_values(_METHOD, frame, c) for c in names])
        if n
        else (np.empty((0, len(names))))
    )
    if n == 0:
        perturbed = values
    elif method == "additive":
        sd = np.array([_sd(column) for column in values.T])
        perturbed = values + rng.standard_normal(values.shape) * (noise / 100.0) * sd
    elif method == "correlated":
        perturbed = values + _gaussian(rng, (noise / 100.0) * _covariance(values), n)
    else:
        shrink = np.sqrt(1.0 - delta**2)
        mean = np.array([_mean(column) for column in values.T])
        perturbed = (
            shrink * values + (1.0 - shrink) * mean + delta * _gaussian(rng, _covariance(values), n)
        )
    result = frame.copy(deep=False)
    for j, column in enumerate(names):
        result[column] = pd.Series(perturbed[:, j], index=frame.index, name=column)
    return result
