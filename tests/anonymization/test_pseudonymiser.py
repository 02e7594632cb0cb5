"""The Pseudonymiser over record batches, tables, streams and Parquet files."""

from __future__ import annotations

import os
import pickle
import stat

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from anonymization import (
    ColumnConflictError,
    EmptyIdentifierError,
    MissingColumnError,
    NullIdentifierError,
    PseudonymCache,
    Pseudonymiser,
    UnsupportedIdentifierTypeError,
)
from anonymization.pseudonyms import stored_schema_metadata
from tests.anonymization.factories import KEY, events_table, reference_pseudonym, write_events


def reference_column(values: pa.Array | pa.ChunkedArray) -> list[str]:
    return [reference_pseudonym(value) for value in values.to_pylist()]


# --------------------------------------------------------------------------- batches


def test_a_batch_gets_its_identifier_replaced_in_place_and_renamed():
    table = events_table(200, 20)
    batch = table.to_batches()[0]

    out = Pseudonymiser(KEY, {"ine": "pupil"}).batch(batch)

    assert out.schema.names == ["event_id", "pupil", "ts", "verb", "score"]
    assert out.column("pupil").to_pylist() == reference_column(batch.column("ine"))
    for name in ["event_id", "ts", "verb", "score"]:
        assert out.column(name).equals(batch.column(name))


def test_a_sequence_of_columns_keeps_their_names():
    batch = pa.record_batch({"ine": ["a", "b"], "uai": ["0750001A", "0750002B"], "n": [1, 2]})

    out = Pseudonymiser(KEY, ["ine", "uai"]).batch(batch)

    assert out.schema.names == ["ine", "uai", "n"]
    assert out.column("uai").to_pylist() == reference_column(batch.column("uai"))


def test_a_missing_column_is_named_with_the_available_ones():
    batch = pa.record_batch({"ine": ["a"], "score": [1]})

    with pytest.raises(MissingColumnError, match=r"'pupil_id' is not in the data") as caught:
        Pseudonymiser(KEY, ["pupil_id"]).batch(batch)

    assert "available columns: 'ine', 'score'" in str(caught.value)
    assert isinstance(caught.value, LookupError)


def test_a_null_identifier_in_a_batch_names_the_column():
    batch = pa.record_batch({"ine": ["a", None, None]})

    with pytest.raises(NullIdentifierError, match=r"identifier column 'ine' has 2 null"):
        Pseudonymiser(KEY, ["ine"]).batch(batch)


def test_an_unsupported_identifier_type_is_refused_before_any_data_is_read():
    schema = pa.schema([("ine", pa.float64())])

    with pytest.raises(UnsupportedIdentifierTypeError, match="'ine' has Arrow type double"):
        Pseudonymiser(KEY, ["ine"]).output_schema(schema)


@pytest.mark.parametrize(
    ("columns", "error", "message"),
    [
        ({"ine": "score"}, ColumnConflictError, r"several columns named \['score'\]"),
        ({"ine": "id", "uai": "id"}, ColumnConflictError, r"would be named \['id'\]"),
        (["ine", "ine"], ColumnConflictError, r"named more than once: \['ine'\]"),
        ("ine", TypeError, r"not the str 'ine'; write \['ine'\]"),
        ([], ValueError, "at least one identifier column"),
        ({"ine": ""}, TypeError, "non-empty str"),
    ],
    ids=[
        "output-clashes-with-a-kept-column",
        "two-outputs-same-name",
        "repeated-source",
        "bare-string",
        "no-columns",
        "empty-output-name",
    ],
)
def test_ambiguous_column_names_are_refused(columns, error, message):
    batch = pa.record_batch({"ine": ["a"], "uai": ["b"], "score": [1]})

    with pytest.raises(error, match=message):
        Pseudonymiser(KEY, columns).batch(batch)


def test_a_column_present_twice_in_the_data_is_refused():
    schema = pa.schema([("ine", pa.string()), ("ine", pa.string())])

    with pytest.raises(ColumnConflictError, match="'ine' appears 2 times"):
        Pseudonymiser(KEY, ["ine"]).output_schema(schema)


