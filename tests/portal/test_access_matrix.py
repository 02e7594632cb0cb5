"""The new access forms and API calls as truth tables: role x action, allowed or denied, with
audit events written only for allowed moves (and the object unchanged when denied).

Expectations are written out, not recomputed from the policy. Each case gets its own enclave
(the allowed move changes the object). alice is the principal investigator and rita a member
of every project; claire and david are DEPP staff outside them; gaelle is the ethics
committee; mallory an accredited researcher outside the project; newbie an unaccredited one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from access_requests import membership
from access_requests.machine import CURRENT_AGREEMENT
from access_requests.models import ExtensionRequest
from enclave.core import people
from tests.portal import access_helpers as h
from tests.portal.factories import PREFIX, Portal

PEOPLE = ("alice", "rita", "mallory", "newbie", "claire", "david", "emma", "gaelle", "admin",
          "depot")
Setup = Callable[[Portal], tuple[str, dict[str, Any]]]
LATER = (h.END + timedelta(days=60)).isoformat()


def _apply(portal: Portal) -> tuple[str, dict[str, Any]]:
    return "apply", {"title": "Une étude", "summary": "Résumé", "end_date": h.END.isoformat(),
                     "var:eleves:sexe": "1", "why:eleves:sexe": "Écarts", "action": "submit",
                     "form_key": "m" * 20}


def _submit(portal: Portal) -> tuple[str, dict[str, Any]]:
    with portal.enclave.db.transaction() as session:
        from access_requests import applications

        project = applications.create_application(
            session, people.actor_for(session, "alice"),
            projects_dir=portal.enclave.settings.projects_dir, **h.PLAIN)
        return f"projects/{project.id}/submit", {"version": str(project.version)}


def _decide(portal: Portal) -> tuple[str, dict[str, Any]]:
    project_id = h.submitted(portal)
    return f"review/{project_id}", {"decision": "approve", "reason": "Conforme",
                                    "version": str(h.status_version(portal, project_id)[1])}


def _opinion(portal: Portal) -> tuple[str, dict[str, Any]]:
    return f"ethics/{h.submitted(portal)}/opinion", {"verdict": "favourable"}


def _revoke(portal: Portal) -> tuple[str, dict[str, Any]]:
    project_id = h.approved(portal)
    return f"manage/{project_id}/revoke", {
        "reason": "Manquement", "version": str(h.status_version(portal, project_id)[1])}


def _extension(portal: Portal) -> tuple[str, dict[str, Any]]:
    return f"projects/{h.approved(portal)}/changes/extension", {
        "new_end_date": LATER, "reason_extension": "Terrain prolongé"}


def _decide_extension(portal: Portal) -> tuple[str, dict[str, Any]]:
    project_id = h.approved(portal)
    with portal.enclave.db.transaction() as session:
        row = membership.request_extension(session, people.actor_for(session, "alice"),
                                           project_id, new_end_date=h.END + timedelta(days=60),
                                           reason="Terrain prolongé")
        return f"requests/extension/{row.id}", {"decision": "approve", "reason": "ok",
                                                "version": str(row.version)}


def _accept(portal: Portal) -> tuple[str, dict[str, Any]]:
    return f"projects/{h.approved(portal)}/agreement", {"version": CURRENT_AGREEMENT}


#: action -> (setup, who may do it)
ACTIONS: dict[str, tuple[Setup, frozenset[str]]] = {
    "apply": (_apply, frozenset({"alice", "rita", "mallory"})),
    "submit": (_submit, frozenset({"alice", "rita"})),
    "decide": (_decide, frozenset({"claire", "david"})),
    "ethics opinion": (_opinion, frozenset({"gaelle"})),
    "revoke": (_revoke, frozenset({"claire", "david"})),
    "request extension": (_extension, frozenset({"alice"})),
    "decide extension": (_decide_extension, frozenset({"claire", "david"})),
    "accept agreement": (_accept, frozenset({"alice", "rita"})),
}


def _snapshot(portal: Portal) -> tuple[Any, ...]:
    """What a denied call must leave unchanged: the chain's head, projects and requests."""
    with portal.enclave.db.sessions() as session:
        requests = session.execute(select(ExtensionRequest.status)).scalars().all()
    return portal.head_seq(), h.project_count(portal), tuple(requests)


@pytest.mark.parametrize("who", PEOPLE)
@pytest.mark.parametrize("action", list(ACTIONS))
def test_page_action_matrix(portal: Portal, action: str, who: str) -> None:
    setup, allowed = ACTIONS[action]
    path, data = setup(portal)
    before = _snapshot(portal)
    response = portal.client(who).post(path, data)
    if who in allowed:
        assert response.status_code == 303, response.text[:1500]
        assert portal.head_seq() > before[0], "an allowed move writes its audit event"
    else:
        assert response.status_code == 403, (response.status_code, response.text[:800])
        assert "Accès refusé" in response.text
        assert _snapshot(portal) == before, "a denied move changes nothing"


# -- the same rules through the API ------------------------------------------------------------

def _api_create(portal: Portal) -> tuple[str, str, dict[str, Any]]:
    return "POST", "projects", {
        "title": "Une étude", "summary": "Résumé", "end_date": h.END.isoformat(),
        "variables": [{"dataset": "eleves", "variable": "sexe", "justification": "Écarts"}],
        "submit": True}


def _api_decide(portal: Portal) -> tuple[str, str, dict[str, Any]]:
    project_id = h.submitted(portal)
    return "POST", f"projects/{project_id}/decisions", {
        "decision": "approve", "reason": "Conforme",
        "version": h.status_version(portal, project_id)[1]}


def _api_opinion(portal: Portal) -> tuple[str, str, dict[str, Any]]:
    return "POST", f"projects/{h.submitted(portal)}/opinions", {"verdict": "favourable"}


def _api_revoke(portal: Portal) -> tuple[str, str, dict[str, Any]]:
    project_id = h.approved(portal)
    return "POST", f"projects/{project_id}/lifecycle", {
        "action": "revoke", "reason": "Manquement",
        "version": h.status_version(portal, project_id)[1]}


def _api_extension(portal: Portal) -> tuple[str, str, dict[str, Any]]:
    return "POST", f"projects/{h.approved(portal)}/extension-requests", {
        "new_end_date": LATER, "reason": "Terrain prolongé"}


API_ACTIONS: dict[str, tuple[Callable[[Portal], tuple[str, str, dict[str, Any]]],
                             frozenset[str], int]] = {
    "create": (_api_create, frozenset({"alice", "rita", "mallory"}), 201),
    "decide": (_api_decide, frozenset({"claire", "david"}), 200),
    "ethics opinion": (_api_opinion, frozenset({"gaelle"}), 201),
    "revoke": (_api_revoke, frozenset({"claire", "david"}), 200),
    "request extension": (_api_extension, frozenset({"alice"}), 201),
}


@pytest.mark.parametrize("who", PEOPLE)
@pytest.mark.parametrize("action", list(API_ACTIONS))
def test_api_action_matrix(portal: Portal, action: str, who: str) -> None:
    setup, allowed, success = API_ACTIONS[action]
    method, path, body = setup(portal)
    before = _snapshot(portal)
    response = portal.client().http.request(method, PREFIX + "api/v1/" + path, json=body,
                                            headers=portal.bearer(who))
    if who in allowed:
        assert response.status_code == success, response.text
        assert portal.head_seq() > before[0]
    else:
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "forbidden"
        assert _snapshot(portal) == before
