"""The access REST API: the same operations and refusals as the pages, as JSON."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from tests.portal import access_helpers as h
from tests.portal.factories import PREFIX, Portal

API = PREFIX + "api/v1/"


def _call(portal: Portal, who: str, method: str, path: str, body: Any = None) -> Any:
    return portal.client().http.request(method, API + path, json=body,
                                        headers=portal.bearer(who))


def application(**changes: Any) -> dict[str, Any]:
    """A valid application with a sensitive variable."""
    body: dict[str, Any] = {
        "title": "Bourses et réussite", "summary": "Effet des bourses.",
        "end_date": h.END.isoformat(), "members": [{"username": "rita", "institution": "CNRS"}],
        "variables": [{"dataset": "eleves", "variable": "boursier", "justification": "Effet"}],
        "years": [2024], "levels": ["6E"], "territories": ["59"]}
    body.update(changes)
    return body


def test_the_published_schema_lists_the_access_operations(portal: Portal) -> None:
    doc = portal.client().http.get(API + "openapi.json", headers=portal.bearer("alice")).json()
    for path in ("/projects", "/projects/{project_id}", "/projects/{project_id}/submission",
                 "/projects/{project_id}/decisions", "/projects/{project_id}/lifecycle",
                 "/projects/{project_id}/opinions", "/change-requests/{kind}/{request_id}/decision",
                 "/register", "/privacy-budgets"):
        assert PREFIX + "api/v1" + path in doc["paths"], path


def test_create_submit_decide_through_the_api(portal: Portal) -> None:
    created = _call(portal, "alice", "POST", "projects", application(submit=True))
    assert created.status_code == 201, created.text
    project = created.json()
    assert project["status"] == "submitted" and project["approval"]["enhanced"]
    assert project["enhanced_reasons"] == ["eleves.boursier is a sensitive variable"]
    project_id, version = project["id"], project["version"]
    first = _call(portal, "claire", "POST", f"projects/{project_id}/decisions",
                  {"decision": "approve", "reason": "ok", "version": version})
    assert first.status_code == 200 and first.json()["status"] == "in_review"
    before = portal.head_seq()
    again = _call(portal, "claire", "POST", f"projects/{project_id}/decisions",
                  {"decision": "approve", "reason": "ok", "version": first.json()["version"]})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_approved"
    stale = _call(portal, "david", "POST", f"projects/{project_id}/decisions",
                  {"decision": "approve", "reason": "ok", "version": version})
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "stale_version"
    assert portal.head_seq() == before
    opinion = _call(portal, "gaelle", "POST", f"projects/{project_id}/opinions",
                    {"verdict": "favourable", "reference": "CE-1"})
    assert opinion.status_code == 201 and opinion.json()["verdict"] == "favourable"
    current = _call(portal, "david", "GET", f"projects/{project_id}").json()["version"]
    done = _call(portal, "david", "POST", f"projects/{project_id}/decisions",
                 {"decision": "approve", "reason": "ok", "version": current})
    assert done.status_code == 200 and done.json()["status"] == "approved"
    late = _call(portal, "gaelle", "POST", f"projects/{project_id}/opinions",
                 {"verdict": "reserved"})
    assert late.status_code == 409 and late.json()["error"]["code"] == "decided"
    register = _call(portal, "gaelle", "GET", "register?status=approved").json()
    assert project_id in [r["id"] for r in register["applications"]]


@pytest.mark.parametrize(("changes", "field"), [
    ({"variables": [{"dataset": "eleves", "variable": "ine", "justification": "x"}]},
     "variables"),
    ({"variables": [{"dataset": "eleves", "variable": "nope", "justification": "x"}]},
     "variables"),
    ({"end_date": (date.today() - timedelta(days=1)).isoformat()}, "end_date"),
    ({"title": "t" * 301}, "title"),
    ({"members": [{"username": "newbie"}]}, "members"),
    ({"legal_basis": "other"}, "legal_basis_other"),
])
def test_bad_applications_are_refused_with_the_field_and_nothing_stored(
        portal: Portal, changes: dict[str, Any], field: str) -> None:
    before, count = portal.head_seq(), h.project_count(portal)
    response = _call(portal, "alice", "POST", "projects", application(**changes))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"][0]["field"] == field
    assert portal.head_seq() == before and h.project_count(portal) == count


def test_a_resent_application_is_a_409(portal: Portal) -> None:
    body = application(form_key="resend-key-0123456789")
    assert _call(portal, "alice", "POST", "projects", body).status_code == 201
    count = h.project_count(portal)
    again = _call(portal, "alice", "POST", "projects", body)
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_submitted"
    assert h.project_count(portal) == count


def test_lifecycle_through_the_api_needs_a_reason(portal: Portal) -> None:
    project_id = h.approved(portal)
    version = h.status_version(portal, project_id)[1]
    before = portal.head_seq()
    empty = _call(portal, "claire", "POST", f"projects/{project_id}/lifecycle",
                  {"action": "revoke", "reason": "", "version": version})
    assert empty.status_code == 422 and portal.head_seq() == before
    wrong = _call(portal, "claire", "POST", f"projects/{project_id}/lifecycle",
                  {"action": "suspend", "reason": "x", "version": version})
    assert wrong.status_code == 409 and wrong.json()["error"]["code"] == "invalid_transition"
    done = _call(portal, "claire", "POST", f"projects/{project_id}/lifecycle",
                 {"action": "revoke", "reason": "Manquement", "version": version})
    assert done.status_code == 200 and done.json()["status"] == "revoked"


def test_extension_request_and_decision_through_the_api(portal: Portal) -> None:
    project_id = h.approved(portal)
    later = (h.END + timedelta(days=30)).isoformat()
    asked = _call(portal, "alice", "POST", f"projects/{project_id}/extension-requests",
                  {"new_end_date": later, "reason": "Terrain"})
    assert asked.status_code == 201
    row = asked.json()
    listed = _call(portal, "claire", "GET", "change-requests").json()["requests"]
    assert [r["id"] for r in listed] == [row["id"]]
    decided = _call(portal, "claire", "POST", f"change-requests/extension/{row['id']}/decision",
                    {"decision": "approve", "reason": "Justifié", "version": row["version"]})
    assert decided.status_code == 200 and decided.json()["status"] == "approved"
    assert _call(portal, "alice", "GET", f"projects/{project_id}").json()["end_date"] == later


def test_an_opinion_through_the_api_completes_an_approval_after_two_staff(
        portal: Portal) -> None:
    created = _call(portal, "alice", "POST", "projects", application(submit=True)).json()
    project_id, version = created["id"], created["version"]
    for staff in ("claire", "david"):
        decided = _call(portal, staff, "POST", f"projects/{project_id}/decisions",
                        {"decision": "approve", "reason": "ok", "version": version})
        assert decided.status_code == 200 and decided.json()["status"] == "in_review"
        version = decided.json()["version"]
    before = portal.head_seq()
    for who in ("claire", "alice", "emma"):
        refused = _call(portal, who, "POST", f"projects/{project_id}/opinions",
                        {"verdict": "favourable"})
        assert refused.status_code == 403
    assert portal.head_seq() == before
    reserved = _call(portal, "gaelle", "POST", f"projects/{project_id}/opinions",
                     {"verdict": "reserved"})
    assert reserved.status_code == 201 and reserved.json()["project_status"] == "in_review"
    favourable = _call(portal, "gaelle", "POST", f"projects/{project_id}/opinions",
                       {"verdict": "favourable", "reference": "CE-2"})
    assert favourable.status_code == 201 and favourable.json()["project_status"] == "approved"
    assert h.actions(portal, before) == ["ethics.opinion_recorded", "ethics.opinion_recorded",
                                         "project.approved"]


def test_the_api_returns_every_refused_field_in_its_422_body(portal: Portal) -> None:
    before = portal.head_seq()
    body = application(
        title="<b>t</b>", summary="s" * 5001, levels=["MASTER"],
        end_date=(date.today() - timedelta(days=1)).isoformat(),
        members=[{"username": "personne"}],
        variables=[{"dataset": "eleves", "variable": "ine", "justification": "x"},
                   {"dataset": "eleves", "variable": "sexe", "justification": " "}])
    refused = _call(portal, "alice", "POST", "projects", body)
    assert refused.status_code == 422
    fields = [f["field"] for f in refused.json()["error"]["fields"]]
    assert fields == ["title", "summary", "levels", "end_date", "variables",
                      "variables.eleves.sexe", "members"]
    assert all(f["message"] for f in refused.json()["error"]["fields"])
    assert portal.head_seq() == before
    assert _call(portal, "claire", "POST", "projects", body).status_code == 403
