"""Workspace sessions: the spawn decision follows the one policy module and is audited with it."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from access_requests.workflow import ProjectStatus
from enclave.core import people, policy
from enclave.core.exceptions import PermissionDenied, ValidationError
from enclave.provisioning.extracts import current_extract
from enclave.workspaces import sessions
from tests.workflows.factories import PI, STAFF, Factory

MEMBER = "bruno"


def _only(factory: Factory, seq: int, action: str) -> dict[str, object]:
    events = [e for e in factory.audit_events_after(seq) if e.action.startswith("workspace.")]
    assert [e.action for e in events] == [action], [e.action for e in events]
    return {"actor": events[0].actor, "project_id": events[0].project_id,
            **json.loads(events[0].details)}


def test_member_of_an_active_project_opens_a_workspace_on_its_current_extract(
        factory: Factory) -> None:
    project = factory.active_project()
    seq = factory.audit_head()
    workspace = sessions.open_workspace(factory.enclave, PI, project, server_name=project)
    extract = current_extract(factory.enclave.db, project)
    assert extract is not None
    assert str(workspace.extract_dir) == extract.path
    assert workspace.extract_version == extract.version
    assert workspace.work_dir == factory.enclave.settings.projects_dir / project / "work" / PI
    assert workspace.outputs_dir == factory.outputs_dir(project)
    event = _only(factory, seq, sessions.SPAWNED)
    assert event["actor"] == PI and event["project_id"] == project
    assert event["extract_version"] == extract.version
    assert sessions.still_allowed(factory.enclave, PI, project)


@pytest.mark.parametrize(("who", "reason"), [
    ("rita", "is not a member of this project"),
    ("claire", "needs the role researcher"),
    ("emma", "needs the role researcher"),
], ids=["researcher-not-member", "depp-staff", "output-checker"])
def test_people_outside_the_project_are_refused_and_the_refusal_is_audited(
        factory: Factory, who: str, reason: str) -> None:
    project = factory.active_project()
    seq = factory.audit_head()
    with pytest.raises(PermissionDenied, match=reason):
        sessions.open_workspace(factory.enclave, who, project)
    event = _only(factory, seq, sessions.SPAWN_DENIED)
    assert event["actor"] == who and event["project_id"] == project
    assert reason in str(event["reason"])


def test_a_member_who_has_not_accepted_the_current_agreement_is_refused(
        factory: Factory) -> None:
    project = factory.active_project()
    factory.publish_agreement()
    factory.agree(project, PI)
    seq = factory.audit_head()
    with pytest.raises(PermissionDenied, match="has not accepted the current data-use"):
        sessions.open_workspace(factory.enclave, MEMBER, project)
    _only(factory, seq, sessions.SPAWN_DENIED)
    assert sessions.still_allowed(factory.enclave, PI, project)


@pytest.mark.parametrize("status", [ProjectStatus.SUSPENDED, ProjectStatus.REVOKED,
                                    ProjectStatus.EXPIRED, ProjectStatus.CLOSED])
def test_a_project_that_left_active_stops_its_workspaces_and_refuses_new_ones(
        factory: Factory, status: ProjectStatus) -> None:
    project = factory.active_project()
    assert sessions.stop_reason(factory.enclave, PI, project) is None
    if status == ProjectStatus.CLOSED:
        factory.move(project, STAFF, ProjectStatus.SUSPENDED)
    factory.move(project, STAFF if status != ProjectStatus.EXPIRED else "system", status)
    reason = sessions.stop_reason(factory.enclave, PI, project)
    assert reason is not None and "not active" in reason
    assert not sessions.still_allowed(factory.enclave, PI, project)
    with pytest.raises(PermissionDenied, match="not active"):
        sessions.open_workspace(factory.enclave, PI, project)


def test_an_expired_accreditation_stops_the_workspace(factory: Factory) -> None:
    project = factory.active_project()
    with factory.enclave.db.transaction() as session:
        people.create_user(session, policy.SYSTEM, "lina", "Lina",
                           roles=[policy.Role.RESEARCHER])
        people.record_accreditation(session, policy.SYSTEM, "lina",
                                    date.today() - timedelta(days=4 * 366))
    assert sessions.stop_reason(factory.enclave, "lina", project) is not None
    with pytest.raises(PermissionDenied):
        sessions.open_workspace(factory.enclave, "lina", project)


def test_an_approved_project_without_activation_has_no_workspace(factory: Factory) -> None:
    project = factory.project(ProjectStatus.APPROVED)
    with pytest.raises(PermissionDenied, match="not active"):
        sessions.open_workspace(factory.enclave, PI, project)


@pytest.mark.parametrize("project_id", ["prj-doesnotexist", "../etc", "", "Prj-UPPER"])
def test_unknown_or_malformed_project_ids_are_refused_and_audited(
        sqlite_factory: Factory, project_id: str) -> None:
    seq = sqlite_factory.audit_head()
    with pytest.raises(PermissionDenied):
        sessions.open_workspace(sqlite_factory.enclave, PI, project_id)
    event = _only(sqlite_factory, seq, sessions.SPAWN_DENIED)
    assert event["project_id"] is None


def test_stopping_is_audited_with_its_reason(factory: Factory) -> None:
    project = factory.active_project()
    seq = factory.audit_head()
    sessions.close_workspace(factory.enclave, PI, project, reason="culled after 60 min idle")
    event = _only(factory, seq, sessions.STOPPED)
    assert event["reason"] == "culled after 60 min idle" and event["project_id"] == project


def test_refused_downloads_are_audited_as_untrusted_input(sqlite_factory: Factory) -> None:
    project = sqlite_factory.active_project()
    seq = sqlite_factory.audit_head()
    attempts: list[object] = [
        {"kind": "files", "path": "copy.parquet", "detail": "GET files download refused"},
        {"kind": "symlink", "path": "x" * 1000, "detail": 42},
        {"kind": "rm -rf", "path": "nope"},
        "not an object",
    ]
    written = sessions.record_download_attempts(sqlite_factory.enclave, PI, project,
                                                attempts)  # type: ignore[arg-type]
    events = [e for e in sqlite_factory.audit_events_after(seq)]
    assert written == len(events) == 3
    details = [json.loads(e.details) for e in events]
    assert details[0]["kind"] == "files" and details[0]["path"] == "copy.parquet"
    assert details[1]["kind"] == "symlink" and len(details[1]["path"]) == 300
    assert details[1]["detail"] == ""
    assert details[2] == {"kind": "summary", "not_itemised": 0, "malformed_lines": 2}
    assert all(e.project_id == project and e.actor == PI for e in events)


def test_a_flood_of_refusals_is_itemised_up_to_a_bound_then_counted(
        sqlite_factory: Factory) -> None:
    project = sqlite_factory.active_project()
    seq = sqlite_factory.audit_head()
    many = [{"kind": "files", "path": f"f{i}"} for i in range(250)]
    sessions.record_download_attempts(sqlite_factory.enclave, PI, project, many)
    events = sqlite_factory.audit_events_after(seq)
    assert len(events) == sessions.MAX_ATTEMPTS_PER_REPORT + 1
    assert json.loads(events[-1].details)["not_itemised"] == 150
    assert sessions.record_download_attempts(sqlite_factory.enclave, PI, project, []) == 0


def test_the_home_page_choices_give_each_project_and_why_it_is_closed(
        sqlite_factory: Factory) -> None:
    active = sqlite_factory.active_project()
    suspended = sqlite_factory.active_project()
    sqlite_factory.move(suspended, STAFF, ProjectStatus.SUSPENDED)
    choices = {c.project_id: c for c in sessions.workspace_choices(sqlite_factory.enclave, PI)}
    assert choices[active].denial is None
    assert "not active" in str(choices[suspended].denial)
    assert sessions.workspace_choices(sqlite_factory.enclave, "nobody-here") == []


@pytest.mark.parametrize(("project", "user"), [("../x", "alice"), ("prj-1", "../root"),
                                               ("prj-1", ""), ("", "alice")])
def test_work_folders_refuse_path_tricks(sqlite_factory: Factory, project: str,
                                         user: str) -> None:
    with pytest.raises(ValidationError):
        sessions.work_dir(sqlite_factory.enclave.settings, project, user)


def test_a_project_over_its_disk_limit_must_stop_and_under_it_may_go_on(
        sqlite_factory: Factory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sessions, "DISK_MEASURE_SECONDS", 0.0)
    enclave = sqlite_factory.enclave
    project = sqlite_factory.active_project()
    mine = sessions.work_dir(enclave.settings, project, PI)
    theirs = sessions.work_dir(enclave.settings, project, MEMBER)
    for folder, size in ((mine, 600_000), (theirs, 300_000),
                         (sqlite_factory.outputs_dir(project), 200_000)):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "file.bin").write_bytes(b"\1" * size)
    # Everyone's work folders and the outputs count together against the project's limit.
    assert sessions.disk_stop_reason(enclave, project, 2 * 1048576) is None
    reason = sessions.disk_stop_reason(enclave, project, 1048576)
    assert reason is not None and "disk limit" in reason and "over its limit of 1 MiB" in reason
    assert sessions.disk_stop_reason(enclave, project, 0) is None  # 0: no limit
    with pytest.raises(ValidationError):
        sessions.project_disk_usage(enclave.settings, "../escape")
