"""Pseudonymisation of identifiers by keyed hash, over Arrow arrays, record batches and Parquet.

A pseudonym is ``base32_lower(HMAC-SHA256(key, utf8(value))[:16])`` without padding: the first
128 bits of the keyed hash, written as 26 characters of ``a-z2-7`` (RFC 4648 alphabet). This is
pseudonymisation by keyed hash (ENISA, "Pseudonymisation techniques and best practices", 2019,
section 5.2): with the same 32-byte project key a value always gets the same pseudonym, so the
tables of one project still join; without the key a pseudonym can neither be reversed nor
recomputed from a guessed identifier, and two projects' keys give unrelated pseudonyms, so
extracts cannot be linked; destroying the key makes the pseudonyms irreversible for good
(crypto-shredding). 128 bits keep the chance of any collision among 10^9 identifiers < 10^-20.

The value is hashed exactly as given: no trimming, case folding or Unicode normalisation, so
callers normalise identifiers upstream. Integers are hashed as their decimal string (``42`` and
``"42"`` share a pseudonym, ``"042"`` does not). Identifiers of different kinds that share a
value space (a pupil and a teacher both numbered ``"123"``) get the same pseudonym under one
key: give them different keys or prefixes when they must not collide. Null and empty-string
identifiers are refused, never passed through.

Only distinct values are hashed: a column is dictionary-encoded, its dictionary hashed, and the
pseudonyms mapped back onto the rows with Arrow ``take`` (no Python loop per row); a bounded
`PseudonymCache` carries already hashed values across batches, because a billion learning-trace
events carry only a few million pupils. The functions work on one record batch at a time, so
memory stays bounded and the same code runs inside Spark's ``mapInArrow``::

    def pseudonymise_partition(batches):  # runs on the worker: build the Pseudonymiser there
        yield from Pseudonymiser(project_key, {"ine": "pupil"}).batches(batches)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from anonymization._fingerprints import FingerprintIndex
from anonymization.atomic import atomic_output
from anonymization.exceptions import (
    ColumnConflictError,
    EmptyIdentifierError,
    InvalidKeyError,
    MissingColumnError,
    NullIdentifierError,
    UnsupportedIdentifierTypeError,
)

__all__ = [
    "DEFAULT_CACHE_ENTRIES",
    "KEY_BYTES",
    "PSEUDONYM_LENGTH",
    "CacheStats",
    "PseudonymCache",
    "Pseudonymiser",
    "output_type",
    "pseudonym",
    "pseudonymise_array",
    "stored_schema_metadata",
]

KEY_BYTES = 32
"""Length of a project data key: 256 bits."""

DIGEST_BYTES = 16
"""Bytes of the HMAC-SHA256 output kept in a pseudonym (128 bits)."""

PSEUDONYM_LENGTH = 26
"""Characters of a pseudonym: 128 bits in base32 (5 bits a character), without padding."""

DEFAULT_CACHE_ENTRIES = 2_000_000
"""Default bound of a `PseudonymCache`: about 200 bytes an entry, so about 400 MB when full."""

_ARROW_LOOKUP_RATIO = 8
"""Memo size, relative to a batch's distinct values, up to which Arrow does the look-up."""

_BASE32_ALPHABET = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz234567", dtype=np.uint8)


def _check_key(key: object) -> bytes:
    """Return the key as bytes if it is exactly `KEY_BYTES` raw bytes, else raise."""
    if isinstance(key, str):
        raise InvalidKeyError(
            "got a str; pass raw bytes (decode a hex or base64 key first, e.g. bytes.fromhex)"
        )
    if not isinstance(key, bytes | bytearray | memoryview):
        raise InvalidKeyError(f"got a {type(key).__name__}")
    raw = bytes(key)
    if len(raw) != KEY_BYTES:
        raise InvalidKeyError(f"got {len(raw)} bytes")
    return raw


