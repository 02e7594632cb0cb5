"""The pseudonym formula, its properties, and the column-level function with its cache."""

from __future__ import annotations

import base64
import hashlib
import hmac
import pickle
import string

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anonymization import (
    EmptyIdentifierError,
    InvalidKeyError,
    NullIdentifierError,
    PseudonymCache,
    UnsupportedIdentifierTypeError,
    pseudonym,
    pseudonymise_array,
)
from anonymization.pseudonyms import PSEUDONYM_LENGTH, _base32_rows, output_type
from tests.anonymization.factories import KEY, OTHER_KEY, reference_pseudonym

PROPERTIES = settings(deadline=None, max_examples=60)
identifiers = st.text(min_size=1, max_size=40)
keys = st.binary(min_size=32, max_size=32)


# --------------------------------------------------------------------------- the formula


def test_pseudonym_is_hmac_sha256_truncated_to_128_bits_in_unpadded_lowercase_base32():
    digest = hmac.new(KEY, b"1234567890A", hashlib.sha256).digest()
    expected = base64.b32encode(digest[:16]).decode().rstrip("=").lower()

    assert pseudonym("1234567890A", KEY) == expected
    assert pseudonymise_array(pa.array(["1234567890A"]), KEY).to_pylist() == [expected]


def test_pseudonym_of_a_fixed_key_and_value_is_pinned():
    # Also checked outside Python: printf 1234567890A | openssl dgst -sha256 -mac HMAC
    # -macopt hexkey:000102...1f -binary | head -c 16 | base32, lowercased, '=' removed.
    assert pseudonym("1234567890A", KEY) == "gtkgg4jjpvjqpny2nbubew6pne"
    assert pseudonymise_array(pa.array(["1234567890A"]), KEY)[0].as_py() == (
        "gtkgg4jjpvjqpny2nbubew6pne"
    )


@PROPERTIES
@given(value=identifiers, key=keys)
def test_pseudonym_is_26_characters_of_the_lowercase_base32_alphabet(value, key):
    result = pseudonym(value, key)

    assert len(result) == PSEUDONYM_LENGTH
    assert set(result) <= set(string.ascii_lowercase + "234567")


@PROPERTIES
@given(digests=st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=50))
def test_vectorised_base32_agrees_with_the_standard_library(digests):
    rows = _base32_rows(b"".join(digests), len(digests))

    expected = [base64.b32encode(d[:16]).decode().rstrip("=").lower() for d in digests]
    assert [row.tobytes().decode() for row in rows] == expected


@PROPERTIES
@given(value=identifiers, key=keys)
def test_same_key_and_value_give_the_same_pseudonym_in_every_table(value, key):
    first_table = pseudonymise_array(pa.array(["x", value]), key)
    second_table = pseudonymise_array(pa.chunked_array([[value], ["y", value]]), key)

    assert first_table[1].as_py() == second_table.to_pylist()[0] == second_table.to_pylist()[2]
    assert first_table[1].as_py() == reference_pseudonym(value, key)


@PROPERTIES
@given(value=identifiers, key=keys, other=keys)
def test_different_keys_give_unrelated_pseudonyms(value, key, other):
    if key == other:
        return
    assert pseudonym(value, key) != pseudonym(value, other)


@PROPERTIES
@given(first=identifiers, second=identifiers)
def test_different_values_give_different_pseudonyms(first, second):
    if first == second:
        return
    assert pseudonym(first, KEY) != pseudonym(second, KEY)


def test_values_are_hashed_exactly_as_given_without_normalisation():
    variants = ["1234567890A", "1234567890a", " 1234567890A", "1234567890A ", "01234567890A"]

    results = pseudonymise_array(pa.array(variants), KEY).to_pylist()

    assert len(set(results)) == len(variants)


# --------------------------------------------------------------------------- distinct, then map

pools = st.lists(identifiers, min_size=1, max_size=8, unique=True)


@st.composite
def chunked_columns(draw):
    """Chunks of values drawn from a small pool, so values repeat within and across chunks."""
    pool = draw(pools)
    chunks = draw(
        st.lists(st.lists(st.sampled_from(pool), min_size=0, max_size=30), min_size=1, max_size=5)
    )
    return chunks


