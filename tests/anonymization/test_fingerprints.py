"""The pseudonym memo's fingerprint index is exact: present values are found at their
position, absent ones (even under a fingerprint collision) are not, and it steps aside for
long strings or colliding memo strings, the cache then giving the same pseudonyms."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anonymization import PseudonymCache, _fingerprints
from anonymization._fingerprints import MAX_BYTES, FingerprintIndex, fingerprints
from tests.anonymization.factories import KEY, reference_pseudonym

texts = st.text(min_size=1, max_size=12)  # at most 48 UTF-8 bytes: indexed


@settings(max_examples=200, deadline=None)
@given(memo=st.lists(st.lists(texts, max_size=15), max_size=4), queries=st.lists(texts,
                                                                                  max_size=30))
def test_find_gives_each_value_its_memo_position_or_minus_one(
        memo: list[list[str]], queries: list[str]) -> None:
    index = FingerprintIndex()
    known: dict[str, int] = {}
    chunks = []
    for chunk in memo:
        new = list(dict.fromkeys(v for v in chunk if v not in known))
        array = pa.array(["pad", *new, "pad"]).slice(1, len(new))  # a sliced array too
        index.add(array, len(known))
        chunks.append(array)
        known.update({v: len(known) + i for i, v in enumerate(new)})
    values = pa.concat_arrays(chunks) if chunks else pa.array([], pa.string())
    query = list(dict.fromkeys(queries))
    found = index.find(pa.array(query, pa.string()), values)
    assert index.usable
    assert found is not None
    assert found.tolist() == [known.get(q, -1) for q in query]


def test_a_fingerprint_does_not_depend_on_the_other_values_of_the_batch() -> None:
    alone = fingerprints(pa.array(["id2"]))
    with_longer = fingerprints(pa.array(["a much longer identifier", "id2"]))
    assert alone is not None and with_longer is not None
    assert alone[0] == with_longer[1]
    # the length is part of it: a trailing NUL byte makes another string
    pair = fingerprints(pa.array(["ab", "ab\x00"]))
    assert pair is not None and pair[0] != pair[1]


def test_a_value_colliding_with_a_memo_string_is_reported_absent(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_fingerprints, "fingerprints",
                        lambda values: np.zeros(len(values), dtype=np.uint64))
    index = FingerprintIndex()
    memo = pa.array(["alpha"])
    index.add(memo, 0)
    found = index.find(pa.array(["beta", "alpha"]), memo)
    assert found is not None and found.tolist() == [-1, 0]
    index.add(pa.array(["gamma"]), 1)  # shares alpha's fingerprint: the index steps aside
    assert not index.usable
    assert index.find(pa.array(["alpha"]), pa.array(["alpha", "gamma"])) is None


def test_long_strings_are_not_indexed() -> None:
    index = FingerprintIndex()
    assert fingerprints(pa.array(["x" * (MAX_BYTES + 1)])) is None
    index.add(pa.array(["short"]), 0)
    assert index.find(pa.array(["y" * (MAX_BYTES + 1)]), pa.array(["short"])) is None
    index.add(pa.array(["z" * (MAX_BYTES + 1)]), 1)
    assert not index.usable


@pytest.mark.parametrize("collide", [False, True])
def test_the_cache_gives_the_reference_pseudonyms_whichever_look_up_answers(
        monkeypatch: pytest.MonkeyPatch, collide: bool) -> None:
    if collide:  # every fingerprint equal: the index gives up, the other look-ups answer
        monkeypatch.setattr(_fingerprints, "fingerprints",
                            lambda values: np.zeros(len(values), dtype=np.uint64))
    cache = PseudonymCache(KEY)
    batches = [[f"{i:010d}A" for i in range(0, 300, s)] for s in (3, 2, 5)]
    batches.append(["é" * 30, "0000000000A", "long" * 20])  # long and multi-byte strings
    for batch in batches:
        result = cache.pseudonymise(pa.array(batch)).to_pylist()
        assert result == [reference_pseudonym(v) for v in batch]
    assert cache.stats.hashed == len({v for batch in batches for v in batch})
