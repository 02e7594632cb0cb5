"""The project state machine as a truth table: every transition x every role, on both backends.

Each allowed move changes the status, bumps the version and writes exactly one audit event
with the transition's action (closure also records the keys it destroyed and its certificate);
each refused move raises and leaves status, version and the audit chain untouched.
Applications and agreements refuse bad input and store nothing.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from access_requests import workflow as projects
from access_requests.models import Membership, Project, RequestedVariable
from access_requests.workflow import CURRENT_AGREEMENT, PROJECT_MACHINE, ProjectStatus
from enclave.core import audit, policy
from enclave.core.exceptions import InvalidTransition, PermissionDenied, ValidationError
from enclave.core.policy import Transition
from enclave.provisioning.extracts import current_extract, try_activate
from tests.workflows.factories import AFTER_END_DATES, PROJECT_PATHS, Factory

S = ProjectStatus

#: Who plays each role against the factory's project (members: alice, bruno, dora, oscar).
ROLE_USERS = {
    "researcher_member": "bruno",
    "researcher_outsider": "rita",
    "staff_outsider": "claire",
    "staff_member": "dora",
    "output_checker": "emma",
    "ethics_committee": "gaelle",
    "platform_admin": "admin",
    "system": "system",
}
ROLES = tuple(ROLE_USERS)

#: The expected truth table: one line per transition, one column per role of ROLES
#: (x = allowed, . = refused with PermissionDenied).
EXPECTED = """
draft             submitted          x . . . . . . .
submitted         in_review          . . x . . . . .
in_review         changes_requested  . . x . . . . .
changes_requested resubmitted        x . . . . . . .
resubmitted       in_review          . . x . . . . .
in_review         approved           . . x . . . . .
in_review         rejected           . . x . . . . .
approved          active             . . . . . . . x
active            suspended          . . x . . . . .
suspended         active             . . x . . . . .
approved          revoked            . . x . . . . .
active            revoked            . . x . . . . .
suspended         revoked            . . x . . . . .
approved          expired            . . . . . . . x
active            expired            . . . . . . . x
suspended         expired            . . . . . . . x
active            closed             . . x . . . . .
suspended         closed             . . x . . . . .
revoked           closed             . . x . . . . .
expired           closed             . . x . . . . .
"""


def _parse(table: str) -> dict[tuple[S, S], frozenset[str]]:
    allowed: dict[tuple[S, S], frozenset[str]] = {}
    for line in table.strip().splitlines():
        source, target, *marks = line.split()
        assert len(marks) == len(ROLES), line
        allowed[S(source), S(target)] = frozenset(
            role for role, mark in zip(ROLES, marks, strict=True) if mark == "x")
    return allowed


ALLOWED = _parse(EXPECTED)


def _move_id(move: Transition[Any]) -> str:
    return f"{move.source.value}->{move.target.value}"


def test_truth_table_covers_every_transition_of_the_machine() -> None:
    assert set(ALLOWED) == {(t.source, t.target) for t in PROJECT_MACHINE.transitions}


def test_system_cannot_expire_a_project_before_its_end_date(shared_factory: Factory) -> None:
    project_id = shared_factory.project(S.ACTIVE, ready=True)
    with pytest.raises(PermissionDenied, match="end date"):
        _attempt(shared_factory, "system", project_id, S.EXPIRED, today=date.today())
    assert shared_factory.project_row(project_id)[0] == S.ACTIVE.value


def _attempt(factory: Factory, username: str, project_id: str, target: S,
             **extra: Any) -> None:
    if target == S.EXPIRED:
        extra.setdefault("today", AFTER_END_DATES)  # expiry needs the end date passed
    with factory.enclave.db.transaction() as session:
        projects.transition(session, factory.actor(username), project_id, target,
                            keys=factory.enclave.keys, **extra)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("move", PROJECT_MACHINE.transitions, ids=_move_id)
def test_project_transition_is_allowed_exactly_for_its_role(
        shared_factory: Factory, move: Transition[S], role: str) -> None:
    factory = shared_factory
    project_id = factory.project(move.source, ready=True)
    actor = factory.actor(ROLE_USERS[role])
    allowed = role in ALLOWED[move.source, move.target]
    when = {"today": AFTER_END_DATES} if move.target == S.EXPIRED else {}
    with factory.enclave.db.sessions() as session:
        facts = projects.facts(session, project_id, **when)
    assert policy.can_transition(actor, PROJECT_MACHINE, move.source, move.target,
                                 facts) is allowed
    status, version = factory.project_row(project_id)
    head = factory.audit_head()

    if allowed:
        _attempt(factory, actor.username, project_id, move.target)
        assert factory.project_row(project_id) == (move.target.value, version + 1)
        events = factory.audit_events_after(head)
        moved = [e for e in events if e.action == move.action]
        assert [(e.actor, e.object_type, e.object_id, e.project_id) for e in moved] == [
            (actor.username, "project", project_id, project_id)]
        assert f'"from":"{move.source.value}"' in moved[0].details
        assert f'"to":"{move.target.value}"' in moved[0].details
        assert all(e.project_id == project_id for e in events)
    else:
        with pytest.raises(PermissionDenied):
            _attempt(factory, actor.username, project_id, move.target)
        assert factory.project_row(project_id) == (status, version)
        assert factory.audit_events_after(head) == []


@pytest.mark.parametrize("source", sorted(PROJECT_PATHS, key=list(S).index),
                         ids=lambda s: s.value)
def test_moves_not_in_the_table_raise_invalid_transition(
        shared_factory: Factory, source: S) -> None:
    factory = shared_factory
    project_id = factory.project(source)
    status, version = factory.project_row(project_id)
    head = factory.audit_head()
    targets = [t for t in S if not PROJECT_MACHINE.moves(source, t)]
    assert targets
    for target in targets:
        for username in ("claire", "alice", "system"):
            with pytest.raises(InvalidTransition):
                _attempt(factory, username, project_id, target)
            assert not policy.can_transition(factory.actor(username), PROJECT_MACHINE,
                                             source, target, {})
    assert factory.project_row(project_id) == (status, version)
    assert factory.audit_events_after(head) == []


def test_closed_is_reachable_and_has_no_way_out() -> None:
    assert S.CLOSED in PROJECT_PATHS
    assert [t for t in PROJECT_MACHINE.transitions if t.source == S.CLOSED] == []


# -- activation -------------------------------------------------------------------------------

def test_activation_waits_for_every_members_agreement(factory: Factory) -> None:
    project_id = factory.project(S.APPROVED)
    factory.extract(project_id)
    for username in ("alice", "bruno", "dora"):  # oscar has not agreed
        factory.agree(project_id, username)
    head = factory.audit_head()
    assert try_activate(factory.enclave.db, project_id) is False
    with pytest.raises(PermissionDenied, match="oscar"):
        _attempt(factory, "system", project_id, S.ACTIVE)
    assert factory.project_row(project_id)[0] == S.APPROVED
    assert factory.audit_events_after(head) == []

    factory.agree(project_id, "oscar")
    assert try_activate(factory.enclave.db, project_id) is True
    assert factory.project_row(project_id)[0] == S.ACTIVE
    assert [e.action for e in factory.audit_events_after(head)] == ["agreement.accepted",
                                                                   "project.activated"]


def test_activation_waits_for_a_published_extract(factory: Factory) -> None:
    project_id = factory.project(S.APPROVED)
    for username in factory.members(project_id):
        factory.agree(project_id, username)
    head = factory.audit_head()
    assert current_extract(factory.enclave.db, project_id) is None
    assert try_activate(factory.enclave.db, project_id) is False
    with pytest.raises(PermissionDenied, match="no published extract"):
        _attempt(factory, "system", project_id, S.ACTIVE)
    assert factory.project_row(project_id)[0] == S.APPROVED
    assert factory.audit_events_after(head) == []


def test_a_caller_cannot_claim_an_extract_that_was_never_published(factory: Factory) -> None:
    project_id = factory.project(S.APPROVED)
    for username in factory.members(project_id):
        factory.agree(project_id, username)
    with pytest.raises(PermissionDenied, match="no published extract"):
        _attempt(factory, "system", project_id, S.ACTIVE, extract_published=True)
    assert factory.project_row(project_id)[0] == S.APPROVED


@pytest.mark.parametrize("spoofed", [{"members": []}, {"members": ["someone-else"]}])
def test_a_caller_cannot_override_the_projects_members(
        factory: Factory, spoofed: dict[str, Any]) -> None:
    project_id = factory.project(S.IN_REVIEW)
    head = factory.audit_head()
    with pytest.raises(PermissionDenied, match="member"):
        _attempt(factory, "dora", project_id, S.APPROVED, **spoofed)
    assert factory.project_row(project_id)[0] == S.IN_REVIEW
    assert factory.audit_events_after(head) == []


# -- applications -----------------------------------------------------------------------------

GOOD: dict[str, Any] = {
    "title": "Parcours scolaires et origine sociale",
    "end_date": date.today() + timedelta(days=200),
    "variables": {"eleves": [("sexe", "ok"), ("ips", "ok")]},
}


def _counts(factory: Factory) -> tuple[int, int, int, int]:
    with factory.enclave.db.sessions() as session:
        return (session.execute(select(func.count()).select_from(Project)).scalar_one(),
                session.execute(select(func.count()).select_from(Membership)).scalar_one(),
                session.execute(select(func.count()).select_from(RequestedVariable))
                .scalar_one(),
                audit.head(session)[0])


@pytest.mark.parametrize(("who", "change", "error", "match"), [
    ("alice", {"variables": {"eleves": [("sexe", "ok"), ("ine", "pour relier")]}},
     ValidationError, "direct identifier"),
    ("alice", {"variables": {"traces_xapi": [("statement_id", "x")]}},
     ValidationError, "direct identifier"),
    ("alice", {"variables": {"eleves_secret": [("sexe", "x")]}}, ValidationError,
     "unknown dataset"),
    ("alice", {"variables": {"eleves": [("revenu_parents", "x")]}}, ValidationError,
     "no variable"),
    ("alice", {"variables": {}}, ValidationError, "at least one variable"),
    ("alice", {"variables": {"eleves": [("sexe", "a"), ("sexe", "b")]}}, ValidationError,
     "twice"),
    ("alice", {"end_date": date.today() - timedelta(days=1)}, ValidationError, "future"),
    ("alice", {"end_date": date.today()}, ValidationError, "future"),
    ("alice", {"title": "T" * 301}, ValidationError, "3 to 300"),
    ("alice", {"title": "  ab  "}, ValidationError, "3 to 300"),
    ("alice", {"members": ["inconnu"]}, ValidationError, "no person named"),
    ("alice", {"members": ["nadia"]}, ValidationError, "accreditation"),
    ("nadia", {}, PermissionDenied, "accreditation"),
    ("claire", {}, PermissionDenied, "researcher"),
    ("emma", {}, PermissionDenied, "researcher"),
    ("system", {}, PermissionDenied, "researcher"),
], ids=["direct-identifier-ine", "direct-identifier-statement", "unknown-dataset",
        "unknown-variable", "no-variable", "variable-twice", "end-date-past", "end-date-today",
        "title-too-long", "title-too-short", "member-unknown", "member-not-accredited",
        "researcher-not-accredited", "depp-staff",
        "output-checker", "system"])
def test_create_application_refuses_bad_input_and_stores_nothing(
        factory: Factory, who: str, change: dict[str, Any], error: type[Exception],
        match: str) -> None:
    before = _counts(factory)
    with pytest.raises(error, match=match), factory.enclave.db.transaction() as session:
        projects.create_application(session, factory.actor(who), summary="s",
                                    **{**GOOD, **change})
    assert _counts(factory) == before


def test_create_application_stores_a_draft_with_its_members_and_event(factory: Factory) -> None:
    before = _counts(factory)
    with factory.enclave.db.transaction() as session:
        project = projects.create_application(session, factory.actor("alice"), summary="s",
                                              members=["bruno"], **GOOD)
        project_id = project.id
    assert _counts(factory) == (before[0] + 1, before[1] + 2, before[2] + 2, before[3] + 1)
    assert factory.project_row(project_id) == (S.DRAFT, 1)
    assert [e.action for e in factory.audit_events_after(before[3])] == ["project.created"]


# -- agreements -------------------------------------------------------------------------------

def _agreements(factory: Factory, project_id: str) -> dict[str, str | None]:
    with factory.enclave.db.sessions() as session:
        return {m.username: m.agreement_version
                for m in projects.members_of(session, project_id)}


@pytest.mark.parametrize(("status", "who", "version", "error"), [
    (S.APPROVED, "rita", CURRENT_AGREEMENT, PermissionDenied),
    (S.APPROVED, "claire", CURRENT_AGREEMENT, PermissionDenied),
    (S.APPROVED, "system", CURRENT_AGREEMENT, PermissionDenied),
    (S.APPROVED, "bruno", "DUA-2025.1", ValidationError),
    (S.APPROVED, "bruno", "", ValidationError),
    (S.IN_REVIEW, "bruno", CURRENT_AGREEMENT, PermissionDenied),
    (S.REJECTED, "bruno", CURRENT_AGREEMENT, PermissionDenied),
], ids=["researcher-non-member", "staff-non-member", "system", "old-version", "no-version",
        "not-yet-approved", "rejected"])
def test_accept_agreement_refuses_and_records_nothing(
        factory: Factory, status: S, who: str, version: str, error: type[Exception]) -> None:
    project_id = factory.project(status)
    before = _agreements(factory, project_id)
    head = factory.audit_head()
    with pytest.raises(error), factory.enclave.db.transaction() as session:
        projects.accept_agreement(session, factory.actor(who), project_id, version)
    assert _agreements(factory, project_id) == before
    assert factory.audit_events_after(head) == []


def test_accept_agreement_records_who_and_which_version(factory: Factory) -> None:
    project_id = factory.project(S.APPROVED)
    head = factory.audit_head()
    factory.agree(project_id, "bruno")
    assert _agreements(factory, project_id)["bruno"] == CURRENT_AGREEMENT
    assert _agreements(factory, project_id)["alice"] is None
    events = factory.audit_events_after(head)
    assert [(e.action, e.actor, e.project_id) for e in events] == [
        ("agreement.accepted", "bruno", project_id)]
    assert CURRENT_AGREEMENT in events[0].details
