"""The access workflow's front door: the names other packages use, and one generic move.

The operations live in small modules (:mod:`~access_requests.applications`,
:mod:`~access_requests.decisions`, :mod:`~access_requests.agreements`,
:mod:`~access_requests.membership`, :mod:`~access_requests.lifecycle`,
:mod:`~access_requests.notifications`); this module re-exports what extract provisioning,
output control and the demo use, and :func:`transition`, which routes a requested status to
the operation that owns it so that every path applies the same checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from access_requests import decisions, lifecycle
from access_requests.agreements import accept_agreement
from access_requests.applications import ApplicationForm, create_application
from access_requests.machine import (
    CURRENT_AGREEMENT,
    PROJECT_MACHINE,
    ApprovalOutcome,
    ProjectStatus,
    approval_status,
    facts,
    get_project,
    members_of,
)
from access_requests.models import Membership, Project, RequestedVariable
from access_requests.moves import advance, locked_project
from enclave.core import policy
from enclave.core.exceptions import PermissionDenied, ValidationError
from enclave.core.keystore import KeyStore
from enclave.core.policy import Actor

__all__ = ["CURRENT_AGREEMENT", "PROJECT_MACHINE", "ApplicationForm", "ProjectStatus",
           "ProjectView", "accept_agreement", "approved_variables", "create_application",
           "facts", "get_project", "members_of", "projects_of", "transition", "view_project"]

S = ProjectStatus


def transition(session: Session, actor: Actor, project_id: str, target: ProjectStatus,
               reason: str = "", *, version: int | None = None, keys: KeyStore | None = None,
               **extra_facts: Any) -> Project:
    """Move the project towards ``target`` through the operation that owns that move.

    ``approved`` records the actor's approval (the project moves once the approval rule is
    complete); ``rejected`` and ``changes_requested`` record the decision; ``closed`` needs
    the key store (``keys``) to destroy the project's keys. ``version`` (the version the
    actor saw) is checked where the operation requires a fresh view. Only ``today`` is taken
    from ``extra_facts``; every other fact is read from the database.
    """
    project = locked_project(session, project_id)
    if target == S.APPROVED:
        decisions.approve(session, actor, project_id, version=version, reason=reason)
    elif target in (S.REJECTED, S.CHANGES_REQUESTED):
        decisions.decide(session, actor, project_id, target, version=version, reason=reason)
    elif target == S.CLOSED:
        if keys is None:
            policy.check_transition(actor, PROJECT_MACHINE, S(project.status), target,
                                    facts(session, project_id))
            raise ValidationError("closing a project destroys its keys: pass keys= (the "
                                  "enclave's KeyStore) or call lifecycle.close_project")
        lifecycle.close_project(session, keys, actor, project_id, reason=reason,
                                version=version)
    elif target == S.ACTIVE and project.status == S.SUSPENDED and version is not None:
        lifecycle.reinstate(session, actor, project_id, version=version, reason=reason)
    else:
        advance(session, actor, project, target, reason=reason[:5000],
                extra_facts={"today": extra_facts["today"]}
                if isinstance(extra_facts.get("today"), date) else None)
    return project


def approved_variables(session: Session, project_id: str) -> dict[str, list[str]]:
    """``{dataset: [variables]}`` approved for an approved or active project."""
    project = get_project(session, project_id)
    if project.status not in (S.APPROVED, S.ACTIVE):
        raise PermissionDenied(f"project {project_id} is {project.status}, not approved")
    out: dict[str, list[str]] = {}
    for row in session.execute(select(RequestedVariable).where(
            RequestedVariable.project_id == project_id).order_by(RequestedVariable.id)).scalars():
        out.setdefault(row.dataset_id, []).append(row.variable)
    return out


@dataclass(frozen=True)
class ProjectView:
    """Everything the portal shows about one project, read in one go (plain values)."""

    project: Project
    population: dict[str, list[Any]]
    members: list[Membership]
    variables: list[RequestedVariable]
    approval: ApprovalOutcome
    enhanced_reasons: list[str]
    allowed_moves: list[ProjectStatus]


def view_project(session: Session, actor: Actor, project_id: str) -> ProjectView:
    """The project as ``actor`` may see it, with the moves the actor may make now."""
    project = get_project(session, project_id)
    members = members_of(session, project_id)
    policy.check_view_project(actor, [m.username for m in members])
    known = facts(session, project_id)
    source = S(project.status)
    moves = [t.target for t in PROJECT_MACHINE.transitions if t.source == source
             and policy.can_transition(actor, PROJECT_MACHINE, source, t.target, known)]
    variables = list(session.execute(select(RequestedVariable).where(
        RequestedVariable.project_id == project_id).order_by(RequestedVariable.dataset_id,
                                                             RequestedVariable.variable))
        .scalars())
    return ProjectView(project, json.loads(project.population or "{}"), members, variables,
                       approval_status(session, project_id), known["enhanced_reasons"],
                       list(dict.fromkeys(moves)))


def projects_of(session: Session, actor: Actor) -> list[Project]:
    """The projects ``actor`` is a member of, newest first."""
    return list(session.execute(select(Project).join(
        Membership, Membership.project_id == Project.id).where(
        Membership.username == actor.username).order_by(Project.created_at.desc())).scalars())
