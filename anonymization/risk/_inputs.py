"""Checks shared by the risk measures: the data is a non-empty DataFrame, named variables exist
and have one role each, weights are finite and positive, household identifiers are present.

Every check raises an error of `anonymization.exceptions` whose message states the rule, so a
measure either gets valid input or changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from anonymization.exceptions import (
    EmptyDataError,
    InvalidParameterError,
    InvalidWeightError,
    NullHouseholdError,
    RiskInputTypeError,
    UnknownVariableError,
    VariableConflictError,
)


def check_frame(data: object) -> pd.DataFrame:
    """Return `data` if it is a DataFrame with at least one row and unique column names."""
    if not isinstance(data, pd.DataFrame):
        raise RiskInputTypeError(type(data).__name__)
    if len(data) == 0:
        raise EmptyDataError("the data has 0 rows")
    if not data.columns.is_unique:
        duplicated = sorted({str(c) for c in data.columns[data.columns.duplicated()]})
        raise VariableConflictError(f"the data has duplicated column names: {duplicated}")
    return data


def _check_names(
    data: pd.DataFrame, names: str | Iterable[str], role: str, *, allow_empty: bool = False
) -> tuple[str, ...]:
    if isinstance(names, str):
        names = (names,)
    resolved = tuple(names)
    if not resolved and not allow_empty:
        raise EmptyDataError(f"no {role} variable was named")
    seen: set[str] = set()
    for name in resolved:
        if name not in data.columns:
            raise UnknownVariableError(str(name), role, [str(c) for c in data.columns])
        if name in seen:
            raise VariableConflictError(f"{role} variable {name!r} is named more than once")
        seen.add(name)
    return resolved


def check_keys(data: pd.DataFrame, keys: str | Iterable[str]) -> tuple[str, ...]:
    """Return the key variable names: at least one, each a column, none repeated."""
    return _check_names(data, keys, "key")


def check_sensitive(
    data: pd.DataFrame, sensitive: str | Iterable[str], keys: Sequence[str]
) -> tuple[str, ...]:
    """Return the sensitive variable names: columns, none repeated, none a key variable."""
    names = _check_names(data, sensitive, "sensitive")
    for name in names:
        if name in keys:
            raise VariableConflictError(
                f"sensitive variable {name!r} is also a key variable; l-diversity measures the "
                f"spread of a sensitive variable inside classes the keys define"
            )
    return names


def check_weights(data: pd.DataFrame, weight: str, keys: Sequence[str]) -> np.ndarray:
    """Return the weights as float64 if the column exists, is not a key, and is finite and > 0."""
    _check_names(data, weight, "weight")
    if weight in keys:
        raise VariableConflictError(f"weight variable {weight!r} is also a key variable")
    column = data[weight]
    if not (pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)):
        raise InvalidWeightError(weight, f"has dtype {column.dtype}, not a number")
    missing = int(column.isna().sum())
    if missing:
        raise InvalidWeightError(weight, f"has {missing} missing value(s)")
    values = column.to_numpy(dtype=np.float64)
    infinite = int(np.count_nonzero(~np.isfinite(values)))
    if infinite:
        raise InvalidWeightError(weight, f"has {infinite} infinite value(s)")
    non_positive = int(np.count_nonzero(values <= 0))
    if non_positive:
        raise InvalidWeightError(weight, f"has {non_positive} value(s) <= 0")
    return values


def check_households(data: pd.DataFrame, household: str) -> np.ndarray:
    """Return dense household codes (0..H-1) if the column exists and has no missing value."""
    _check_names(data, household, "household")
    codes, _ = pd.factorize(data[household], use_na_sentinel=True)
    missing = int(np.count_nonzero(codes < 0))
    if missing:
        raise NullHouseholdError(household, missing)
    return np.asarray(codes, dtype=np.int64)


def check_alpha(alpha: float) -> float:
    """Return `alpha` if it is a number in [0, 1] (sdcMicro's freqCalc weight of NA matches)."""
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 <= alpha <= 1:
        raise InvalidParameterError("alpha", "a number between 0 and 1", alpha)
    return float(alpha)


def check_k(k: int, name: str = "k") -> int:
    """Return `k` if it is an integer >= 1 (the k of k-anonymity)."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise InvalidParameterError(name, "an integer >= 1", k)
    return int(k)
