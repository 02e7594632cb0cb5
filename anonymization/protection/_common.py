"""Checks and small helpers shared by the protection methods (private).

Every public function validates its inputs here first, so a bad call raises a clear error
before any work is done and the caller's DataFrame is never touched.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from numbers import Integral, Real

import numpy as np
import pandas as pd

from anonymization.exceptions import (
    MissingNumericValueError,
    NonNumericVariableError,
    ProtectionInputTypeError,
    ProtectionParameterError,
    ProtectionVariableError,
)


def check_frame(method: str, data: object) -> pd.DataFrame:
    """Return `data` if it is a DataFrame with unique column names, else raise."""
    if not isinstance(data, pd.DataFrame):
        raise ProtectionInputTypeError(method, type(data).__name__)
    if not data.columns.is_unique:
        duplicated = sorted({str(c) for c in data.columns[data.columns.duplicated()]})
        raise ProtectionParameterError(
            method, "data", "a DataFrame with unique column names", duplicated
        )
    return data


def as_names(method: str, name: str, variables: str | Sequence[Hashable] | None) -> list[Hashable]:
    """Normalise one column name or a sequence of names to a list (None gives an empty list)."""
    if variables is None:
        return []
    if isinstance(variables, str):
        return [variables]
    if not isinstance(variables, Sequence):
        raise ProtectionParameterError(
            method, name, "a column name or a sequence of column names", variables
        )
    return list(variables)


def check_columns(
    method: str,
    data: pd.DataFrame,
    name: str,
    variables: str | Sequence[Hashable] | None,
    *,
    required: bool = True,
) -> list[Hashable]:
    """Return the named columns as a list; raise if one is absent, repeated, or none is given."""
    names = as_names(method, name, variables)
    if required and not names:
        raise ProtectionParameterError(method, name, "at least one column name", variables)
    seen: set[Hashable] = set()
    for column in names:
        if column not in data.columns:
            raise ProtectionVariableError(method, column, [str(c) for c in data.columns])
        if column in seen:
            raise ProtectionParameterError(method, name, "column names without repeats", names)
        seen.add(column)
    return names


def check_disjoint(
    method: str, first: str, a: Sequence[Hashable], second: str, b: Sequence[Hashable]
) -> None:
    """Raise if a column plays two roles (e.g. a key that is also a stratum variable)."""
    both = [column for column in a if column in set(b)]
    if both:
        raise ProtectionParameterError(
            method, second, f"disjoint from {first!r} (a column has one role)", both
        )


def check_k(method: str, k: object) -> int:
    """Return `k` if it is an integer >= 2 (k = 1 protects nothing), else raise."""
    if isinstance(k, bool) or not isinstance(k, Integral) or int(k) < 2:
        raise ProtectionParameterError(method, "k", "an integer >= 2 (k = 1 protects nothing)", k)
    return int(k)


def check_real(
    method: str, name: str, value: object, low: float | None, high: float | None
) -> float:
    """Return `value` as a float if it is a finite real in [low, high] (None: no bound)."""
    if low is None and high is None:
        rule = "a finite number"
    elif high is None:
        rule = f"a finite number >= {low}"
    elif low is None:
        rule = f"a finite number <= {high}"
    else:
        rule = f"a finite number in [{low}, {high}]"
    if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(float(value)):
        raise ProtectionParameterError(method, name, rule, value)
    number = float(value)
    if (low is not None and number < low) or (high is not None and number > high):
        raise ProtectionParameterError(method, name, rule, value)
    return number


def check_generator(method: str, rng: object) -> np.random.Generator:
    """Return `rng` if it is a numpy Generator: randomised methods never use a global RNG."""
    if not isinstance(rng, np.random.Generator):
        raise ProtectionParameterError(
            method,
            "rng",
            "a numpy.random.Generator (e.g. numpy.random.default_rng() seeded from the "
            "operating system; never a fixed seed outside tests)",
            type(rng).__name__,
        )
    return rng


def is_numeric(series: pd.Series) -> bool:
    """True for integer and float columns (booleans, strings and categories are refused)."""
    return bool(
        pd.api.types.is_numeric_dtype(series.dtype)
        and not pd.api.types.is_bool_dtype(series.dtype)
        and not isinstance(series.dtype, pd.CategoricalDtype)
    )


def numeric_values(
    method: str, data: pd.DataFrame, column: Hashable, *, complete: bool = False
) -> np.ndarray:
    """The column as a float64 array (NaN for missing); raise if it is not numeric.

    With ``complete=True`` a missing or infinite value is an error too.
    """
    series = data[column]
    if not is_numeric(series):
        raise NonNumericVariableError(method, str(column), str(series.dtype))
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    if complete:
        bad = int(np.count_nonzero(~np.isfinite(values)))
        if bad:
            raise MissingNumericValueError(method, str(column), bad)
    return values


def group_ids(data: pd.DataFrame, strata: Sequence[Hashable]) -> tuple[np.ndarray, list[tuple]]:
    """Stratum number of each record (0..s-1) and each stratum's values (missing is a value).

    Without strata every record is in stratum 0, labelled ``()``.
    """
    n = len(data)
    if not strata:
        return np.zeros(n, dtype=np.int64), [()]
    grouped = data.groupby(list(strata), dropna=False, sort=True, observed=True)
    ids = grouped.ngroup().to_numpy(dtype=np.int64)
    _, first = np.unique(ids, return_index=True)
    rows = data[list(strata)].iloc[first]
    labels = [tuple(row) for row in rows.itertuples(index=False, name=None)]
    return ids, labels
