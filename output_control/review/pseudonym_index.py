"""The pseudonyms of a published extract version, for the row-level check at submission.

Built once per extract version from its Parquet files, reading **only the pseudonym column**
the manifest names (``spec.pseudonym.variable``, ``eleve``) of the files whose variables
include it, keeping the distinct values (Arrow ``unique`` per batch, then numpy ``unique``),
and written as a small sorted index file::

    projects/<p>/extract/.pseudonym-index/v<N>.idx

beside the version folders, not inside one: a workspace binds only ``extract/v<N>`` (read
only), so the sandbox neither reads nor writes the index, and the published folder stays
exactly what its manifest hashes. The file is written atomically (temp file, fsync, rename)
with mode 0440: a header line (format, the extract manifest's SHA-256, the count), then the
pseudonyms as fixed 26-byte records in sorted order, so it is opened as a read-only numpy
memory map and searched without loading. An index whose header does not match the extract's
manifest or whose size is wrong is rebuilt. Opened indexes are also kept in memory (a few
versions, least recently used first out).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from anonymization.pseudonyms import PSEUDONYM_LENGTH
from enclave.core.files import write_atomic
from output_control.row_level import SortedPseudonyms

INDEX_FOLDER = ".pseudonym-index"
FORMAT = b"enclave-pseudonym-index/1"
BATCH_ROWS = 1_000_000
CACHED_VERSIONS = 8
_DTYPE = np.dtype(f"S{PSEUDONYM_LENGTH}")


class PseudonymsUnreadable(Exception):
    """The pseudonyms of an extract version cannot be read; the check then fails closed."""


@dataclass(frozen=True)
class ExtractRef:
    """A published extract version: its folder and the SHA-256 of its manifest."""

    project_id: str
    version: int
    path: Path
    manifest_sha256: str


def index_path(extract: ExtractRef) -> Path:
    """Where the index of ``extract`` lives: beside its version folder, never inside it."""
    return extract.path.parent / INDEX_FOLDER / f"v{extract.version}.idx"


def _header(extract: ExtractRef, count: int) -> bytes:
    return b"%s %s %d\n" % (FORMAT, extract.manifest_sha256.encode("ascii"), count)


def distinct_pseudonyms(extract: ExtractRef) -> np.ndarray:
    """The sorted distinct pseudonyms of an extract version, read from its Parquet files'
    pseudonym column only."""
    try:
        manifest = json.loads((extract.path / "manifest.json").read_text(encoding="utf-8"))
        variable = manifest["spec"]["pseudonym"]["variable"]
        files = [f["name"] for f in manifest["files"] if variable in f["variables"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PseudonymsUnreadable(f"the manifest of extract v{extract.version} cannot be "
                                   f"read ({type(exc).__name__})") from None
    parts: list[np.ndarray] = []
    for name in files:
        if not isinstance(name, str) or "/" in name or name.startswith("."):
            raise PseudonymsUnreadable(f"extract v{extract.version} names an odd file "
                                       f"{name!r}")
        try:
            with pq.ParquetFile(extract.path / name, pre_buffer=False) as parquet:
                for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=[variable]):
                    parts.append(_fixed_width(pc.unique(batch.column(0)).drop_null(),
                                              extract.version))
        except (OSError, ValueError, KeyError) as exc:
            raise PseudonymsUnreadable(
                f"the pseudonyms of extract v{extract.version} cannot be read from {name} "
                f"({type(exc).__name__})") from None
    if not parts:
        return np.empty(0, dtype=_DTYPE)
    return np.unique(np.concatenate(parts))


def _fixed_width(values: pa.Array, version: int) -> np.ndarray:
    """Arrow strings of exactly 26 bytes as a numpy ``S26`` array, straight from the Arrow
    data buffer (no Python object per value); anything else is not a pseudonym column."""
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    values = pa.concat_arrays([values.cast(pa.large_string())])  # offset 0, 64-bit offsets
    if not len(values):
        return np.empty(0, dtype=_DTYPE)
    lengths = pc.binary_length(values)
    if pc.min(lengths).as_py() != PSEUDONYM_LENGTH or pc.max(lengths).as_py() != \
            PSEUDONYM_LENGTH:
        raise PseudonymsUnreadable(f"extract v{version} has a pseudonym that is not "
                                   f"{PSEUDONYM_LENGTH} characters long")
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int64)
    start, end = int(offsets[0]), int(offsets[len(values)])
    data = np.frombuffer(values.buffers()[2], dtype=np.uint8)[start:end]
    return data.view(_DTYPE).copy()


def build_index(extract: ExtractRef) -> Path:
    """Write the index of ``extract`` atomically (mode 0440) and return its path."""
    values = distinct_pseudonyms(extract)
    target = index_path(extract)
    target.parent.mkdir(mode=0o750, exist_ok=True)
    write_atomic(target, _header(extract, len(values)) + values.tobytes(), mode=0o440)
    return target


def _open(extract: ExtractRef) -> SortedPseudonyms | None:
    """The index file of ``extract`` as a memory map, or None if missing or not this
    extract's (wrong header or size)."""
    path = index_path(extract)
    try:
        with path.open("rb") as f:
            line = f.readline(200)
        size = path.stat().st_size
    except OSError:
        return None
    parts = line.rstrip(b"\n").split(b" ")
    if len(parts) != 3 or parts[0] != FORMAT or parts[1] != extract.manifest_sha256.encode() \
            or not parts[2].isdigit():
        return None
    count = int(parts[2])
    if size != len(line) + count * PSEUDONYM_LENGTH:
        return None
    if count == 0:
        return SortedPseudonyms(np.empty(0, dtype=_DTYPE))
    return SortedPseudonyms(np.memmap(path, dtype=_DTYPE, mode="r", offset=len(line),
                                      shape=(count,)))


_cache: OrderedDict[tuple[str, str], SortedPseudonyms] = OrderedDict()
_lock = threading.Lock()


def pseudonyms_of(extract: ExtractRef) -> SortedPseudonyms:
    """The pseudonyms of ``extract``: from memory, else its index file, else built now (and
    the index written for the next time). Raises :class:`PseudonymsUnreadable` if unreadable."""
    key = (str(extract.path), extract.manifest_sha256)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    found = _open(extract)
    if found is None:
        build_index(extract)
        found = _open(extract)
        if found is None:
            raise PseudonymsUnreadable(f"the pseudonym index of extract v{extract.version} "
                                       "could not be written and read back")
    with _lock:
        _cache[key] = found
        while len(_cache) > CACHED_VERSIONS:
            _cache.popitem(last=False)
    return found


def remove_indexes(extract_root: Path) -> bool:
    """Delete the index folder of a project's extracts (``extract/.pseudonym-index``), as its
    extract folders are deleted when the project closes; True if there was one."""
    import shutil

    folder = extract_root / INDEX_FOLDER
    if folder.is_symlink() or not folder.is_dir():
        return False
    shutil.rmtree(folder)
    with _lock:
        for key in [k for k in _cache if Path(k[0]).parent == extract_root]:
            del _cache[key]
    return True


def clear_cache() -> None:
    """Forget the indexes held in memory (the files stay)."""
    with _lock:
        _cache.clear()
