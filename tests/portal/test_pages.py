"""The pages backed by the core: content, escaping, language, filters and paging."""

from __future__ import annotations

import re

import pytest

from enclave.core import audit
from tests.portal.factories import FORMULA, PREFIX, Portal


def test_home_greets_and_shows_the_oversight_figures_to_the_committee(portal: Portal) -> None:
    page = portal.client("gaelle").get("")
    assert page.status_code == 200
    assert "Bonjour, Gaëlle Bernard" in page.text
    assert "Vue d&#39;ensemble" in page.text
    assert "Comité d&#39;éthique" in page.text
    researcher = portal.client("alice").get("").text
    assert "Vue d&#39;ensemble" not in researcher


def test_home_warns_of_an_accreditation_about_to_expire(portal: Portal) -> None:
    page = portal.client("rita").get("").text
    assert "Votre habilitation expire bientôt" in page
    assert "fr-alert--warning" in page


@pytest.mark.parametrize("path", ["", "account", "catalogue", "catalogue/eleves"])
def test_stored_script_is_rendered_escaped(portal: Portal, path: str) -> None:
    page = portal.client("mallory").get(path)
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    if path in ("", "account"):
        assert "&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt;" in page.text


@pytest.mark.parametrize("path", ["audit", "audit?project=prj-0001", "activity"])
def test_trail_strings_are_rendered_escaped(portal: Portal, path: str) -> None:
    page = portal.client("gaelle").get(path)
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    if path.startswith("audit"):
        assert "&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt;" in page.text


def test_catalogue_lists_datasets_with_kind_badges(portal: Portal) -> None:
    page = portal.client("alice").get("catalogue").text
    for dataset in ("eleves", "evaluations_reperes", "examens", "traces_xapi"):
        assert f'href="{PREFIX}catalogue/{dataset}"' in page
    assert "Identifiant direct" in page and "fr-badge--error" in page


def test_dataset_page_shows_each_variable_kind_and_french_label(portal: Portal) -> None:
    page = portal.client("alice").get("catalogue/eleves").text
    row = re.search(r"<code>ine</code>.*?</tr>", page, re.S)
    assert row and "Identifiant direct" in row.group(0) and "fr-badge--error" in row.group(0)
    row = re.search(r"<code>handicap</code>.*?</tr>", page, re.S)
    assert row and "Sensible" in row.group(0)
    row = re.search(r"<code>academie</code>.*?</tr>", page, re.S)
    assert row and "Quasi-identifiant" in row.group(0) and 'lang="fr">Académie<' in row.group(0)


def test_unknown_dataset_is_a_404_page(portal: Portal) -> None:
    page = portal.client("alice").get("catalogue/nope")
    assert page.status_code == 404
    assert "Page introuvable" in page.text


def test_account_shows_roles_and_accreditation_expiry(portal: Portal) -> None:
    page = portal.client("alice").get("account").text
    assert "Chercheur ou chercheuse" in page
    assert "Habilitation valide jusqu&#39;au" in page
    assert "Formation test" in page
    staff = portal.client("claire").get("account").text
    assert "Aucune formation enregistrée" in staff


def test_language_switch_changes_the_interface_and_back(portal: Portal) -> None:
    browser = portal.client("gaelle")
    moved = browser.post("lang", {"lang": "en", "next": PREFIX + "audit"})
    assert moved.status_code == 303 and moved.headers["location"] == PREFIX + "audit"
    page = browser.get("audit").text
    assert '<html lang="en"' in page and "Audit trail" in page and "Filter the trail" in page
    browser.post("lang", {"lang": "fr", "next": PREFIX})
    assert "Journal d&#39;audit" in browser.get("audit").text


def test_language_switch_never_redirects_elsewhere(portal: Portal) -> None:
    browser = portal.client("gaelle")
    for target in ("https://evil.example/", "//evil.example/x", "/hub/admin",
                   PREFIX + "../../hub/admin", PREFIX + "%2e%2e/hub"):
        moved = browser.post("lang", {"lang": "en", "next": target})
        assert moved.headers["location"] == PREFIX, target


