"""A persistent exact index of short strings, for the pseudonym memo's look-ups.

Arrow's ``index_in`` builds a hash table of its value set at every call, so looking a batch's
distinct identifiers up in a memo of millions costs the memo's size each batch; a Python dict
costs a Python object per value. This index keeps, across batches, the sorted 64-bit
fingerprints of the memo's strings and finds a batch's values with ``numpy.searchsorted``.

A fingerprint folds the string's length and its bytes, 8 at a time (the last word padded with
zeros), with a multiply-xor mix; it only *proposes* a position. Every proposed match is then
checked by comparing the strings themselves (Arrow ``equal``), so the result is exact: a value
whose fingerprint meets another string's is reported absent, which is right because the memo's
fingerprints are kept distinct (if two memo strings ever shared one, the index declares itself
unusable and the caller falls back to its other look-ups). Strings longer than `MAX_BYTES`
(identifiers are short) are not indexed either.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MAX_BYTES = 48
"""Longest string (in UTF-8 bytes) the index handles."""
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
_SHIFT = np.uint64(29)


def fingerprints(values: pa.Array) -> np.ndarray | None:
    """64-bit fingerprints of the non-null ``string`` values, or None if one is too long."""
    if len(values) == 0:
        return np.empty(0, dtype=np.uint64)
    if values.type != pa.string():
        values = values.cast(pa.string())
    buffers = values.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32)[values.offset: values.offset
                                                        + len(values) + 1]
    starts = offsets[:-1].astype(np.int64)
    lengths = np.diff(offsets).astype(np.int64)
    longest = int(lengths.max())
    if longest > MAX_BYTES:
        return None
    data = (np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None
            else np.zeros(1, dtype=np.uint8))
    words = max((longest + 7) // 8, 1)
    columns = np.arange(words * 8)
    where = starts[:, None] + columns
    padded = data[np.minimum(where, len(data) - 1)]
    padded[columns >= lengths[:, None]] = 0
    mixed = lengths.astype(np.uint64) * _MULTIPLIER
    # a string folds its own words only, so its fingerprint does not depend on the batch
    for k, word in enumerate(padded.view(np.uint64).T):  # little-endian 8-byte words
        folded = (mixed ^ word) * _MULTIPLIER
        folded ^= folded >> _SHIFT
        mixed = np.where(lengths > 8 * k, folded, mixed)
    return mixed


class FingerprintIndex:
    """Memo positions of strings by sorted fingerprints; exact thanks to a final comparison."""

    __slots__ = ("_keys", "_positions", "usable")

    def __init__(self) -> None:
        self._keys = np.empty(0, dtype=np.uint64)
        self._positions = np.empty(0, dtype=np.int64)
        self.usable = True

    def add(self, values: pa.Array, start: int) -> None:
        """Index `values`, held by the memo at positions ``start, start + 1, ...``."""
        if not self.usable:
            return
        keys = fingerprints(values)
        if keys is None:
            self.usable = False
            return
        order = np.argsort(keys)
        new_keys = keys[order]
        new_positions = start + order.astype(np.int64)
        # merge the sorted new keys in (one copy of the table, no re-sort of the memo)
        at = np.searchsorted(self._keys, new_keys)
        merged = np.insert(self._keys, at, new_keys)
        if len(merged) > 1 and bool((merged[1:] == merged[:-1]).any()):
            self.usable = False  # two memo strings share a fingerprint: let others look up
            return
        self._keys = merged
        self._positions = np.insert(self._positions, at, new_positions)

    def find(self, values: pa.Array, memo: pa.Array) -> np.ndarray | None:
        """Memo position of each value (-1: absent), or None when the index cannot say.

        `memo` holds the memo's strings in position order (to check proposed matches).
        """
        if not self.usable:
            return None
        keys = fingerprints(values)
        if keys is None:
            return None
        out = np.full(len(keys), -1, dtype=np.int64)
        if len(self._keys) == 0 or len(keys) == 0:
            return out
        # searching sorted queries walks the table in order: several times fewer cache misses
        order = np.argsort(keys)
        slot = np.empty(len(keys), dtype=np.int64)
        slot[order] = np.searchsorted(self._keys, keys[order])
        np.minimum(slot, len(self._keys) - 1, out=slot)
        proposed = np.flatnonzero(self._keys[slot] == keys)
        if len(proposed) == 0:
            return out
        candidates = self._positions[slot[proposed]]
        same = pc.equal(memo.take(pa.array(candidates)),
                        values.take(pa.array(proposed))).to_numpy(zero_copy_only=False)
        out[proposed[same]] = candidates[same]
        return out
