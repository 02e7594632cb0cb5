"""Who gets in: the hub login redirect, sessions, tokens, and the API's bearer-only rule."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from enclave.portal.sessions import SESSION_COOKIE, STATE_COOKIE, new_session_id
from tests.portal.factories import PREFIX, Portal


def test_an_anonymous_page_request_goes_to_the_hub_with_state_and_pkce(portal: Portal) -> None:
    response = portal.client().get("audit?actor=claire")
    assert response.status_code == 302
    target = urlsplit(response.headers["location"])
    assert target.path == "/hub/api/oauth2/authorize"
    query = parse_qs(target.query)
    assert query["client_id"] == ["service-portal"]
    assert query["redirect_uri"] == [PREFIX + "oauth_callback"]
    assert query["code_challenge_method"] == ["S256"] and len(query["state"][0]) >= 32
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(STATE_COOKIE) and "HttpOnly" in cookie
    assert f"Path={PREFIX}" in cookie and "SameSite=lax" in cookie
    saved = portal.app.state.portal.sealer.open("oauth-state", response.cookies[STATE_COOKIE])
    assert saved["s"] == query["state"][0] and saved["n"] == PREFIX + "audit?actor=claire"


@pytest.mark.parametrize("query", ["?code=abc&state=forged", "?code=abc", "?state=x",
                                   "?error=access_denied&state=x"])
def test_a_callback_without_the_matching_state_is_refused(portal: Portal, query: str) -> None:
    browser = portal.client()
    browser.get("")  # sets a genuine state cookie
    response = browser.get("oauth_callback" + query)
    assert response.status_code == 403
    assert "Connexion interrompue" in response.text
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


def test_a_session_whose_token_the_hub_forgot_logs_in_again(portal: Portal) -> None:
    browser = portal.client("gaelle")
    portal.hub.users.clear()
    assert browser.get("").status_code == 302


def test_a_tampered_or_foreign_session_logs_in_again(portal: Portal) -> None:
    browser = portal.client("gaelle")
    value = browser.http.cookies[SESSION_COOKIE]
    browser.http.cookies.set(SESSION_COOKIE, value[:-4] + ("AAAA" if value[-4:] != "AAAA"
                                                           else "BBBB"))
    assert browser.get("").status_code == 302
    # a session naming gaelle but holding admin's token
    token = portal.hub.grant("admin")
    sealer = portal.app.state.portal.sealer
    browser.http.cookies.set(SESSION_COOKIE, sealer.seal(
        "session", {"t": token, "sid": new_session_id(), "u": "gaelle"}, 3600))
    assert browser.get("").status_code == 302
    # a state cookie is not a session
    browser.http.cookies.set(SESSION_COOKIE, sealer.seal(
        "oauth-state", {"t": token, "sid": "x", "u": "admin"}, 3600))
    assert browser.get("").status_code == 302


def test_an_expired_session_logs_in_again(portal: Portal) -> None:
    browser = portal.client()
    token = portal.hub.grant("gaelle")
    sealer = portal.app.state.portal.sealer
    browser.http.cookies.set(SESSION_COOKIE, sealer.seal(
        "session", {"t": token, "sid": "s", "u": "gaelle"}, -1))
    assert browser.get("").status_code == 302


def test_a_token_without_the_portal_scope_is_refused(portal: Portal) -> None:
    browser = portal.client("gaelle", scopes=frozenset({"access:services!service=other"}))
    response = browser.get("")
    assert response.status_code == 403
    assert "may not use the portal" in response.text


def test_a_hub_user_unknown_to_the_enclave_is_refused(portal: Portal) -> None:
    response = portal.client("stranger").get("")
    assert response.status_code == 403
    assert "stranger is not known to the enclave" in response.text


def test_a_hub_service_is_not_a_person(portal: Portal) -> None:
    response = portal.client("gaelle", kind="service").get("")
    assert response.status_code == 403


def test_the_api_needs_a_bearer_token_and_ignores_cookies(portal: Portal) -> None:
    browser = portal.client("gaelle")
    response = browser.http.get(PREFIX + "api/v1/audit/events")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "unauthenticated"
    token = portal.hub.grant("gaelle")
    for scheme in ("Bearer", "token", "bearer"):
        ok = browser.http.get(PREFIX + "api/v1/audit/events",
                              headers={"Authorization": f"{scheme} {token}"})
        assert ok.status_code == 200, scheme
    unknown = browser.http.get(PREFIX + "api/v1/me", headers={"Authorization": "Bearer nope"})
    assert unknown.status_code == 401


def test_pages_ignore_bearer_tokens(portal: Portal) -> None:
    anonymous = portal.client()
    response = anonymous.get("audit", headers=portal.bearer("gaelle"))
    assert response.status_code == 302


def test_api_errors_are_json(portal: Portal) -> None:
    http = portal.client().http
    headers = portal.bearer("gaelle")
    missing = http.get(PREFIX + "api/v1/catalogue/nope", headers=headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    order = http.get(PREFIX + "api/v1/audit/events?date_from=2026-02-01&date_to=2026-01-01",
                     headers=headers)
    assert order.status_code == 422
    assert order.json()["error"]["fields"][0]["field"] == "date_to"
    bad = http.get(PREFIX + "api/v1/audit/events?limit=0", headers=headers)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_parameters"
    method = http.delete(PREFIX + "api/v1/me", headers=headers)
    assert method.status_code == 405 and "GET" in method.headers["allow"]
    nowhere = http.get(PREFIX + "api/v1/nowhere", headers=headers)
    assert nowhere.status_code == 404 and "error" in nowhere.json()


def test_api_audit_events_filter_and_page(portal: Portal) -> None:
    http = portal.client().http
    headers = portal.bearer("gaelle")
    first = http.get(PREFIX + "api/v1/audit/events?action=project.*&limit=5",
                     headers=headers).json()
    assert len(first["events"]) == 5 and first["total"] == 6 + 16  # created + moves
    assert all(e["action"].startswith("project.") for e in first["events"])
    second = http.get(PREFIX + f"api/v1/audit/events?action=project.*&limit=5"
                               f"&before={first['next_before']}", headers=headers).json()
    assert second["events"][0]["seq"] < first["events"][-1]["seq"]
    assert first["filter"] == {"action": "project.*"}


def test_openapi_is_published_to_people_with_access(portal: Portal) -> None:
    http = portal.client().http
    assert http.get(PREFIX + "api/v1/openapi.json").status_code == 401
    doc = http.get(PREFIX + "api/v1/openapi.json", headers=portal.bearer("alice")).json()
    paths = set(doc["paths"])
    assert all(p.startswith(PREFIX + "api/v1/") for p in paths)  # pages are not in it
    assert {PREFIX + "api/v1/" + p for p in (
        "me", "catalogue", "catalogue/{dataset_id}", "audit/events", "audit/verification",
        "projects", "projects/{project_id}", "register", "privacy-budgets")} <= paths
    assert doc["components"]["securitySchemes"]["hubToken"]["scheme"] == "bearer"
    assert http.get(PREFIX + "openapi.json").status_code == 404  # FastAPI's default is off
    assert http.get(PREFIX + "api/v1/docs").status_code in (401, 404)  # no CDN-backed UI


def test_healthz_reads_nothing(portal: Portal) -> None:
    response = portal.client().get("healthz")
    assert response.status_code == 200 and response.text == "ok"
