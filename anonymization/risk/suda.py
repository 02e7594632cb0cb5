"""SUDA: special uniques, their minimal sample uniques (MSUs), SUDA and DIS-SUDA scores.

A record is *unique* on a set ``S`` of key variables when no other record shares its values on
``S``; ``S`` is a *minimal sample unique* (MSU) of the record when it is unique on ``S`` but on
no proper subset of ``S`` (Elliot, Manning, Mayes, Gurd & Bane 2005, "SUDA: a program for
detecting special uniques"; Manning, Haglin & Keane 2008, "A recursive search algorithm for
statistical disclosure assessment", Data Min. Knowl. Disc. 16:165-196). The fewer variables an
MSU needs and the more MSUs a record has, the riskier it is. As in sdcMicro's
``suda2(obj, variables, missing, DisFraction = 0.01, original_scores = TRUE)`` (reference
manual ``suda2``; Templ, Kowarik & Meindl 2015, J. Stat. Softw. 67(4), section 3.5), with
``M`` key variables an MSU of size ``k`` adds to the record's SUDA score::

    original_scores = True  (Elliot et al.):   prod_{i=k}^{M-1} (M - i)  =  (M - k)!
    original_scores = False (IHSN C++ code):   (2^(M-k) - 1) / C(M, k)

The DIS-SUDA score turns SUDA scores into a probability-like figure (sdcMicro's C++ ``Suda2``,
after Elliot's "Data Intrusion Simulation"). With ``U`` sample uniques on all keys, ``P``
records in key combinations occurring exactly twice, ``f`` the sampling fraction
(``dis_fraction``, sdcMicro's ``DisFraction``)::

    dis = U f / (U f + P (1 - f))             (file-level chance a sample unique is real;
                                               0 when the file has no sample unique)
    Q   = 1 + (8 - M) / 20
    A   = sum over records with score s_j > 0 of 1 / s_j^Q
    DIS-SUDA_i = 1 / (1 + (U / dis - U) / (s_i^Q A))  if s_i > 0, else 0

``dis`` and ``Q`` are evaluated in single precision as sdcMicro does, so the figures agree.

``M`` is the number of keys given; sdcMicro pads one or two keys with constant dummy columns
(its C++ needs three), which makes its weights use ``M = 3`` there: we do not pad (a constant
column can never be part of an MSU), so with one or two keys our scores differ by that factor.

A missing key value is no value at all (sdcMicro recodes NA to its ``missing`` code and drops
that item): a record cannot have an MSU containing a variable it misses, and does not share
that variable with anyone. For ``U`` and ``P`` a missing value is a value of its own.

Algorithm and limits: exact, by levels. A record can only have MSUs if it is unique on all the
keys it observes, so only those candidate records are followed. For each subset ``S`` of at
most ``max_size`` keys, in order of size, one ``bincount`` over the codes of ``S`` finds the
candidates unique on ``S``; ``S`` is an MSU of a candidate when it is unique on ``S`` and on no
``S \\ {v}`` (uniqueness is monotone, so immediate subsets suffice). Time
``O(sum_{k <= max_size} C(M, k) * k * n)`` and memory ``O(C(M, k) * candidates)`` booleans for
two adjacent levels: about a second for ``n = 10^6`` and 6 keys, and practical up to about 10
to 12 keys; at most 2**16 subsets are accepted (lower ``max_size`` beyond that).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from anonymization.exceptions import InvalidParameterError
from anonymization.risk._grouping import combine, dense_groups, frame_codes, group_rows
from anonymization.risk._inputs import check_frame, check_keys

__all__ = [
    "DIS_SCORE_INTERVALS",
    "MAX_SUBSETS",
    "SudaResult",
    "dis_score_table",
    "msu_weight",
    "suda2",
]

MAX_SUBSETS = 1 << 16
"""Most key subsets SUDA will examine: ``sum_{k <= max_size} C(M, k)``."""

DIS_SCORE_INTERVALS = (
    "== 0",
    "(0.0, 0.1]",
    "(0.1, 0.2]",
    "(0.2, 0.3]",
    "(0.3, 0.4]",
    "(0.4, 0.5]",
    "(0.5, 0.6]",
    "(0.6, 0.7]",
    "> 0.7",
)
"""Labels of sdcMicro's ``print.suda2`` table of DIS-SUDA scores."""


def msu_weight(size: int, n_keys: int, *, original_scores: bool = True) -> float:
    """SUDA score contribution of one MSU of ``size`` keys among ``n_keys`` key variables.

    ``(M - k)!`` (= ``prod_{i=k}^{M-1} (M - i)``, Elliot et al.; sdcMicro's default
    ``original_scores = TRUE``) or ``(2^(M-k) - 1) / C(M, k)`` (IHSN code, ``FALSE``).
    """
    if not 1 <= size <= n_keys:
        raise InvalidParameterError("size", f"an MSU size between 1 and {n_keys}", size)
    if original_scores:
        return float(math.factorial(n_keys - size))
    return (2.0 ** (n_keys - size) - 1.0) / math.comb(n_keys, size)


