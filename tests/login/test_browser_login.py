"""In headless Chromium: people log in through the provider's page and the enclave decides.

Debian's chromium through Playwright, as ``tests/portal/test_browser.py`` launches it. Skipped
with the reason when chromium or Playwright is missing, unless ``ENCLAVE_REQUIRE_BROWSER=1``.
Opening a workspace after this login and running a cell: ``test_oidc_workspace.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.login.conftest import OidcHub

pytestmark = pytest.mark.slow


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookie of a previous person) and its page."""
    context = browser.new_context(locale="fr-FR")
    opened = context.new_page()
    opened.set_default_timeout(20_000)
    yield opened
    context.close()


def _sign_in_at_provider(page: Any, hub: OidcHub, username: str) -> None:
    """From the hub's login page: the provider's button, then the provider's own form."""
    assert "/hub/login" in page.url
    page.get_by_role("button", name="Keycloak").or_(
        page.get_by_role("link", name="Keycloak")).first.click()
    page.wait_for_url(f"{hub.idp.issuer}/interaction/**")
    page.fill("#username", username)
    page.fill("#password", hub.idp.passwords[username])
    page.click("#kc-login")


def test_accredited_researcher_logs_in_at_the_provider_and_lands_on_the_hub(
        page: Any, oidc_hub: OidcHub) -> None:
    page.goto(f"{oidc_hub.url}/hub/login?next=%2Fhub%2Fhome")
    _sign_in_at_provider(page, oidc_hub, "alice")
    page.wait_for_url(f"{oidc_hub.url}/hub/home")
    assert "alice" in page.content()
    event = oidc_hub.last_login_event("alice")
    assert event is not None and event.action == "login.succeeded"


def test_staff_member_reaches_the_portal_through_the_provider(page: Any,
                                                               oidc_hub: OidcHub) -> None:
    page.goto(f"{oidc_hub.url}/services/portal/")
    _sign_in_at_provider(page, oidc_hub, "claire")
    page.wait_for_url(f"{oidc_hub.url}/services/portal/**")
    assert page.locator("h1").inner_text().startswith("Bonjour")


@pytest.mark.parametrize(("username", "reason"), [
    ("norole", "holds no enclave role"),
    ("expired", "no valid accreditation"),
])
def test_person_the_enclave_refuses_sees_why_and_gets_no_session(
        page: Any, oidc_hub: OidcHub, username: str, reason: str) -> None:
    page.goto(f"{oidc_hub.url}/hub/login")
    _sign_in_at_provider(page, oidc_hub, username)
    page.wait_for_url(f"{oidc_hub.url}/hub/oauth_callback**")
    assert reason in page.content()
    page.goto(f"{oidc_hub.url}/hub/home")
    assert "/hub/login" in page.url
    event = oidc_hub.last_login_event(username)
    assert event is not None and event.action == "login.denied"
