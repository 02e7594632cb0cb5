"""The one status-changing function, on the real project workflow: move and audit, or nothing."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from access_requests.models import Membership, Project
from access_requests.workflow import PROJECT_MACHINE, ProjectStatus
from enclave.core import audit, statemachine
from enclave.core.context import Enclave
from enclave.core.db import utcnow
from enclave.core.exceptions import EnclaveError, InvalidTransition, PermissionDenied
from enclave.core.policy import SYSTEM, Actor, Role

PID = "prj-0001"
RITA = Actor("rita", frozenset({Role.RESEARCHER}), accredited_until=date.today())
DORA = Actor("dora", frozenset({Role.DEPP_STAFF}))
S = ProjectStatus


def _project(enclave: Enclave, status: ProjectStatus = S.DRAFT,
             members: tuple[str, ...] = ("rita",)) -> None:
    with enclave.db.transaction() as session:
        session.add(Project(id=PID, title="Trajectoires scolaires", status=status.value,
                            version=1, principal_investigator=members[0],
                            end_date=date.today() + timedelta(days=365), created_at=utcnow()))
        session.flush()
        for name in members:
            session.add(Membership(project_id=PID, username=name))


def _move(enclave: Enclave, actor: Actor, target: ProjectStatus,
          facts: Mapping[str, Any] | None = None,
          details: Mapping[str, Any] | None = None) -> audit.AuditEvent:
    with enclave.db.transaction() as session:
        project = session.get(Project, PID)
        assert project is not None
        return statemachine.move(session, actor, PROJECT_MACHINE, project, target,
                                 facts=facts if facts is not None else {"members": ["rita"]},
                                 details=details)


def _state(enclave: Enclave) -> tuple[str, int, list[audit.AuditEvent]]:
    with enclave.db.sessions() as session:
        project = session.get(Project, PID)
        assert project is not None
        events = list(session.execute(select(audit.AuditEvent)
                                      .order_by(audit.AuditEvent.seq)).scalars())
        return project.status, project.version, events


def test_move_writes_the_status_bumps_the_version_and_one_audit_event(enclave: Enclave) -> None:
    _project(enclave)
    returned = _move(enclave, RITA, S.SUBMITTED, details={"reason": "prêt"})
    status, version, events = _state(enclave)
    assert (status, version) == ("submitted", 2)
    (event,) = events
    assert event.seq == returned.seq == 1
    assert (event.action, event.actor, event.object_type, event.object_id, event.project_id) == (
        "project.submitted", "rita", "project", PID, PID)
    assert json.loads(event.details) == {"from": "draft", "to": "submitted", "reason": "prêt"}


def test_a_whole_path_leaves_one_event_per_move_and_a_valid_chain(enclave: Enclave) -> None:
    _project(enclave)
    facts = {"members": ["rita"], "agreed": ["rita"], "extract_published": True}
    path = [(RITA, S.SUBMITTED), (DORA, S.IN_REVIEW), (DORA, S.APPROVED), (SYSTEM, S.ACTIVE),
            (DORA, S.SUSPENDED), (DORA, S.ACTIVE)]
    for actor, target in path:
        _move(enclave, actor, target, facts)
    status, version, events = _state(enclave)
    assert (status, version) == ("active", 1 + len(path))
    assert [json.loads(e.details)["to"] for e in events] == [t.value for _, t in path]
    assert [e.action for e in events] == ["project.submitted", "project.review_started",
                                          "project.approved", "project.activated",
                                          "project.suspended", "project.reinstated"]
    assert enclave.chain.verify().ok


REFUSALS: dict[str, tuple[ProjectStatus, ProjectStatus, Actor, dict[str, Any],
                          type[EnclaveError], str]] = {
    "wrong-role": (S.DRAFT, S.SUBMITTED, DORA, {"members": ["rita", "dora"]}, PermissionDenied,
                   "needs the role researcher"),
    "condition-false-not-a-member": (S.DRAFT, S.SUBMITTED, Actor("ruth", RITA.roles),
                                     {"members": ["rita"]}, PermissionDenied,
                                     "not a member"),
    "condition-false-staff-is-member": (S.SUBMITTED, S.IN_REVIEW, DORA,
                                        {"members": ["rita", "dora"]}, PermissionDenied,
                                        "dora is a member"),
    "condition-false-not-ready": (S.APPROVED, S.ACTIVE, SYSTEM,
                                  {"members": ["rita"], "agreed": [],
                                   "extract_published": True},
                                  PermissionDenied, "not accepted the data-use agreement: rita"),
    "inactive-account": (S.DRAFT, S.SUBMITTED, Actor("rita", RITA.roles, active=False),
                         {"members": ["rita"]}, PermissionDenied, "not an active account"),
    "not-in-table": (S.DRAFT, S.APPROVED, DORA, {"members": ["rita"]}, InvalidTransition,
                     "cannot go from draft to approved"),
    "end-state": (S.REJECTED, S.IN_REVIEW, DORA, {"members": ["rita"]}, InvalidTransition,
                  "cannot go from rejected to in_review"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refused_move_writes_nothing(enclave: Enclave, case: str) -> None:
    source, target, actor, facts, error, reason = REFUSALS[case]
    _project(enclave, source)
    # The refusal is caught inside the transaction, which then commits: the move itself must
    # have changed nothing and recorded nothing.
    with enclave.db.transaction() as session:
        project = session.get(Project, PID)
        assert project is not None
        with pytest.raises(error, match=reason):
            statemachine.move(session, actor, PROJECT_MACHINE, project, target, facts=facts)
    assert _state(enclave) == (source.value, 1, [])


def test_a_stale_object_is_reread_so_the_second_racing_move_is_refused(
        enclave: Enclave) -> None:
    _project(enclave, S.SUBMITTED)
    with enclave.db.writers() as late:
        with late.begin():
            stale = late.get(Project, PID)
            assert stale is not None and stale.status == "submitted"
        _move(enclave, DORA, S.IN_REVIEW)  # the first reviewer wins
        with late.begin(), pytest.raises(InvalidTransition, match="from in_review"):
            statemachine.move(late, DORA, PROJECT_MACHINE, stale, S.IN_REVIEW,
                              facts={"members": ["rita"]})
    status, version, events = _state(enclave)
    assert (status, version, len(events)) == ("in_review", 2, 1)
