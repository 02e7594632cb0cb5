"""A project's life: suspension, reinstatement, revocation, expiry and closure with its
certificate of destruction."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from access_requests import lifecycle
from access_requests.exceptions import FieldError, StaleVersion
from access_requests.machine import ProjectStatus
from access_requests.models import Notification
from enclave.core.exceptions import InvalidTransition, KeyStoreError, PermissionDenied
from enclave.core.keystore import ProjectKey
from enclave.provisioning.extracts import current_extract
from enclave.provisioning.models import Extract
from output_control.review.pseudonym_index import INDEX_FOLDER, ExtractRef, build_index
from tests.access_requests.conftest import snapshot
from tests.access_requests.helpers import version
from tests.workflows.factories import Factory

S = ProjectStatus


def test_suspend_reinstate_revoke(factory: Factory) -> None:
    project_id = factory.project(S.ACTIVE)
    seen = version(factory, project_id)
    with factory.enclave.db.transaction() as session:
        lifecycle.suspend(session, factory.actor("claire"), project_id,
                          reason="Incident signalé", version=seen - 1)  # closing: never stale
    assert factory.project_row(project_id) == (S.SUSPENDED, seen + 1)
    with pytest.raises(StaleVersion), factory.enclave.db.transaction() as session:
        lifecycle.reinstate(session, factory.actor("david"), project_id, version=seen)
    with factory.enclave.db.transaction() as session:
        lifecycle.reinstate(session, factory.actor("david"), project_id, version=seen + 1)
    assert factory.project_row(project_id)[0] == S.ACTIVE
    with pytest.raises(FieldError) as info, factory.enclave.db.transaction() as session:
        lifecycle.revoke(session, factory.actor("claire"), project_id, reason="")
    assert info.value.field == "reason"
    with pytest.raises(PermissionDenied, match="dora is a member"), \
            factory.enclave.db.transaction() as session:
        lifecycle.revoke(session, factory.actor("dora"), project_id, reason="Abus")
    with factory.enclave.db.transaction() as session:
        lifecycle.revoke(session, factory.actor("claire"), project_id, reason="Abus constaté")
    assert factory.project_row(project_id)[0] == S.REVOKED
    with factory.enclave.db.sessions() as session:
        notified = set(session.execute(select(Notification.event).where(
            Notification.project_id == project_id, Notification.recipient == "bruno")).scalars())
    assert {"project.suspended", "project.reinstated", "project.revoked"} <= notified


def test_expiry_is_automatic_idempotent_and_by_the_system(factory: Factory) -> None:
    active = factory.project(S.ACTIVE)
    suspended = factory.project(S.SUSPENDED)
    approved = factory.project(S.APPROVED)
    draft = factory.project(S.DRAFT)
    with factory.enclave.db.sessions() as session:
        end = session.get(lifecycle.Project, active)
        assert end is not None
        end_date = end.end_date
    assert lifecycle.expire_due(factory.enclave.db, today=end_date) == []
    head = factory.audit_head()
    after_end = end_date + timedelta(days=1)
    assert sorted(lifecycle.expire_due(factory.enclave.db, today=after_end)) == sorted(
        [active, suspended, approved])
    assert lifecycle.expire_due(factory.enclave.db, today=after_end) == []
    events = factory.audit_events_after(head)
    assert {(e.action, e.actor) for e in events} == {("project.expired", "system")}
    assert len(events) == 3
    assert factory.project_row(draft)[0] == S.DRAFT
    with pytest.raises(InvalidTransition), factory.enclave.db.transaction() as session:
        lifecycle.reinstate(session, factory.actor("claire"), suspended,
                            version=version(factory, suspended))


def test_closing_deletes_the_extract_destroys_the_key_and_certifies_it(
        factory: Factory) -> None:
    project_id = factory.project(S.ACTIVE)
    built = current_extract(factory.enclave.db, project_id)
    assert built is not None
    folder = factory.enclave.settings.projects_dir / project_id / "extract" / "v1"
    names = sorted(p.name for p in folder.iterdir())
    head = factory.audit_head()
    with factory.enclave.db.transaction() as session:
        certificate = lifecycle.close_project(session, factory.enclave.keys,
                                              factory.actor("claire"), project_id,
                                              reason="Fin des travaux", version=99)
        assert folder.exists()  # deleted only once the closure has committed
    assert not folder.exists()
    assert factory.project_row(project_id)[0] == S.CLOSED
    assert sorted(f["path"].rsplit("/", 1)[1] for f in certificate.files) == names
    assert all(len(f["sha256"]) == 64 for f in certificate.files)
    with factory.enclave.db.sessions() as session:
        keys = list(session.execute(select(ProjectKey).where(
            ProjectKey.project_id == project_id)).scalars())
        assert [k.key_id for k in keys] == list(certificate.key_ids)
        assert all(k.wrapped is None and k.destroyed_at is not None for k in keys)
        with pytest.raises(KeyStoreError, match="destroyed"):
            factory.enclave.keys.project_key(session, project_id)
    events = factory.audit_events_after(head)
    assert [e.action for e in events] == ["key.destroyed", "project.closed",
                                          "project.destruction_certified"]
    cert = events[-1]
    assert (cert.seq, cert.actor, cert.object_type) == (certificate.audit_seq, "claire",
                                                        "destruction_certificate")
    details = json.loads(cert.details)
    assert details["key_ids"] == list(certificate.key_ids)
    assert details["files"] == [dict(f) for f in certificate.files]
    assert details["closed_by"] == "claire" and details["extract_versions"] == [1]
    assert factory.enclave.chain.verify().ok
    assert lifecycle.finish_pending_destruction(factory.enclave.db) == []


def test_closing_certifies_and_deletes_the_output_checks_pseudonym_index(
        sqlite_factory: Factory) -> None:
    factory = sqlite_factory
    project_id = factory.project(S.ACTIVE)
    with factory.enclave.db.sessions() as session:
        (row,) = session.execute(select(Extract).where(Extract.project_id == project_id)).scalars()
        extract = ExtractRef(row.project_id, row.version, Path(row.path), row.manifest_sha256)
    index = build_index(extract)
    assert index.exists()
    with factory.enclave.db.transaction() as session:
        certificate = lifecycle.close_project(session, factory.enclave.keys,
                                              factory.actor("claire"), project_id, reason="Fin")
    assert not index.parent.exists()
    assert f"extract/{INDEX_FOLDER}/{index.name}" in {f["path"] for f in certificate.files}


def test_a_crash_leaving_the_pseudonym_index_is_finished_later(sqlite_factory: Factory) -> None:
    factory = sqlite_factory
    project_id = factory.project(S.ACTIVE)
    with factory.enclave.db.sessions() as session:
        (row,) = session.execute(select(Extract).where(Extract.project_id == project_id)).scalars()
        extract = ExtractRef(row.project_id, row.version, Path(row.path), row.manifest_sha256)
    index_folder = build_index(extract).parent
    keep = index_folder.parent / "kept-index"
    shutil.copytree(index_folder, keep)
    with factory.enclave.db.transaction() as session:
        lifecycle.close_project(session, factory.enclave.keys, factory.actor("claire"),
                                project_id, reason="Fin")
    keep.rename(index_folder)  # as if the process died before deleting the index
    assert lifecycle.finish_pending_destruction(factory.enclave.db) == [str(index_folder)]
    assert not index_folder.exists()


def test_a_closure_that_rolls_back_deletes_nothing(factory: Factory) -> None:
    project_id = factory.project(S.SUSPENDED)
    before = snapshot(factory)
    with pytest.raises(RuntimeError), factory.enclave.db.transaction() as session:
        lifecycle.close_project(session, factory.enclave.keys, factory.actor("claire"),
                                project_id, reason="Fin")
        raise RuntimeError("crash before the commit")
    assert snapshot(factory) == before
    with factory.enclave.db.sessions() as session:
        assert factory.enclave.keys.project_key(session, project_id)


@pytest.mark.parametrize(("status", "who", "error"), [
    (S.APPROVED, "claire", InvalidTransition), (S.REJECTED, "claire", InvalidTransition),
    (S.ACTIVE, "dora", PermissionDenied), (S.ACTIVE, "alice", PermissionDenied),
    (S.ACTIVE, "system", PermissionDenied), (S.ACTIVE, "gaelle", PermissionDenied)])
def test_closure_refusals_change_nothing(sqlite_factory: Factory, status: S, who: str,
                                         error: type[Exception]) -> None:
    project_id = sqlite_factory.project(status)
    before = snapshot(sqlite_factory)
    with pytest.raises(error), sqlite_factory.enclave.db.transaction() as session:
        lifecycle.close_project(session, sqlite_factory.enclave.keys,
                                sqlite_factory.actor(who), project_id, reason="x")
    assert snapshot(sqlite_factory) == before


def test_a_crash_after_the_commit_is_finished_later(sqlite_factory: Factory) -> None:
    factory = sqlite_factory
    project_id = factory.project(S.ACTIVE)
    folder = factory.enclave.settings.projects_dir / project_id / "extract" / "v1"
    keep = folder.parent / "kept-copy"
    shutil.copytree(folder, keep)
    with factory.enclave.db.transaction() as session:
        lifecycle.close_project(session, factory.enclave.keys, factory.actor("claire"),
                                project_id, reason="Fin")
    keep.rename(folder)  # as if the process died between the commit and the deletion
    assert lifecycle.finish_pending_destruction(factory.enclave.db) == [str(folder)]
    assert not folder.exists()