def _base32_rows(joined_digests: bytes, count: int) -> np.ndarray:
    """Unpadded lowercase base32 (RFC 4648) of the first 16 bytes of each 32-byte digest.

    Returns a ``(count, 26)`` array of ASCII codes. Vectorised with numpy, because the standard
    library's ``base64.b32encode`` is written in Python and costs about a microsecond a value;
    the tests check both agree. 128 bits and two zero bits make 26 groups of 5 bits, each group
    indexing the alphabet.
    """
    digests = np.frombuffer(joined_digests, dtype=np.uint8).reshape(count, 32)
    bits = np.zeros((count, PSEUDONYM_LENGTH * 5), dtype=np.uint8)
    bits[:, : DIGEST_BYTES * 8] = np.unpackbits(digests[:, :DIGEST_BYTES], axis=1)
    groups = np.packbits(bits.reshape(count, PSEUDONYM_LENGTH, 5), axis=2)[:, :, 0] >> 3
    return _BASE32_ALPHABET[groups]


def _string_array(rows: np.ndarray) -> pa.Array:
    """Arrow ``string`` array viewing a ``(n, 26)`` array of ASCII codes, one row a value."""
    count = len(rows)
    offsets = np.arange(0, PSEUDONYM_LENGTH * (count + 1), PSEUDONYM_LENGTH, dtype=np.int32)
    data = np.ascontiguousarray(rows)
    return pa.Array.from_buffers(
        pa.string(), count, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def pseudonym(value: str | int, key: bytes) -> str:
    """Return the pseudonym of one identifier: the reference formula, one value at a time.

    ``base32_lower(HMAC-SHA256(key, utf8(value))[:16])`` without padding (ENISA 2019, 5.2).
    Use it for a single look-up or a test; columns go through `pseudonymise_array`.
    """
    raw_key = _check_key(key)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise UnsupportedIdentifierTypeError(None, type(value).__name__)
    text = str(value)
    if not text:
        raise EmptyIdentifierError(None, 1)
    digest = hmac.new(raw_key, text.encode("utf-8"), hashlib.sha256).digest()
    return _base32_rows(digest, 1).tobytes().decode("ascii")


# --------------------------------------------------------------------------- Arrow types


def _value_type(data_type: pa.DataType) -> pa.DataType:
    return data_type.value_type if pa.types.is_dictionary(data_type) else data_type


def _check_type(data_type: pa.DataType, column: str | None) -> None:
    """Raise unless the type holds strings or integers (plain or dictionary-encoded)."""
    if pa.types.is_null(data_type):
        return  # an all-null column: refused for its nulls, unless it is empty
    value_type = _value_type(data_type)
    if not (
        pa.types.is_string(value_type)
        or pa.types.is_large_string(value_type)
        or pa.types.is_string_view(value_type)
        or pa.types.is_integer(value_type)
    ):
        raise UnsupportedIdentifierTypeError(column, str(data_type))


def output_type(data_type: pa.DataType, dictionary: bool | None = None) -> pa.DataType:
    """Arrow type of the pseudonyms of a column of type `data_type`.

    Values are ``string`` (``large_string`` for ``large_string`` input, which may hold more
    than 2 GB). With ``dictionary=None`` the input's encoding is kept; ``True`` asks for a
    dictionary (``int32`` indices unless the input had its own), ``False`` for plain strings.
    """
    large = pa.types.is_large_string(_value_type(data_type))
    value_out = pa.large_string() if large else pa.string()
    if dictionary is None:
        dictionary = pa.types.is_dictionary(data_type)
    if not dictionary:
        return value_out
    index_type = data_type.index_type if pa.types.is_dictionary(data_type) else pa.int32()
    return pa.dictionary(index_type, value_out)


def _count_nulls(values: pa.Array | pa.ChunkedArray) -> int:
    """Rows whose identifier is null, counting nulls held in a dictionary too."""
    if pa.types.is_null(values.type):
        return len(values)
    if pa.types.is_dictionary(values.type):
        chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
        if values.null_count or any(chunk.dictionary.null_count for chunk in chunks):
            return int(pc.sum(pc.is_null(values)).as_py() or 0)
        return 0
    return int(values.null_count)


def _count_empty(values: pa.Array | pa.ChunkedArray) -> int:
    """Rows whose identifier is the empty string (only called on the error path)."""
    if pa.types.is_dictionary(values.type):
        if isinstance(values, pa.ChunkedArray):
            values = pa.chunked_array(
                [chunk.dictionary_decode() for chunk in values.chunks], values.type.value_type
            )
        else:
            values = values.dictionary_decode()
    text = pc.cast(values, pa.large_string())
    return int(pc.sum(pc.equal(text, pa.scalar("", pa.large_string()))).as_py() or 0)


def _used_entries(indices: pa.Array, dictionary: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Drop dictionary entries that no row uses, so no pseudonym of an absent row is produced.

    A filtered or sliced dictionary array keeps its whole dictionary; hashing it as is would put
    pseudonyms of people outside the selected rows into the output.
    """
    size = len(dictionary)
    positions = indices.to_numpy(zero_copy_only=False).astype(np.intp, copy=False)
    used = np.bincount(positions, minlength=size)[:size] > 0
    if used.all():
        return indices, dictionary
    new_position = pa.array(np.cumsum(used, dtype=np.int64) - 1)
    compact_indices = new_position.take(indices).cast(indices.type)
    return compact_indices, dictionary.filter(pa.array(used))


# --------------------------------------------------------------------------- the cache


def _refuse_pickling(kind: str) -> NoReturn:
    raise TypeError(
        f"a {kind} holds a project key and cannot be pickled; build it where it is used "
        f"(e.g. inside the function given to Spark's mapInArrow) from the key store"
    )


@dataclass
class CacheStats:
    """Counters of a `PseudonymCache`: values hashed with HMAC, values found in the memo."""

    hashed: int = 0
    reused: int = 0


class PseudonymCache:
    """A project key ready for hashing, plus a bounded memo of identifiers already hashed.

    The key itself is not kept: only the HMAC state keyed with it, which is never printed or
    pickled. When the memo would exceed `max_entries` it is emptied and refilled (results never
    change, only speed); ``max_entries=0`` disables it, ``None`` leaves it unbounded.

    Not thread-safe: use one per thread or worker. The memo holds each value's position in
    a ``(n, 26)`` array of pseudonyms. A batch's distinct values are looked up in a
    persistent index of the memo's fingerprints (`anonymization._fingerprints`, exact, for
    identifiers up to 48 bytes), whose cost follows the batch, not the memo; otherwise with
    one Arrow ``index_in`` while the memo is small next to the batch (a hash table of the
    memo costs less than a Python look-up per value), else with a Python dict.
    """

    __slots__ = (
        "_index",
        "_keyed",
        "_max_entries",
        "_positions",
        "_rows",
        "_size",
        "_value_chunks",
        "stats",
    )

    def __init__(self, key: bytes, *, max_entries: int | None = DEFAULT_CACHE_ENTRIES) -> None:
        if max_entries is not None and max_entries < 0:
            raise ValueError(f"max_entries must be >= 0 or None, got {max_entries}")
        # A pre-keyed HMAC copied per value is several times faster than keying per value.
        self._keyed = hmac.new(_check_key(key), digestmod=hashlib.sha256)
        self._max_entries = max_entries
        self.stats = CacheStats()
        self.clear()

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        return (
            f"PseudonymCache(entries={self._size}, max_entries={self._max_entries}, key=<hidden>)"
        )

    def __reduce__(self) -> NoReturn:
        _refuse_pickling(type(self).__name__)

    def clear(self) -> None:
        """Forget every memoised pseudonym (the key stays usable)."""
        self._positions: dict[str, int] = {}
        self._value_chunks: list[pa.Array] = []
        self._rows = np.empty((0, PSEUDONYM_LENGTH), dtype=np.uint8)
        self._size = 0
        self._index = FingerprintIndex()

    def _hash(self, texts: list[str]) -> np.ndarray:
        """Pseudonyms of `texts` as a ``(n, 26)`` array of ASCII codes."""
        copy = self._keyed.copy
        digests: list[bytes] = []
        append = digests.append
        for text in texts:
            mac = copy()
            mac.update(text.encode("utf-8"))
            append(mac.digest())
        self.stats.hashed += len(texts)
        return _base32_rows(b"".join(digests), len(texts))

    def _lookup(self, distinct: pa.Array) -> np.ndarray:
        """Memo position of each distinct value, -1 when it was never hashed."""
        if self._size == 0:
            return np.full(len(distinct), -1, dtype=np.int64)
        if len(self._value_chunks) > 1:
            self._value_chunks = [pa.concat_arrays(self._value_chunks)]
        indexed = self._index.find(distinct, self._value_chunks[0])
        if indexed is not None:
            return indexed
        if self._size <= _ARROW_LOOKUP_RATIO * len(distinct):
            found = pc.index_in(distinct, value_set=self._value_chunks[0])
            return found.fill_null(-1).to_numpy().astype(np.int64)
        get = self._position_dict().get
        return np.fromiter(
            (get(text, -1) for text in distinct.to_pylist()), dtype=np.int64, count=len(distinct)
        )

    def _position_dict(self) -> dict[str, int]:
        """Value -> memo position, built only when a look-up needs it (the fingerprint index
        usually answers), so the memo does not pay a Python object per value otherwise."""
        if len(self._positions) != self._size:
            if len(self._value_chunks) > 1:
                self._value_chunks = [pa.concat_arrays(self._value_chunks)]
            self._positions = dict(zip(self._value_chunks[0].to_pylist(), range(self._size),
                                       strict=True))
        return self._positions

    def _remember(self, values: pa.Array, rows: np.ndarray) -> None:
        start = self._size
        needed = start + len(rows)
        if needed > len(self._rows):  # grow geometrically, like a list
            grown = np.empty((max(needed, 2 * len(self._rows), 1024), PSEUDONYM_LENGTH), np.uint8)
            grown[:start] = self._rows[:start]
            self._rows = grown
        self._rows[start:needed] = rows
        self._value_chunks.append(values)
        self._index.add(values, start)
        self._size = needed

    def pseudonyms_of(self, distinct: pa.Array) -> pa.Array:
        """Pseudonyms (``string``) of distinct, non-null, non-empty ``string`` values.

        Only values absent from the memo are hashed; the memo learns them.
        """
        positions = self._lookup(distinct)
        missing = positions < 0
        missing_count = int(missing.sum())
        self.stats.reused += len(distinct) - missing_count
        if missing_count == 0:
            return _string_array(self._rows.take(positions, axis=0))
        limit = self._max_entries
        if limit is not None and self._size + missing_count > limit:
            # Full: start again from this batch's values (hits are rehashed, results unchanged).
            self.stats.reused -= len(distinct) - missing_count
            self.clear()
            rows = self._hash(distinct.to_pylist())
            if limit:
                self._remember(distinct.slice(0, limit), rows[:limit])
            return _string_array(rows)
        new_values = distinct.filter(pa.array(missing))
        start = self._size
        self._remember(new_values, self._hash(new_values.to_pylist()))
        positions[missing] = np.arange(start, self._size)
        return _string_array(self._rows.take(positions, axis=0))

    def pseudonymise(
        self,
        values: pa.Array | pa.ChunkedArray,
        *,
        column: str | None = None,
        dictionary: bool | None = None,
    ) -> pa.Array | pa.ChunkedArray:
        """Pseudonymise a column: hash its distinct values (memoised), map them onto the rows.

        Returns an array of the same length and kind (chunked in, chunked out) whose type is
        ``output_type(values.type, dictionary)``. Raises on nulls, empty strings and
        unsupported types; `column` only names the data in error messages.
        """
        if not isinstance(values, pa.Array | pa.ChunkedArray):
            raise TypeError(
                f"values must be a pyarrow Array or ChunkedArray, got {type(values).__name__}; "
                f"wrap Python or pandas data with pyarrow.array(...)"
            )
        _check_type(values.type, column)
        nulls = _count_nulls(values)
        if nulls:
            raise NullIdentifierError(column, nulls)
        result_type = output_type(values.type, dictionary)
        if isinstance(values, pa.ChunkedArray):
            chunks = [self._chunk(chunk, values, column, result_type) for chunk in values.chunks]
            return pa.chunked_array(chunks, type=result_type)
        return self._chunk(values, values, column, result_type)

    def _chunk(
        self,
        chunk: pa.Array,
        whole: pa.Array | pa.ChunkedArray,
        column: str | None,
        result_type: pa.DataType,
    ) -> pa.Array:
        if len(chunk) == 0:
            return pa.array([], type=result_type)
        if pa.types.is_dictionary(chunk.type):
            indices, distinct = _used_entries(chunk.indices, chunk.dictionary)
        else:
            encoded = pc.dictionary_encode(chunk)
            indices, distinct = encoded.indices, encoded.dictionary
        if distinct.type != pa.string():
            distinct = pc.cast(distinct, pa.string())  # integers as decimal text: -42 -> "-42"
        if pc.min(pc.binary_length(distinct)).as_py() == 0:
            raise EmptyIdentifierError(column, _count_empty(whole))
        pseudonyms = self.pseudonyms_of(distinct)
        if _value_type(result_type) != pa.string():
            pseudonyms = pseudonyms.cast(_value_type(result_type))
        if pa.types.is_dictionary(result_type):
            return pa.DictionaryArray.from_arrays(indices.cast(result_type.index_type), pseudonyms)
        return pseudonyms.take(indices)


def pseudonymise_array(
    values: pa.Array | pa.ChunkedArray,
    key: bytes,
    *,
    column: str | None = None,
    dictionary: bool | None = None,
) -> pa.Array | pa.ChunkedArray:
    """Pseudonymise one identifier column with a project key (see the module docstring).

    Each distinct value is hashed once, ``base32_lower(HMAC-SHA256(key, utf8(value))[:16])``
    (ENISA 2019, 5.2), and mapped onto the rows by Arrow ``take``. A plain ``pa.Array`` gives a
    ``string`` array; a ``ChunkedArray`` gives a ``ChunkedArray`` with the same chunks
    (combining could overflow 32-bit offsets at a billion rows); a dictionary-encoded input
    keeps its indices and gets a dictionary of pseudonyms (see `output_type` for
    `dictionary`). Zero rows give zero pseudonyms.
    """
    # A memo only helps when chunks share values; one array holds each distinct value once.
    memo_size = None if isinstance(values, pa.ChunkedArray) else 0
    cache = PseudonymCache(key, max_entries=memo_size)
    return cache.pseudonymise(values, column=column, dictionary=dictionary)


# --------------------------------------------------------------------------- record batches


def _repeated(names: Iterable[str]) -> list[str]:
    return sorted(name for name, count in Counter(names).items() if count > 1)


def _column_mapping(columns: Mapping[str, str] | Sequence[str]) -> dict[str, str]:
    if isinstance(columns, str):
        raise TypeError(
            f"columns must be a mapping or a sequence of column names, not the str {columns!r}; "
            f"write [{columns!r}]"
        )
    if isinstance(columns, Mapping):
        mapping = dict(columns)
    else:
        names = list(columns)
        if _repeated(names):
            raise ColumnConflictError(f"columns named more than once: {_repeated(names)}")
        mapping = {name: name for name in names}
    if not mapping:
        raise ValueError("a Pseudonymiser needs at least one identifier column")
    for source, target in mapping.items():
        if not isinstance(source, str) or not isinstance(target, str) or not target:
            raise TypeError(f"column names must be non-empty str, got {source!r} -> {target!r}")
    if _repeated(mapping.values()):
        raise ColumnConflictError(
            f"several identifier columns would be named {_repeated(mapping.values())}"
        )
    return mapping


class Pseudonymiser:
    """Replaces identifier columns of record batches by their pseudonyms, keeping column order.

    `columns` maps each source column to its output name (a sequence keeps the names). Output
    columns are plain ``string`` by default, which every consumer (Spark included) accepts;
    ``dictionary=True`` makes them ``dictionary<int32, string>``: no per-row copy, Parquet
    stores each row group's distinct pseudonyms once, and pandas reads them as categoricals.
    One `PseudonymCache` serves every batch; pass a cache instead of the key to share it with
    other Pseudonymisers of the same project.
    """

    def __init__(
        self,
        key: bytes | PseudonymCache,
        columns: Mapping[str, str] | Sequence[str],
        *,
        dictionary: bool = False,
        max_cache_entries: int | None = DEFAULT_CACHE_ENTRIES,
    ) -> None:
        self._columns = _column_mapping(columns)
        self._dictionary = dictionary
        if isinstance(key, PseudonymCache):
            self.cache = key
        else:
            self.cache = PseudonymCache(key, max_entries=max_cache_entries)
        self._plan: tuple[bool, pa.Schema, pa.Schema, list[tuple[int, str]]] | None = None

    @property
    def dictionary(self) -> bool:
        """Whether pseudonym columns come out dictionary-encoded (fixed at construction)."""
        return self._dictionary

    @property
    def columns(self) -> dict[str, str]:
        """Source column -> output column."""
        return dict(self._columns)

    def __repr__(self) -> str:
        return (
            f"Pseudonymiser(columns={self._columns!r}, dictionary={self.dictionary}, "
            f"cache={self.cache!r})"
        )

    def __reduce__(self) -> NoReturn:
        _refuse_pickling(type(self).__name__)

    def _plan_for(
        self, schema: pa.Schema, dictionary: bool | None = None
    ) -> tuple[pa.Schema, list[tuple[int, str]]]:
        """Output schema, and (position, source name) of each column to pseudonymise.

        `dictionary` overrides the Pseudonymiser's output encoding (used by `parquet`, which
        writes dictionary-encoded pages whatever type the file declares).
        """
        dictionary = self.dictionary if dictionary is None else dictionary
        if (
            self._plan is not None
            and self._plan[0] is dictionary
            and self._plan[1].equals(schema, check_metadata=True)
        ):
            return self._plan[2], self._plan[3]
        fields = list(schema)
        positions = []
        for source, target in self._columns.items():
            found = schema.get_all_field_indices(source)
            if not found:
                raise MissingColumnError(source, schema.names)
            if len(found) > 1:
                raise ColumnConflictError(f"column {source!r} appears {len(found)} times")
            position = found[0]
            old = fields[position]
            _check_type(old.type, source)
            positions.append((position, source))
            new_type = output_type(old.type, dictionary)
            fields[position] = pa.field(target, new_type, nullable=old.nullable)
        repeated = _repeated(field.name for field in fields)
        if repeated:
            raise ColumnConflictError(
                f"the output would have several columns named {repeated}; rename the "
                f"pseudonym column or drop the existing one"
            )
        out_schema = pa.schema(fields, metadata=schema.metadata)
        self._plan = (dictionary, schema, out_schema, positions)
        return out_schema, positions

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        """Schema of the batches produced from batches of `schema` (e.g. for mapInArrow)."""
        return self._plan_for(schema)[0]

    def batch(self, batch: pa.RecordBatch, *, dictionary: bool | None = None) -> pa.RecordBatch:
        """Return `batch` with each identifier column replaced, in place, by its pseudonyms.

        `dictionary` overrides the Pseudonymiser's output encoding for this batch: a Parquet
        writer handed dictionary pseudonyms stores each distinct one once; declare the plain
        type in the file with `stored_schema_metadata` (see `parquet`).
        """
        return self._batch(batch, self.dictionary if dictionary is None else dictionary)

    def _batch(self, batch: pa.RecordBatch, dictionary: bool) -> pa.RecordBatch:
        out_schema, positions = self._plan_for(batch.schema, dictionary)
        arrays = list(batch.columns)
        for position, source in positions:
            arrays[position] = self.cache.pseudonymise(
                arrays[position], column=source, dictionary=dictionary
            )
        return pa.RecordBatch.from_arrays(arrays, schema=out_schema)

    def table(self, table: pa.Table) -> pa.Table:
        """Return `table` with each identifier column replaced; chunks are kept."""
        out_schema, positions = self._plan_for(table.schema)
        arrays = list(table.columns)
        for position, source in positions:
            arrays[position] = self.cache.pseudonymise(
                arrays[position], column=source, dictionary=self.dictionary
            )
        return pa.Table.from_arrays(arrays, schema=out_schema)

    def batches(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """Pseudonymise a stream of batches lazily, one at a time (bounded memory)."""
        for batch in batches:
            yield self.batch(batch)

    def parquet(
        self,
        src: str | os.PathLike[str],
        dst: str | os.PathLike[str],
        batch_size: int = 1_000_000,
        *,
        writer_options: Mapping[str, Any] | None = None,
    ) -> int:
        """Stream Parquet `src` to `dst` with identifiers pseudonymised; return rows written.

        Reads at most `batch_size` rows at a time (one output row group each), without
        read-ahead, so memory follows the batch, not the file; a string identifier the file
        stores dictionary-encoded is read as a dictionary, so only its distinct values are
        decoded.
        Missing columns, and nulls that the file's statistics reveal, fail before any write.
        `dst` appears atomically: rows go to a temp file (mode 0600) in the same folder, which
        is fsynced and renamed over `dst` by `os.replace`; on any error the temp file is
        removed and `dst` is left as it was. An empty `src` gives a valid zero-row file.
        `writer_options` go to `pyarrow.parquet.ParquetWriter`; unless they say otherwise,
        min/max statistics are not written for pseudonym columns (useless on random strings,
        and the costliest part of writing them). Pseudonym columns are written as a
        dictionary page and indices whatever `dictionary` says (plain 26-character strings
        would overflow the writer's 1 MB dictionary page once a row group holds ~35,000
        pupils, and be hashed and stored one by one); with ``dictionary=False`` the file's
        stored Arrow schema still declares ``string``, so readers get plain strings.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        with pq.ParquetFile(src) as probe:
            stored = probe.schema_arrow
            leaf_paths = [leaf.path for leaf in probe.schema]
            probe_metadata = probe.metadata
            self.output_schema(stored)  # bad columns fail before anything is written
            for name in self._columns:
                if name in leaf_paths:
                    nulls = _stored_null_count(probe.metadata, leaf_paths.index(name))
                    if nulls:
                        raise NullIdentifierError(name, nulls)
        # Read an identifier as a dictionary only when the file stores it as one: then just
        # the distinct values are decoded. A column the writer had to store value by value
        # (its dictionary page overflowed) is cheaper read as plain strings and encoded once
        # by Arrow than decoded into a dictionary by the reader (0.34 + 0.13 s against
        # 0.88 s for 10 M identifiers, benchmarks/bench_pseudonymisation.py).
        as_dictionary = [
            name
            for name in self._columns
            if name in stored.names
            and pa.types.is_string(stored.field(name).type)
            and name in leaf_paths
            and _stored_as_dictionary(probe_metadata, leaf_paths.index(name))
        ]
        options = dict(writer_options or {})
        if "write_statistics" not in options:
            kept = [path for path in leaf_paths if path not in self._columns]
            options["write_statistics"] = kept or False
        if "use_dictionary" not in options:
            # Keep each column's encoding: a column the source could not store as a dictionary
            # (a timestamp a row) would only fill the writer's dictionary page and fall back.
            options["use_dictionary"] = list(self._columns.values()) + [
                path
                for leaf, path in enumerate(leaf_paths)
                if path not in self._columns and _stored_as_dictionary(probe_metadata, leaf)
            ]
        # Pseudonyms are always handed to the writer dictionary-encoded: it then stores each
        # row group's distinct pseudonyms once and the rows as indices, instead of hashing
        # every 26-character string again (and falling back to storing them one by one once
        # they overflow its 1 MB dictionary page). For plain output the file still declares
        # the plain type: the Arrow schema stored in it (what `store_schema` would write) is
        # that of `output_schema`, so every reader gets the same values and types as if
        # plain strings had been written; only the Parquet pages differ (smaller).
        declare = not self.dictionary and options.get("store_schema", True)
        if declare:
            options["store_schema"] = False
        # pre_buffer=False: pre-buffering reads ahead across row groups, so memory would grow
        # with the file (and cost system time) instead of staying at about one batch.
        with pq.ParquetFile(src, read_dictionary=as_dictionary, pre_buffer=False) as source:
            out_schema = self.output_schema(source.schema_arrow)
            write_dictionary = self.dictionary or bool(declare)
            write_schema = self._plan_for(source.schema_arrow, write_dictionary)[0]
            rows = 0
            with (
                atomic_output(dst) as temp_path,
                pq.ParquetWriter(temp_path, write_schema, **options) as writer,
            ):
                for batch in source.iter_batches(batch_size=batch_size):
                    out = self._batch(batch, write_dictionary)
                    writer.write_batch(out)
                    rows += out.num_rows
                if declare:
                    writer.add_key_value_metadata(stored_schema_metadata(out_schema))
        return rows


