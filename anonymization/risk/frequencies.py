"""Sample and weighted population frequencies of key combinations, and k-anonymity counts.

For record ``i`` with key combination ``k``, the sample frequency ``fk`` is the number of
records sharing ``k`` and the estimated population frequency ``Fk`` is the sum of their
sampling weights, ``Fk = sum_{j: key_j = key_i} w_j`` (sdcMicro reference manual, ``freqCalc``;
Templ, Kowarik & Meindl 2015, J. Stat. Softw. 67(4), section 3.1). Without a weight column the
data is a population and ``Fk = fk``.

Missing values follow sdcMicro's documented definition of ``freqCalc`` ("a missing value stands
for any of the possible categories of the variable considered", reference manual): a missing
key value (None, NaN, NA) stands for any category of that variable, so two records are
*compatible* when, on every key, their values are equal or one of them is missing. Writing
``alpha`` for the weight of a match through a missing value (sdcMicro's ``alpha``, default 1):

* a record with no missing key counts the records with its exact combination, plus ``alpha``
  times every compatible record that has a missing key, records missing *every* key included
  (they are compatible with everything);
* a record with some, not all, keys missing counts the records with its exact pattern, every
  compatible complete record (weight 1), plus ``alpha`` times every other compatible record
  with missing keys (including records missing every key);
* a record missing every key gets ``fk = n`` and ``Fk = sum(w)``.

One deliberate difference from sdcMicro's *code*: its ``R/freqCalc.r`` (sdcTools/sdcMicro,
commit cf32510, 2026-04) keeps ``addAllNAtoKeys <- FALSE`` ("TODO: CHECK IF THIS IS NEEDED"),
so there a complete record does not count records missing every key although those records
count it. We follow the documented definition, which is symmetric and is the one local
suppression relies on (`anonymization.protection.local_suppression` counts a record missing
every key as matching all records): after local suppression to k, ``key_frequencies`` finds no
record below k. With no record missing every key, or with a single key, the two agree.

So with missing values ``sum(fk)`` over distinct combinations exceeds ``n``: a record is counted
in every combination it could belong to. Without missing values the frequencies are computed by
one group id per record (`_grouping`) and two ``bincount`` calls; with them, distinct patterns
are matched mask by mask (the set of observed keys), never pair of records by pair of records.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from anonymization.risk._grouping import (
    combine,
    dense_groups,
    first_rows,
    frame_codes,
    group_rows,
)
from anonymization.risk._inputs import check_alpha, check_frame, check_k, check_keys, check_weights

__all__ = ["KeyFrequencies", "k_anonymity_violations", "key_frequencies"]


@dataclass(frozen=True, eq=False)
class KeyFrequencies:
    """Per-record ``fk`` and ``Fk`` (sdcMicro ``freqCalc``), with the pattern each record has.

    ``group`` numbers the distinct key patterns (a missing value being a value of its own);
    records of one pattern share ``fk`` and ``Fk``, held per pattern in ``group_fk`` and
    ``group_Fk`` so risk formulas can run once a pattern. ``fk`` is float64 because sdcMicro's
    ``alpha < 1`` gives fractional counts; it holds whole numbers otherwise.
    """

    keys: tuple[str, ...]
    weight: str | None
    alpha: float
    fk: np.ndarray
    Fk: np.ndarray
    group: np.ndarray
    group_fk: np.ndarray
    group_Fk: np.ndarray
    has_missing: bool

    @property
    def n(self) -> int:
        """Number of records."""
        return len(self.fk)

    @property
    def n1(self) -> int:
        """Records whose combination is unique in the sample (``fk == 1``): sdcMicro's ``n1``."""
        return int(np.count_nonzero(self.fk == 1))

    @property
    def n2(self) -> int:
        """Records whose combination occurs twice in the sample (``fk == 2``): sdcMicro's ``n2``."""
        return int(np.count_nonzero(self.fk == 2))

    def violations(self, k: int, *, weighted: bool = False) -> int:
        """Records violating k-anonymity, ``#{i: fk_i < k}`` (``Fk`` when ``weighted``)."""
        return k_anonymity_violations(self.Fk if weighted else self.fk, k)


def k_anonymity_violations(frequencies: KeyFrequencies | ArrayLike, k: int) -> int:
    """Number of records whose key combination is shared by fewer than ``k`` records.

    ``#{i: fk_i < k}``: sdcMicro's ``print(sdc, "kAnon")`` and ``kAnon_violations(obj,
    weighted = FALSE, k)``. Give a `KeyFrequencies` (its ``fk`` is used) or any frequency array,
    such as ``Fk`` for sdcMicro's ``weighted = TRUE`` variant. ``k`` is an integer >= 1.
    """
    k = check_k(k)
    values = frequencies.fk if isinstance(frequencies, KeyFrequencies) else frequencies
    return int(np.count_nonzero(np.asarray(values, dtype=np.float64) < k))