@dataclass(frozen=True, eq=False)
class SudaResult:
    """Per-record SUDA results (sdcMicro ``suda2``) and the file-level DIS figures.

    ``msu_counts[i, k-1]`` is the number of MSUs of size ``k`` of record ``i``;
    ``contributions[i, j]`` is the share of record ``i``'s score due to MSUs containing key
    ``j`` (sdcMicro's ``contributionPercent``, a fraction; rows can sum above 1 because an MSU
    of ``k`` keys counts for each of them), 0 for records with score 0.
    """

    keys: tuple[str, ...]
    max_size: int
    dis_fraction: float
    original_scores: bool
    scores: np.ndarray
    dis_scores: np.ndarray
    msu_counts: np.ndarray
    contributions: np.ndarray
    sample_uniques: int
    paired_records: int
    dis: float

    @property
    def attribute_contributions(self) -> pd.Series:
        """Percent of the total SUDA score due to each key (sdcMicro ``attribute_contributions``).

        ``100 * sum_i contributions[i, j] * score_i / sum_i score_i``; 0 when no record scores.
        """
        total = float(self.scores.sum())
        raw = (self.contributions * self.scores[:, None]).sum(axis=0)
        values = 100.0 * raw / total if total > 0 else np.zeros(len(self.keys))
        return pd.Series(values, index=list(self.keys), name="contribution")

    def to_frame(self, index: pd.Index | None = None) -> pd.DataFrame:
        """sdcMicro's result columns: ``<key>_contribution``, ``suda_score``, ``dis_suda_score``."""
        columns: dict[str, np.ndarray] = {
            f"{key}_contribution": self.contributions[:, j] for j, key in enumerate(self.keys)
        }
        columns["suda_score"] = self.scores
        columns["dis_suda_score"] = self.dis_scores
        return pd.DataFrame(columns, index=index)


def _check_parameters(n_keys: int, max_size: int | None, dis_fraction: float) -> tuple[int, float]:
    size = n_keys if max_size is None else max_size
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or not 1 <= size <= n_keys:
        raise InvalidParameterError(
            "max_size", f"an integer between 1 and the number of keys ({n_keys})", max_size
        )
    subsets = sum(math.comb(n_keys, k) for k in range(1, int(size) + 1))
    if subsets > MAX_SUBSETS:
        raise InvalidParameterError(
            "max_size",
            f"small enough that at most {MAX_SUBSETS} key subsets are searched "
            f"({subsets} with {n_keys} keys)",
            max_size,
        )
    if (
        isinstance(dis_fraction, bool)
        or not isinstance(dis_fraction, int | float)
        or not 0 < dis_fraction <= 1
    ):
        raise InvalidParameterError("dis_fraction", "a sampling fraction in (0, 1]", dis_fraction)
    return int(size), float(dis_fraction)


class _Uniqueness:
    """Tells, for a key subset, which candidate records no other record matches on it."""

    def __init__(self, matrix: np.ndarray, cards: np.ndarray, candidates: np.ndarray) -> None:
        self.matrix = matrix
        self.cards = cards
        self.candidates = candidates
        self.observed = matrix >= 0
        self.complete = bool(self.observed.all())

    def unique_on(self, subset: tuple[int, ...]) -> np.ndarray:
        cols = list(subset)
        if self.complete:
            codes, space = combine([self.matrix[:, j] for j in cols], self.cards[cols])
            groups, sizes = dense_groups(codes, space)
            return sizes[groups[self.candidates]] == 1
        rows = np.flatnonzero(self.observed[:, cols].all(axis=1))
        group_size = np.zeros(len(self.matrix), dtype=np.int64)
        if rows.size:
            sub = self.matrix[rows]
            codes, space = combine([sub[:, j] for j in cols], self.cards[cols])
            groups, sizes = dense_groups(codes, space)
            group_size[rows] = sizes[groups]
        return group_size[self.candidates] == 1


def _candidates(matrix: np.ndarray, cards: np.ndarray) -> np.ndarray:
    """Records unique on every key they observe: the only ones that can have an MSU."""
    observed = matrix >= 0
    if observed.all():
        groups, sizes = group_rows(matrix, cards)
        return np.flatnonzero(sizes[groups] == 1)
    n, m = matrix.shape
    masks = observed.astype(np.int64) @ (np.int64(1) << np.arange(m, dtype=np.int64))
    flags = np.zeros(n, dtype=bool)
    for mask in np.unique(masks):
        if mask == 0:
            continue
        cols = [j for j in range(m) if int(mask) >> j & 1]
        rows = np.flatnonzero((masks & mask) == mask)
        sub = matrix[rows]
        codes, space = combine([sub[:, j] for j in cols], cards[cols])
        groups, sizes = dense_groups(codes, space)
        unique_rows = rows[sizes[groups] == 1]
        flags[unique_rows[masks[unique_rows] == mask]] = True
    return np.flatnonzero(flags)