def test_output_schema_is_the_schema_of_the_produced_batches():
    batch = events_table(10, 3).to_batches()[0]
    pseudonymiser = Pseudonymiser(KEY, {"ine": "pupil"})

    assert pseudonymiser.batch(batch).schema == pseudonymiser.output_schema(batch.schema)
    assert pseudonymiser.output_schema(batch.schema).field("pupil").type == pa.string()


def test_batches_are_pseudonymised_lazily_with_one_shared_cache():
    table = events_table(3000, 50)
    pseudonymiser = Pseudonymiser(KEY, ["ine"])
    seen = []

    def source():
        for batch in table.to_batches(max_chunksize=500):
            seen.append(batch.num_rows)
            yield batch

    stream = pseudonymiser.batches(source())
    assert seen == []  # nothing read before the consumer asks
    first = next(stream)
    assert seen == [500]
    rest = list(stream)

    out = pa.Table.from_batches([first, *rest])
    assert out.column("ine").to_pylist() == reference_column(table.column("ine"))
    assert pseudonymiser.cache.stats.hashed == len(set(table.column("ine").to_pylist()))


def test_a_table_keeps_its_chunks():
    table = pa.Table.from_batches(events_table(300, 7).to_batches(max_chunksize=100))

    out = Pseudonymiser(KEY, ["ine"]).table(table)

    assert out.column("ine").num_chunks == 3
    assert out.column("ine").to_pylist() == reference_column(table.column("ine"))


def test_two_pseudonymisers_can_share_one_cache_for_tables_of_a_project():
    cache = PseudonymCache(KEY)
    pupils = pa.record_batch({"ine": ["a", "b"], "age": [11, 12]})
    events = pa.record_batch({"verb": ["x", "y", "z"], "pupil": ["b", "a", "b"]})

    joined_left = Pseudonymiser(cache, ["ine"]).batch(pupils)
    joined_right = Pseudonymiser(cache, ["pupil"]).batch(events)

    assert set(joined_right.column("pupil").to_pylist()) == set(
        joined_left.column("ine").to_pylist()
    )
    assert cache.stats.hashed == 2


def test_dictionary_mode_gives_dictionary_columns_with_the_same_values():
    batch = events_table(100, 10).to_batches()[0]

    plain = Pseudonymiser(KEY, ["ine"]).batch(batch)
    encoded = Pseudonymiser(KEY, ["ine"], dictionary=True).batch(batch)

    assert encoded.schema.field("ine").type == pa.dictionary(pa.int32(), pa.string())
    assert encoded.column("ine").to_pylist() == plain.column("ine").to_pylist()


def test_a_batch_from_pandas_still_converts_back_after_renaming():
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"ine": ["a", "b"], "score": [1.5, 2.5]})
    batch = pa.RecordBatch.from_pandas(frame, preserve_index=False)

    back = Pseudonymiser(KEY, {"ine": "pupil"}).batch(batch).to_pandas()

    assert list(back.columns) == ["pupil", "score"]
    assert list(back["pupil"]) == [reference_pseudonym("a"), reference_pseudonym("b")]


def test_a_pseudonymiser_cannot_be_pickled_and_hides_its_key():
    pseudonymiser = Pseudonymiser(KEY, ["ine"])

    assert "<hidden>" in repr(pseudonymiser)
    with pytest.raises(TypeError, match="build it where it is used"):
        pickle.dumps(pseudonymiser)


def test_the_same_function_serves_a_map_in_arrow_style_iterator():
    # Spark's mapInArrow calls f(iterator of RecordBatch) -> iterator of RecordBatch.
    def pseudonymise_partition(batches):
        yield from Pseudonymiser(KEY, {"ine": "pupil"}).batches(batches)

    table = events_table(1000, 40)
    out = pa.Table.from_batches(list(pseudonymise_partition(iter(table.to_batches(200)))))

    assert out.column("pupil").to_pylist() == reference_column(table.column("ine"))


# --------------------------------------------------------------------------- Parquet


