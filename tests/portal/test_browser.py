"""In headless Chromium: the ethics committee logs in at the hub, filters the trail, verifies.

Uses Debian's chromium through Playwright (``playwright install`` cannot download browsers
here). Skipped with the reason when chromium or Playwright is missing, unless
``ENCLAVE_REQUIRE_BROWSER=1`` makes that a failure.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from tests.portal.conftest import PASSWORDS, LiveHub

pytestmark = pytest.mark.slow


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


def _login(browser: Any, live_hub: LiveHub, who: str, problems: list[str]) -> Any:
    """A fresh browser context logged in at the hub as ``who``, on the portal's home."""
    context = browser.new_context(locale="fr-FR")
    page = context.new_page()
    page.on("console", lambda m: problems.append(f"{who}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"{who}: {e}"))
    page.set_default_timeout(20_000)
    page.goto(f"{live_hub.url}/services/portal/")
    page.fill("input[name=username]", who)
    page.fill("input[name=password]", PASSWORDS[who])
    page.click("[type=submit]")
    page.wait_for_url("**/services/portal/**")
    return page


def test_apply_two_staff_approve_with_the_ethics_opinion_then_accept_and_audit(
        browser: Any, live_hub: LiveHub) -> None:
    """The full path: a researcher applies through the form for a sensitive variable, the
    ethics committee gives its opinion, two distinct DEPP staff approve, the member accepts
    the agreement, and the committee finds every decision in the trail and verifies it."""
    portal = f"{live_hub.url}/services/portal/"
    problems: list[str] = []
    end = (date.today() + timedelta(days=365)).isoformat()

    alice = _login(browser, live_hub, "alice", problems)
    alice.get_by_role("link", name="Demander un accès").first.click()
    alice.wait_for_url("**/services/portal/apply")
    alice.fill("#champ-title", "Bourses et réussite au collège")
    alice.fill("#champ-summary", "Effet des bourses sur la réussite en 6e.")
    alice.fill("#champ-scientific_purpose", "Mesurer l'effet propre des bourses.")
    alice.fill("#champ-public_interest", "Évaluer la politique d'aide sociale.")
    alice.locator("#var-eleves-boursier").check(force=True)
    alice.fill("#why-eleves-boursier", "Variable d'intérêt du projet")
    alice.locator("#var-eleves-niveau").check(force=True)
    alice.fill("#why-eleves-niveau", "Contrôle par niveau")
    alice.fill("#champ-end_date", end)
    alice.get_by_role("button", name="Déposer la demande").click()
    alice.wait_for_url("**/projects/prj-*?notice=submitted")
    project_id = alice.url.split("/projects/")[1].split("?")[0]
    assert "déposée" in alice.locator("main").inner_text().lower()

    gaelle = _login(browser, live_hub, "gaelle", problems)
    gaelle.goto(portal + "register")
    row = gaelle.locator("#table-registre tr", has_text=project_id)
    row.get_by_role("link", name="Avis du comité d'éthique").click()
    gaelle.wait_for_url(f"**/ethics/{project_id}/opinion")
    gaelle.locator("#verdict-favourable").check(force=True)
    gaelle.fill("#champ-reference", "CE-2026-42")
    gaelle.get_by_role("button", name="Enregistrer l'avis").click()
    gaelle.wait_for_url("**?notice=opinion")

    for staff in ("claire", "david"):
        page = _login(browser, live_hub, staff, problems)
        page.get_by_role("link", name="File d'examen").first.click()
        page.locator("#table-examen tr", has_text=project_id).get_by_role(
            "link", name="Examiner").click()
        page.wait_for_url(f"**/review/{project_id}")
        assert "Examen renforcé" in page.locator("#titre-regle + p").inner_text()
        assert "boursier" in page.locator("#cote-a-cote").inner_text()
        page.locator("#decision-approve").check(force=True)
        page.fill("#champ-reason", f"Approuvé par {staff}")
        page.get_by_role("button", name="Enregistrer la décision").click()
        page.wait_for_url("**/review?decided=*")
        page.context.close()

    alice.goto(portal + f"projects/{project_id}")
    assert "approuvée" in alice.locator("main").inner_text().lower()
    alice.get_by_role("button", name="Accepter la convention").click()
    alice.wait_for_url("**?accepted=1")
    assert "Vous avez accepté la convention" in alice.locator("main").inner_text()

    gaelle.goto(portal + "audit")
    gaelle.get_by_label("Projet").fill(project_id)
    gaelle.get_by_role("button", name="Filtrer").click()
    gaelle.wait_for_url("**/audit?**")
    found = gaelle.locator("#table-journal tbody tr td:nth-child(4)").all_inner_texts()
    for action in ("project.submitted", "ethics.opinion_recorded", "project.approval_recorded",
                   "project.approved", "agreement.accepted"):
        assert action in found, (action, found)
    actors = gaelle.locator("#table-journal tbody tr td:nth-child(3)").all_inner_texts()
    assert {"claire", "david", "gaelle", "alice"} <= set(actors)
    gaelle.get_by_role("link", name="Vérifier la chaîne").first.click()
    gaelle.get_by_role("button", name="Vérifier la chaîne").click()
    assert "Chaîne intègre" in gaelle.locator("#resultat-verification").inner_text()
    assert problems == [], problems
    alice.context.close()
    gaelle.context.close()
