"""The project state machine and the operations that drive it (thin for now: the foundation path).

States follow the access issue: draft -> submitted -> in review -> (changes requested ->
resubmitted ->) approved -> active <-> suspended, and the end states rejected, revoked, expired,
closed. Every move goes through :func:`enclave.core.statemachine.move`, which checks the one
policy module and writes the audit event in the same transaction.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from access_requests.models import Membership, Project, RequestedVariable
from enclave.core import audit, policy, statemachine
from enclave.core.catalogue import Dataset, Variable, VariableKind
from enclave.core.db import utcnow
from enclave.core.exceptions import NotFound, PermissionDenied, ValidationError
from enclave.core.policy import Actor, Role, StateMachine, Transition, is_a_member, not_a_member

CURRENT_AGREEMENT = "DUA-2026.1"


class ProjectStatus(StrEnum):
    """Where a project stands; statuses are never bare strings in code."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    IN_REVIEW = "in_review"
    CHANGES_REQUESTED = "changes_requested"
    RESUBMITTED = "resubmitted"
    APPROVED = "approved"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REJECTED = "rejected"
    REVOKED = "revoked"
    EXPIRED = "expired"
    CLOSED = "closed"


def _ready_to_activate(actor: Actor, facts: Mapping[str, Any]) -> str | None:
    """Active needs every member's accepted agreement and a published extract."""
    missing = sorted(set(facts.get("members", ())) - set(facts.get("agreed", ())))
    if missing:
        return "members have not accepted the data-use agreement: " + ", ".join(missing)
    if not facts.get("extract_published"):
        return "the project has no published extract yet"
    return None


S = ProjectStatus
T = Transition
PROJECT_MACHINE: StateMachine[ProjectStatus] = StateMachine("project", ProjectStatus, (
    T(S.DRAFT, S.SUBMITTED, Role.RESEARCHER, "project.submitted", is_a_member),
    T(S.SUBMITTED, S.IN_REVIEW, Role.DEPP_STAFF, "project.review_started", not_a_member),
    T(S.IN_REVIEW, S.CHANGES_REQUESTED, Role.DEPP_STAFF, "project.changes_requested",
      not_a_member),
    T(S.CHANGES_REQUESTED, S.RESUBMITTED, Role.RESEARCHER, "project.resubmitted", is_a_member),
    T(S.RESUBMITTED, S.IN_REVIEW, Role.DEPP_STAFF, "project.review_started", not_a_member),
    T(S.IN_REVIEW, S.APPROVED, Role.DEPP_STAFF, "project.approved", not_a_member),
    T(S.IN_REVIEW, S.REJECTED, Role.DEPP_STAFF, "project.rejected", not_a_member),
    T(S.APPROVED, S.ACTIVE, Role.SYSTEM, "project.activated", _ready_to_activate),
    T(S.ACTIVE, S.SUSPENDED, Role.DEPP_STAFF, "project.suspended", not_a_member),
    T(S.SUSPENDED, S.ACTIVE, Role.DEPP_STAFF, "project.reinstated", not_a_member),
    T(S.ACTIVE, S.REVOKED, Role.DEPP_STAFF, "project.revoked", not_a_member),
    T(S.SUSPENDED, S.REVOKED, Role.DEPP_STAFF, "project.revoked", not_a_member),
    T(S.ACTIVE, S.EXPIRED, Role.SYSTEM, "project.expired"),
))


def get_project(session: Session, project_id: str) -> Project:
    """The project, or NotFound."""
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"no project {project_id!r}")
    return project


def members_of(session: Session, project_id: str) -> list[Membership]:
    """The project's memberships."""
    return list(session.execute(select(Membership).where(Membership.project_id == project_id)
                                .order_by(Membership.username)).scalars())


def facts(session: Session, project_id: str, **extra: Any) -> dict[str, Any]:
    """The plain facts the policy needs about a project: members, who agreed, status."""
    members = members_of(session, project_id)
    project = get_project(session, project_id)
    return {"members": [m.username for m in members],
            "agreed": [m.username for m in members if m.agreement_version == CURRENT_AGREEMENT],
            "active": project.status == ProjectStatus.ACTIVE, **extra}


