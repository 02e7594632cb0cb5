"""The raw-zone catalogue entries: ``metadata.json`` shape, kinds, and agreement with the files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from enclave.demo_data import DATASETS, FORMAT, DatasetSpec
from enclave.demo_data.metadata import KINDS, UNITS
from enclave.demo_data.writer import ROWS_PER_FILE
from tests.demo_data.conftest import read_metadata

TOP_KEYS = ["format", "dataset", "label", "description", "unit", "pupil_id_variable",
            "provider", "synthetic", "seed", "rows", "files", "variables"]
EXPECTED_KINDS = {
    "ine": "direct_identifier", "statement_id": "direct_identifier",
    "sexe": "quasi_identifier", "date_naissance": "quasi_identifier",
    "code_commune": "quasi_identifier", "code_departement": "quasi_identifier",
    "academie": "quasi_identifier", "uai": "quasi_identifier", "secteur": "quasi_identifier",
    "niveau": "quasi_identifier", "ips": "quasi_identifier",
    "handicap": "sensitive", "boursier": "sensitive",
}
EXPECTED_UNITS = {"eleves": "pupil", "evaluations_reperes": "record", "examens": "record",
                  "traces_xapi": "event"}


@pytest.mark.parametrize("spec", DATASETS, ids=lambda s: s.dataset)
def test_metadata_has_the_raw_dataset_shape(modest_raw: Path, spec: DatasetSpec) -> None:
    meta = read_metadata(modest_raw / spec.dataset)
    assert list(meta) == TOP_KEYS
    assert meta["format"] == FORMAT
    assert meta["dataset"] == spec.dataset
    assert meta["unit"] == EXPECTED_UNITS[meta["dataset"]]
    assert meta["unit"] in UNITS
    assert meta["pupil_id_variable"] == "ine"
    assert meta["provider"] == "DEPP (données synthétiques)"
    assert meta["synthetic"] is True
    assert meta["seed"] == 20261128
    assert meta["rows"] == sum(f["rows"] for f in meta["files"])
    for var in meta["variables"]:
        assert list(var) == ["name", "type", "kind", "label", "description"]
        assert var["kind"] in KINDS
        assert var["kind"] == EXPECTED_KINDS.get(var["name"], "other"), var["name"]
        assert var["label"] and var["description"].endswith(".")


@pytest.mark.parametrize("spec", DATASETS, ids=lambda s: s.dataset)
def test_parquet_schema_and_files_match_the_metadata_exactly(modest_raw: Path,
                                                             spec: DatasetSpec) -> None:
    folder = modest_raw / spec.dataset
    meta = read_metadata(folder)
    declared = [(v["name"], v["type"]) for v in meta["variables"]]
    assert declared == [(f.name, str(f.type)) for f in spec.schema]
    for entry in meta["files"]:
        path = folder / entry["name"]
        assert [(f.name, str(f.type)) for f in pq.read_schema(path)] == declared
        assert pq.read_metadata(path).num_rows == entry["rows"] <= ROWS_PER_FILE
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]


def test_declared_types_are_the_agreed_ones() -> None:
    types = {v.name: str(v.type) for spec in DATASETS for v in spec.variables}
    assert types["date_naissance"] == "date32[day]"
    assert types["horodatage"] == "timestamp[us, tz=UTC]"
    assert types["annee"] == types["session"] == "int16"
    assert types["groupe_maitrise"] == "int8"
    assert types["duree_s"] == "int32"
    assert types["ips"] == types["score"] == types["note_moyenne"] == "double"  # str(float64)
    assert types["boursier"] == types["admis"] == types["succes"] == "bool"


def test_core_catalogue_loader_accepts_the_generated_raw_zone(modest_raw: Path) -> None:
    catalogue = pytest.importorskip("enclave.core.catalogue")
    specs = catalogue.scan_raw_zone(modest_raw)
    assert sorted(s.id for s in specs) == sorted(spec.dataset for spec in DATASETS)
