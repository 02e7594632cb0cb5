"""Atomic, streamed writing of one raw-zone dataset: Parquet part files plus ``metadata.json``.

A dataset is written into a hidden ``raw_dir/.tmp-<dataset>-<random>/`` folder, each file
fsynced, then renamed to ``raw_dir/<dataset>`` in one step (an existing dataset is first renamed
away, then deleted). Readers therefore see the old dataset or the whole new one, never half of
one; the catalogue ignores hidden folders.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from enclave.demo_data.exceptions import DemoDataError
from enclave.demo_data.metadata import DatasetSpec

METADATA_FILE = "metadata.json"
ROWS_PER_FILE = 4_000_000
COMPRESSION = "zstd"
_NO_DICTIONARY = frozenset({"statement_id"})  # random UUIDs: a dictionary would only cost


@dataclass(frozen=True)
class WrittenDataset:
    """A dataset published in the raw zone: its id, folder, row count and part file names."""

    dataset: str
    path: Path
    rows: int
    files: tuple[str, ...]


def check_target(raw_dir: Path, dataset: str) -> None:
    """Refuse to publish over anything at ``raw_dir/<dataset>`` that is not a folder."""
    target = raw_dir / dataset
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise DemoDataError(f"{target} exists and is not a dataset folder: a dataset may only "
                            "replace a folder, so nothing was written")


def _seal(path: Path) -> str:
    """Flush ``path`` to disk and return its SHA-256."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
        os.fsync(f.fileno())
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DatasetWriter:
    """Streams tables of one dataset into part files, then publishes the folder atomically."""

    def __init__(self, raw_dir: Path, spec: DatasetSpec, *, seed: int,
                 rows_per_file: int = ROWS_PER_FILE) -> None:
        """Open the first part file in a fresh hidden folder of ``raw_dir``."""
        if rows_per_file < 1:
            raise DemoDataError(f"rows_per_file must be at least 1, got {rows_per_file}")
        self._raw_dir = Path(raw_dir)
        self._spec = spec
        self._seed = seed
        self._rows_per_file = rows_per_file
        self._schema = spec.schema
        self._dictionary = [v.name for v in spec.variables if v.name not in _NO_DICTIONARY]
        self._tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{spec.dataset}-", dir=self._raw_dir))
        self._files: list[dict[str, Any]] = []
        self._writer: pq.ParquetWriter | None = None
        self._part_rows = 0
        self._rows = 0
        self._finished = False
        self._open_part()

    @property
    def rows(self) -> int:
        """Rows written so far."""
        return self._rows

    def _part_path(self) -> Path:
        return self._tmp / f"part-{len(self._files):05d}.parquet"

    def _open_part(self) -> None:
        self._writer = pq.ParquetWriter(self._part_path(), self._schema, compression=COMPRESSION,
                                        use_dictionary=self._dictionary)
        self._part_rows = 0

    def _close_part(self) -> None:
        if self._writer is None:
            return
        path = self._part_path()
        self._writer.close()
        self._writer = None
        self._files.append({"name": path.name, "rows": self._part_rows, "sha256": _seal(path)})

    def write(self, table: pa.Table) -> None:
        """Append rows, starting a new part file every ``rows_per_file`` rows."""
        if self._finished:
            raise DemoDataError(f"dataset {self._spec.dataset} is already published or aborted")
        if not table.schema.equals(self._schema):
            raise DemoDataError(f"table for {self._spec.dataset} does not have the declared "
                                f"schema: {table.schema} instead of {self._schema}")
        offset = 0
        while offset < table.num_rows:
            if self._part_rows >= self._rows_per_file:
                self._close_part()
                self._open_part()
            take = min(table.num_rows - offset, self._rows_per_file - self._part_rows)
            if self._writer is None:  # opened above or in __init__; keeps type checkers exact
                raise DemoDataError("part file is not open")
            self._writer.write_table(table.slice(offset, take))
            offset += take
            self._part_rows += take
            self._rows += take

    def commit(self) -> WrittenDataset:
        """Seal the files, write ``metadata.json`` and rename the folder into place."""
        if self._finished:
            raise DemoDataError(f"dataset {self._spec.dataset} is already published or aborted")
        check_target(self._raw_dir, self._spec.dataset)
        self._close_part()
        doc = self._spec.document(seed=self._seed, files=self._files)
        meta = self._tmp / METADATA_FILE
        with meta.open("wb") as f:
            f.write((json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(self._tmp)
        target = self._raw_dir / self._spec.dataset
        old = None
        if target.exists():
            old = self._raw_dir / (".old-" + self._tmp.name.removeprefix(".tmp-"))
            os.replace(target, old)
        try:
            os.replace(self._tmp, target)
        except BaseException:
            if old is not None:
                os.replace(old, target)
            raise
        self._finished = True
        _fsync_dir(self._raw_dir)
        if old is not None:
            shutil.rmtree(old)
        return WrittenDataset(self._spec.dataset, target, self._rows,
                              tuple(f["name"] for f in self._files))

    def abort(self) -> None:
        """Drop the unpublished folder; a published dataset is left alone."""
        if self._finished:
            return
        self._finished = True
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
            self._writer = None
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> DatasetWriter:
        """Use as a context manager that aborts unless committed."""
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Abort the unpublished dataset, if any."""
        self.abort()
