"""The walking skeleton end to end, on SQLite and PostgreSQL: project to signed release."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select, text

from access_requests.models import Project
from enclave import demo
from enclave.core import audit
from enclave.core.context import Enclave
from output_control.review.workflow import verify_package


@pytest.fixture
def skeleton(enclave: Enclave) -> demo.SkeletonResult:
    demo.generate_demo_data(enclave, pupils=400, traces_per_pupil=3)
    return demo.walking_skeleton(enclave, log=lambda _line: None)


def test_skeleton_releases_a_signed_package_and_the_chain_verifies(
        enclave: Enclave, skeleton: demo.SkeletonResult) -> None:
    assert skeleton.audit_ok
    public = (enclave.settings.keys_dir / "signing-key.pub").read_text().strip()
    assert verify_package(skeleton.release_dir, public)
    manifest = json.loads((skeleton.release_dir / "manifest.json").read_text())
    assert [f["name"] for f in manifest["files"]] == ["niveau_par_sexe.csv"]
    assert {r["reviewer"] for r in manifest["reviews"]} == {"emma", "farid"}
    with enclave.db.sessions() as session:
        project = session.get(Project, skeleton.project_id)
        assert project is not None and project.status == "active"
        actions = list(session.execute(select(audit.AuditEvent.action)
                                       .order_by(audit.AuditEvent.seq)).scalars())
    for action in ("project.created", "project.approved", "key.created", "extract.published",
                   "agreement.accepted", "project.activated", "output.submitted",
                   "output.reviewed", "output.approved", "output.released"):
        assert action in actions


def test_extract_holds_only_approved_variables_and_no_ine(
        enclave: Enclave, skeleton: demo.SkeletonResult) -> None:
    table = pq.read_table(skeleton.extract_dir / "eleves.parquet")
    assert table.column_names == ["eleve", "sexe", "niveau", "secteur", "academie"]
    raw = pq.read_table(enclave.settings.raw_dir / "eleves" / "part-00000.parquet",
                        columns=["ine"])
    ines = set(raw.column("ine").to_pylist())
    pseudonyms = table.column("eleve").to_pylist()
    assert not ines & set(pseudonyms)
    assert all(len(p) == 26 for p in pseudonyms)
    assert len(set(pseudonyms)) == table.num_rows  # one pupil, one pseudonym


def test_released_bytes_are_exactly_the_researchers_approved_file(
        enclave: Enclave, skeleton: demo.SkeletonResult) -> None:
    outputs = enclave.settings.projects_dir / skeleton.project_id / "outputs"
    released = skeleton.release_dir / "files" / "niveau_par_sexe.csv"
    assert released.read_bytes() == (outputs / "niveau_par_sexe.csv").read_bytes()


def test_chain_fails_verification_after_a_row_is_edited(
        enclave: Enclave, skeleton: demo.SkeletonResult) -> None:
    with enclave.db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET details = '{}' WHERE action = "
                          "'output.released'"))
    result = enclave.chain.verify()
    assert not result.ok
    with enclave.db.sessions() as session:
        seq = session.execute(select(audit.AuditEvent.seq).where(
            audit.AuditEvent.action == "output.released")).scalar()
    assert result.first_bad_seq == seq


def test_release_package_tampering_is_detected(
        enclave: Enclave, skeleton: demo.SkeletonResult) -> None:
    public = (enclave.settings.keys_dir / "signing-key.pub").read_text().strip()
    target = skeleton.release_dir / "files" / "niveau_par_sexe.csv"
    target.chmod(0o640)
    target.write_text("sexe,F,M\n")
    assert not verify_package(skeleton.release_dir, public)


def test_skeleton_refuses_to_run_without_demo_data(enclave: Enclave, tmp_path: Path) -> None:
    from enclave.core.exceptions import NotFound

    with pytest.raises(NotFound, match="enclave demo-data"):
        demo.walking_skeleton(enclave, log=lambda _line: None)