@pytest.mark.parametrize("dictionary", [False, True], ids=["plain", "dictionary"])
def test_parquet_round_trip_streams_batches_and_keeps_rows_and_other_columns(tmp_path, dictionary):
    src, dst = tmp_path / "events.parquet", tmp_path / "extract.parquet"
    table = write_events(src, rows=5000, pupils=300, row_group_size=1200)
    pseudonymiser = Pseudonymiser(KEY, {"ine": "pupil"}, dictionary=dictionary)

    rows = pseudonymiser.parquet(src, dst, batch_size=700)

    out = pq.read_table(dst)
    assert rows == out.num_rows == 5000
    assert pq.ParquetFile(dst).num_row_groups > 5  # written batch by batch, not at once
    assert out.schema.names == ["event_id", "pupil", "ts", "verb", "score"]
    assert out.column("pupil").to_pylist() == reference_column(table.column("ine"))
    assert out.column("event_id").to_pylist() == list(range(5000))  # row order kept
    for name in ["ts", "verb", "score"]:
        assert out.column(name).equals(table.column(name))
    assert out.schema.field("ts").type == pa.timestamp("ms", tz="Europe/Paris")
    assert pa.types.is_dictionary(out.schema.field("pupil").type) is dictionary
    assert pseudonymiser.cache.stats.hashed == len(set(table.column("ine").to_pylist()))
    assert [p.name for p in tmp_path.iterdir()] == sorted(["events.parquet", "extract.parquet"])


def _dictionary_encoded(path, column: str) -> bool:
    """Whether every row group of `column` is stored as a dictionary page and indices."""
    metadata = pq.ParquetFile(path).metadata
    leaf = [metadata.schema.column(i).path for i in range(metadata.num_columns)].index(column)
    chunks = [metadata.row_group(g).column(leaf) for g in range(metadata.num_row_groups)]
    return all(chunk.has_dictionary_page for chunk in chunks) and (
        sum(chunk.total_uncompressed_size for chunk in chunks)
        < 4 * sum(chunk.num_values for chunk in chunks)
    )


@pytest.mark.parametrize("stored_as_dictionary", [True, False], ids=["dict-stored", "plain-stored"])
@pytest.mark.parametrize("dictionary", [False, True], ids=["plain", "dictionary"])
def test_parquet_gives_the_in_memory_result_whether_the_identifier_is_stored_plain_or_not(
    tmp_path, dictionary, stored_as_dictionary
):
    # Pseudonymiser.parquet reads the identifier as a dictionary only when the file stores it
    # as one; either way the file read back equals the in-memory pseudonymisation, types
    # (the time zone, the plain or dictionary pseudonym) and schema metadata included.
    src, dst = tmp_path / "in.parquet", tmp_path / "out.parquet"
    table = events_table(6000, 200).replace_schema_metadata({"origin": "traces"})
    pq.write_table(table, src, row_group_size=2500,
                   use_dictionary=["verb", "score"] + (["ine"] if stored_as_dictionary else []))
    assert _dictionary_encoded(src, "ine") is stored_as_dictionary
    pseudonymiser = Pseudonymiser(KEY, {"ine": "pupil"}, dictionary=dictionary)

    pseudonymiser.parquet(src, dst, batch_size=2500)

    expected = Pseudonymiser(KEY, {"ine": "pupil"}, dictionary=dictionary).table(table)
    out = pq.read_table(dst)
    assert out.schema.equals(expected.schema, check_metadata=True)
    assert out.to_pylist() == expected.to_pylist()  # row groups hold their own dictionaries


def test_parquet_plain_pseudonyms_are_stored_as_a_dictionary_but_read_back_as_strings(tmp_path):
    # Each row group's distinct pseudonyms are stored once (a dictionary page larger than the
    # writer's 1 MB default: 60,000 pupils) instead of 26 characters a row, yet the file
    # declares plain strings, so readers cannot tell it from a file of plain strings.
    src, dst, plain = tmp_path / "in.parquet", tmp_path / "out.parquet", tmp_path / "p.parquet"
    rows = 300_000
    table = write_events(src, rows=rows, pupils=60_000, row_group_size=rows)

    Pseudonymiser(KEY, {"ine": "pupil"}).parquet(src, dst, batch_size=rows)

    expected = Pseudonymiser(KEY, {"ine": "pupil"}).table(table)
    pq.write_table(expected, plain, write_statistics=["event_id", "ts", "verb", "score"])

    def pupil_bytes(path):
        return pq.ParquetFile(path).metadata.row_group(0).column(1).total_uncompressed_size


    # the writer alone soon falls back to plain: up to 30 bytes a row (a length, 26 characters)
    assert pupil_bytes(plain) > 25 * rows
    assert pupil_bytes(dst) < 26 * 60_000 + 4 * rows  # the distinct ones, then indices
    assert pq.ParquetFile(dst).metadata.row_group(0).column(1).has_dictionary_page
    assert pq.read_schema(dst).equals(pq.read_schema(plain), check_metadata=True)
    assert pq.read_table(dst).equals(pq.read_table(plain))


