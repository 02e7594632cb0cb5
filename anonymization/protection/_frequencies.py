"""NA-aware frequencies of key combinations, at scale (private engine of local suppression).

As in sdcMicro's ``freqCalc`` with ``alpha = 1``, a missing key value is a wildcard: two
records *match* when they are in the same stratum and agree on every key where both have a
value; a record's frequency counts the records matching it, itself included.

With ``S`` the missing keys of a query record and ``T`` those of a record of the data, the two
match iff they agree on the keys outside ``U = S | T``. The records are grouped by their
missing-value pattern ``T`` (few distinct patterns); for a query pattern ``S``, the groups
giving the same ``U`` are counted together by one integer code of their values on the keys
outside ``U`` (mixed radix, with the stratum; a ``bincount`` when the code space is small,
else a sorted or hashed table), and each query adds the count of its own code. A count costs
about (number of patterns) passes over the data instead of O(n^2). A handful of queries
against many patterns is answered by comparing each query with every record instead.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from anonymization.protection._common import group_ids

MAX_CODE = 1 << 62
"""Largest mixed-radix code; beyond it the codes are densified first."""
DENSE_SLACK = 1024
"""Code spaces up to 4 x group size + this are counted with a dense ``bincount``."""
SORTED_MAX = 4096
"""Sparse count tables up to this many codes are searched by bisection, larger ones hashed."""
CALL_COST = 40e-6
"""Rough seconds of Python overhead of one pattern-pair look-up ..."""
ELEMENT_COST = 1e-9
"""... and of one element compared directly: they decide how a small query group is counted."""
TABLE_BUDGET = 32
"""Cached count tables of one round may hold this many times n entries before a reset."""


@dataclass
class Coded:
    """Key values as dense codes, one row per key (-1: missing), and stratum numbers."""

    values: np.ndarray
    cards: list[int]
    distinct: list[int]
    strata: np.ndarray
    n_strata: int
    strata_labels: list[tuple]

    @property
    def keys(self) -> int:
        return len(self.cards)

    @property
    def records(self) -> int:
        return int(self.values.shape[1])


def encode(frame: pd.DataFrame, keys: Sequence[Hashable], strata: Sequence[Hashable]) -> Coded:
    """Factorise each key (missing values as -1) and number the strata (missing is a value)."""
    values = np.empty((len(keys), len(frame)), dtype=np.int64)
    distinct = []
    for j, key in enumerate(keys):
        codes, uniques = pd.factorize(frame[key], use_na_sentinel=True)
        values[j] = codes
        distinct.append(len(uniques))
    stratum, labels = group_ids(frame, strata)
    cards = [max(d, 1) for d in distinct]
    return Coded(values, cards, distinct, stratum, max(len(labels), 1), labels)


_Table = tuple[np.ndarray, np.ndarray | pd.Index | None]
"""Counts by code: dense (indexed by code), or sparse with the sorted codes or their hash index."""


class Frequencies:
    """NA-aware frequencies against one state of the data (the start of a round).

    The data's records are grouped by missing-value pattern; `counts` answers, for query
    records with given patterns, how many records of the data match them.
    """

    def __init__(self, coded: Coded, pattern: np.ndarray) -> None:
        self._coded = coded
        n = coded.records
        patterns, inverse = np.unique(pattern, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.concatenate(([0], np.cumsum(np.bincount(inverse, minlength=len(patterns)))))
        self._groups: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
        for g, bits in enumerate(patterns.tolist()):
            rows = order[bounds[g] : bounds[g + 1]]
            if len(rows) == n:
                self._groups.append((bits, rows, coded.values, coded.strata))
            else:
                self._groups.append((bits, rows, coded.values[:, rows], coded.strata[rows]))
        self._tables: dict[tuple[tuple[int, ...], int], _Table] = {}
        self._table_entries = 0
        self._global: dict[int, tuple[np.ndarray, int]] = {}
        self._spaces: dict[int, tuple[list[int], int]] = {}

    def _space(self, union: int) -> tuple[list[int], int]:
        """The keys outside `union` and the size of their code space (with the strata)."""
        known = self._spaces.get(union)
        if known is None:
            kept = [j for j in range(self._coded.keys) if not (union >> j) & 1]
            size = self._coded.n_strata
            for j in kept:
                size *= self._coded.cards[j]
            known = self._spaces[union] = (kept, size)
        return known

    def _codes(
        self, union: int, rows: np.ndarray, values: np.ndarray, strata: np.ndarray
    ) -> tuple[np.ndarray, int]:
        """Code of each record's stratum and values on the keys outside `union`, and the
        size of the code space (records must have values on those keys)."""
        kept, size = self._space(union)
        if size > MAX_CODE:
            codes, size = self._global_codes(union, kept)
            return codes[rows], size
        code = strata.astype(np.int64, copy=True)
        for j in kept:
            code *= self._coded.cards[j]
            code += values[j]
        return code, size

    def _global_codes(self, union: int, kept: list[int]) -> tuple[np.ndarray, int]:
        """Codes over all records for a code space too large for int64, densified as built."""
        if union not in self._global:
            coded = self._coded
            code = coded.strata.astype(np.int64, copy=True)
            size = coded.n_strata
            for j in kept:
                if size * coded.cards[j] > MAX_CODE:
                    _, code = np.unique(code, return_inverse=True)
                    code = code.astype(np.int64, copy=False)
                    size = int(code.max()) + 1 if len(code) else 1
                # missing values only occur in records that never use this code space
                code = code * coded.cards[j] + np.maximum(coded.values[j], 0)
                size *= coded.cards[j]
            self._global[union] = (code, size)
        return self._global[union]

    def _table(self, members: tuple[int, ...], union: int) -> _Table:
        """Counts of the records of the pattern groups `members` by their code over the keys
        outside `union` (every member's pattern is inside `union`)."""
        key = (members, union)
        table = self._tables.get(key)
        if table is None:
            if len(members) == 1:
                _, rows, values, strata = self._groups[members[0]]
            else:
                rows = np.concatenate([self._groups[g][1] for g in members])
                values, strata = self._coded.values[:, rows], self._coded.strata[rows]
            codes = self._codes(union, rows, values, strata)[0]
            size = self._space(union)[1]
            if size > MAX_CODE:
                size = self._global[union][1]
            if size <= 4 * len(codes) + DENSE_SLACK:
                table = (np.bincount(codes, minlength=size), None)
            else:
                unique, counts = np.unique(codes, return_counts=True)
                # bisection is quick in a small table; in a large one, hashing beats it
                table = (counts, unique if len(unique) <= SORTED_MAX else pd.Index(unique))
            entries = len(table[0])
            if self._table_entries + entries > TABLE_BUDGET * max(self._coded.records, 1):
                self._tables.clear()
                self._table_entries = 0
            self._tables[key] = table
            self._table_entries += entries
        return table

    @staticmethod
    def _lookup(table: _Table, codes: np.ndarray) -> np.ndarray:
        counts, unique = table
        if unique is None:
            return counts[codes]
        if isinstance(unique, pd.Index):
            position = unique.get_indexer(codes)
            return np.where(position >= 0, counts[position], 0)
        position = np.minimum(np.searchsorted(unique, codes), len(unique) - 1)
        return np.where(unique[position] == codes, counts[position], 0)

    def _direct(self, row: int, query_bits: int) -> int:
        """Matches of one record with missing keys `query_bits`, by comparing every record."""
        coded = self._coded
        same = coded.strata == coded.strata[row]
        for j in range(coded.keys):
            if not (query_bits >> j) & 1:
                column = coded.values[j]
                same &= (column == coded.values[j, row]) | (column < 0)
        return int(np.count_nonzero(same))

    def counts(self, rows: np.ndarray, query_pattern: np.ndarray) -> np.ndarray:
        """Number of records of the data matching record ``rows[i]`` were its missing keys
        ``query_pattern[i]`` (a superset of its own), itself included."""
        result = np.zeros(len(rows), dtype=np.int64)
        if len(rows) == 0:
            return result
        patterns, inverse = np.unique(query_pattern, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.concatenate(([0], np.cumsum(np.bincount(inverse, minlength=len(patterns)))))
        coded = self._coded
        per_record = coded.records * coded.keys * ELEMENT_COST
        per_group = len(self._groups) * CALL_COST
        for q, query_bits in enumerate(patterns.tolist()):
            selected = order[bounds[q] : bounds[q + 1]]
            chosen = rows[selected]
            if len(chosen) * per_record < per_group:  # few queries, many patterns: compare
                result[selected] = [self._direct(r, query_bits) for r in chosen.tolist()]
                continue
            values = coded.values[:, chosen]
            strata = coded.strata[chosen]
            # groups whose patterns give the same union with the query share one table
            by_union: dict[int, list[int]] = {}
            for g, (bits, _, _, _) in enumerate(self._groups):
                by_union.setdefault(query_bits | bits, []).append(g)
            total = np.zeros(len(chosen), dtype=np.int64)
            for union, members in by_union.items():
                codes = self._codes(union, chosen, values, strata)[0]
                total += self._lookup(self._table(tuple(members), union), codes)
            result[selected] = total
        return result


def missing_pattern(values: np.ndarray) -> np.ndarray:
    """Bit mask of each record's missing keys (bit j: key j is missing)."""
    pattern = np.zeros(values.shape[1], dtype=np.int64)
    for j in range(values.shape[0]):
        pattern |= (values[j] < 0).astype(np.int64) << j
    return pattern


def row_codes(columns: list[np.ndarray], cards: list[int]) -> np.ndarray:
    """One integer code per row for the tuple of non-negative `columns` (mixed radix,
    densified whenever the code space would outgrow int64)."""
    length = len(columns[0]) if columns else 0
    code = np.zeros(length, dtype=np.int64)
    size = 1
    for column, card in zip(columns, cards, strict=True):
        if size * card > MAX_CODE:
            _, code = np.unique(code, return_inverse=True)
            code = code.astype(np.int64, copy=False)
            size = int(code.max()) + 1 if length else 1
        code = code * card + column
        size *= card
    return code


def na_aware_frequencies(
    data: pd.DataFrame, keys: Sequence[Hashable], strata: Sequence[Hashable] = ()
) -> np.ndarray:
    """NA-aware frequency of every record (wildcard missing values), for checks and tests."""
    coded = encode(data, list(keys), list(strata))
    pattern = missing_pattern(coded.values)
    everyone = np.arange(coded.records, dtype=np.int64)
    return Frequencies(coded, pattern).counts(everyone, pattern)