def _stored_as_dictionary(metadata: pq.FileMetaData, leaf: int) -> bool:
    """Whether a column's pages are (mostly) dictionary indices rather than the values.

    Parquet's metadata lists the encodings used but not how many pages fell back to plain;
    the size tells: a plain string costs at least 5 bytes (a 4-byte length and a character),
    a plain 32 or 64-bit value 4 or 8, dictionary indices at most 3 for up to 16 million
    distinct values, plus a dictionary page the writer keeps to 1 MB per row group. (Plain
    values narrower than 4 bytes count as a dictionary: the writer's default, and cheap.)
    """
    values = stored = 0
    for group in range(metadata.num_row_groups):
        chunk = metadata.row_group(group).column(leaf)
        values += chunk.num_values
        stored += chunk.total_uncompressed_size
    return values > 0 and stored < 4 * values


def stored_schema_metadata(schema: pa.Schema) -> dict[bytes, bytes]:
    """The key-value metadata ``ParquetWriter(store_schema=True)`` writes for `schema`.

    The schema's own metadata plus ``ARROW:schema``, the base64 of its Arrow IPC
    serialisation, from which readers restore the Arrow types. A writer opened with
    ``store_schema=False`` on dictionary pseudonyms and given this metadata of the plain
    schema (``writer.add_key_value_metadata``) writes a file that reads back as plain strings.
    """
    metadata = {
        key: value for key, value in (schema.metadata or {}).items() if key != b"ARROW:schema"
    }
    metadata[b"ARROW:schema"] = base64.b64encode(schema.serialize().to_pybytes())
    return metadata


def _stored_null_count(metadata: pq.FileMetaData, leaf: int) -> int:
    """Nulls of a flat column according to the file's statistics (0 when they are absent)."""
    total = 0
    for group in range(metadata.num_row_groups):
        statistics = metadata.row_group(group).column(leaf).statistics
        if statistics is not None and statistics.has_null_count:
            total += statistics.null_count
    return total
