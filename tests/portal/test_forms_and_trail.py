"""CSRF on every form, the CSV export's injection safety, and chain verification."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import text

from enclave.core import audit
from enclave.portal.csvexport import FORMULA_TRIGGERS, csv_lines, safe_cell
from enclave.portal.sessions import CSRF_COOKIE, LANG_COOKIE
from tests.portal.factories import FORMULA, PREFIX, XSS, Portal

FORMS = [("audit/verify", {}), ("lang", {"lang": "en", "next": PREFIX}), ("logout", {})]


# -- CSRF -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "data"), FORMS)
def test_a_forged_form_without_token_is_refused_and_changes_nothing(
        portal: Portal, path: str, data: dict[str, str]) -> None:
    browser = portal.client("gaelle")
    before = portal.head_seq()
    response = browser.post(path, data, token=False)
    assert response.status_code == 403
    assert "Formulaire refusé" in response.text
    assert portal.head_seq() == before
    assert LANG_COOKIE not in response.headers.get("set-cookie", "")
    assert "location" not in response.headers


@pytest.mark.parametrize(("path", "data"), FORMS)
def test_a_token_of_another_session_is_refused(portal: Portal, path: str,
                                               data: dict[str, str]) -> None:
    other = portal.client("admin").csrf
    browser = portal.client("gaelle")
    before = portal.head_seq()
    assert browser.post(path, {**data, "csrf_token": other}).status_code == 403
    assert browser.post(path, {**data, "csrf_token": browser.csrf + "x"}).status_code == 403
    assert portal.head_seq() == before


def test_the_token_cookie_must_accompany_the_form(portal: Portal) -> None:
    browser = portal.client("gaelle")
    browser.http.cookies.delete(CSRF_COOKIE)
    before = portal.head_seq()
    assert browser.post("audit/verify").status_code == 403
    assert portal.head_seq() == before


def test_a_form_from_another_origin_is_refused(portal: Portal) -> None:
    browser = portal.client("gaelle")
    before = portal.head_seq()
    for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Origin": "null", "Sec-Fetch-Site": "same-site"}):
        response = browser.post("audit/verify", headers=headers)
        assert response.status_code == 403, headers
    assert portal.head_seq() == before
    for headers in ({"Origin": "http://portal.test", "Sec-Fetch-Site": "same-origin"},
                    {"Origin": "null"}):  # what browsers send under Referrer-Policy: no-referrer
        assert browser.post("audit/verify", headers=headers).status_code == 200


def test_the_right_token_is_accepted(portal: Portal) -> None:
    browser = portal.client("gaelle")
    before = portal.head_seq()
    assert browser.post("audit/verify").status_code == 200
    assert portal.head_seq() == before + 1
    logout = browser.post("logout")
    assert logout.status_code == 303 and logout.headers["location"] == "/hub/logout"


def test_pages_renew_a_missing_token_cookie(portal: Portal) -> None:
    browser = portal.client("gaelle")
    browser.http.cookies.delete(CSRF_COOKIE)
    page = browser.get("audit/verify")
    assert f"{CSRF_COOKIE}={browser.csrf}" in page.headers["set-cookie"]
    assert "SameSite=strict" in page.headers["set-cookie"]
    assert f'name="csrf_token" value="{browser.csrf}"' in page.text


# -- CSV export -----------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["=1+1", "+1", "-1+2", "@SUM(A1)", "\t=1", "\r=1",
                                   "  =1", "\uff1d1", FORMULA])
def test_formula_cells_are_defused(value: str) -> None:
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["alice", "project.created", "prj-0001", "", "1-2", "a=b"])
def test_plain_cells_are_kept(value: str) -> None:
    assert safe_cell(value) == value


def test_numbers_we_write_stay_numbers() -> None:
    assert safe_cell(-5) == "-5" and safe_cell(None) == ""
    lines = "".join(csv_lines(["a"], [[1], ["=x"]]))
    assert lines == '\ufeff"a"\r\n"1"\r\n"\'=x"\r\n'


def _export(portal: Portal, query: str = "") -> list[list[str]]:
    response = portal.client("gaelle").get("audit/export.csv" + query)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(response.text.lstrip("\ufeff"))))


def test_export_is_injection_safe_and_complete(portal: Portal) -> None:
    rows = _export(portal)
    header, body = rows[0], rows[1:]
    assert header[0] == "seq" and header[-1] == "hash"
    assert len(body) == portal.head_seq()  # every event, the export's own record last
    assert body[-1][3] == "audit.trail_exported"
    for row in body:
        for cell in row[1:]:
            assert not cell or cell[0] not in FORMULA_TRIGGERS, row
    hostile = [row for row in body if row[3] == "note.recorded"]
    assert hostile[0][2] == "'" + FORMULA
    assert hostile[0][5] == XSS  # text, not markup, in a CSV: kept as typed


def test_export_follows_the_filter_and_is_recorded(portal: Portal) -> None:
    rows = _export(portal, "?project=prj-0003&action=project.*")
    assert {row[6] for row in rows[1:]} == {"prj-0003"}
    assert [row[3] for row in rows[1:]] == ["project.created", "project.submitted",
                                            "project.in_review", "project.rejected"]
    with portal.enclave.db.sessions() as session:
        last = session.get(audit.AuditEvent, audit.head(session)[0])
    assert last is not None and last.action == "audit.trail_exported"
    assert last.actor == "gaelle" and '"project":"prj-0003"' in last.details


def test_export_with_an_invalid_filter_exports_nothing(portal: Portal) -> None:
    before = portal.head_seq()
    response = portal.client("gaelle").get("audit/export.csv?date_from=yesterday")
    assert response.status_code == 400
    assert portal.head_seq() == before


# -- verify the chain -----------------------------------------------------------------------------

def test_verify_shows_ok_on_an_intact_chain(portal: Portal) -> None:
    page = portal.client("gaelle").post("audit/verify")
    assert page.status_code == 200
    assert "Chaîne intègre" in page.text and "fr-alert--success" in page.text
    assert "OK: " in page.text and "last signed checkpoint at #" in page.text


@pytest.mark.parametrize("tamper", [
    "UPDATE audit_events SET details = '{\"to\":\"approved\"}' WHERE seq = 5",
    "UPDATE audit_events SET actor = 'nobody' WHERE seq = 7",
    "DELETE FROM audit_events WHERE seq = 6",
])
def test_verify_shows_failed_after_tampering(portal: Portal, tamper: str) -> None:
    with portal.enclave.db.transaction() as session:
        session.execute(text(tamper))
    page = portal.client("gaelle").post("audit/verify")
    assert page.status_code == 200
    assert "ÉCHEC de la vérification" in page.text and "fr-alert--error" in page.text
    assert "FAILED at #" in page.text
    api = portal.client().http.post(PREFIX + "api/v1/audit/verification",
                                    headers=portal.bearer("gaelle")).json()
    assert api["ok"] is False and api["first_bad_seq"] in (5, 6, 7)
    assert api["description"].startswith("FAILED at #")


def test_verify_detects_a_truncated_tail_through_the_signed_checkpoint(portal: Portal) -> None:
    with portal.enclave.db.sessions() as session:
        head = audit.head(session)[0]
    with portal.enclave.db.transaction() as session:
        session.execute(text("DELETE FROM audit_events WHERE seq = :s"), {"s": head})
    page = portal.client("gaelle").post("audit/verify")
    assert "ÉCHEC de la vérification" in page.text
    assert "events were removed from the tail" in page.text
