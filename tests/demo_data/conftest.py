"""Shared fixtures: one modest generation (20,000 pupils) read back once for many checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from enclave.demo_data import generate

MODEST_PUPILS = 20_000
SEED = 20261128


def read_metadata(folder: Path) -> dict[str, Any]:
    """The parsed ``metadata.json`` of a dataset folder."""
    return json.loads((folder / "metadata.json").read_text(encoding="utf-8"))


def read_dataset(folder: Path) -> pa.Table:
    """All rows of a dataset, reading the part files its metadata lists, in order."""
    files = [folder / f["name"] for f in read_metadata(folder)["files"]]
    return pa.concat_tables([pq.read_table(f) for f in files])


def read_all(raw_dir: Path) -> dict[str, pa.Table]:
    """Every dataset of a raw folder, by id."""
    return {p.name: read_dataset(p) for p in sorted(raw_dir.iterdir())
            if p.is_dir() and not p.name.startswith(".")}


@pytest.fixture(scope="session")
def modest_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A raw folder generated once with 20,000 pupils and the default seed."""
    raw = tmp_path_factory.mktemp("raw")
    generate(raw, pupils=MODEST_PUPILS, seed=SEED)
    return raw


@pytest.fixture(scope="session")
def modest(modest_raw: Path) -> dict[str, pa.Table]:
    """The tables of the modest generation, by dataset id."""
    return read_all(modest_raw)