def create_application(session: Session, actor: Actor, *, title: str, summary: str,
                       end_date: date, variables: Mapping[str, Iterable[tuple[str, str]]],
                       members: Iterable[str] = ()) -> Project:
    """Create a draft application requesting ``{dataset: [(variable, justification)]}``."""
    policy.check_apply_for_project(actor)
    title = title.strip()
    if not 3 <= len(title) <= 300:
        raise ValidationError("the title needs 3 to 300 characters")
    if end_date <= date.today():
        raise ValidationError("the requested end date must be in the future")
    wanted: list[tuple[str, str, str]] = []
    for dataset_id, items in variables.items():
        if session.get(Dataset, dataset_id) is None:
            raise ValidationError(f"unknown dataset {dataset_id!r}")
        kinds = dict(session.execute(select(Variable.name, Variable.kind)
                                     .where(Variable.dataset_id == dataset_id)).all())
        for name, justification in items:
            if name not in kinds:
                raise ValidationError(f"dataset {dataset_id} has no variable {name!r}")
            if kinds[name] == VariableKind.DIRECT_IDENTIFIER:
                raise ValidationError(f"{dataset_id}.{name} is a direct identifier and can never "
                                      "be requested (data minimisation)")
            wanted.append((dataset_id, name, justification[:2000]))
    if not wanted:
        raise ValidationError("an application must request at least one variable")
    project = Project(id="prj-" + secrets.token_hex(4), title=title, summary=summary[:5000],
                      status=ProjectStatus.DRAFT.value, version=1,
                      principal_investigator=actor.username, end_date=end_date,
                      created_at=utcnow())
    session.add(project)
    session.flush()
    for username in dict.fromkeys([actor.username, *members]):
        session.add(Membership(project_id=project.id, username=username,
                               role_in_project="pi" if username == actor.username else "member"))
    for dataset_id, name, justification in wanted:
        session.add(RequestedVariable(project_id=project.id, dataset_id=dataset_id,
                                      variable=name, justification=justification))
    audit.record(session, actor=actor.username, action="project.created", object_type="project",
                 object_id=project.id, project_id=project.id,
                 details={"title": title, "variables": [f"{d}.{v}" for d, v, _ in wanted]})
    return project


def transition(session: Session, actor: Actor, project_id: str, target: ProjectStatus,
               reason: str = "", **extra_facts: Any) -> Project:
    """Move the project to ``target`` through the state machine, with its audit event."""
    project = get_project(session, project_id)
    statemachine.move(session, actor, PROJECT_MACHINE, project, target,
                      facts=facts(session, project_id, **extra_facts),
                      details={"reason": reason[:2000]} if reason else None)
    return project


def accept_agreement(session: Session, actor: Actor, project_id: str,
                     version: str = CURRENT_AGREEMENT) -> Membership:
    """A member accepts the current data-use agreement (who, when, which version)."""
    if version != CURRENT_AGREEMENT:
        raise ValidationError(f"agreement {version} is not the current one ({CURRENT_AGREEMENT})")
    project = get_project(session, project_id)
    if project.status not in (ProjectStatus.APPROVED, ProjectStatus.ACTIVE):
        raise PermissionDenied("agreements are accepted once the project is approved")
    membership = session.execute(select(Membership).where(
        Membership.project_id == project_id, Membership.username == actor.username)).scalar()
    if membership is None or not actor.active:
        raise PermissionDenied(f"{actor.username} is not a member of this project")
    membership.agreement_version = version
    membership.agreement_accepted_at = utcnow()
    audit.record(session, actor=actor.username, action="agreement.accepted",
                 object_type="project", object_id=project_id, project_id=project_id,
                 details={"agreement": version})
    return membership


def approved_variables(session: Session, project_id: str) -> dict[str, list[str]]:
    """``{dataset: [variables]}`` approved for an approved or active project."""
    project = get_project(session, project_id)
    if project.status not in (ProjectStatus.APPROVED, ProjectStatus.ACTIVE):
        raise PermissionDenied(f"project {project_id} is {project.status}, not approved")
    out: dict[str, list[str]] = {}
    for row in session.execute(select(RequestedVariable).where(
            RequestedVariable.project_id == project_id).order_by(RequestedVariable.id)).scalars():
        out.setdefault(row.dataset_id, []).append(row.variable)
    return out
