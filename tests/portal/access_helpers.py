"""Projects at any status for the portal's access tests, made through the workflow functions."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select

from access_requests import agreements, applications, decisions
from access_requests.machine import CURRENT_AGREEMENT, get_project
from access_requests.models import Project
from enclave.core import people
from enclave.core.audit import AuditEvent
from enclave.provisioning.extracts import build_extract, try_activate
from tests.portal.factories import Portal

END = date.today() + timedelta(days=200)
#: The form's fields for a plain application (no sensitive variable: one approval).
PLAIN: dict[str, Any] = {
    "title": "Parcours du CM2 à la 6e",
    "summary": "Étude des parcours.",
    "end_date": END,
    "variables": {"eleves": [("sexe", "Écarts filles-garçons"), ("niveau", "Par niveau")]},
    "members": ["rita"],
    "scientific_purpose": "Mesurer les écarts.",
    "public_interest": "Éclairer la politique éducative.",
}


def submitted(portal: Portal, **extra: Any) -> str:
    """A submitted application by alice (member: rita)."""
    with portal.enclave.db.transaction() as session:
        alice = people.actor_for(session, "alice")
        project = applications.create_application(
            session, alice, projects_dir=portal.enclave.settings.projects_dir,
            **{**PLAIN, **extra})
        applications.submit(session, alice, project.id)
        return project.id


def approved(portal: Portal) -> str:
    """An approved plain application (approved by claire)."""
    project_id = submitted(portal)
    with portal.enclave.db.transaction() as session:
        claire = people.actor_for(session, "claire")
        project = decisions.start_review(session, claire, project_id, version=None)
        decisions.approve(session, claire, project_id, version=project.version, reason="ok")
    return project_id


def active(portal: Portal) -> str:
    """An active project: approved, extract built by claire, every member agreed."""
    project_id = approved(portal)
    enclave = portal.enclave
    with enclave.db.sessions() as session:
        claire = people.actor_for(session, "claire")
    build_extract(enclave.db, enclave.settings, enclave.keys, claire, project_id)
    for who in ("alice", "rita"):
        with enclave.db.transaction() as session:
            agreements.accept_agreement(session, people.actor_for(session, who), project_id,
                                        CURRENT_AGREEMENT)
    assert try_activate(enclave.db, project_id)
    return project_id


def status_version(portal: Portal, project_id: str) -> tuple[str, int]:
    """The project's (status, version) as committed."""
    with portal.enclave.db.sessions() as session:
        project = get_project(session, project_id)
        return project.status, project.version


def actions(portal: Portal, after: int) -> list[str]:
    """The audit actions appended after sequence number ``after``."""
    with portal.enclave.db.sessions() as session:
        return list(session.execute(select(AuditEvent.action).where(AuditEvent.seq > after)
                                    .order_by(AuditEvent.seq)).scalars())


def project_count(portal: Portal) -> int:
    """How many projects exist."""
    with portal.enclave.db.sessions() as session:
        return int(session.execute(select(func.count()).select_from(Project)).scalar() or 0)
