"""In headless Chromium: the ethics committee logs in at the hub, filters the trail, verifies.

Uses Debian's chromium through Playwright (``playwright install`` cannot download browsers
here). Skipped with the reason when chromium or Playwright is missing, unless
``ENCLAVE_REQUIRE_BROWSER=1`` makes that a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.portal.conftest import PASSWORDS, LiveHub

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
REQUIRED = os.environ.get("ENCLAVE_REQUIRE_BROWSER") == "1"


def _unavailable() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed"
    if not os.access(CHROMIUM, os.X_OK):
        return "Debian's chromium is not installed (apt-get install chromium)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = _unavailable()
    if reason:
        if REQUIRED:
            pytest.fail(f"ENCLAVE_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as play:
        chromium = play.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def test_the_ethics_committee_filters_the_trail_and_verifies_the_chain(
        browser: Any, live_hub: LiveHub) -> None:
    context = browser.new_context(locale="fr-FR")
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.set_default_timeout(20_000)

    page.goto(f"{live_hub.url}/services/portal/")
    assert "/hub/login" in page.url  # the portal sent us to the hub's login
    page.fill("input[name=username]", "gaelle")
    page.fill("input[name=password]", PASSWORDS["gaelle"])
    page.click("[type=submit]")
    page.wait_for_url("**/services/portal/**")
    assert page.locator("h1").inner_text().startswith("Bonjour")

    page.get_by_role("link", name="Journal d'audit").first.click()
    page.wait_for_url("**/services/portal/audit")
    page.get_by_label("Acteur").fill("gaelle")
    page.select_option("#champ-action", "login.succeeded")
    page.get_by_role("button", name="Filtrer").click()
    page.wait_for_url("**/audit?**")
    assert "événement(s) correspondent au filtre" in page.content()
    actors = page.locator("#table-journal tbody tr td:nth-child(3)").all_inner_texts()
    assert actors and set(actors) == {"gaelle"}

    page.fill("#champ-date_from", "2020-02-01")
    page.fill("#champ-date_to", "2020-01-01")
    page.get_by_role("button", name="Filtrer").click()
    assert page.locator("#erreur-date_to").inner_text().startswith("La date de fin")

    page.get_by_role("link", name="Vérifier la chaîne").first.click()
    page.get_by_role("button", name="Vérifier la chaîne").click()
    result = page.locator("#resultat-verification")
    assert "Chaîne intègre" in result.inner_text()
    assert "OK:" in result.inner_text()

    page.get_by_role("button", name="English").click()
    assert page.locator("h1").inner_text() == "Verify the chain"
    # the invalid filter above was answered 400 on purpose; nothing else may complain
    problems = [p for p in problems if "status of 400" not in p]
    assert problems == [], problems  # no CSP violation, no script error
    context.close()
