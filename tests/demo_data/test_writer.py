"""The dataset writer: part files, sealing, atomic publication and abort; package isolation."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from enclave.demo_data import EXAMENS, DemoDataError, generate
from enclave.demo_data.writer import DatasetWriter
from tests.demo_data.conftest import read_dataset, read_metadata


def _exam_rows(n: int, start: int = 0) -> pa.Table:
    return pa.Table.from_pydict({
        "ine": [f"{i:010d}A" for i in range(start, start + n)],
        "session": pa.array([2025] * n, type=pa.int16()),
        "examen": ["DNB"] * n,
        "serie": pa.array([None] * n, type=pa.string()),
        "note_moyenne": [12.5] * n,
        "admis": [True] * n,
        "mention": ["AB"] * n,
    }, schema=EXAMENS.schema)


def test_large_datasets_are_split_into_part_files_of_bounded_rows(tmp_path: Path) -> None:
    writer = DatasetWriter(tmp_path, EXAMENS, seed=1, rows_per_file=10)
    for start in range(0, 35, 7):
        writer.write(_exam_rows(7, start))
    written = writer.commit()
    meta = read_metadata(written.path)
    assert [f["rows"] for f in meta["files"]] == [10, 10, 10, 5]
    assert written.files == ("part-00000.parquet", "part-00001.parquet", "part-00002.parquet",
                             "part-00003.parquet")
    for entry in meta["files"]:
        data = (written.path / entry["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert read_dataset(written.path)["ine"].to_pylist() == [f"{i:010d}A" for i in range(35)]


def test_a_table_with_another_schema_is_refused(tmp_path: Path) -> None:
    with DatasetWriter(tmp_path, EXAMENS, seed=1) as writer, \
            pytest.raises(DemoDataError, match="declared schema"):
        writer.write(_exam_rows(3).drop_columns(["mention"]))
    assert list(tmp_path.iterdir()) == []


def test_an_aborted_dataset_leaves_nothing_and_keeps_the_old_one(tmp_path: Path) -> None:
    first = DatasetWriter(tmp_path, EXAMENS, seed=1)
    first.write(_exam_rows(4))
    first.commit()
    with pytest.raises(RuntimeError), DatasetWriter(tmp_path, EXAMENS, seed=2) as second:
        second.write(_exam_rows(9))
        raise RuntimeError("crash before publication")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["examens"]
    assert read_metadata(tmp_path / "examens")["rows"] == 4


def test_a_published_dataset_cannot_be_written_again(tmp_path: Path) -> None:
    writer = DatasetWriter(tmp_path, EXAMENS, seed=1)
    writer.commit()
    with pytest.raises(DemoDataError, match="already published"):
        writer.write(_exam_rows(1))


def test_a_single_pupil_is_enough(tmp_path: Path) -> None:
    written = generate(tmp_path, pupils=1, traces_per_pupil=50)
    assert written[0].rows == 1
    assert read_dataset(tmp_path / "eleves").num_rows == 1


def test_the_package_imports_nothing_else_from_enclave() -> None:
    code = ("import json, sys, enclave.demo_data; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('enclave'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2]).stdout
    modules = json.loads(out)
    assert all(m == "enclave" or m.startswith("enclave.demo_data") for m in modules), modules
