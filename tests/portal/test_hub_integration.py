"""The portal behind a real hub: one login at the hub, then the portal through OAuth.

The hub is started as ``enclave hub`` starts it (node proxy, the enclave's demo login) and
itself starts the portal as a managed service; nothing is doubled here.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import update

from enclave.core import people
from tests.portal.conftest import LiveHub

pytestmark = pytest.mark.slow
PORTAL = "/services/portal/"


def test_login_at_the_hub_then_reach_the_portal(live_hub: LiveHub) -> None:
    browser = live_hub.login("gaelle")
    home = browser.get(live_hub.url + PORTAL, timeout=30)
    assert home.status_code == 200, live_hub.log.read_text()[-3000:]
    assert urlsplit(home.url).path == PORTAL
    assert "Bonjour, Gaelle" in home.text
    kinds = [r.status_code for r in home.history]
    assert kinds[:2] == [302, 302]  # portal -> hub authorize -> portal callback (no consent page)
    session_cookie = browser.cookies.get("enclave-portal-session", path=PORTAL)
    assert session_cookie is not None
    trail = browser.get(live_hub.url + PORTAL + "audit?action=login.succeeded", timeout=30)
    assert trail.status_code == 200 and "<code>gaelle</code>" in trail.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', trail.text)
    assert token
    verified = browser.post(live_hub.url + PORTAL + "audit/verify",
                            data={"csrf_token": token.group(1)}, timeout=30)
    assert verified.status_code == 200 and "Chaîne intègre" in verified.text
    forged = browser.post(live_hub.url + PORTAL + "audit/verify", data={}, timeout=30)
    assert forged.status_code == 403


def test_the_api_accepts_the_persons_hub_token(live_hub: LiveHub) -> None:
    browser = live_hub.login("gaelle")
    xsrf = browser.cookies.get("_xsrf")
    created = browser.post(f"{live_hub.url}/hub/api/users/gaelle/tokens",
                           json={"note": "portal test", "expires_in": 600},
                           headers={"X-XSRFToken": xsrf or ""}, timeout=30)
    assert created.status_code == 201, created.text
    headers = {"Authorization": f"Bearer {created.json()['token']}"}
    events = browser.get(live_hub.url + PORTAL + "api/v1/audit/events?limit=3",
                         headers=headers, timeout=30)
    assert events.status_code == 200 and len(events.json()["events"]) == 3
    anonymous = browser.get(live_hub.url + PORTAL + "api/v1/audit/events", timeout=30)
    assert anonymous.status_code == 401  # the browser's cookies are not an API credential


def test_a_person_without_portal_access_gets_403_from_the_hub(live_hub: LiveHub) -> None:
    browser = live_hub.login("depot")  # a data provider: logs in, but has no portal role
    response = browser.get(live_hub.url + PORTAL, timeout=30)
    assert response.status_code == 403
    assert urlsplit(response.url).path == "/hub/api/oauth2/authorize"


def test_the_enclave_policy_decides_each_page(live_hub: LiveHub) -> None:
    browser = live_hub.login("alice")
    assert browser.get(live_hub.url + PORTAL + "catalogue", timeout=30).status_code == 200
    denied = browser.get(live_hub.url + PORTAL + "audit", timeout=30)
    assert denied.status_code == 403
    assert "needs the role ethics_committee" in denied.text


def test_the_enclave_database_is_the_source_of_truth(live_hub: LiveHub) -> None:
    browser = live_hub.login("bruno")
    assert browser.get(live_hub.url + PORTAL, timeout=30).status_code == 200
    with live_hub.enclave.db.transaction() as session:
        session.execute(update(people.User).where(people.User.username == "bruno")
                        .values(active=False))
    try:
        after = browser.get(live_hub.url + PORTAL, timeout=30)
        assert after.status_code == 403
        assert "bruno is not an active account" in after.text
    finally:  # the hub is shared by the session's other tests: give bruno back his account
        with live_hub.enclave.db.transaction() as session:
            session.execute(update(people.User).where(people.User.username == "bruno")
                            .values(active=True))
