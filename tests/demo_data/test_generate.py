"""The generation run: determinism, chunking, progress, bad arguments and atomic publication."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from enclave.demo_data import DATASETS, DemoDataError, WrittenDataset, generate
from enclave.demo_data import generator as generator_module
from tests.demo_data.conftest import read_all, read_dataset, read_metadata

IDS = [spec.dataset for spec in DATASETS]


def _hidden(raw: Path) -> list[str]:
    return [p.name for p in raw.iterdir() if p.name.startswith(".")]


def test_same_seed_and_arguments_give_identical_data_and_files(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    generate(a, pupils=3000, seed=7, traces_per_pupil=5)
    generate(b, pupils=3000, seed=7, traces_per_pupil=5)
    tables_a, tables_b = read_all(a), read_all(b)
    assert list(tables_a) == IDS
    for dataset in IDS:
        assert tables_a[dataset].equals(tables_b[dataset]), dataset
        # the metadata lists every file's SHA-256: equal metadata means byte-identical files
        assert (a / dataset / "metadata.json").read_bytes() == \
            (b / dataset / "metadata.json").read_bytes()


def test_another_seed_gives_other_data(tmp_path: Path) -> None:
    generate(tmp_path / "a", pupils=1000, seed=1, traces_per_pupil=2)
    generate(tmp_path / "b", pupils=1000, seed=2, traces_per_pupil=2)
    ine_a = set(read_dataset(tmp_path / "a" / "eleves")["ine"].to_pylist())
    ine_b = set(read_dataset(tmp_path / "b" / "eleves")["ine"].to_pylist())
    assert len(ine_a & ine_b) < 10


def test_chunk_size_bounds_memory_but_does_not_change_the_data(tmp_path: Path) -> None:
    generate(tmp_path / "one", pupils=5000, seed=3, traces_per_pupil=4)
    generate(tmp_path / "many", pupils=5000, seed=3, traces_per_pupil=4, chunk_pupils=1)
    one, many = read_all(tmp_path / "one"), read_all(tmp_path / "many")
    for dataset in IDS:
        assert one[dataset].equals(many[dataset]), dataset


def test_generate_returns_what_it_wrote(tmp_path: Path) -> None:
    written = generate(tmp_path, pupils=1000, traces_per_pupil=3)
    assert [w.dataset for w in written] == IDS
    for w in written:
        assert isinstance(w, WrittenDataset)
        assert w.path == tmp_path / w.dataset
        meta = read_metadata(w.path)
        assert w.rows == meta["rows"] == read_dataset(w.path).num_rows
        assert w.files == tuple(f["name"] for f in meta["files"])
        assert sorted(p.name for p in w.path.iterdir()) == sorted([*w.files, "metadata.json"])
    assert written[0].rows == 1000


def test_progress_reports_growing_row_counts_of_every_dataset(tmp_path: Path) -> None:
    calls: list[tuple[str, int]] = []
    written = generate(tmp_path, pupils=5000, traces_per_pupil=2, chunk_pupils=2048,
                       progress=lambda dataset, rows: calls.append((dataset, rows)))
    for w in written:
        rows = [r for d, r in calls if d == w.dataset]
        assert rows == sorted(rows)
        assert rows[-1] == w.rows
    assert len([d for d, _ in calls if d == "eleves"]) == math.ceil(5000 / 2048)


def test_zero_traces_per_pupil_writes_an_empty_dataset_with_its_schema(tmp_path: Path) -> None:
    written = {w.dataset: w for w in generate(tmp_path, pupils=1000, traces_per_pupil=0)}
    assert written["traces_xapi"].rows == 0
    table = read_dataset(tmp_path / "traces_xapi")
    assert table.num_rows == 0
    assert table.column_names[0] == "statement_id"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"pupils": 0}, "pupils must be between 1"),
        ({"pupils": -5}, "pupils must be between 1"),
        ({"pupils": 10.5}, "pupils must be an integer"),
        ({"pupils": True}, "pupils must be an integer"),
        ({"pupils": "100"}, "pupils must be an integer"),
        ({"pupils": 10**9}, "pupils must be between 1"),
        ({"seed": -1}, "seed must be >= 0"),
        ({"seed": 1.0}, "seed must be an integer"),
        ({"traces_per_pupil": -1.0}, "traces_per_pupil must be a finite number"),
        ({"traces_per_pupil": float("nan")}, "traces_per_pupil must be a finite number"),
        ({"traces_per_pupil": float("inf")}, "traces_per_pupil must be a finite number"),
        ({"traces_per_pupil": "20"}, "traces_per_pupil must be a number"),
        ({"chunk_pupils": 0}, "chunk_pupils must be >= 1"),
        ({"progress": 3}, "progress must be a callable"),
    ],
)
def test_bad_arguments_raise_a_clear_value_error_and_write_nothing(
        tmp_path: Path, arguments: dict[str, object], message: str) -> None:
    raw = tmp_path / "raw"
    with pytest.raises(ValueError, match=message):
        generate(raw, **arguments)  # type: ignore[arg-type]
    assert not raw.exists()


def test_raw_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "raw"
    target.write_text("not a folder")
    with pytest.raises(DemoDataError, match="not a folder"):
        generate(target, pupils=10)


def test_dataset_name_taken_by_a_file_is_refused_before_any_write(tmp_path: Path) -> None:
    (tmp_path / "examens").write_text("someone else's file")
    with pytest.raises(DemoDataError, match="not a dataset folder"):
        generate(tmp_path, pupils=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["examens"]


def test_existing_datasets_are_replaced_whole_and_no_temporary_folder_is_left(
        tmp_path: Path) -> None:
    generate(tmp_path, pupils=1000, seed=1, traces_per_pupil=1)
    (tmp_path / "eleves" / "stale.parquet").write_bytes(b"left over")
    generate(tmp_path, pupils=1500, seed=2, traces_per_pupil=1)
    assert not (tmp_path / "eleves" / "stale.parquet").exists()
    assert read_metadata(tmp_path / "eleves")["seed"] == 2
    assert read_dataset(tmp_path / "eleves").num_rows == 1500
    assert _hidden(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(IDS)


def test_a_crash_during_generation_leaves_the_published_datasets_untouched(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generate(tmp_path, pupils=1000, seed=1, traces_per_pupil=1)
    before = {d: (tmp_path / d / "metadata.json").read_bytes() for d in IDS}

    def crash(rows: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(generator_module, "traces_table", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        generate(tmp_path, pupils=5000, seed=2)
    assert {d: (tmp_path / d / "metadata.json").read_bytes() for d in IDS} == before
    assert read_dataset(tmp_path / "eleves").num_rows == 1000
    assert _hidden(tmp_path) == []
