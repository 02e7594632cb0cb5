"""OpenID Connect login end to end without a browser: provider form, code flow with PKCE, hub.

The provider says who the person is and which groups they are in; the enclave database then
decides (roles synced from groups, accreditation, no role no entry) and audits the outcome.
"""

from __future__ import annotations

import time
from contextlib import closing

import pytest
from sqlalchemy import select

from enclave.core import audit, people
from enclave.core.exceptions import NotFound
from enclave.core.policy import Role
from tests.login.conftest import REFRESH_AGE, OidcHub, login_with_httpx

pytestmark = pytest.mark.slow


def _roles(hub: OidcHub, username: str) -> set[Role]:
    with hub.enclave.db.sessions() as session:
        return set(people.actor_for(session, username).roles)


def test_accredited_researcher_with_a_full_path_group_lands_on_the_hub(oidc_hub: OidcHub
                                                                       ) -> None:
    client, response = login_with_httpx(oidc_hub, "alice", next_path="/hub/home")
    with closing(client):
        assert response.status_code == 200
        assert str(response.url) == f"{oidc_hub.url}/hub/home"
        assert "alice" in response.text
        event = oidc_hub.last_login_event("alice")
        assert event is not None and event.action == "login.succeeded"
        assert '"provider":"oidc"' in event.details and "researcher" in event.details
        # The hub knows her as a member of the enclave group her role comes from, not admin.
        me = client.get(f"{oidc_hub.url}/hub/api/user",
                        headers={"Referer": f"{oidc_hub.url}/hub/home"})
        assert me.status_code == 200, me.text
        assert me.json()["groups"] == ["researchers"]
        assert me.json()["admin"] is False


def test_staff_member_unknown_to_the_enclave_gets_an_account_and_reaches_the_portal(
        oidc_hub: OidcHub) -> None:
    client, response = login_with_httpx(oidc_hub, "claire", next_path="/services/portal/")
    with closing(client):
        assert response.status_code == 200, response.text[:500]
        assert str(response.url).startswith(f"{oidc_hub.url}/services/portal/")
        assert "Bonjour" in response.text and "Claire" in response.text
    assert _roles(oidc_hub, "claire") == {Role.DEPP_STAFF}
    with oidc_hub.enclave.db.sessions() as session:
        created = session.execute(select(audit.AuditEvent).where(
            audit.AuditEvent.action == "user.created",
            audit.AuditEvent.object_id == "claire")).scalar()
    assert created is not None and created.actor == "system"


def test_ethics_committee_member_reaches_the_portal(oidc_hub: OidcHub) -> None:
    client, response = login_with_httpx(oidc_hub, "gaelle", next_path="/services/portal/")
    with closing(client):
        assert response.status_code == 200
        assert str(response.url).startswith(f"{oidc_hub.url}/services/portal/")


@pytest.mark.parametrize(("username", "reason"), [
    ("norole", "holds no enclave role"),
    ("expired", "no valid accreditation"),
    ("mallory", "holds no enclave role"),  # '/partner/researchers' is not 'researchers'
])
def test_people_the_enclave_refuses_are_sent_away_and_audited(
        oidc_hub: OidcHub, username: str, reason: str) -> None:
    client, response = login_with_httpx(oidc_hub, username)
    with closing(client):
        assert response.status_code == 403
        assert reason in response.text
        assert client.get(f"{oidc_hub.url}/hub/home").url.path == "/hub/login"
    event = oidc_hub.last_login_event(username)
    assert event is not None and event.action == "login.denied"
    assert reason in event.details


def test_refused_person_without_a_role_leaves_no_account_behind(oidc_hub: OidcHub) -> None:
    login_with_httpx(oidc_hub, "norole")[0].close()
    with oidc_hub.enclave.db.sessions() as session, pytest.raises(NotFound):
        people.get_user(session, "norole")


def test_researcher_removed_from_the_group_loses_the_role_and_is_refused(
        oidc_hub: OidcHub) -> None:
    client, response = login_with_httpx(oidc_hub, "bruno")
    client.close()
    assert response.status_code == 403
    assert _roles(oidc_hub, "bruno") == set()
    with oidc_hub.enclave.db.sessions() as session:
        synced = session.execute(select(audit.AuditEvent).where(
            audit.AuditEvent.action == "user.roles_synced",
            audit.AuditEvent.object_id == "bruno")).scalar()
    assert synced is not None and '"before":["researcher"]' in synced.details


def test_wrong_password_stays_at_the_provider_and_never_reaches_the_hub(
        oidc_hub: OidcHub) -> None:
    before = oidc_hub.last_login_event("alice")
    client, response = login_with_httpx(oidc_hub, "alice", password="not-her-password")
    with closing(client):
        assert response.status_code == 401
        assert response.url.host == "localhost"
        assert "mot de passe incorrect" in response.text
    after = oidc_hub.last_login_event("alice")
    assert (before and before.seq) == (after and after.seq)


def test_hub_log_never_shows_the_client_secret(oidc_hub: OidcHub) -> None:
    login_with_httpx(oidc_hub, "alice")[0].close()
    assert oidc_hub.idp.client_secret not in oidc_hub.log.read_text(errors="replace")


def test_deactivated_account_loses_its_session_at_the_next_check(oidc_hub: OidcHub) -> None:
    """A session lives only while the enclave still admits its holder (refresh_user)."""
    client, response = login_with_httpx(oidc_hub, "henri", next_path="/hub/home")
    with closing(client):
        assert response.status_code == 200
        assert client.get(f"{oidc_hub.url}/hub/api/user").json()["admin"] is False
        with oidc_hub.enclave.db.transaction() as session:
            people.get_user(session, "henri").active = False
        time.sleep(REFRESH_AGE + 0.5)
        again = client.get(f"{oidc_hub.url}/hub/home")
        assert again.url.path == "/hub/login"
    ended = oidc_hub.last_login_event("henri")
    assert ended is not None and ended.action == "login.session_ended"
    assert "not an active account" in ended.details
