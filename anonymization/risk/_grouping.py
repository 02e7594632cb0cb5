"""Integer codes of key combinations, the vectorised core of every frequency count.

Each key column becomes codes ``0..card-1`` with ``-1`` for a missing value (small integer
ranges are used as they are, other columns go through `pandas.factorize`); several columns are
combined into one int64 by mixed radix, ``code = code * card_j + code_j``, re-compressed with a
hash factorisation whenever the radix product would pass 2**62. Counting a combination is then
one `numpy.bincount`: no Python loop per record and no sort.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

MISSING = -1
"""Code of a missing value (None, NaN, NA, NaT) in a key column."""

_RADIX_LIMIT = 1 << 62
"""Largest radix product combined without re-compression (int64 stays exact)."""

_DENSE_LIMIT = 1 << 16
"""Radix products up to this, or 4 codes a record, are counted by a bincount over the whole
space (memory ~16 bytes a code); larger ones are first compressed by a hash factorisation."""


def column_codes(column: pd.Series) -> tuple[np.ndarray, int]:
    """Return the int64 codes of one column (``-1`` for missing) and the number of codes.

    Equal values share a code (pandas equality: ``1 == 1.0``); integer and boolean columns whose
    range is small are shifted rather than hashed, which is several times faster.
    """
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return column.cat.codes.to_numpy(dtype=np.int64), len(dtype.categories)
    if isinstance(dtype, np.dtype) and dtype.kind in "iub" and len(column) > 0:
        values = column.to_numpy()
        low, high = int(values.min()), int(values.max())
        span = high - low + 1
        if span <= max(4 * len(values), 1024):
            if dtype.kind == "u" and dtype.itemsize == 8:
                shifted = (values - np.uint64(low)).astype(np.int64)
            else:
                shifted = values.astype(np.int64) - low
            return shifted, span
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64), len(uniques)


def frame_codes(data: pd.DataFrame, columns: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Return an ``(n, len(columns))`` int64 code matrix and the codes count of each column."""
    matrix = np.empty((len(data), len(columns)), dtype=np.int64, order="F")  # contiguous columns
    cards = np.empty(len(columns), dtype=np.int64)
    for j, name in enumerate(columns):
        matrix[:, j], cards[j] = column_codes(data[name])
    return matrix, cards


def _compress(codes: np.ndarray) -> tuple[np.ndarray, int]:
    dense, uniques = pd.factorize(codes)
    return np.asarray(dense, dtype=np.int64), len(uniques)


def combine(
    columns: Sequence[np.ndarray], cards: Sequence[int] | np.ndarray
) -> tuple[np.ndarray, int]:
    """Mixed-radix combination of non-negative code arrays: equal rows get equal codes.

    Returns the combined codes and an upper bound of them (the radix product, or the number of
    distinct values after a re-compression). Codes must be ``>= 0`` (shift missing codes first).
    """
    if not columns:
        raise ValueError("combine needs at least one column")
    accumulated = np.array(columns[0], dtype=np.int64, copy=True)
    space = max(int(cards[0]), 1)
    for codes, card in zip(columns[1:], cards[1:], strict=True):
        radix = max(int(card), 1)
        if space > _RADIX_LIMIT // radix:
            accumulated, space = _compress(accumulated)
        accumulated *= radix
        accumulated += codes
        space *= radix
    return accumulated, space


def dense_groups(codes: np.ndarray, space: int) -> tuple[np.ndarray, np.ndarray]:
    """Return dense group ids ``0..G-1`` of combined codes and the size of each group."""
    if space <= max(_DENSE_LIMIT, 4 * len(codes)):
        counts = np.bincount(codes, minlength=space)
        present = counts > 0
        remap = np.cumsum(present, dtype=np.int64) - 1
        return remap[codes], counts[present]
    dense, groups = _compress(codes)
    return dense, np.bincount(dense, minlength=groups)


def group_rows(matrix: np.ndarray, cards: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense ids of identical rows of a code matrix, a missing code being a value of its own.

    Returns ``(group id per row, size per group)``; with no missing code this is the grouping
    of complete key combinations.
    """
    shifted = [matrix[:, j] + 1 for j in range(matrix.shape[1])]
    codes, space = combine(shifted, [int(c) + 1 for c in cards])
    return dense_groups(codes, space)


def first_rows(groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Index of the first row of each group (groups are dense ids)."""
    first = np.full(n_groups, len(groups), dtype=np.int64)
    np.minimum.at(first, groups, np.arange(len(groups), dtype=np.int64))
    return first
