"""Extract builds with a spec, on both backends: filters and transformations in the files,
the spec and the risk report's hash in the manifest, k reached by local suppression, and an
extract below its target k refused (nothing visible) unless DEPP staff override it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from access_requests.workflow import ProjectStatus
from anonymization.risk import key_frequencies
from enclave.core.exceptions import PermissionDenied, ValidationError
from enclave.core.files import sha256_file
from enclave.provisioning.extracts import (
    BuiltExtract,
    KAnonymityRefused,
    build_extract,
    extract_root,
)
from enclave.provisioning.models import Extract
from enclave.provisioning.spec import ExtractSpec
from tests.workflows.factories import STAFF, Factory


@pytest.fixture
def factory(shared_factory: Factory) -> Factory:
    return shared_factory


VARIABLES = {
    "eleves": [(v, "x") for v in ("sexe", "niveau", "date_naissance", "code_commune", "ips",
                                  "secteur")],
    "evaluations_reperes": [("domaine", "x"), ("score", "x")],
}
QIS = ["sexe", "date_naissance", "code_commune"]


def _spec(**eleves: Any) -> ExtractSpec:
    rules = {"filters": [{"variable": "secteur", "equals": "public"}],
             "transforms": [{"variable": "date_naissance", "op": "year"},
                            {"variable": "code_commune", "op": "departement"},
                            {"variable": "ips", "op": "round", "base": 10},
                            {"variable": "secteur", "op": "drop"}],
             "quasi_identifiers": QIS, "k": 3, **eleves}
    return ExtractSpec.from_dict({"datasets": {"eleves": rules}})


def _build(factory: Factory, project_id: str, by: str = STAFF, **kwargs: Any) -> BuiltExtract:
    return build_extract(factory.enclave.db, factory.enclave.settings, factory.enclave.keys,
                         factory.actor(by), project_id, **kwargs)


def _rows(factory: Factory, project_id: str) -> int:
    with factory.enclave.db.sessions() as session:
        return len(session.execute(select(Extract.id).where(
            Extract.project_id == project_id)).all())


def _folders(factory: Factory, project_id: str) -> list[str]:
    root = extract_root(factory.enclave.settings, project_id)
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_filters_and_transformations_are_applied(factory: Factory) -> None:
    project_id = factory.project(ProjectStatus.APPROVED, variables=VARIABLES)
    built = _build(factory, project_id, spec=_spec(k=1))
    raw = pq.read_table(factory.enclave.settings.raw_dir / "eleves" / "part-00000.parquet")
    public = raw.filter(raw.column("secteur").to_numpy(zero_copy_only=False) == "public")
    table = pq.read_table(built.path / "eleves.parquet")
    assert table.column_names == ["eleve", "sexe", "niveau", "date_naissance", "code_commune",
                                  "ips"]
    assert table.num_rows == public.num_rows
    assert table.column("date_naissance").to_pylist() == [
        d.year for d in public.column("date_naissance").to_pylist()]
    assert table.column("code_commune").to_pylist() == [
        c[:3] if c.startswith("97") else c[:2] for c in public.column("code_commune").to_pylist()]
    assert all(v % 10 == 0 for v in table.column("ips").to_pylist() if v is not None)
    # The other dataset is built as before.
    evaluations = pq.read_table(built.path / "evaluations_reperes.parquet")
    assert evaluations.column_names == ["eleve", "domaine", "score"]
    files = {f["dataset"]: f for f in built.manifest["files"]}
    assert files["eleves"]["variables"] == table.column_names
    assert files["eleves"]["rows"] == table.num_rows
    assert built.manifest["extract_spec"] == _spec(k=1).to_dict()


def test_local_suppression_reaches_k_and_the_report_is_in_the_manifest(
        factory: Factory) -> None:
    project_id = factory.project(ProjectStatus.APPROVED, variables=VARIABLES)
    built = _build(factory, project_id, spec=_spec())
    report_path = built.path / "risk_report.json"
    assert built.manifest["risk_report"] == {
        "name": "risk_report.json", "sha256": sha256_file(report_path),
        "page": {"name": "risk_report.html",
                 "sha256": sha256_file(built.path / "risk_report.html")}}
    report = json.loads(report_path.read_text())
    eleves = report["tables"]["eleves"]
    assert set(report["tables"]) == {"eleves"}
    assert eleves["violations_before"] > 0  # 161 public pupils over many départements
    assert eleves["violations_after"] == 0
    assert sum(eleves["suppressions"].values()) > 0
    assert eleves["global_risk_after"]["expected_reidentifications"] \
        < eleves["global_risk_before"]["expected_reidentifications"]
    table = pq.read_table(built.path / "eleves.parquet")
    assert eleves["records"] == table.num_rows
    frame = table.select(QIS).to_pandas()
    assert key_frequencies(frame, QIS).fk.min() >= 3
    assert sum(frame[q].isna().sum() for q in QIS) == sum(eleves["suppressions"].values())
    files = {f["dataset"]: f for f in built.manifest["files"]}
    assert files["eleves"]["sha256"] == sha256_file(built.path / "eleves.parquet")


def test_below_target_k_is_refused_and_leaves_nothing(factory: Factory) -> None:
    project_id = factory.project(ProjectStatus.APPROVED, variables=VARIABLES)
    head = factory.audit_head()
    with pytest.raises(KAnonymityRefused, match="eleves"):
        _build(factory, project_id, spec=_spec(local_suppression=False))
    assert _rows(factory, project_id) == 0
    assert _folders(factory, project_id) == []
    # As for any failed build, the project key created on the way stays; nothing is published.
    assert "extract.published" not in [e.action for e in factory.audit_events_after(head)]


def test_an_override_needs_depp_staff(factory: Factory) -> None:
    project_id = factory.project(ProjectStatus.APPROVED, variables=VARIABLES)
    with pytest.raises(PermissionDenied):
        _build(factory, project_id, by="alice", spec=_spec(local_suppression=False),
               override_reason="Besoin de finesse géographique")
    with pytest.raises(ValidationError, match="override_reason"):
        _build(factory, project_id, spec=_spec(local_suppression=False), override_reason=" ")
    assert _folders(factory, project_id) == []


def test_depp_staff_override_publishes_and_is_audited(factory: Factory) -> None:
    project_id = factory.project(ProjectStatus.APPROVED, variables=VARIABLES)
    head = factory.audit_head()
    built = _build(factory, project_id, spec=_spec(local_suppression=False),
                   override_reason="Accès sécurisé renforcé validé par le comité")
    assert _folders(factory, project_id) == ["v1"]
    report = json.loads((built.path / "risk_report.json").read_text())
    violations = report["tables"]["eleves"]["violations_after"]
    assert violations > 0
    assert report["tables"]["eleves"]["suppressions"] == dict.fromkeys(QIS, 0)
    override = {"reason": "Accès sécurisé renforcé validé par le comité", "by": STAFF,
                "violations": {"eleves": violations}}
    assert report["override"] == override
    assert built.manifest["override"] == override
    events = [e for e in factory.audit_events_after(head) if e.action == "extract.published"]
    assert len(events) == 1
    details = events[0].details
    details = json.loads(details) if isinstance(details, str) else details
    assert details["override"] == override


def test_a_spec_on_unapproved_variables_is_refused(factory: Factory) -> None:
    project_id = factory.project(ProjectStatus.APPROVED, variables=VARIABLES)
    spec = ExtractSpec.from_dict({"datasets": {"eleves": {
        "filters": [{"variable": "academie", "equals": "Lyon"}]}}})
    with pytest.raises(ValidationError, match=r"filters\[0\]\.variable: 'academie'"):
        _build(factory, project_id, spec=spec)
    assert _rows(factory, project_id) == 0
    assert _folders(factory, project_id) == []


def test_no_spec_writes_no_risk_report(factory: Factory, tmp_path: Path) -> None:
    built = factory.extract(factory.project(ProjectStatus.APPROVED, variables=VARIABLES))
    assert not (built.path / "risk_report.json").exists()
    assert "extract_spec" not in built.manifest


def test_a_filter_keeping_no_row_writes_an_empty_transformed_file(factory: Factory) -> None:
    project_id = factory.project(ProjectStatus.APPROVED, variables=VARIABLES)
    built = _build(factory, project_id,
                   spec=_spec(filters=[{"variable": "niveau", "equals": "aucun"}]))
    table = pq.read_table(built.path / "eleves.parquet")
    assert table.num_rows == 0
    assert table.column_names == ["eleve", "sexe", "niveau", "date_naissance", "code_commune",
                                  "ips"]
    assert table.schema.field("date_naissance").type == pa.int16()
    report = json.loads((built.path / "risk_report.json").read_text())
    assert report["tables"]["eleves"]["records"] == 0
    assert report["tables"]["eleves"]["violations_after"] == 0