def _dis_scores(
    scores: np.ndarray, uniques: int, pairs: int, n_keys: int, fraction: float
) -> tuple[np.ndarray, float]:
    """DIS-SUDA scores by sdcMicro's formula, single precision where sdcMicro uses it."""
    f = np.float32(fraction)
    u = np.float32(uniques)
    p = np.float32(pairs)
    # no sample unique: nothing can be a population unique (sdcMicro would divide 0 by 0)
    dis = u * f / (u * f + p * (np.float32(1.0) - f)) if uniques else np.float32(0.0)
    q = float(np.float32(1.0) + (np.float32(8.0) - np.float32(n_keys)) / np.float32(20.0))
    result = np.zeros_like(scores)
    scoring = scores > 0
    if not scoring.any():
        return result, float(dis)
    powered = scores[scoring] ** q
    adjustment = float(np.sum(1.0 / powered))
    odds = float(u / dis - u)
    result[scoring] = 1.0 / (1.0 + odds / (powered * adjustment))
    return result, float(dis)


def suda2(
    data: pd.DataFrame,
    keys: str | Iterable[str],
    *,
    max_size: int | None = None,
    dis_fraction: float = 0.01,
    original_scores: bool = True,
) -> SudaResult:
    """MSUs up to ``max_size`` keys (default all), SUDA and DIS-SUDA scores of every record.

    sdcMicro ``suda2(data, variables = keys, DisFraction = dis_fraction, original_scores)``:
    score_i = sum over MSUs S of record i of ``msu_weight(|S|, M)``, DIS-SUDA as in the module
    docstring. ``max_size`` (not in sdcMicro, which always searches every size) bounds the
    search; weights keep using ``M`` = the number of keys. Exact; see the module docstring for
    the algorithm and its cost.
    """
    data = check_frame(data)
    names = check_keys(data, keys)
    n_keys = len(names)
    size_limit, fraction = _check_parameters(n_keys, max_size, dis_fraction)
    matrix, cards = frame_codes(data, names)
    n = len(data)

    candidates = _candidates(matrix, cards)
    uniqueness = _Uniqueness(matrix, cards, candidates)
    weights = np.array(
        [msu_weight(k, n_keys, original_scores=original_scores) for k in range(1, size_limit + 1)]
    )
    counts = np.zeros((len(candidates), size_limit), dtype=np.int64)
    raw = np.zeros((len(candidates), n_keys))
    previous: dict[tuple[int, ...], np.ndarray] = {}
    for size in range(1, size_limit + 1 if candidates.size else 1):  # no candidate: no MSU
        current: dict[tuple[int, ...], np.ndarray] = {}
        for subset in combinations(range(n_keys), size):
            unique = uniqueness.unique_on(subset)
            current[subset] = unique
            msu = unique.copy()
            if size > 1:
                for drop in range(size):
                    msu &= ~previous[subset[:drop] + subset[drop + 1 :]]
            if msu.any():
                counts[:, size - 1] += msu
                for j in subset:
                    raw[:, j] += msu * weights[size - 1]
        previous = current

    scores = np.zeros(n)
    msu_counts = np.zeros((n, size_limit), dtype=np.int64)
    contributions = np.zeros((n, n_keys))
    candidate_scores = counts @ weights
    scores[candidates] = candidate_scores
    msu_counts[candidates] = counts
    scoring = candidate_scores > 0
    contributions[candidates[scoring]] = raw[scoring] / candidate_scores[scoring, None]

    _, sizes = group_rows(matrix, cards)
    uniques = int(np.count_nonzero(sizes == 1))
    paired = 2 * int(np.count_nonzero(sizes == 2))
    dis_scores, dis = _dis_scores(scores, uniques, paired, n_keys, fraction)
    return SudaResult(
        keys=names,
        max_size=size_limit,
        dis_fraction=fraction,
        original_scores=original_scores,
        scores=scores,
        dis_scores=dis_scores,
        msu_counts=msu_counts,
        contributions=contributions,
        sample_uniques=uniques,
        paired_records=paired,
        dis=dis,
    )


def dis_score_table(dis_scores: ArrayLike) -> pd.DataFrame:
    """Counts of records by DIS-SUDA interval, as sdcMicro's ``print.suda2`` tabulates them.

    Intervals ``== 0``, ``(0.0, 0.1]``, ..., ``(0.6, 0.7]``, ``> 0.7`` (bounds shifted up by
    the double epsilon as sdcMicro does, so an exact 0 falls in ``== 0``).
    """
    values = np.asarray(dis_scores, dtype=np.float64)
    eps = np.finfo(np.float64).eps
    breaks = np.r_[-1.0, np.arange(8) * 0.1 + eps, np.inf]  # R: seq(0, 0.7, 0.1) + eps
    bins = np.searchsorted(breaks, values, side="left") - 1
    counts = np.bincount(
        bins[(bins >= 0) & (bins < len(DIS_SCORE_INTERVALS))], minlength=len(DIS_SCORE_INTERVALS)
    )
    return pd.DataFrame({"interval": DIS_SCORE_INTERVALS, "records": counts})