def test_a_writer_of_dictionary_batches_declaring_the_plain_schema_reads_back_plain(tmp_path):
    # What the extract build can do with its own loop: batches pseudonymised as dictionaries,
    # written with store_schema off, then the plain output schema declared in the file.
    dst = tmp_path / "out.parquet"
    table = events_table(500, 40)
    pseudonymiser = Pseudonymiser(KEY, {"ine": "pupil"})
    batches = [pseudonymiser.batch(b, dictionary=True) for b in table.to_batches(200)]
    assert pa.types.is_dictionary(batches[0].schema.field("pupil").type)
    declared = pseudonymiser.output_schema(table.schema)

    with pq.ParquetWriter(dst, batches[0].schema, store_schema=False) as writer:
        for batch in batches:
            writer.write_batch(batch)
        writer.add_key_value_metadata(stored_schema_metadata(declared))

    out = pq.read_table(dst)
    assert out.schema.equals(declared, check_metadata=True)
    assert out.equals(pseudonymiser.table(table).combine_chunks())


def test_parquet_with_store_schema_off_writes_plain_pseudonyms_and_no_arrow_schema(tmp_path):
    src, dst = tmp_path / "in.parquet", tmp_path / "out.parquet"
    write_events(src, rows=100, pupils=10, row_group_size=100)

    Pseudonymiser(KEY, ["ine"]).parquet(src, dst, writer_options={"store_schema": False})

    assert pq.ParquetFile(dst).metadata.metadata is None
    assert pq.read_table(dst).schema.field("ine").type == pa.string()


def test_parquet_keeps_each_untouched_columns_encoding_from_the_source(tmp_path):
    # A column the source could not store as a dictionary (a distinct timestamp a row) is not
    # offered to the writer's dictionary again; a repetitive one still is.
    src, dst = tmp_path / "in.parquet", tmp_path / "out.parquet"
    write_events(src, rows=3000, pupils=30, row_group_size=3000)
    assert not _dictionary_encoded(src, "event_id")

    Pseudonymiser(KEY, ["ine"]).parquet(src, dst)

    metadata = pq.ParquetFile(dst).metadata.row_group(0)
    by_name = {metadata.column(i).path_in_schema: metadata.column(i) for i in range(5)}
    assert not by_name["event_id"].has_dictionary_page
    assert by_name["verb"].has_dictionary_page
    assert by_name["ine"].has_dictionary_page


def test_parquet_integer_identifiers_round_trip(tmp_path):
    src, dst = tmp_path / "in.parquet", tmp_path / "out.parquet"
    pq.write_table(pa.table({"ine": pa.array([5, 6, 5], pa.int64()), "x": [1, 2, 3]}), src)

    Pseudonymiser(KEY, ["ine"]).parquet(src, dst)

    assert pq.read_table(dst).column("ine").to_pylist() == [reference_pseudonym(v) for v in "565"]


def test_parquet_pseudonym_columns_carry_no_min_max_statistics_but_others_do(tmp_path):
    src, dst = tmp_path / "in.parquet", tmp_path / "out.parquet"
    write_events(src, rows=100, pupils=10, row_group_size=100)

    Pseudonymiser(KEY, ["ine"]).parquet(src, dst)

    row_group = pq.ParquetFile(dst).metadata.row_group(0)
    by_name = {row_group.column(i).path_in_schema: row_group.column(i) for i in range(5)}
    assert not by_name["ine"].is_stats_set
    assert by_name["score"].is_stats_set


