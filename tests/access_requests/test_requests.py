"""Membership and extension requests: their own small state machines, as truth tables."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from access_requests import agreements, lifecycle, membership
from access_requests.exceptions import FieldError, StaleVersion
from access_requests.machine import ProjectStatus, facts, members_of
from access_requests.membership import EXTENSION_MACHINE, MEMBERSHIP_MACHINE, RequestStatus
from access_requests.models import ExtensionRequest, MembershipRequest, Project
from enclave.core import policy
from enclave.core.exceptions import InvalidTransition, PermissionDenied
from tests.access_requests.conftest import snapshot
from tests.workflows.factories import Factory

S = ProjectStatus
R = RequestStatus
#: Who plays each role against the factory's project (members: alice, bruno, dora, oscar).
ROLE_USERS = {"researcher_member": "bruno", "researcher_outsider": "rita",
              "staff_outsider": "claire", "staff_member": "dora", "output_checker": "emma",
              "ethics_committee": "gaelle", "platform_admin": "admin", "system": "system"}
ALLOWED = {"staff_outsider"}


def _membership_request(factory: Factory, project_id: str) -> str:
    with factory.enclave.db.transaction() as session:
        return membership.request_membership_change(
            session, factory.actor("alice"), project_id, change="add", username="rita",
            institution="INSEE", reason="Renfort pour l'analyse").id


def _extension_request(factory: Factory, project_id: str) -> str:
    with factory.enclave.db.sessions() as session:
        project = session.get(Project, project_id)
        assert project is not None
        new_end = project.end_date + timedelta(days=120)
    with factory.enclave.db.transaction() as session:
        return membership.request_extension(session, factory.actor("alice"), project_id,
                                            new_end_date=new_end,
                                            reason="Données 2026 publiées tardivement").id


KINDS: dict[str, tuple[Any, Any, Any, Any]] = {
    "membership": (MEMBERSHIP_MACHINE, MembershipRequest, _membership_request,
                   membership.decide_membership_request),
    "extension": (EXTENSION_MACHINE, ExtensionRequest, _extension_request,
                  membership.decide_extension_request),
}
CASES = [(kind, t.target) for kind in KINDS for t in KINDS[kind][0].transitions]


def _row(factory: Factory, model: Any, request_id: str) -> tuple[str, int]:
    with factory.enclave.db.sessions() as session:
        row = session.get(model, request_id)
        return row.status, row.version


@pytest.mark.parametrize(("kind", "target"), CASES, ids=[f"{k}-{t.value}" for k, t in CASES])
def test_request_transition_is_allowed_exactly_for_staff_outside_the_project(
        factory: Factory, kind: str, target: RequestStatus) -> None:
    machine, model, make, decide = KINDS[kind]
    project_id = factory.project(S.ACTIVE)
    request_id = make(factory, project_id)
    state = _row(factory, model, request_id)
    assert state == (R.REQUESTED, 1)
    with factory.enclave.db.sessions() as session:
        known = facts(session, project_id)
    for role, username in ROLE_USERS.items():
        actor = factory.actor(username)
        allowed = role in ALLOWED
        assert policy.can_transition(actor, machine, R.REQUESTED, target, known) is allowed
        if allowed:
            continue
        before = snapshot(factory)
        with pytest.raises(PermissionDenied), factory.enclave.db.transaction() as session:
            decide(session, actor, request_id, approve=target == R.APPROVED, version=1)
        assert snapshot(factory) == before, role
    head = factory.audit_head()
    with factory.enclave.db.transaction() as session:
        decide(session, factory.actor("claire"), request_id, approve=target == R.APPROVED,
               version=1, reason="Vu")
    assert _row(factory, model, request_id) == (target.value, 2)
    events = factory.audit_events_after(head)
    assert [(e.action, e.actor, e.object_id, e.project_id) for e in events] == [
        (machine.moves(R.REQUESTED, target)[0].action, "claire", request_id, project_id)]
    with pytest.raises(InvalidTransition), factory.enclave.db.transaction() as session:
        decide(session, factory.actor("david"), request_id, approve=True, version=2)


def test_an_approved_new_member_accepts_the_agreement_before_using_the_data(
        factory: Factory) -> None:
    project_id = factory.project(S.ACTIVE)
    request_id = _membership_request(factory, project_id)
    with factory.enclave.db.transaction() as session:
        membership.decide_membership_request(session, factory.actor("claire"), request_id,
                                             approve=True, version=1)
    rita = factory.actor("rita")
    with factory.enclave.db.sessions() as session:
        known = facts(session, project_id)
        assert {m.username: m.institution for m in members_of(session, project_id)}["rita"] \
            == "INSEE"
    assert not policy.can_use_project_data(rita, known["members"], known["agreed"],
                                           known["active"])
    with factory.enclave.db.transaction() as session:
        agreements.accept_agreement(session, rita, project_id)
    with factory.enclave.db.sessions() as session:
        known = facts(session, project_id)
    assert policy.can_use_project_data(rita, known["members"], known["agreed"], known["active"])


def test_removal_and_extension_apply_their_change(factory: Factory) -> None:
    project_id = factory.project(S.ACTIVE)
    with factory.enclave.db.transaction() as session:
        removal = membership.request_membership_change(
            session, factory.actor("alice"), project_id, change="remove", username="oscar",
            reason="A quitté l'équipe").id
    extension = _extension_request(factory, project_id)
    with factory.enclave.db.transaction() as session:
        membership.decide_membership_request(session, factory.actor("claire"), removal,
                                             approve=True, version=1)
    with pytest.raises(StaleVersion), factory.enclave.db.transaction() as session:
        membership.decide_extension_request(session, factory.actor("claire"), extension,
                                            approve=True, version=0)
    with factory.enclave.db.transaction() as session:
        row = membership.decide_extension_request(session, factory.actor("claire"), extension,
                                                  approve=True, version=1)
        new_end = row.requested_end_date
    with factory.enclave.db.sessions() as session:
        project = session.get(Project, project_id)
        assert project is not None and project.end_date == new_end
        assert "oscar" not in [m.username for m in members_of(session, project_id)]


@pytest.mark.parametrize(("change", "error_field"), [
    ({"change": "add", "username": "bruno"}, "username"),
    ({"change": "add", "username": "nadia"}, "username"),
    ({"change": "add", "username": "zoe"}, "username"),
    ({"change": "remove", "username": "alice"}, "username"),
    ({"change": "remove", "username": "rita"}, "username"),
    ({"change": "swap", "username": "rita"}, "change"),
    ({"change": "add", "username": "rita", "reason": ""}, "reason"),
    ({"change": "add", "username": "rita", "reason": "ok\x00"}, "reason"),
], ids=["already-member", "not-accredited", "unknown", "remove-pi", "remove-non-member",
        "unknown-change", "no-reason", "control-char"])
def test_bad_membership_requests_store_nothing(sqlite_factory: Factory, change: dict[str, Any],
                                               error_field: str) -> None:
    project_id = sqlite_factory.project(S.APPROVED)
    before = snapshot(sqlite_factory)
    with pytest.raises(FieldError) as info, sqlite_factory.enclave.db.transaction() as session:
        membership.request_membership_change(session, sqlite_factory.actor("alice"),
                                             project_id, **{"reason": "Motif", **change})
    assert info.value.field == error_field
    assert snapshot(sqlite_factory) == before


def test_only_the_principal_investigator_asks_and_only_while_the_project_runs(
        sqlite_factory: Factory) -> None:
    factory = sqlite_factory
    project_id = factory.project(S.ACTIVE)
    before = snapshot(factory)
    with pytest.raises(PermissionDenied, match="principal investigator"), \
            factory.enclave.db.transaction() as session:
        membership.request_extension(session, factory.actor("bruno"), project_id,
                                     new_end_date=factory_end(factory, project_id) + timedelta(1),
                                     reason="Plus de temps")
    with pytest.raises(FieldError) as info, factory.enclave.db.transaction() as session:
        membership.request_extension(session, factory.actor("alice"), project_id,
                                     new_end_date=factory_end(factory, project_id),
                                     reason="Même date")
    assert info.value.field == "new_end_date"
    assert snapshot(factory) == before
    request_id = _extension_request(factory, project_id)
    with factory.enclave.db.transaction() as session:
        lifecycle.revoke(session, factory.actor("david"), project_id, reason="Abus")
    with pytest.raises(PermissionDenied, match="revoked"), \
            factory.enclave.db.transaction() as session:
        membership.decide_extension_request(session, factory.actor("claire"), request_id,
                                            approve=True, version=1)
    with factory.enclave.db.sessions() as session:
        members, extensions = membership.pending_requests(session, factory.actor("claire"))
    assert [e.id for e in extensions] == [request_id] and members == []


def factory_end(factory: Factory, project_id: str) -> Any:
    """The project's current end date."""
    with factory.enclave.db.sessions() as session:
        project = session.get(Project, project_id)
        assert project is not None
        return project.end_date
