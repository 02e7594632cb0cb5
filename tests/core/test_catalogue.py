"""The catalogue: raw-zone datasets load only when their files match their metadata exactly."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from enclave.core import audit
from enclave.core.catalogue import (
    METADATA_FILE,
    Dataset,
    DatasetUnit,
    Variable,
    VariableKind,
    dataset_spec,
    list_variables,
    load_catalogue,
)
from enclave.core.context import Enclave
from enclave.core.exceptions import CatalogueError, NotFound, PermissionDenied
from enclave.core.policy import Actor, Role

STAFF = Actor("dora", frozenset({Role.DEPP_STAFF}))
NAME = "eleves_test"

VARIABLES: list[tuple[str, VariableKind, str]] = [
    ("ine", VariableKind.DIRECT_IDENTIFIER, "Identifiant national élève (INE)"),
    ("uai", VariableKind.QUASI_IDENTIFIER, "Établissement (UAI)"),
    ("sexe", VariableKind.QUASI_IDENTIFIER, "Sexe de l'élève"),
    ("score_maths", VariableKind.SENSITIVE, "Score en mathématiques, évaluation de 6e"),
    ("annee", VariableKind.OTHER, "Année scolaire"),
]


def _table(offset: int = 0, rows: int = 5) -> pa.Table:
    ids = range(offset, offset + rows)
    return pa.table({
        "ine": pa.array([f"{i:09d}AB" for i in ids], pa.string()),
        "uai": pa.array([f"0750{i % 3:03d}X" for i in ids], pa.string()),
        "sexe": pa.array(["F" if i % 2 else "M" for i in ids], pa.string()),
        "score_maths": pa.array([250.0 + i for i in ids], pa.float64()),
        "annee": pa.array([2025] * rows, pa.int64()),
    })


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_part(folder: Path, meta: dict[str, Any], index: int, table: pa.Table) -> None:
    """Write part ``index`` and record its true hash and row count in the metadata."""
    entry = meta["files"][index]
    pq.write_table(table, folder / entry["name"])
    entry["sha256"] = _sha256(folder / entry["name"])
    entry["rows"] = table.num_rows
    meta["rows"] = sum(f["rows"] for f in meta["files"])


def _write_meta(folder: Path, meta: dict[str, Any]) -> None:
    (folder / METADATA_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=1),
                                        encoding="utf-8")


def make_dataset(raw_dir: Path, name: str = NAME, parts: int = 1) -> tuple[Path, dict[str, Any]]:
    """A valid raw-zone dataset of ``parts`` Parquet files of 5 rows each."""
    folder = raw_dir / name
    folder.mkdir(parents=True)
    schema = _table().schema
    meta: dict[str, Any] = {
        "format": "enclave-raw-dataset/1", "dataset": name,
        "label": "Élèves de 6e (test)", "description": "Évaluations nationales, données fictives",
        "unit": "pupil", "pupil_id_variable": "ine", "provider": "DEPP", "synthetic": True,
        "rows": 0, "files": [{"name": f"part-{i}.parquet", "rows": 0, "sha256": ""}
                             for i in range(parts)],
        "variables": [{"name": n, "type": str(schema.field(n).type), "kind": k.value,
                       "label": label, "description": f"description de {n}"}
                      for n, k, label in VARIABLES],
    }
    for i in range(parts):
        _write_part(folder, meta, i, _table(offset=10 * i))
    _write_meta(folder, meta)
    return folder, meta


def _counts(enclave: Enclave) -> tuple[int, int, int]:
    with enclave.db.sessions() as session:
        return tuple(session.execute(select(func.count()).select_from(model)).scalar_one()
                     for model in (Dataset, Variable, audit.AuditEvent))  # type: ignore[return-value]


def _load(enclave: Enclave, actor: Actor = STAFF) -> list[Any]:
    with enclave.db.transaction() as session:
        return load_catalogue(session, actor, enclave.settings.raw_dir)


def _refused_load(enclave: Enclave) -> str:
    """Load, expecting a refusal caught inside the transaction (which then commits)."""
    with enclave.db.transaction() as session, pytest.raises(CatalogueError) as info:
        load_catalogue(session, STAFF, enclave.settings.raw_dir)
    return str(info.value)


# -- a good load ----------------------------------------------------------------------------------

def test_valid_dataset_is_loaded_with_kinds_and_french_labels(enclave: Enclave) -> None:
    _, meta = make_dataset(enclave.settings.raw_dir, parts=2)
    (spec,) = _load(enclave)
    assert spec.id == NAME and spec.rows == 10 and spec.unit is DatasetUnit.PUPIL
    with enclave.db.sessions() as session:
        row = session.get(Dataset, NAME)
        assert row is not None
        assert (row.rows, row.unit, row.pupil_id_variable, row.synthetic) == (10, "pupil", "ine",
                                                                             True)
        assert row.label == "Élèves de 6e (test)"
        assert [f["name"] for f in json.loads(row.files)] == ["part-0.parquet", "part-1.parquet"]
        variables = list_variables(session, NAME)
        event = session.execute(select(audit.AuditEvent)).scalar_one()
    assert [(v.name, VariableKind(v.kind), v.label) for v in variables] == VARIABLES
    assert [v.type for v in variables] == ["string", "string", "string", "double", "int64"]
    assert variables[0].description == "description de ine"
    assert (event.action, event.object_id, event.actor) == ("catalogue.dataset_loaded", NAME,
                                                            "dora")
    assert json.loads(event.details) == {"rows": 10, "variables": 5,
                                         "metadata_sha256": row.metadata_sha256}
    assert row.metadata_sha256 == _sha256(enclave.settings.raw_dir / NAME / METADATA_FILE)
    assert meta["rows"] == 10


def test_reloading_replaces_variables_and_is_audited_again(sqlite_enclave: Enclave) -> None:
    folder, meta = make_dataset(sqlite_enclave.settings.raw_dir)
    _load(sqlite_enclave)
    meta["variables"][2]["label"] = "Sexe déclaré"
    _write_meta(folder, meta)
    _load(sqlite_enclave)
    assert _counts(sqlite_enclave) == (1, 5, 2)
    with sqlite_enclave.db.sessions() as session:
        assert list_variables(session, NAME)[2].label == "Sexe déclaré"


def test_hidden_folders_and_stray_files_in_the_raw_zone_are_ignored(
        sqlite_enclave: Enclave) -> None:
    raw = sqlite_enclave.settings.raw_dir
    make_dataset(raw)
    (raw / ".incoming").mkdir()
    (raw / "README.txt").write_text("dépôt")
    assert [s.id for s in _load(sqlite_enclave)] == [NAME]


def test_missing_raw_zone_says_to_run_init(sqlite_enclave: Enclave, tmp_path: Path) -> None:
    with sqlite_enclave.db.transaction() as session, \
            pytest.raises(CatalogueError, match="enclave init"):
        load_catalogue(session, STAFF, tmp_path / "nowhere")


def test_only_staff_admins_or_the_system_load_the_catalogue(sqlite_enclave: Enclave) -> None:
    make_dataset(sqlite_enclave.settings.raw_dir)
    researcher = Actor("rita", frozenset({Role.RESEARCHER}))
    with sqlite_enclave.db.transaction() as session, pytest.raises(PermissionDenied):
        load_catalogue(session, researcher, sqlite_enclave.settings.raw_dir)
    assert _counts(sqlite_enclave) == (0, 0, 0)


# -- every mismatch is refused, naming the dataset, and nothing is written -------------------------

Breaker = Callable[[Path, dict[str, Any]], None]


def _drop_column(name: str) -> Breaker:
    def breaker(folder: Path, meta: dict[str, Any]) -> None:
        _write_part(folder, meta, 0, _table().drop_columns([name]))
    return breaker


def _retype_score(folder: Path, meta: dict[str, Any]) -> None:
    table = _table()
    scores = pa.array([str(v) for v in table["score_maths"].to_pylist()], pa.string())
    _write_part(folder, meta, 0, table.set_column(3, "score_maths", scores))


def _extra_column(folder: Path, meta: dict[str, Any]) -> None:
    _write_part(folder, meta, 0, _table().append_column("commune", pa.array(["75056"] * 5)))


def _reordered_columns(folder: Path, meta: dict[str, Any]) -> None:
    _write_part(folder, meta, 0, _table().select(["uai", "ine", "sexe", "score_maths", "annee"]))


def _not_parquet(folder: Path, meta: dict[str, Any]) -> None:
    path = folder / "part-0.parquet"
    path.write_bytes(b"ine;uai\n000000001AB;0750001X\n")
    meta["files"][0]["sha256"] = _sha256(path)


def _set(path: str, value: Any) -> Breaker:
    """Set ``meta[...]`` at a dotted path such as ``files.0.rows``."""
    def breaker(_folder: Path, meta: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = meta
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    return breaker


def _both(*breakers: Breaker) -> Breaker:
    def breaker(folder: Path, meta: dict[str, Any]) -> None:
        for b in breakers:
            b(folder, meta)
    return breaker


def _duplicate_variable(_folder: Path, meta: dict[str, Any]) -> None:
    meta["variables"].append(copy.deepcopy(meta["variables"][1]))


def _file_listed_twice(_folder: Path, meta: dict[str, Any]) -> None:
    meta["files"].append(copy.deepcopy(meta["files"][0]))
    meta["rows"] *= 2


def _delete(name: str) -> Breaker:
    def breaker(folder: Path, _meta: dict[str, Any]) -> None:
        (folder / name).unlink()
    return breaker


MISMATCHES: dict[str, tuple[Breaker, str]] = {
    "wrong-sha256": (_set("files.0.sha256", "0" * 64), "SHA-256 differs"),
    "wrong-row-count": (_both(_set("files.0.rows", 6), _set("rows", 6)),
                        "has 5 rows, metadata says 6"),
    "rows-not-the-sum": (_set("rows", 7), r"rows \(7\) is not the sum"),
    "column-of-another-type": (_retype_score, r"schema does not match.*score_maths.*double"),
    "missing-column": (_drop_column("sexe"), "schema does not match.*sexe"),
    "missing-last-column": (_drop_column("annee"), "4 columns instead of 5"),
    "extra-column": (_extra_column, "6 columns instead of 5"),
    "reordered-columns": (_reordered_columns, "schema does not match.*ine.*uai"),
    "missing-part-file": (_delete("part-0.parquet"), "part-0.parquet: missing"),
    "not-parquet": (_not_parquet, "not a readable Parquet file"),
    "wrong-format": (_set("format", "enclave-raw-dataset/2"), "format must be"),
    "unknown-kind": (_set("variables.1.kind", "secret"), r"uai\): kind must be one of"),
    "invalid-unit": (_set("unit", "school"), "unit must be one of pupil, record, event"),
    "duplicated-variable": (_duplicate_variable, "variable 'uai' declared twice"),
    "file-name-with-slash": (_set("files.0.name", "../autre/part-0.parquet"),
                             "must be a plain"),
    "hidden-file-name": (_set("files.0.name", ".part-0.parquet"), "must be a plain"),
    "file-not-parquet-name": (_set("files.0.name", "part-0.csv"), "must be a plain"),
    "file-listed-twice": (_file_listed_twice, "listed twice"),
    "pupil-id-not-declared": (_set("pupil_id_variable", "numero_eleve"),
                              "'numero_eleve' is not a declared variable"),
    "folder-differs-from-id": (_set("dataset", "autres_eleves"), "not its folder's name"),
    "no-variables": (_set("variables", []), "declares no variables"),
    "no-files": (_both(_set("files", []), _set("rows", 0)), "lists no files"),
    "label-not-text": (_set("label", 12), "'label' must be str"),
    "rows-not-integer": (_set("rows", True), "'rows' must be int"),
    "variable-without-type": (_set("variables.0", {"name": "ine", "kind": "other",
                                                   "label": "INE"}), "missing key 'type'"),
}


@pytest.mark.parametrize("case", list(MISMATCHES))
def test_mismatch_is_refused_naming_the_dataset_and_nothing_is_written(
        sqlite_enclave: Enclave, case: str) -> None:
    breaker, expected = MISMATCHES[case]
    folder, meta = make_dataset(sqlite_enclave.settings.raw_dir)
    breaker(folder, meta)
    _write_meta(folder, meta)
    message = _refused_load(sqlite_enclave)
    assert f"raw dataset {NAME}" in message
    assert re.search(expected, message), message
    assert _counts(sqlite_enclave) == (0, 0, 0)


@pytest.mark.parametrize(("content", "expected"), [
    (None, "no metadata.json"), (b"{not json", "not valid UTF-8 JSON"),
    (b"\xff\xfe{}", "not valid UTF-8 JSON"), (b"[1, 2]", "format must be")],
    ids=["missing", "invalid-json", "not-utf8", "not-an-object"])
def test_unreadable_metadata_is_refused(sqlite_enclave: Enclave, content: bytes | None,
                                        expected: str) -> None:
    folder, _ = make_dataset(sqlite_enclave.settings.raw_dir)
    if content is None:
        (folder / METADATA_FILE).unlink()
    else:
        (folder / METADATA_FILE).write_bytes(content)
    message = _refused_load(sqlite_enclave)
    assert f"raw dataset {NAME}" in message and expected in message
    assert _counts(sqlite_enclave) == (0, 0, 0)


def test_one_bad_dataset_refuses_the_whole_load(enclave: Enclave) -> None:
    raw = enclave.settings.raw_dir
    make_dataset(raw, "a_bon")
    _load(enclave)
    before = _counts(enclave)
    make_dataset(raw, "b_bon")
    folder, meta = make_dataset(raw, "c_mauvais")
    meta["files"][0]["sha256"] = "f" * 64
    _write_meta(folder, meta)
    message = _refused_load(enclave)
    assert "raw dataset c_mauvais" in message
    assert _counts(enclave) == before == (1, 5, 1)
    with enclave.db.sessions() as session:
        assert session.get(Dataset, "b_bon") is None


# -- using a catalogued dataset --------------------------------------------------------------------

def test_dataset_spec_of_an_unchanged_dataset(sqlite_enclave: Enclave) -> None:
    make_dataset(sqlite_enclave.settings.raw_dir, parts=2)
    _load(sqlite_enclave)
    with sqlite_enclave.db.sessions() as session:
        spec = dataset_spec(session, sqlite_enclave.settings.raw_dir, NAME)
        with pytest.raises(NotFound, match="inconnu"):
            dataset_spec(session, sqlite_enclave.settings.raw_dir, "inconnu")
    assert [p.name for p in spec.part_paths()] == ["part-0.parquet", "part-1.parquet"]
    assert spec.variable("uai").kind is VariableKind.QUASI_IDENTIFIER
    with pytest.raises(CatalogueError, match=r"no variable 'ips'.*ine, uai"):
        spec.variable("ips")


def test_dataset_spec_refuses_metadata_changed_since_loading(sqlite_enclave: Enclave) -> None:
    folder, meta = make_dataset(sqlite_enclave.settings.raw_dir)
    _load(sqlite_enclave)
    meta["variables"][1]["kind"] = VariableKind.OTHER.value  # a quiet downgrade
    _write_meta(folder, meta)
    with sqlite_enclave.db.sessions() as session, \
            pytest.raises(CatalogueError, match=f"{NAME} changed since it was catalogued"):
        dataset_spec(session, sqlite_enclave.settings.raw_dir, NAME)


def test_dataset_spec_refuses_a_part_file_replaced_since_loading(
        sqlite_enclave: Enclave) -> None:
    folder, _ = make_dataset(sqlite_enclave.settings.raw_dir)
    _load(sqlite_enclave)
    pq.write_table(_table(offset=100), folder / "part-0.parquet")  # same schema and rows
    with sqlite_enclave.db.sessions() as session, \
            pytest.raises(CatalogueError, match="SHA-256 differs"):
        dataset_spec(session, sqlite_enclave.settings.raw_dir, NAME)