@PROPERTIES
@given(chunks=chunked_columns())
def test_hashing_distinct_values_then_mapping_gives_exactly_the_per_row_result(chunks):
    expected = [reference_pseudonym(value) for chunk in chunks for value in chunk]

    chunked = pseudonymise_array(pa.chunked_array(chunks, pa.string()), KEY)
    flat = pseudonymise_array(pa.array([v for chunk in chunks for v in chunk], pa.string()), KEY)

    assert chunked.to_pylist() == expected
    assert flat.to_pylist() == expected
    assert [len(chunk) for chunk in chunked.chunks] == [len(chunk) for chunk in chunks]


@PROPERTIES
@given(chunks=chunked_columns(), max_entries=st.sampled_from([None, 0, 1, 3, 1000]))
def test_a_cache_across_batches_gives_the_per_row_result_whatever_its_bound(chunks, max_entries):
    cache = PseudonymCache(KEY, max_entries=max_entries)

    results = [cache.pseudonymise(pa.array(chunk, pa.string())).to_pylist() for chunk in chunks]

    assert results == [[reference_pseudonym(value) for value in chunk] for chunk in chunks]
    if max_entries is not None:
        assert len(cache) <= max_entries


def test_a_cache_hashes_each_distinct_value_once_across_batches():
    cache = PseudonymCache(KEY)
    batches = [["a", "b", "a"], ["b", "c"], ["c", "a", "b", "d"], ["a"]]

    for batch in batches:
        cache.pseudonymise(pa.array(batch))

    assert cache.stats.hashed == 4  # a, b, c, d: never hashed twice
    assert cache.stats.reused == 2 + 2 + 1 - 0  # b; c, a, b; a
    assert len(cache) == 4


@pytest.mark.parametrize(
    ("memo_size", "batch_distinct"),
    [(2000, 5), (2000, 1000)],
    ids=["memo-much-larger-than-batch-python-lookup", "memo-near-batch-size-arrow-lookup"],
)
def test_both_cache_lookup_strategies_give_the_reference_pseudonyms(memo_size, batch_distinct):
    cache = PseudonymCache(KEY)
    cache.pseudonymise(pa.array([f"id{i}" for i in range(memo_size)]))
    batch = [f"id{i}" for i in range(0, 2 * batch_distinct, 2)]  # half known, half new
    batch = [value if i % 2 else f"new{value}" for i, value in enumerate(batch)]

    result = cache.pseudonymise(pa.array(batch)).to_pylist()

    assert result == [reference_pseudonym(value) for value in batch]
    assert cache.stats.hashed == memo_size + (batch_distinct + 1) // 2


def test_a_full_cache_starts_again_without_changing_results():
    cache = PseudonymCache(KEY, max_entries=3)
    batches = [["a", "b"], ["c", "d"], ["a", "e", "f", "g", "h"]]

    results = [cache.pseudonymise(pa.array(batch)).to_pylist() for batch in batches]

    assert results == [[reference_pseudonym(v) for v in batch] for batch in batches]
    assert len(cache) == 3


def test_pseudonymise_array_on_a_plain_array_keeps_no_memo():
    values = pa.array([str(i % 50) for i in range(500)])

    result = pseudonymise_array(values, KEY)

    assert result.to_pylist() == [reference_pseudonym(str(i % 50)) for i in range(500)]
    assert result.type == pa.string()


# --------------------------------------------------------------------------- input types


@pytest.mark.parametrize(
    "arrow_type",
    [pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint32(), pa.uint64()],
    ids=str,
)
def test_integer_identifiers_are_hashed_as_their_decimal_string(arrow_type):
    values = [0, 7, 100, 7] if pa.types.is_unsigned_integer(arrow_type) else [0, -7, 100, -7]

    result = pseudonymise_array(pa.array(values, arrow_type), KEY)

    assert result.to_pylist() == [reference_pseudonym(str(v)) for v in values]
    as_text = pseudonymise_array(pa.array([str(v) for v in values]), KEY)
    assert result.to_pylist() == as_text.to_pylist()
    assert pseudonym(-7, KEY) == pseudonym("-7", KEY) != pseudonym("-07", KEY)


def test_largest_unsigned_64_bit_identifier_is_hashed_as_its_full_decimal_string():
    result = pseudonymise_array(pa.array([2**64 - 1], pa.uint64()), KEY)

    assert result.to_pylist() == [reference_pseudonym("18446744073709551615")]


