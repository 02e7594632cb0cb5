"""The embedded demo's ready-to-open workspace: an active project of alice and bruno.

``enclave up`` (``make run``) calls :func:`ensure_demo_project` so that a newcomer logging in as
alice finds a project whose workspace opens at once. Each step is the real workflow call that
a person would make through the portal (application, review, approval by DEPP staff, extract
build, agreements, activation by the system), so the project's history is in the audit chain.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from access_requests import workflow as projects
from access_requests.workflow import ProjectStatus
from enclave.core import people
from enclave.core.context import Enclave
from enclave.core.exceptions import NotFound
from enclave.core.policy import Actor
from enclave.provisioning.extracts import build_extract, try_activate

TITLE = "Projet de démonstration : réussite selon le niveau et le sexe"
PI, MEMBER, STAFF = "alice", "bruno", "claire"
VARIABLES = {
    "eleves": [("sexe", "Écarts filles-garçons"), ("niveau", "Analyse par niveau"),
               ("secteur", "Public/privé"), ("academie", "Variations territoriales")],
}


def _actor(enclave: Enclave, username: str) -> Actor:
    with enclave.db.sessions() as session:
        return people.actor_for(session, username)


def create_active_project(enclave: Enclave, pi: str, members: list[str], staff: str, *,
                          title: str = TITLE) -> str:
    """Apply (``pi``), review and approve (``staff``), build the extract, have everyone
    accept the agreement and activate: the project's id."""
    pi_actor, staff_actor = _actor(enclave, pi), _actor(enclave, staff)
    with enclave.db.transaction() as session:
        project_id = str(projects.create_application(
            session, pi_actor, title=title, summary="Projet de démonstration de l'enclave.",
            end_date=date.today() + timedelta(days=365), variables=VARIABLES,
            members=members).id)
    with enclave.db.transaction() as session:
        projects.transition(session, pi_actor, project_id, ProjectStatus.SUBMITTED)
        projects.transition(session, staff_actor, project_id, ProjectStatus.IN_REVIEW)
        projects.transition(session, staff_actor, project_id, ProjectStatus.APPROVED,
                            reason="Variables proportionnées à la finalité (démonstration)")
    build_extract(enclave.db, enclave.settings, enclave.keys, staff_actor, project_id)
    for member in (pi, *members):
        with enclave.db.transaction() as session:
            projects.accept_agreement(session, _actor(enclave, member), project_id)
    try_activate(enclave.db, project_id)
    return project_id


def ensure_demo_project(enclave: Enclave, log: Callable[[str], None] = print) -> str | None:
    """The id of alice's active demo project, created if she has none; None without alice."""
    try:
        alice = _actor(enclave, PI)
        _actor(enclave, MEMBER)
        _actor(enclave, STAFF)
    except NotFound:
        return None
    with enclave.db.sessions() as session:
        for project in projects.projects_of(session, alice):
            if project.status == ProjectStatus.ACTIVE:
                return str(project.id)
    project_id = create_active_project(enclave, PI, [MEMBER], STAFF)
    log(f"demo project {project_id} (alice, bruno): active, extract v1; open it from the "
        "hub's home page")
    return project_id
