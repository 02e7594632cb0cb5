"""Local suppression to k-anonymity with an importance order (sdcMicro ``localSuppression``).

**Frequencies.** As in sdcMicro's ``freqCalc`` with ``alpha = 1``, a missing key value is a
wildcard: records ``r`` and ``j`` *match* when they agree on every key where both have a value
(and are in the same stratum). The NA-aware frequency ``f_k(r)`` is the number of records that
match ``r``, itself included; a record is *safe* when ``f_k(r) >= k``. Suppressing a value
(setting it to missing) can only turn non-matching pairs into matching ones, so frequencies
never decrease: **suppression is monotone**, and a record once safe stays safe.

**Algorithm** (our own; the goal and the importance convention are sdcMicro's, Templ, Kowarik &
Meindl 2015, J. Stat. Softw. 67(4), section 3.3; Hundepool et al. 2012, 3.4.6). Keys are put
in a total *suppression order*: larger importance first, ties broken by column order (the
earlier key first, as R's stable ``order`` does in sdcMicro). A set of keys ``A`` costs
``sum(2**rank(c) for c in A)``, ``rank`` being the position in that order, so comparing costs
compares the most important keys first. The data are processed in rounds; in each round

1. ``f_k`` is computed for every record (see below);
2. every unsafe record ``r`` gets its *choice*: the set ``A`` of its non-missing keys of the
   smallest size, and among those of the smallest cost, such that suppressing ``A`` in ``r``
   alone (every other record as it is at the start of the round) makes ``r`` safe;
3. only the records whose choice has the smallest size found in the round go on; the others
   wait for the next round, where the new wildcards may already make them safe or let them
   need fewer suppressions (after 20 rounds nobody waits any more);
4. these records are suppressed in turn, as a sequential pass would, except that one that
   records suppressed before it in the round have already made safe is left alone. Records
   that become identical once suppressed (same stratum, same missing and suppressed keys,
   same other values) are taken together, fewest matches first, then in row order; each
   one suppressed brings one more match to those whose suppressed values differ from its
   own, so with k = 3 and a hundred pupils alike but for their unique département, two
   lose their département and the ninety-eight others then match them (this is what the
   wildcard counting of sdcMicro allows; it keeps suppressions few).

Every round suppresses at least one unsafe record, leaves every record it suppressed safe
(monotonicity) and every record it left alone in step 4 safe (its count was a lower bound),
so the number of unsafe records falls each round and the loop ends, when every record is
safe. Suppressing all of a record's keys makes it match its whole stratum, so a choice
always exists when each stratum has at least ``k`` records (otherwise `TooFewRecordsError`).

**Guaranteed invariant**, checked by the tests against a naive O(n^2) re-count: when record
``r`` receives its suppressions ``A`` in round ``t`` (``suppression_round[r] == t``), then, in
the data as they were at the start of round ``t``:

* ``r`` was unsafe, and suppressing ``A`` in ``r`` made it safe;
* no set of fewer keys would have made ``r`` safe;
* no other set of ``|A|`` keys of lower cost would have; in particular, swapping a suppressed
  key for any less important key still present in ``r`` would not have made ``r`` safe. So
  a more important key is never suppressed while a less important one (or an equally large
  set of less important ones) would do for that record.

Records safe in the input are never touched, each record is treated in one round only, and
a record unsafe at the start of a round, not treated in it and still unsafe after it needed
more suppressions than the records treated in that round.

**Frequencies at scale** are counted by missing-value pattern (module ``_frequencies``), in
about one pass over the data per pattern instead of O(n^2). When few unsafe records remain,
their choices are found exactly from the histogram of each one's disagreement set with
every other record (a subset-sum transform over the ``2**m`` key sets), which avoids one
count per candidate set.

The cost of a round grows with the number of distinct missing-value patterns (at most
``2**m``) and, for records that need several suppressions, with the number of candidate key
sets: a million records and six keys take seconds; many keys whose values make nearly every
record unique (say 12 keys) take minutes at 100,000 records.

Differences from sdcMicro, checked against its source (``suppSubset`` in
``R/localSuppression.R``, sdcTools/sdcMicro commit cf32510): sdcMicro (1) keeps only ``k``
records of every complete combination that has more, (2) computes ``freqCalc`` once per pass,
(3) gives *every* record unsafe at the start of the pass, highest individual risk first, one
suppression (the least important key in which it differs from a candidate record found by
its C++ ``calcSuppInds``) without re-counting in between, and (4) repeats passes until every
``fk >= k``. Step (3) is where it suppresses more than we do: records that an earlier
suppression of the same pass has already made safe still lose a value. With k = 3 and five
pupils alike but for their unique département, sdcMicro suppresses all five départements in
its first pass; we suppress two, and the three others then match them (3 records each). We
choose the whole set for a record at once with the criterion above, which gives the
invariant and needs few rounds, and (step 4) skip records already made safe in the round, so
we usually suppress fewer values (59 instead of the 97 sdcMicro's tests expect on its
``testdata2`` at k = 2). This is deliberate and does not weaken the guarantee: the result is
k-anonymous under the same wildcard counting, ``anonymization.risk.key_frequencies`` finding
every ``fk >= k`` afterwards (property-tested). Only ``alpha = 1`` (wildcard) counting and
the full key set (no ``combs``) are implemented.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from itertools import combinations
from numbers import Integral

import numpy as np
import pandas as pd

from anonymization.exceptions import ProtectionParameterError, TooFewRecordsError
from anonymization.protection._common import (
    check_columns,
    check_disjoint,
    check_frame,
    check_k,
)
from anonymization.protection._frequencies import (
    Coded,
    Frequencies,
    encode,
    missing_pattern,
    row_codes,
)

__all__ = ["LocalSuppressionResult", "default_importance", "local_suppression"]

_METHOD = "local_suppression"
_MAX_KEYS = 62
"""Missing-value patterns are bit masks in an int64."""
_EXACT_MAX_RECORDS = 64
"""At most this many unsafe records: choose exactly per record (disagreement histograms)."""
_EXACT_MAX_KEYS = 14
"""The exact per-record choice builds a table of 2**m key sets: only for m up to this."""
_DEFERRING_ROUNDS = 20
"""Rounds in which records needing more suppressions than others wait for the next round."""


@dataclass(frozen=True)
class LocalSuppressionResult:
    """Outcome of `local_suppression`: the suppressed data and where suppressions went.

    `suppressions` counts the new missing values per key (pre-existing ones are in
    `missing_before`); `suppression_round` gives, per record, the round in which it was
    suppressed (0: untouched), which is what the invariant of the module refers to.
    """

    data: pd.DataFrame
    keys: tuple[Hashable, ...]
    k: int
    importance: tuple[int, ...]
    suppressions: pd.Series
    missing_before: pd.Series
    suppression_round: np.ndarray
    rounds: int

    @property
    def total_suppressions(self) -> int:
        """Number of values suppressed, all keys together."""
        return int(self.suppressions.sum())

    @property
    def suppression_order(self) -> tuple[Hashable, ...]:
        """The keys from the first to be suppressed (least important) to the last."""
        return tuple(self.keys[j] for j in _suppression_order(self.importance))


def default_importance(data: pd.DataFrame, keys: Sequence[Hashable]) -> tuple[int, ...]:
    """sdcMicro's default importance: keys with more distinct values are suppressed first.

    Keys are ranked by their number of distinct non-missing values, ascending (ties in
    column order); the key with the fewest gets importance 1 (suppressed last).
    """
    frame = check_frame(_METHOD, data)
    names = check_columns(_METHOD, frame, "keys", keys)
    counts = [int(frame[key].nunique(dropna=True)) for key in names]
    return _importance_from_counts(counts)


def _importance_from_counts(counts: Sequence[int]) -> tuple[int, ...]:
    order = sorted(range(len(counts)), key=lambda j: (counts[j], j))
    importance = [0] * len(counts)
    for position, j in enumerate(order):
        importance[j] = position + 1
    return tuple(importance)


def _check_importance(importance: object, m: int) -> tuple[int, ...]:
    rule = f"a sequence of {m} integers between 1 (suppressed last) and {m} (suppressed first)"
    if isinstance(importance, str) or not isinstance(importance, Sequence | np.ndarray):
        raise ProtectionParameterError(_METHOD, "importance", rule, importance)
    values = list(importance)
    if len(values) != m or any(
        isinstance(v, bool) or not isinstance(v, Integral) or not 1 <= int(v) <= m for v in values
    ):
        raise ProtectionParameterError(_METHOD, "importance", rule, values)
    return tuple(int(v) for v in values)


def _suppression_order(importance: Sequence[int]) -> list[int]:
    """Key positions from the first suppressed to the last: importance descending, then column."""
    return sorted(range(len(importance)), key=lambda j: (-importance[j], j))


# --------------------------------------------------------------------------- choices


def _costs(rank: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Popcount and cost of every key set (bit mask) 0 .. 2**m - 1."""
    m = len(rank)
    masks = np.arange(1 << m, dtype=np.int64)
    size = np.zeros(1 << m, dtype=np.int64)
    cost = np.zeros(1 << m, dtype=np.int64)
    for j in range(m):
        bit = (masks >> j) & 1
        size += bit
        cost += bit << rank[j]
    return size, cost