def test_audit_filters_by_actor_project_action_and_dates(portal: Portal) -> None:
    browser = portal.client("gaelle")
    page = browser.get("audit?actor=claire").text
    actors = set(re.findall(r"<td><code>([^<]+)</code></td>\s*<td><code>project", page))
    assert actors == {"claire"}
    page = browser.get("audit?project=prj-0003").text
    assert "prj-0003" in page and "prj-0001" not in page.replace('value="prj-0003"', "")
    page = browser.get("audit?action=project.rejected").text
    assert "3 événement(s)" not in page and "1 événement(s) correspondent" in page
    family = browser.get("audit?action=project.*").text
    assert "<td><code>project.created</code></td>" in family
    assert "<td><code>user.created</code></td>" not in family
    none = browser.get("audit?date_from=2000-01-01&date_to=2000-01-02").text
    assert "Aucun événement ne correspond" in none


def test_audit_filter_errors_are_shown_next_to_their_fields(portal: Portal) -> None:
    page = portal.client("gaelle").get(
        "audit?date_from=2026-13-40&date_to=2020-01-01&actor=" + "x" * 201)
    assert page.status_code == 400
    assert 'id="erreur-date_from"' in page.text and 'aria-invalid="true"' in page.text
    assert 'id="erreur-actor"' in page.text
    assert "Saisissez une date au format AAAA-MM-JJ." in page.text
    order = portal.client("gaelle").get("audit?date_from=2026-02-01&date_to=2026-01-01")
    assert 'id="erreur-date_to"' in order.text
    assert "La date de fin doit être postérieure" in order.text


def test_audit_paging_walks_the_whole_trail_without_gaps(portal: Portal) -> None:
    with portal.enclave.db.transaction() as session:
        for i in range(120):
            audit.record(session, actor="claire", action="test.event", object_type="test",
                         object_id=str(i))
    browser = portal.client("gaelle")
    seen: list[int] = []
    url = "audit?action=test.event"
    while url:
        page = browser.get(url).text
        seen += [int(s) for s in re.findall(r"<tr>\s*<td>(\d+)</td>", page)]
        older = re.search(r'href="\?([^"]*before=\d+)"[^>]*>Événements plus anciens', page)
        url = "audit?" + older.group(1).replace("&amp;", "&") if older else ""
    assert len(seen) == 120 and seen == sorted(seen, reverse=True)
    newer = browser.get(f"audit?action=test.event&after={seen[60]}").text
    rows = [int(s) for s in re.findall(r"<tr>\s*<td>(\d+)</td>", newer)]
    assert rows == seen[10:60]


def test_activity_charts_are_svg_with_a_data_table(portal: Portal) -> None:
    page = portal.client("gaelle").get("activity").text
    assert page.count("<svg") == 4 and 'role="img"' in page
    assert "<script" not in page.split("<footer")[0]
    table = re.search(r"Demandes d&#39;accès par état</caption>.*?</table>", page, re.S)
    assert table
    cells = dict(re.findall(r"<tr><td>([^<]+)</td><td>(\d+)</td></tr>", table.group(0)))
    assert cells == {"Brouillon": "1", "Déposée": "1", "Modifications demandées": "1",
                     "Active": "1", "Suspendue": "1", "Refusée": "1"}


def test_pages_carry_the_security_headers(portal: Portal) -> None:
    response = portal.client("gaelle").get("audit")
    headers = response.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    assert headers["x-content-type-options"] == "nosniff"


def test_no_inline_script_or_style_in_any_page(portal: Portal) -> None:
    browser = portal.client("gaelle")
    for path in ("", "catalogue", "catalogue/eleves", "account", "audit", "activity",
                 "audit/verify"):
        page = browser.get(path).text
        assert not re.search(r"<script(?![^>]*\bsrc=)", page), path
        assert " style=" not in page and "<style" not in page, path
        assert not re.search(r"\son[a-z]+=", page), path


def test_dsfr_assets_are_served_from_the_installed_package(portal: Portal) -> None:
    from enclave.portal.app import DSFR_DIST

    if not (DSFR_DIST / "dsfr.min.css").exists():
        pytest.skip("the DSFR npm package is not installed (npm ci)")
    css = portal.client().get("static/dsfr/dsfr.min.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    assert css.headers["cache-control"].startswith("public")


def test_formula_in_a_name_is_plain_text_on_pages(portal: Portal) -> None:
    page = portal.client("gaelle").get("audit?actor=" + FORMULA.replace("&", "%26")
                                       .replace('"', "%22").replace("?", "%3F"))
    assert page.status_code == 200
    assert "1 événement(s) correspondent" in page.text


def test_an_invalid_filter_lists_nothing_rather_than_everything(portal: Portal) -> None:
    page = portal.client("gaelle").get("audit?date_from=nope").text
    assert 'id="table-journal"' not in page and "correspondent au filtre" not in page