@pytest.mark.parametrize(
    ("arrow_type", "expected_type"),
    [
        (pa.string(), pa.string()),
        (pa.large_string(), pa.large_string()),
        (pa.string_view(), pa.string()),
    ],
    ids=str,
)
def test_string_types_are_accepted_and_large_strings_stay_large(arrow_type, expected_type):
    result = pseudonymise_array(pa.array(["a", "b", "a"], arrow_type), KEY)

    assert result.type == expected_type
    assert result.to_pylist() == [reference_pseudonym(v) for v in "aba"]


@pytest.mark.parametrize(
    "values",
    [
        pa.array([1.0, 2.0]),
        pa.array([True, False]),
        pa.array([b"a", b"b"], pa.binary()),
        pa.array([1, 2], pa.timestamp("s")),
        pa.array([1.5, 2.5]).dictionary_encode(),
    ],
    ids=["float", "bool", "binary", "timestamp", "dictionary-of-float"],
)
def test_identifiers_that_are_neither_strings_nor_integers_are_refused(values):
    with pytest.raises(UnsupportedIdentifierTypeError, match="must be strings or integers"):
        pseudonymise_array(values, KEY, column="ine")


@pytest.mark.parametrize("value", [1.5, True, None, b"bytes"], ids=repr)
def test_single_pseudonym_refuses_non_string_non_integer_values(value):
    with pytest.raises(UnsupportedIdentifierTypeError):
        pseudonym(value, KEY)


def test_python_lists_are_refused_with_a_hint():
    with pytest.raises(TypeError, match=r"pyarrow\.array"):
        pseudonymise_array(["a", "b"], KEY)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- dictionaries


def test_dictionary_input_keeps_its_indices_and_gets_a_dictionary_of_pseudonyms():
    values = pa.array(["a", "b", "a", "c"]).dictionary_encode()

    result = pseudonymise_array(values, KEY)

    assert pa.types.is_dictionary(result.type)
    assert result.indices.to_pylist() == values.indices.to_pylist()
    assert result.to_pylist() == [reference_pseudonym(v) for v in "abac"]


def test_dictionary_entries_no_row_uses_give_no_pseudonym():
    # A filtered dictionary array still carries the pupils that were filtered out.
    values = pa.array(["kept", "dropped", "kept", "also dropped"]).dictionary_encode()
    kept = values.filter(pa.array([True, False, True, False]))

    result = pseudonymise_array(kept, KEY)

    assert result.dictionary.to_pylist() == [reference_pseudonym("kept")]
    assert result.to_pylist() == [reference_pseudonym("kept")] * 2


@pytest.mark.parametrize("dictionary", [True, False])
def test_the_dictionary_option_chooses_the_output_encoding(dictionary):
    plain = pa.array(["a", "b", "a"])
    encoded = plain.dictionary_encode()

    for values in (plain, encoded):
        result = pseudonymise_array(values, KEY, dictionary=dictionary)
        assert pa.types.is_dictionary(result.type) is dictionary
        assert result.type == output_type(values.type, dictionary)
        assert result.to_pylist() == [reference_pseudonym(v) for v in "aba"]


def test_integer_dictionary_identifiers_are_hashed_as_decimal_strings():
    values = pa.array([10, 20, 10]).dictionary_encode()

    result = pseudonymise_array(values, KEY)

    assert result.to_pylist() == [reference_pseudonym(v) for v in ("10", "20", "10")]


# --------------------------------------------------------------------------- missing values


@pytest.mark.parametrize(
    ("values", "count"),
    [
        (pa.array(["a", None, "b", None]), 2),
        (pa.chunked_array([["a", None], [None, None, "b"]]), 3),
        (pa.array([1, None, 3]), 1),
        (pa.array([None, None, None]), 3),
        (pa.DictionaryArray.from_arrays(pa.array([0, None, 1]), pa.array(["a", "b"])), 1),
        (pa.DictionaryArray.from_arrays(pa.array([0, 1, 1]), pa.array(["a", None])), 2),
    ],
    ids=[
        "plain",
        "chunked-counts-all-chunks",
        "integers",
        "all-null-column",
        "null-index",
        "null-inside-dictionary",
    ],
)
def test_null_identifiers_are_refused_with_the_column_and_the_count(values, count):
    with pytest.raises(NullIdentifierError, match=rf"'ine' has {count} null") as caught:
        pseudonymise_array(values, KEY, column="ine")

    assert caught.value.count == count
    assert caught.value.column == "ine"