def _level_masks(rank: Sequence[int], level: int) -> list[int]:
    """Key sets of `level` keys, cheapest first (the most important key decides)."""
    combos = combinations(range(len(rank)), level)
    by_cost = sorted(combos, key=lambda combo: sum(1 << rank[j] for j in combo))
    return [sum(1 << j for j in combo) for combo in by_cost]


def _table_choices(
    freq: Frequencies,
    pattern: np.ndarray,
    unsafe: np.ndarray,
    k: int,
    rank: Sequence[int],
    defer: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Choices by testing candidate sets level by level against the pattern tables.

    Returns the size and mask of each unsafe record's choice (0, 0: left for a later round).
    With `defer`, stops at the first level where some record finds a choice.
    """
    own = pattern[unsafe]
    chosen = np.zeros(len(unsafe), dtype=np.int64)
    level = np.zeros(len(unsafe), dtype=np.int64)
    for size in range(1, len(rank) + 1):
        for mask in _level_masks(rank, size):
            open_ = np.flatnonzero((chosen == 0) & ((own & mask) == 0))
            if len(open_) == 0:
                continue
            counts = freq.counts(unsafe[open_], own[open_] | mask)
            safe = open_[counts >= k]
            chosen[safe] = mask
            level[safe] = size
        if (chosen != 0).all() or (defer and (chosen != 0).any()):
            break
    return level, chosen


def _exact_choices(
    coded: Coded, pattern: np.ndarray, unsafe: np.ndarray, k: int, rank: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Choices of a few unsafe records, from each one's disagreement histogram.

    ``D(r, j)``, the keys where both records have a value and differ, decides matching:
    with ``A`` suppressed, ``r`` matches ``j`` iff ``D(r, j)`` is a subset of ``A``. So the
    frequency for every ``A`` is the subset sum (zeta transform) of the histogram of ``D``.
    """
    m = coded.keys
    size, cost = _costs(rank)
    order = np.lexsort((cost, size))[1:]  # every non-empty set, by (size, cost)
    members = np.argsort(coded.strata, kind="stable")
    bounds = np.concatenate(([0], np.cumsum(np.bincount(coded.strata, minlength=coded.n_strata))))
    level = np.zeros(len(unsafe), dtype=np.int64)
    chosen = np.zeros(len(unsafe), dtype=np.int64)
    for i, r in enumerate(unsafe.tolist()):
        s = int(coded.strata[r])
        same = members[bounds[s] : bounds[s + 1]]
        disagreement = np.zeros(len(same), dtype=np.int64)
        for j in range(m):
            mine = coded.values[j, r]
            if mine < 0:
                continue
            theirs = coded.values[j, same]
            disagreement |= ((theirs != mine) & (theirs >= 0)).astype(np.int64) << j
        frequency = np.bincount(disagreement, minlength=1 << m)
        for j in range(m):
            view = frequency.reshape(-1, 2, 1 << j)
            view[:, 1, :] += view[:, 0, :]
        fits = (frequency[order] >= k) & ((order & pattern[r]) == 0)
        best = int(order[int(np.argmax(fits))])
        chosen[i] = best
        level[i] = int(size[best])
    return level, chosen


def _still_needed(
    coded: Coded,
    pattern: np.ndarray,
    rows: np.ndarray,
    masks: np.ndarray,
    frequency: np.ndarray,
    k: int,
) -> np.ndarray:
    """Which of a round's decided records still need their suppression, treated in turn.

    Records with the same stratum, the same missing keys and the same suppressed keys ``A``
    that agree on every other key become identical once suppressed: each one suppressed
    matches all the others, and brings one more match to those whose values on ``A``
    differ (they did not match before). Taking such a group's records in turn (fewest
    matches first, then row order), a record whose count at the start of the round plus
    these new matches already reaches k is left alone, as a sequential pass would. The
    count is a lower bound of its true frequency then, so it is safe; the next round
    checks it anyway.
    """
    needed = np.ones(len(rows), dtype=bool)
    if len(rows) < 2:
        return needed
    group = np.zeros(len(rows), dtype=np.int64)
    cell = np.zeros(len(rows), dtype=np.int64)
    combos, combo_of = np.unique(np.stack((pattern[rows], masks)), axis=1, return_inverse=True)
    offset = 0
    for c in range(combos.shape[1]):
        members = np.flatnonzero(combo_of == c)
        suppressed = int(pattern[rows[members[0]]] | masks[members[0]])
        kept = [j for j in range(coded.keys) if not (suppressed >> j) & 1]
        chosen = [j for j in range(coded.keys) if (int(masks[members[0]]) >> j) & 1]
        rows_c = rows[members]
        target = row_codes(
            [coded.strata[rows_c]] + [coded.values[j, rows_c] for j in kept],
            [coded.n_strata] + [coded.cards[j] for j in kept],
        )
        _, target = np.unique(target, return_inverse=True)
        group[members] = target + offset
        offset += int(target.max()) + 1
        cell[members] = row_codes(
            [coded.values[j, rows_c] for j in chosen], [coded.cards[j] for j in chosen]
        )
    order = np.lexsort((rows, frequency, group))
    previous = -1
    done = 0
    done_in_cell: dict[int, int] = {}
    for position, g, c, f in zip(
        order.tolist(),
        group[order].tolist(),
        cell[order].tolist(),
        frequency[order].tolist(),
        strict=True,
    ):
        if g != previous:
            previous, done, done_in_cell = g, 0, {}
        if f + done - done_in_cell.get(c, 0) >= k:
            needed[position] = False
        else:
            done += 1
            done_in_cell[c] = done_in_cell.get(c, 0) + 1
    return needed


# --------------------------------------------------------------------------- public API


def _na_capable(series: pd.Series) -> pd.Series:
    """The series in a dtype that holds missing values (numpy ints and bools to nullable)."""
    dtype = series.dtype
    if isinstance(dtype, np.dtype):
        if dtype.kind == "i":
            return series.astype(f"Int{dtype.itemsize * 8}")
        if dtype.kind == "u":
            return series.astype(f"UInt{dtype.itemsize * 8}")
        if dtype.kind == "b":
            return series.astype("boolean")
    return series


def _check_strata_sizes(coded: Coded, k: int, stratified: bool) -> None:
    if coded.records == 0:
        return
    sizes = np.bincount(coded.strata, minlength=coded.n_strata)
    smallest = int(np.argmin(sizes))
    if sizes[smallest] < k:
        where = f"stratum {coded.strata_labels[smallest]!r}" if stratified else "the data"
        raise TooFewRecordsError(_METHOD, int(sizes[smallest]), k, where)


def local_suppression(
    data: pd.DataFrame,
    keys: Sequence[Hashable],
    k: int,
    *,
    importance: Sequence[int] | None = None,
    strata: Hashable | Sequence[Hashable] | None = None,
) -> LocalSuppressionResult:
    """Suppress key values until every record's NA-aware frequency is at least `k`.

    sdcMicro ``localSuppression(obj, k, importance)`` (alias ``kAnon``) with ``alpha = 1``:
    missing values match any value. `importance` gives each key a number from 1 (suppressed
    last) to ``len(keys)`` (suppressed first); by default keys with more distinct values are
    suppressed first (`default_importance`). With `strata`, k-anonymity is reached within
    each stratum (records of different strata never match) and strata are never suppressed.

    The algorithm and the invariant it guarantees are described in the module docstring.
    Suppressed values become missing; key columns come back in a dtype that holds missing
    values (numpy integers as pandas nullable integers, booleans as ``boolean``), whether or
    not they were suppressed, so the output schema does not depend on the data. The input is
    never modified.
    """
    frame = check_frame(_METHOD, data)
    key_names = check_columns(_METHOD, frame, "keys", keys)
    if isinstance(strata, str) or not isinstance(strata, Sequence):
        strata = None if strata is None else [strata]
    strata_names = check_columns(_METHOD, frame, "strata", strata, required=False)
    check_disjoint(_METHOD, "keys", key_names, "strata", strata_names)
    k = check_k(_METHOD, k)
    m = len(key_names)
    if m > _MAX_KEYS:
        raise ProtectionParameterError(_METHOD, "keys", f"at most {_MAX_KEYS} key variables", m)
    coded = encode(frame, key_names, strata_names)
    chosen_importance = (
        _importance_from_counts(coded.distinct)
        if importance is None
        else _check_importance(importance, m)
    )
    _check_strata_sizes(coded, k, bool(strata_names))

    rank = [0] * m
    for position, j in enumerate(_suppression_order(chosen_importance)):
        rank[j] = position
    initial = missing_pattern(coded.values)
    pattern = initial.copy()
    n = coded.records
    suppression_round = np.zeros(n, dtype=np.int32)
    everyone = np.arange(n, dtype=np.int64)
    rounds = 0
    while n:
        freq = Frequencies(coded, pattern)
        frequency = freq.counts(everyone, pattern)
        unsafe = np.flatnonzero(frequency < k)
        if len(unsafe) == 0:
            break
        rounds += 1
        defer = rounds <= _DEFERRING_ROUNDS
        if len(unsafe) <= _EXACT_MAX_RECORDS and m <= _EXACT_MAX_KEYS:
            level, chosen = _exact_choices(coded, pattern, unsafe, k, rank)
        else:
            level, chosen = _table_choices(freq, pattern, unsafe, k, rank, defer)
        decided = chosen != 0
        if defer:
            decided &= level == level[decided].min()
        rows, masks = unsafe[decided], chosen[decided]
        needed = _still_needed(coded, pattern, rows, masks, frequency[rows], k)
        rows, masks = rows[needed], masks[needed]
        for j in range(m):
            coded.values[j, rows[(masks >> j) & 1 == 1]] = -1
        pattern[rows] |= masks
        suppression_round[rows] = rounds

    new = pattern & ~initial
    result = frame.copy(deep=False)
    counts = []
    for j, key in enumerate(key_names):
        hit = (new >> j) & 1 == 1
        counts.append(int(hit.sum()))
        result[key] = _na_capable(frame[key]).mask(pd.Series(hit, index=frame.index))
    before = [int(((initial >> j) & 1).sum()) for j in range(m)]
    index = pd.Index(key_names, name="key")
    return LocalSuppressionResult(
        data=result,
        keys=tuple(key_names),
        k=k,
        importance=chosen_importance,
        suppressions=pd.Series(counts, index=index, name="suppressions", dtype=np.int64),
        missing_before=pd.Series(before, index=index, name="missing_before", dtype=np.int64),
        suppression_round=suppression_round,
        rounds=rounds,
    )