def key_frequencies(
    data: pd.DataFrame,
    keys: str | Iterable[str],
    *,
    weight: str | None = None,
    alpha: float = 1.0,
) -> KeyFrequencies:
    """Sample frequency ``fk`` and population frequency ``Fk`` of each record's key combination.

    ``fk_i = #{j: key_j = key_i}``, ``Fk_i = sum_{j: key_j = key_i} w_j`` (sdcMicro reference
    manual, ``freqCalc(x, keyVars, w, alpha)``; Templ et al. 2015, section 3.1), with missing
    key values matching any value as the module docstring states. ``weight`` names the sampling
    weight column (finite, > 0); without it ``Fk = fk``. ``alpha`` in [0, 1] weighs matches
    through a missing value. Keys may be of any dtype; equal values (pandas equality) are one
    category.
    """
    data = check_frame(data)
    names = check_keys(data, keys)
    alpha = check_alpha(alpha)
    n = len(data)
    weights = np.ones(n) if weight is None else check_weights(data, weight, names)
    matrix, cards = frame_codes(data, names)
    has_missing = bool((matrix < 0).any())
    if has_missing:
        group, group_fk, group_Fk = _with_missing(matrix, cards, weights, alpha)
    else:
        columns = [matrix[:, j] for j in range(matrix.shape[1])]
        codes, space = combine(columns, [int(c) for c in cards])
        group, sizes = dense_groups(codes, space)
        group_fk = sizes.astype(np.float64)
        group_Fk = group_fk if weight is None else np.bincount(group, weights, len(sizes))
    return KeyFrequencies(
        keys=names,
        weight=weight,
        alpha=alpha,
        fk=group_fk[group],
        Fk=group_Fk[group],
        group=group,
        group_fk=group_fk,
        group_Fk=group_Fk,
        has_missing=has_missing,
    )


# --------------------------------------------------------------------------- missing values


def _joint_ids(
    left: np.ndarray, right: np.ndarray, cards: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """Dense ids of the rows of two code matrices (same columns) in one shared numbering."""
    stacked = np.concatenate([left, right])
    codes, space = combine([stacked[:, j] for j in range(stacked.shape[1])], cards)
    ids, sizes = dense_groups(codes, space)
    return ids[: len(left)], ids[len(left) :], len(sizes)


def _sums_at(source: np.ndarray, values: np.ndarray, target: np.ndarray, size: int) -> np.ndarray:
    """For each target id, the sum of ``values`` over sources with that id (0 if none)."""
    return np.bincount(source, weights=values, minlength=size)[target]


def _with_missing(
    matrix: np.ndarray, cards: np.ndarray, weights: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frequencies with missing values matching anything, per distinct key pattern.

    Patterns are grouped by mask (bit j set when key j is observed). Two patterns are compatible
    when they agree on the keys both observe, so for masks ``s`` and ``t`` it suffices to code
    every pattern on ``s & t`` and add sums by code: cost O(masks^2 * patterns), not O(n^2).
    """
    n, m = matrix.shape
    group, sizes = group_rows(matrix, cards)
    patterns = matrix[first_rows(group, len(sizes))]
    count = sizes.astype(np.float64)
    mass: np.ndarray = np.bincount(group, weights=weights, minlength=len(sizes))
    observed = patterns >= 0
    mask = observed.astype(np.int64) @ (np.int64(1) << np.arange(m, dtype=np.int64))
    full = (1 << m) - 1
    fk, Fk = count.copy(), mass.copy()

    complete = np.flatnonzero(mask == full)
    members = {int(s): np.flatnonzero(mask == s) for s in np.unique(mask[mask != full])}
    for s, rows_s in members.items():
        # complete patterns <-> patterns of mask s (records missing every key included: they
        # match every record, see the module docstring)
        if complete.size:
            cols = [j for j in range(m) if s >> j & 1]
            if cols:
                a, b, size = _joint_ids(
                    patterns[complete][:, cols], patterns[rows_s][:, cols], cards[cols]
                )
                fk[rows_s] += _sums_at(a, count[complete], b, size)
                Fk[rows_s] += _sums_at(a, mass[complete], b, size)
                fk[complete] += alpha * _sums_at(b, count[rows_s], a, size)
                Fk[complete] += alpha * _sums_at(b, mass[rows_s], a, size)
            else:
                fk[complete] += alpha * count[rows_s].sum()
                Fk[complete] += alpha * mass[rows_s].sum()
        # patterns of mask s <- patterns of every other incomplete mask t
        for t, rows_t in members.items():
            if t == s:
                continue  # same mask: compatible only with itself, already counted
            cols = [j for j in range(m) if (s & t) >> j & 1]
            if cols:
                a, b, size = _joint_ids(
                    patterns[rows_t][:, cols], patterns[rows_s][:, cols], cards[cols]
                )
                fk[rows_s] += alpha * _sums_at(a, count[rows_t], b, size)
                Fk[rows_s] += alpha * _sums_at(a, mass[rows_t], b, size)
            else:
                fk[rows_s] += alpha * count[rows_t].sum()
                Fk[rows_s] += alpha * mass[rows_t].sum()
    if 0 in members:
        fk[members[0]] = n
        Fk[members[0]] = weights.sum()
    return group, fk, Fk
