"""Validation of the inputs of DP queries: refuse clearly, before anything is computed.

Bounds are checked here and never derived from the data; a query that reached diffprivlib with
a missing bound would make it read the bound from the data (it then emits a
``PrivacyLeakWarning``, which :func:`no_privacy_leak` turns into an error as a second barrier).
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

import numpy as np
import pandas as pd

from anonymization.dp._diffprivlib import PrivacyLeakWarning
from anonymization.exceptions import (
    DPColumnError,
    DPInputError,
    DPMissingValueError,
    DPParameterError,
    InvalidBoundsError,
    MissingBoundsError,
    PrivacyLeakError,
)


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def check_epsilon(function: str, epsilon: object) -> float:
    """Epsilon must be a finite real number > 0 (epsilon = 0 or infinity is not a DP query)."""
    if not _is_real(epsilon):
        raise DPParameterError(function, "epsilon", "a finite number > 0", epsilon)
    value = float(cast(float, epsilon))
    if not math.isfinite(value) or value <= 0:
        raise DPParameterError(function, "epsilon", "a finite number > 0", epsilon)
    return value


def check_max_contributions(function: str, max_contributions: object) -> int:
    """The contribution bound must be an integer >= 1 (rows one pupil may contribute)."""
    if (not isinstance(max_contributions, numbers.Integral)
            or isinstance(max_contributions, bool | np.bool_) or int(max_contributions) < 1):
        raise DPParameterError(function, "max_contributions", "an integer >= 1",
                               max_contributions)
    return int(max_contributions)


def check_bounds(function: str, bounds: object, name: str = "bounds") -> tuple[float, float]:
    """``(lower, upper)``, finite, lower < upper; a missing or NaN bound is a missing bound."""
    if bounds is None:
        raise MissingBoundsError(function, name)
    if not isinstance(bounds, tuple | list | np.ndarray) or len(bounds) != 2:
        raise InvalidBoundsError(function, name, f"got {type(bounds).__name__}")
    checked: list[float] = []
    for which, value in zip(("lower", "upper"), bounds, strict=True):
        if value is None or (_is_real(value) and math.isnan(float(value))):
            raise MissingBoundsError(function, f"the {which} bound of {name}")
        if not _is_real(value):
            raise InvalidBoundsError(function, name,
                                     f"the {which} bound is a {type(value).__name__}")
        if not math.isfinite(float(value)):
            raise InvalidBoundsError(function, name, f"the {which} bound is infinite")
        checked.append(float(value))
    lower, upper = checked
    if not lower < upper:
        raise InvalidBoundsError(function, name, f"got lower={lower!r}, upper={upper!r}")
    return lower, upper


def check_edges(function: str, edges: object) -> np.ndarray:
    """Bin edges: at least two finite numbers, strictly increasing."""
    try:
        array = np.asarray(edges, dtype=float)
    except (TypeError, ValueError):
        raise InvalidBoundsError(function, "bins", "the edges are not numbers") from None
    if array.ndim != 1 or array.size < 2:
        raise InvalidBoundsError(function, "bins", "at least two edges are needed")
    if np.isnan(array).any():
        raise MissingBoundsError(function, "a bin edge")
    if not np.isfinite(array).all() or not (np.diff(array) > 0).all():
        raise InvalidBoundsError(function, "bins", "the edges must be finite and increasing")
    return array


def check_frame(function: str, data: object) -> pd.DataFrame:
    """DP queries take a pandas DataFrame: one row a record (or an event), one column a variable."""
    if not isinstance(data, pd.DataFrame):
        raise DPInputError(function, f"takes a pandas DataFrame; got a {type(data).__name__}")
    return data


def check_column(function: str, data: pd.DataFrame, column: object) -> pd.Series:
    """The named column, which must exist exactly once."""
    if not isinstance(column, str) or column not in data.columns:
        raise DPColumnError(function, column, [str(c) for c in data.columns])
    series = data[column]
    if isinstance(series, pd.DataFrame):
        raise DPInputError(function, f"column {column!r} appears more than once")
    return series


def check_no_missing(function: str, series: pd.Series) -> None:
    """Missing values are refused (the caller drops or imputes them, knowingly)."""
    missing = int(series.isna().sum())
    if missing:
        raise DPMissingValueError(function, str(series.name), missing)


def numeric_values(function: str, data: pd.DataFrame, column: str) -> np.ndarray:
    """The column as float64, refusing text, booleans and missing values."""
    series = check_column(function, data, column)
    if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        raise DPInputError(function, f"column {column!r} has dtype {series.dtype}; this query "
                                     f"computes with values, so it must be numeric")
    check_no_missing(function, series)
    return series.to_numpy(dtype=float)


def check_rng(function: str, rng: object) -> np.random.Generator | None:
    """The generator that samples contributions: a ``numpy.random.Generator`` or None."""
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise DPInputError(function, f"rng must be a numpy.random.Generator (it samples which "
                                     f"contributions are kept; the noise never uses it); got a "
                                     f"{type(rng).__name__}")
    return rng


@contextmanager
def no_privacy_leak(function: str) -> Iterator[None]:
    """Turn diffprivlib's ``PrivacyLeakWarning`` into :class:`PrivacyLeakError` (fail closed).

    ``warnings.catch_warnings`` changes the process-wide filters, so under threads the filter
    may be lifted early by another query; the explicit bound checks above stay the first barrier.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrivacyLeakWarning)
        try:
            yield
        except PrivacyLeakWarning as warning:
            raise PrivacyLeakError(function, str(warning)) from None
