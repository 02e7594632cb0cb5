"""Moving a project: the one place a project's status changes, with what goes with each move.

:func:`advance` locks the project row, reads the facts under the lock, lets
:func:`enclave.core.statemachine.move` check the transition table and write the audit event,
then applies the move's consequences (review round, submission time) and queues its
notifications, all in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from access_requests import notifications
from access_requests.exceptions import StaleVersion
from access_requests.machine import PROJECT_MACHINE, ProjectStatus, facts, get_project
from access_requests.models import Project
from enclave.core import audit, statemachine
from enclave.core.db import utcnow
from enclave.core.policy import Actor, Role

S = ProjectStatus
#: Who hears of each move: the project's members, or DEPP staff (who decide).
_TELL_MEMBERS = frozenset({S.CHANGES_REQUESTED, S.APPROVED, S.REJECTED, S.ACTIVE, S.SUSPENDED,
                           S.REVOKED, S.EXPIRED, S.CLOSED})
_TELL_STAFF = frozenset({S.SUBMITTED, S.RESUBMITTED})


def locked_project(session: Session, project_id: str) -> Project:
    """The project re-read under a row lock (``SELECT ... FOR UPDATE``), or NotFound."""
    project = get_project(session, project_id)
    statemachine.lock(session, project)
    return project


def check_version(what: str, current: int, seen: int | None) -> None:
    """Refuse a decision made on an older view (``seen`` None: the caller acts on what it
    just read under the lock, as the system's timers do)."""
    if seen is not None and (isinstance(seen, bool) or seen != current):
        raise StaleVersion(what, seen if isinstance(seen, int) else -1, current)


def advance(session: Session, actor: Actor, project: Project, target: ProjectStatus, *,
            reason: str = "", details: Mapping[str, Any] | None = None,
            extra_facts: Mapping[str, Any] | None = None) -> audit.AuditEvent:
    """Move ``project`` to ``target`` if the table allows it; audit and notify with it."""
    statemachine.lock(session, project)
    known = facts(session, project.id, **(extra_facts or {}))
    merged = {**({"reason": reason} if reason else {}), **(details or {})}
    event = statemachine.move(session, actor, PROJECT_MACHINE, project, target, facts=known,
                              details=merged or None)
    if target == S.IN_REVIEW:
        project.review_round += 1
    if target in (S.SUBMITTED, S.RESUBMITTED):
        project.submitted_at = utcnow()
    values = {"title": project.title, "reason": reason or "-",
              "end_date": project.end_date.isoformat()}
    if target in _TELL_STAFF:
        staff = notifications.people_with_role(session, Role.DEPP_STAFF)
        notifications.notify(session, event.action, staff, project_id=project.id,
                             exclude=known["members"], **values)
        if known["enhanced_review"]:
            notifications.notify(session, "project.ethics_needed",
                                 notifications.people_with_role(session, Role.ETHICS_COMMITTEE),
                                 project_id=project.id, exclude=known["members"],
                                 dedupe_key=f"ethics-needed:{project.id}:{project.version}",
                                 **values)
    elif target in _TELL_MEMBERS:
        notifications.notify(session, event.action, known["members"], project_id=project.id,
                             **values)
    return event
