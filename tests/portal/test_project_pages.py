"""The access project pages: my projects, a project, the agreement, the review queue, decisions."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from access_requests import applications, decisions
from access_requests.machine import CURRENT_AGREEMENT, get_project, members_of
from access_requests.models import Membership
from enclave.core import audit, people
from enclave.core.audit import AuditEvent
from enclave.portal.i18n import PROJECT_MESSAGES
from enclave.portal.sessions import LANG_COOKIE
from tests.portal.factories import PREFIX, TRICKY, TRICKY_ESCAPED, Portal

FORM = {
    "title": "Parcours scolaires " + TRICKY,
    "summary": "Étude des parcours du CM2 à la 6e.",
    "end_date": date.today() + timedelta(days=200),
    "variables": {"eleves": [("sexe", "Écarts filles-garçons"), ("niveau", "Par niveau")]},
    "members": ["rita"],
    "scientific_purpose": "Mesurer les écarts " + TRICKY,
    "public_interest": "Éclairer la politique d'éducation prioritaire.",
    "years": [2024],
    "levels": ["CM2"],
    "territories": ["59"],
}


def _submitted(portal: Portal) -> str:
    with portal.enclave.db.transaction() as session:
        alice = people.actor_for(session, "alice")
        project = applications.create_application(
            session, alice, projects_dir=portal.enclave.settings.projects_dir, **FORM)
        applications.submit(session, alice, project.id)
        return project.id


def _approved(portal: Portal) -> str:
    project_id = _submitted(portal)
    with portal.enclave.db.transaction() as session:
        claire = people.actor_for(session, "claire")
        project = decisions.start_review(session, claire, project_id, version=None)
        decisions.approve(session, claire, project_id, version=project.version, reason="ok")
    return project_id


def _status_version(portal: Portal, project_id: str) -> tuple[str, int]:
    with portal.enclave.db.sessions() as session:
        project = get_project(session, project_id)
        return project.status, project.version


def _events(portal: Portal, project_id: str) -> list[str]:
    with portal.enclave.db.sessions() as session:
        return list(session.execute(select(AuditEvent.action).where(
            AuditEvent.project_id == project_id).order_by(AuditEvent.seq)).scalars())


# -- my projects and a project's page -----------------------------------------------------------

def test_my_projects_lists_the_members_projects_escaped(portal: Portal) -> None:
    project_id = _submitted(portal)
    for who in ("alice", "rita"):
        page = portal.client(who).get("projects")
        assert page.status_code == 200
        assert f'href="{PREFIX}projects/{project_id}"' in page.text
        assert "Déposée" in page.text and "alice, rita" in page.text
        assert TRICKY not in page.text and TRICKY_ESCAPED in page.text
    other = portal.client("mallory").get("projects").text
    assert project_id not in other and "Vous n&#39;êtes membre d&#39;aucun projet" in other


@pytest.mark.parametrize(("who", "expected"), [
    ("alice", 200), ("rita", 200), ("claire", 200), ("gaelle", 200),
    ("mallory", 403), ("emma", 403), ("depot", 403), ("newbie", 403)])
def test_project_page_follows_check_view_project(portal: Portal, who: str,
                                                 expected: int) -> None:
    project_id = _submitted(portal)
    page = portal.client(who).get(f"projects/{project_id}")
    assert page.status_code == expected, page.text[:300]
    if expected == 200:
        assert TRICKY not in page.text
        assert f"Mesurer les écarts {TRICKY_ESCAPED}" in page.text
        assert "project.submitted" in page.text  # the history, from the audit chain
        assert "Écarts filles-garçons" in page.text
    else:
        assert "Accès refusé" in page.text


def test_unknown_project_is_a_404(portal: Portal) -> None:
    assert portal.client("alice").get("projects/prj-nope").status_code == 404


def test_menu_shows_projects_to_researchers_and_the_queue_to_staff(portal: Portal) -> None:
    researcher = portal.client("alice").get("").text
    staff = portal.client("claire").get("").text
    assert f'href="{PREFIX}projects"' in researcher
    assert f'href="{PREFIX}review"' not in researcher
    assert f'href="{PREFIX}review"' in staff


def test_english_project_page(portal: Portal) -> None:
    project_id = _submitted(portal)
    browser = portal.client("alice")
    browser.http.cookies.set(LANG_COOKIE, "en")
    page = browser.get(f"projects/{project_id}").text
    assert "Data-use agreement" in page and "Period and population" in page


def test_messages_exist_in_both_languages() -> None:
    assert set(PROJECT_MESSAGES["fr"]) == set(PROJECT_MESSAGES["en"])


# -- accepting the agreement --------------------------------------------------------------------

def test_a_member_accepts_the_agreement(portal: Portal) -> None:
    project_id = _approved(portal)
    browser = portal.client("alice")
    page = browser.get(f"projects/{project_id}").text
    assert "Accepter la convention" in page and f'value="{CURRENT_AGREEMENT}"' in page
    done = browser.post(f"projects/{project_id}/agreement", {"version": CURRENT_AGREEMENT})
    assert done.status_code == 303
    assert done.headers["location"] == f"{PREFIX}projects/{project_id}?accepted=1"
    assert "agreement.accepted" in _events(portal, project_id)
    with portal.enclave.db.sessions() as session:
        mine = {m.username: m.agreement_version for m in members_of(session, project_id)}
    assert mine == {"alice": CURRENT_AGREEMENT, "rita": None}
    after = browser.get(f"projects/{project_id}?accepted=1").text
    assert "Vous avez accepté la convention" in after
    assert 'action="' + PREFIX + f'projects/{project_id}/agreement"' not in after
    # no extract yet: the project stays approved (activation needs every member and data)
    assert _status_version(portal, project_id)[0] == "approved"


def test_accepting_an_old_agreement_version_is_refused(portal: Portal) -> None:
    project_id = _approved(portal)
    before = portal.head_seq()
    page = portal.client("alice").post(f"projects/{project_id}/agreement",
                                       {"version": "DUA-2001.1"})
    assert page.status_code == 409
    assert "plus en vigueur" in page.text
    assert portal.head_seq() == before


def test_only_members_accept_and_only_once_approved(portal: Portal) -> None:
    submitted = _submitted(portal)
    assert portal.client("alice").post(f"projects/{submitted}/agreement",
                                       {"version": CURRENT_AGREEMENT}).status_code == 403
    approved = _approved(portal)
    before = portal.head_seq()
    assert portal.client("mallory").post(f"projects/{approved}/agreement",
                                         {"version": CURRENT_AGREEMENT}).status_code == 403
    assert portal.head_seq() == before


# -- the review queue and decisions ---------------------------------------------------------------

@pytest.mark.parametrize(("who", "expected"), [
    ("claire", 200), ("alice", 403), ("gaelle", 403), ("admin", 403), ("emma", 403)])
def test_review_pages_are_for_depp_staff(portal: Portal, who: str, expected: int) -> None:
    project_id = _submitted(portal)
    browser = portal.client(who)
    queue = browser.get("review")
    assert queue.status_code == expected
    assert browser.get(f"review/{project_id}").status_code == expected
    if expected == 200:
        assert f'href="{PREFIX}review/{project_id}"' in queue.text
        assert TRICKY not in queue.text


@pytest.mark.parametrize(("decision", "status", "action"), [
    ("approve", "approved", "project.approved"),
    ("request_changes", "changes_requested", "project.changes_requested"),
    ("reject", "rejected", "project.rejected")])
def test_a_decision_changes_the_status_and_is_audited(portal: Portal, decision: str,
                                                      status: str, action: str) -> None:
    project_id = _submitted(portal)
    browser = portal.client("claire")
    page = browser.get(f"review/{project_id}").text
    _, version = _status_version(portal, project_id)
    assert f'name="version" value="{version}"' in page
    done = browser.post(f"review/{project_id}", {"decision": decision, "reason": "Motif " + TRICKY,
                                                 "version": str(version)})
    assert done.status_code == 303, done.text[:500]
    assert _status_version(portal, project_id)[0] == status
    events = _events(portal, project_id)
    assert "project.review_started" in events and events[-1] == action
    queue = browser.get(done.headers["location"].removeprefix(PREFIX)).text
    assert "Votre décision sur le projet" in queue
    history = portal.client("alice").get(f"projects/{project_id}").text
    assert f"Motif {TRICKY_ESCAPED}" in history and TRICKY not in history


def test_a_stale_version_is_refused_and_nothing_changes(portal: Portal) -> None:
    project_id = _submitted(portal)
    browser = portal.client("claire")
    status, version = _status_version(portal, project_id)
    before = portal.head_seq()
    page = browser.post(f"review/{project_id}", {"decision": "reject", "reason": "Non",
                                                 "version": str(version - 1)})
    assert page.status_code == 409
    assert "La demande a changé depuis que vous l&#39;avez ouverte" in page.text
    assert _status_version(portal, project_id) == (status, version)
    assert portal.head_seq() == before


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"decision": "approve", "reason": "  "}, "reason", "Indiquez le motif"),
    ({"decision": "maybe", "reason": "x"}, "decision", "Choisissez une décision"),
    ({"decision": "reject", "reason": "x" * 5001}, "reason", "Ce champ est trop long"),
])
def test_errors_are_shown_next_to_their_field(portal: Portal, data: dict[str, str],
                                              field: str, message: str) -> None:
    project_id = _submitted(portal)
    _, version = _status_version(portal, project_id)
    before = portal.head_seq()
    page = portal.client("claire").post(f"review/{project_id}",
                                        {**data, "version": str(version)})
    assert page.status_code == 400
    assert f'id="erreur-{field}"' in page.text and message in page.text
    assert portal.head_seq() == before


def test_staff_cannot_decide_on_a_project_they_belong_to(portal: Portal) -> None:
    project_id = _submitted(portal)
    with portal.enclave.db.transaction() as session:
        session.add(Membership(project_id=project_id, username="claire"))
    browser = portal.client("claire")
    assert project_id not in browser.get("review").text
    assert browser.get(f"review/{project_id}").status_code == 403
    before = portal.head_seq()
    _, version = _status_version(portal, project_id)
    assert browser.post(f"review/{project_id}", {"decision": "approve", "reason": "ok",
                                                 "version": str(version)}).status_code == 403
    assert portal.head_seq() == before


# -- CSRF on the new forms ----------------------------------------------------------------------

def test_forms_without_csrf_token_are_refused(portal: Portal) -> None:
    project_id = _submitted(portal)
    _, version = _status_version(portal, project_id)
    before = portal.head_seq()
    refused = portal.client("claire").post(
        f"review/{project_id}", {"decision": "reject", "reason": "x", "version": str(version)},
        token=False)
    assert refused.status_code == 403 and "Formulaire refusé" in refused.text
    approved = _approved(portal)
    before = portal.head_seq()
    refused = portal.client("alice").post(f"projects/{approved}/agreement",
                                          {"version": CURRENT_AGREEMENT}, token=False)
    assert refused.status_code == 403 and "Formulaire refusé" in refused.text
    assert portal.head_seq() == before
    with portal.enclave.db.sessions() as session:
        assert audit.head(session)[0] == before
