"""Requests to change a running project: its members or its end date.

Each is a small state machine of its own (requested -> approved | rejected by DEPP staff who
are not members of the project), audited, with the change applied in the transaction that
approves it. The project row is locked before the request row (always in that order), so a
decision serialises with suspensions, revocations and expiry of the same project.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from access_requests import notifications, validation
from access_requests.exceptions import FieldError
from access_requests.machine import ProjectStatus, facts, members_of
from access_requests.models import ExtensionRequest, Membership, MembershipRequest
from access_requests.moves import check_version, locked_project
from enclave.core import audit, people, policy, statemachine
from enclave.core.db import utcnow
from enclave.core.exceptions import NotFound
from enclave.core.policy import Actor, Role, StateMachine, Transition, not_a_member

#: Project statuses in which members and end dates may still change.
CHANGEABLE = frozenset({ProjectStatus.APPROVED, ProjectStatus.ACTIVE, ProjectStatus.SUSPENDED})


class RequestStatus(StrEnum):
    """Where a membership or extension request stands."""

    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"


class MemberChange(StrEnum):
    """What a membership request asks for."""

    ADD = "add"
    REMOVE = "remove"


def _project_open(actor: Actor, facts: Mapping[str, Any]) -> str | None:
    """Staff not in the project approve changes while the project may still change."""
    if (reason := not_a_member(actor, facts)) is not None:
        return reason
    if facts.get("status") not in CHANGEABLE:
        return f"the project is {facts.get('status')}; its members and end date are frozen"
    return None


R = RequestStatus
MEMBERSHIP_MACHINE: StateMachine[RequestStatus] = StateMachine("membership_request",
                                                               RequestStatus, (
    Transition(R.REQUESTED, R.APPROVED, Role.DEPP_STAFF, "membership.approved", _project_open),
    Transition(R.REQUESTED, R.REJECTED, Role.DEPP_STAFF, "membership.rejected", not_a_member),
))
EXTENSION_MACHINE: StateMachine[RequestStatus] = StateMachine("extension_request",
                                                              RequestStatus, (
    Transition(R.REQUESTED, R.APPROVED, Role.DEPP_STAFF, "extension.approved", _project_open),
    Transition(R.REQUESTED, R.REJECTED, Role.DEPP_STAFF, "extension.rejected", not_a_member),
))


def _open_project(session: Session, actor: Actor, project_id: str) -> tuple[Any, list[str]]:
    project = locked_project(session, project_id)
    policy.check_request_project_change(actor, project.principal_investigator)
    if project.status not in CHANGEABLE:
        raise FieldError("project", f"the project is {project.status}; its members and end "
                                    "date can no longer change")
    return project, [m.username for m in members_of(session, project_id)]


def request_membership_change(session: Session, actor: Actor, project_id: str, *,
                              change: MemberChange | str, username: str,
                              institution: str = "", reason: str,
                              today: date | None = None) -> MembershipRequest:
    """The principal investigator asks to add or remove a member (with a reason)."""
    project, members = _open_project(session, actor, project_id)
    fields = validation.Collector()
    kind = fields.check(_change, change)
    name = fields.check(validation.text, "username", username, max_len=100, min_len=1)
    institution_ = fields.check(validation.text, "institution", institution, max_len=200)
    reason_ = fields.check(validation.text, "reason", reason, max_len=5000, min_len=1,
                           multiline=True)
    if name is not None and kind is not None:
        fields.check(_check_member_change, session, project, members, kind, name,
                     today or date.today())
    if kind is None or name is None or institution_ is None or reason_ is None:
        fields.fail()
    fields.raise_if_any()
    change, username, institution, reason = kind, name, institution_, reason_
    row = MembershipRequest(id="mbr-" + secrets.token_hex(5), project_id=project_id,
                            change=change.value, username=username, institution=institution,
                            reason=reason, requested_by=actor.username,
                            status=R.REQUESTED.value, version=1, decision_reason="",
                            created_at=utcnow())
    session.add(row)
    session.flush()
    audit.record(session, actor=actor.username, action="membership.requested",
                 object_type="membership_request", object_id=row.id, project_id=project_id,
                 details={"change": change.value, "username": username, "reason": reason})
    notifications.notify(session, "membership.requested",
                         notifications.people_with_role(session, Role.DEPP_STAFF),
                         project_id=project_id, exclude=members, title=project.title,
                         change=change.value, username=username)
    return row


def _change(value: MemberChange | str) -> MemberChange:
    try:
        return MemberChange(value)
    except ValueError:
        raise FieldError("change", "must be add or remove") from None


def _check_member_change(session: Session, project: Any, members: list[str],
                         change: MemberChange, username: str, today: date) -> None:
    """The person may be added (not a member, an accredited researcher) or removed (a member
    other than the principal investigator), with no request about them pending."""
    if change is MemberChange.ADD:
        if username in members:
            raise FieldError("username", f"{username} is already a member")
        _check_new_member(session, username, today)
    elif username not in members:
        raise FieldError("username", f"{username} is not a member")
    elif username == project.principal_investigator:
        raise FieldError("username", "the principal investigator cannot be removed")
    pending = session.execute(select(MembershipRequest.id).where(
        MembershipRequest.project_id == project.id, MembershipRequest.username == username,
        MembershipRequest.status == R.REQUESTED.value)).first()
    if pending is not None:
        raise FieldError("username", f"a request about {username} is already pending")


def _check_new_member(session: Session, username: str, today: date) -> None:
    try:
        person = people.actor_for(session, username, today)
    except NotFound:
        raise FieldError("username", f"no person named {username!r} is known to the enclave") \
            from None
    if not person.has(Role.RESEARCHER) or not person.accredited:
        raise FieldError("username", f"{username} must be an active researcher with a valid "
                                     "accreditation")


def request_extension(session: Session, actor: Actor, project_id: str, *,
                      new_end_date: date | None, reason: str,
                      today: date | None = None) -> ExtensionRequest:
    """The principal investigator asks to move the project's end date later (with a reason);
    every refused field is reported at once (``new_end_date`` None: not given, refused)."""
    project, members = _open_project(session, actor, project_id)
    fields = validation.Collector()
    new_end = fields.check(validation.future_date, "new_end_date", new_end_date,
                           today or date.today())
    if new_end is not None and new_end <= project.end_date:
        fields.add("new_end_date", f"must be after the current end date "
                                   f"{project.end_date.isoformat()}")
    reason_ = fields.check(validation.text, "reason", reason, max_len=5000, min_len=1,
                           multiline=True)
    pending = session.execute(select(ExtensionRequest.id).where(
        ExtensionRequest.project_id == project_id,
        ExtensionRequest.status == R.REQUESTED.value)).first()
    if pending is not None:
        fields.add("new_end_date", "an extension request is already pending")
    if new_end is None or reason_ is None:
        fields.fail()
    fields.raise_if_any()
    new_end_date, reason = new_end, reason_
    row = ExtensionRequest(id="ext-" + secrets.token_hex(5), project_id=project_id,
                           current_end_date=project.end_date, requested_end_date=new_end_date,
                           reason=reason, requested_by=actor.username, status=R.REQUESTED.value,
                           version=1, decision_reason="", created_at=utcnow())
    session.add(row)
    session.flush()
    audit.record(session, actor=actor.username, action="extension.requested",
                 object_type="extension_request", object_id=row.id, project_id=project_id,
                 details={"from": project.end_date.isoformat(),
                          "to": new_end_date.isoformat(), "reason": reason})
    notifications.notify(session, "extension.requested",
                         notifications.people_with_role(session, Role.DEPP_STAFF),
                         project_id=project_id, exclude=members, title=project.title,
                         end_date=new_end_date.isoformat())
    return row


def _get(session: Session, model: Any, request_id: str) -> Any:
    row = session.get(model, request_id) if isinstance(request_id, str) else None
    if row is None:
        raise NotFound(f"no request {request_id!r}")
    return row


def decide_membership_request(session: Session, actor: Actor, request_id: str, *,
                              approve: bool, version: int, reason: str = "",
                              today: date | None = None,
                              require_reason: bool = False) -> MembershipRequest:
    """DEPP staff approve (applying the change) or reject a membership request."""
    row = _get(session, MembershipRequest, request_id)
    project = locked_project(session, row.project_id)
    statemachine.lock(session, row)
    known = facts(session, row.project_id)
    target = R.APPROVED if approve else R.REJECTED
    policy.check_transition(actor, MEMBERSHIP_MACHINE, R(row.status), target, known)
    check_version(f"request {request_id}", row.version, version)
    reason = validation.text("reason", reason, max_len=5000, min_len=1 if require_reason else 0,
                             multiline=True)
    if approve:
        if row.change == MemberChange.ADD:
            _check_new_member(session, row.username, today or date.today())
            if row.username in known["members"]:
                raise FieldError("username", f"{row.username} is already a member")
            session.add(Membership(project_id=row.project_id, username=row.username,
                                   institution=row.institution, role_in_project="member"))
        else:
            membership = session.execute(select(Membership).where(
                Membership.project_id == row.project_id,
                Membership.username == row.username)).scalar()
            if membership is not None:
                session.delete(membership)
        project.version += 1
    row.decided_by, row.decided_at, row.decision_reason = actor.username, utcnow(), reason
    statemachine.move(session, actor, MEMBERSHIP_MACHINE, row, target, facts=known,
                      details={"change": row.change, "username": row.username,
                               **({"reason": reason} if reason else {})})
    notifications.notify(session, "membership.decided",
                         [project.principal_investigator, row.username],
                         project_id=row.project_id, title=project.title, change=row.change,
                         username=row.username, decision=target.value)
    return row


def decide_extension_request(session: Session, actor: Actor, request_id: str, *,
                             approve: bool, version: int, reason: str = "",
                             today: date | None = None,
                             require_reason: bool = False) -> ExtensionRequest:
    """DEPP staff approve (moving the end date) or reject an extension request."""
    row = _get(session, ExtensionRequest, request_id)
    project = locked_project(session, row.project_id)
    statemachine.lock(session, row)
    known = facts(session, row.project_id)
    target = R.APPROVED if approve else R.REJECTED
    policy.check_transition(actor, EXTENSION_MACHINE, R(row.status), target, known)
    check_version(f"request {request_id}", row.version, version)
    reason = validation.text("reason", reason, max_len=5000, min_len=1 if require_reason else 0,
                             multiline=True)
    if approve:
        if row.requested_end_date <= (today or date.today()):
            raise FieldError("new_end_date", "the requested end date has passed meanwhile")
        project.end_date = row.requested_end_date
        project.version += 1
    row.decided_by, row.decided_at, row.decision_reason = actor.username, utcnow(), reason
    statemachine.move(session, actor, EXTENSION_MACHINE, row, target, facts=known,
                      details={"from": row.current_end_date.isoformat(),
                               "to": row.requested_end_date.isoformat(),
                               **({"reason": reason} if reason else {})})
    notifications.notify(session, "extension.decided", known["members"],
                         project_id=row.project_id, title=project.title,
                         end_date=row.requested_end_date.isoformat(), decision=target.value)
    return row


def pending_requests(session: Session, actor: Actor
                     ) -> tuple[list[MembershipRequest], list[ExtensionRequest]]:
    """Requests awaiting DEPP staff, except those of projects the actor is a member of."""
    policy.check_decide_on_project(actor, [])
    mine = select(Membership.project_id).where(Membership.username == actor.username)
    members = list(session.execute(select(MembershipRequest).where(
        MembershipRequest.status == R.REQUESTED.value,
        MembershipRequest.project_id.not_in(mine)).order_by(MembershipRequest.created_at))
        .scalars())
    extensions = list(session.execute(select(ExtensionRequest).where(
        ExtensionRequest.status == R.REQUESTED.value,
        ExtensionRequest.project_id.not_in(mine)).order_by(ExtensionRequest.created_at))
        .scalars())
    return members, extensions
