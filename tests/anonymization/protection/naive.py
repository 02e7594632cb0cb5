"""Independent, deliberately naive reference computations for the protection tests (O(n^2))."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from itertools import combinations

import pandas as pd

Row = tuple[object, ...]


def rows_of(frame: pd.DataFrame, keys: Sequence[Hashable]) -> list[Row]:
    """Key values of each record as a tuple, missing values as None."""
    return [
        tuple(None if pd.isna(value) else value for value in record)
        for record in frame[list(keys)].itertuples(index=False, name=None)
    ]


def matches(a: Row, b: Row) -> bool:
    """sdcMicro's NA-aware match: equal wherever both records have a value."""
    return all(x is None or y is None or x == y for x, y in zip(a, b, strict=True))


def frequency(
    rows: Sequence[Row], record: Row, strata: Sequence[object] | None = None, stratum: object = None
) -> int:
    """Number of rows matching `record` (in the same stratum when strata are given)."""
    return sum(
        1
        for i, other in enumerate(rows)
        if (strata is None or strata[i] == stratum) and matches(record, other)
    )


def frequencies(rows: Sequence[Row], strata: Sequence[object] | None = None) -> list[int]:
    """NA-aware frequency of every row, itself included."""
    return [
        frequency(rows, row, strata, None if strata is None else strata[i])
        for i, row in enumerate(rows)
    ]


def suppress(row: Row, keys: Sequence[int]) -> Row:
    """The row with the values at positions `keys` set to missing."""
    return tuple(None if j in keys else v for j, v in enumerate(row))


def makes_safe(
    rows: Sequence[Row], i: int, keys: Sequence[int], k: int, strata: Sequence[object] | None = None
) -> bool:
    """Would suppressing `keys` in row i alone (others unchanged) give it frequency >= k?"""
    changed = list(rows)
    changed[i] = suppress(rows[i], keys)
    stratum = None if strata is None else strata[i]
    return frequency(changed, changed[i], strata, stratum) >= k


def all_key_sets(present: Sequence[int], size: int) -> list[tuple[int, ...]]:
    return list(combinations(present, size))