def test_parquet_writer_options_are_passed_through(tmp_path):
    src, dst = tmp_path / "in.parquet", tmp_path / "out.parquet"
    write_events(src, rows=100, pupils=10, row_group_size=100)

    Pseudonymiser(KEY, ["ine"]).parquet(
        src, dst, writer_options={"compression": "zstd", "write_statistics": True}
    )

    column = pq.ParquetFile(dst).metadata.row_group(0).column(1)
    assert column.compression == "ZSTD"
    assert column.is_stats_set


def test_parquet_of_an_empty_source_writes_a_valid_zero_row_file(tmp_path):
    src, dst = tmp_path / "in.parquet", tmp_path / "out.parquet"
    pq.write_table(events_table(0, 1), src)

    rows = Pseudonymiser(KEY, {"ine": "pupil"}).parquet(src, dst)

    out = pq.read_table(dst)
    assert rows == out.num_rows == 0
    assert out.schema.names == ["event_id", "pupil", "ts", "verb", "score"]
    assert out.schema.field("pupil").type == pa.string()


def test_parquet_missing_column_leaves_no_temp_file_and_no_destination(tmp_path):
    src, dst = tmp_path / "in.parquet", tmp_path / "out.parquet"
    write_events(src, rows=100, pupils=10, row_group_size=50)

    with pytest.raises(MissingColumnError, match="'pupil_id'"):
        Pseudonymiser(KEY, ["pupil_id"]).parquet(src, dst)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


def test_parquet_nulls_seen_in_the_statistics_fail_with_the_total_before_writing(tmp_path):
    src, dst = tmp_path / "in.parquet", tmp_path / "out.parquet"
    table = events_table(3000, 30)
    late = pc.greater_equal(table.column("event_id"), 2500)
    early = pc.less(table.column("event_id"), 20)
    with_nulls = pc.if_else(pc.or_(late, early), pa.scalar(None, pa.string()), table["ine"])
    pq.write_table(table.set_column(1, "ine", with_nulls), src, row_group_size=500)

    with pytest.raises(NullIdentifierError, match="'ine' has 520 null"):
        Pseudonymiser(KEY, ["ine"]).parquet(src, dst, batch_size=500)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


@pytest.mark.parametrize(
    ("bad_value", "error"),
    [("", EmptyIdentifierError), (None, NullIdentifierError)],
    ids=["empty-string", "null-without-statistics"],
)
def test_parquet_error_after_some_batches_removes_the_temp_file_and_keeps_the_old_file(
    tmp_path, bad_value, error
):
    src, dst = tmp_path / "in.parquet", tmp_path / "out.parquet"
    table = events_table(3000, 30)
    late = pc.greater_equal(table.column("event_id"), 2500)
    spoiled = pc.if_else(late, pa.scalar(bad_value, pa.string()), table.column("ine"))
    pq.write_table(
        table.set_column(1, "ine", spoiled), src, row_group_size=500, write_statistics=False
    )
    dst.write_bytes(b"previous extract")
    pseudonymiser = Pseudonymiser(KEY, ["ine"])

    with pytest.raises(error, match="'ine' has 500"):
        pseudonymiser.parquet(src, dst, batch_size=500)

    assert pseudonymiser.cache.stats.hashed > 0  # earlier batches were processed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet", "out.parquet"]
    assert dst.read_bytes() == b"previous extract"


def test_parquet_destination_is_replaced_whole_and_private(tmp_path):
    src, dst = tmp_path / "in.parquet", tmp_path / "out.parquet"
    write_events(src, rows=100, pupils=10, row_group_size=100)
    dst.write_bytes(b"previous extract")

    Pseudonymiser(KEY, ["ine"]).parquet(src, dst)

    assert pq.read_table(dst).num_rows == 100
    if os.name == "posix":
        assert stat.S_IMODE(dst.stat().st_mode) == 0o600


def test_parquet_rejects_a_batch_size_below_one(tmp_path):
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        Pseudonymiser(KEY, ["ine"]).parquet(tmp_path / "a", tmp_path / "b", batch_size=0)


def test_parquet_missing_source_fails_without_writing(tmp_path):
    with pytest.raises(FileNotFoundError):
        Pseudonymiser(KEY, ["ine"]).parquet(tmp_path / "absent.parquet", tmp_path / "out.parquet")

    assert list(tmp_path.iterdir()) == []