def test_a_null_in_a_dictionary_that_no_row_uses_is_not_an_error():
    values = pa.DictionaryArray.from_arrays(pa.array([0, 0]), pa.array(["a", None]))

    assert pseudonymise_array(values, KEY).to_pylist() == [reference_pseudonym("a")] * 2


@pytest.mark.parametrize(
    "values",
    [
        pa.array(["a", "", "b", ""]),
        pa.chunked_array([["a", ""], ["", "b"]]),
        pa.array(["a", "", "b", ""]).dictionary_encode(),
    ],
    ids=["plain", "chunked", "dictionary"],
)
def test_empty_string_identifiers_are_refused_like_nulls(values):
    with pytest.raises(EmptyIdentifierError, match=r"'ine' has 2 empty string") as caught:
        pseudonymise_array(values, KEY, column="ine")

    assert isinstance(caught.value, NullIdentifierError)
    with pytest.raises(EmptyIdentifierError):
        pseudonym("", KEY)


def test_an_error_without_a_column_name_describes_the_array():
    with pytest.raises(NullIdentifierError, match="the identifier array has 1 null"):
        pseudonymise_array(pa.array(["a", None]), KEY)


# --------------------------------------------------------------------------- empty input


@pytest.mark.parametrize(
    ("values", "expected_type"),
    [
        (pa.array([], pa.string()), pa.string()),
        (pa.array([], pa.int64()), pa.string()),
        (pa.array([], pa.null()), pa.string()),
        (pa.array([], pa.large_string()), pa.large_string()),
        (pa.array([], pa.string()).dictionary_encode(), pa.dictionary(pa.int32(), pa.string())),
    ],
    ids=["string", "int64", "null-type", "large-string", "dictionary"],
)
def test_zero_rows_give_zero_pseudonyms_of_the_output_type(values, expected_type):
    result = pseudonymise_array(values, KEY)

    assert len(result) == 0
    assert result.type == expected_type


def test_a_chunked_array_without_chunks_gives_one_without_chunks():
    result = pseudonymise_array(pa.chunked_array([], pa.string()), KEY)

    assert result.num_chunks == 0
    assert result.type == pa.string()


# --------------------------------------------------------------------------- keys


@pytest.mark.parametrize("length", [0, 1, 16, 31, 33, 64])
def test_keys_that_are_not_32_bytes_are_refused(length):
    with pytest.raises(InvalidKeyError, match=rf"exactly 32 raw bytes.*got {length} bytes"):
        PseudonymCache(bytes(length))
    with pytest.raises(InvalidKeyError):
        pseudonymise_array(pa.array(["a"]), bytes(length))
    with pytest.raises(InvalidKeyError):
        pseudonym("a", bytes(length))


@pytest.mark.parametrize(
    ("key", "hint"),
    [("00" * 32, "got a str"), (None, "got a NoneType"), (12345, "got a int")],
    ids=["hex-str", "none", "int"],
)
def test_keys_that_are_not_bytes_are_refused_with_a_hint(key, hint):
    with pytest.raises(InvalidKeyError, match=hint):
        PseudonymCache(key)  # type: ignore[arg-type]


def test_bytes_like_keys_are_accepted():
    expected = pseudonym("a", KEY)

    assert pseudonym("a", bytearray(KEY)) == expected
    assert pseudonym("a", memoryview(KEY)) == expected  # type: ignore[arg-type]


def test_an_invalid_key_error_is_a_value_error_that_never_shows_the_key():
    secret = b"s3cr3t-" * 5  # 35 bytes

    with pytest.raises(ValueError, match="got 35 bytes") as caught:
        PseudonymCache(secret)

    assert "s3cr3t" not in str(caught.value)


def test_the_cache_never_shows_its_key_and_cannot_be_pickled():
    cache = PseudonymCache(KEY)

    assert "key=<hidden>" in repr(cache)
    assert repr(KEY) not in repr(cache)
    with pytest.raises(TypeError, match="holds a project key and cannot be pickled"):
        pickle.dumps(cache)


def test_errors_can_be_pickled_with_their_details():
    error = NullIdentifierError("ine", 3)

    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object, round trip

    assert (type(copy), copy.column, copy.count, str(copy)) == (
        NullIdentifierError,
        "ine",
        3,
        str(error),
    )


def test_output_of_many_pupils_has_no_collision():
    values = pa.array(np.arange(200_000).astype(str))

    result = pseudonymise_array(values, OTHER_KEY)

    assert len(set(result.to_pylist())) == 200_000
