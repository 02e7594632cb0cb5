"""The researcher's application form: draft, edit, submit, answer a change request, resubmit;
bad input shown next to its field with nothing stored; membership and extension requests."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from access_requests import decisions
from access_requests.machine import get_project, members_of
from access_requests.models import ExtensionRequest, MembershipRequest
from enclave.core import people
from enclave.portal.i18n_access import ACCESS_MESSAGES
from tests.portal import access_helpers as h
from tests.portal.factories import PREFIX, TRICKY, TRICKY_ESCAPED, XSS, Portal

FUTURE = (date.today() + timedelta(days=300)).isoformat()
PDF = (b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\nxref\n0 2\n0000000000 65535 f \n"
       b"0000000009 00000 n \ntrailer\n<< /Size 2 /Root 1 0 R >>\nstartxref\n")


def _pdf() -> bytes:
    offset = PDF.index(b"xref")
    return PDF + str(offset).encode() + b"\n%%EOF\n"


def form(**changes: Any) -> dict[str, Any]:
    """A valid application form as the browser posts it (a sensitive variable included)."""
    data: dict[str, Any] = {
        "title": "Bourses et réussite au collège", "summary": "Effet des bourses.",
        "scientific_purpose": "Mesurer l'effet des bourses " + TRICKY,
        "public_interest": "Politique d'aide sociale.", "legal_basis": "gdpr_6_1_e_art_89",
        "legal_basis_other": "", "pi_institution": "Université de Lille",
        "members": "rita; CNRS", "var:eleves:boursier": "1",
        "why:eleves:boursier": "Variable d'intérêt", "var:eleves:niveau": "1",
        "why:eleves:niveau": "Contrôle par niveau", "why:eleves:sexe": "",
        "years": "2023, 2024", "levels": ["6E", "5E"], "territories": "59, Académie de Lille",
        "end_date": FUTURE, "ethics_reference": "CER-2026-12", "planned_outputs": "Tableaux",
        "action": "save", "form_key": "k" * 32}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def _created(response: Any) -> str:
    assert response.status_code == 303, response.text[:2000]
    location = response.headers["location"].removeprefix(PREFIX)
    return location.split("?")[0].removeprefix("projects/")


def test_the_form_shows_the_catalogue_with_each_kind_and_never_a_direct_identifier(
        portal: Portal) -> None:
    page = portal.client("alice").get("apply")
    assert page.status_code == 200
    text = page.text
    assert 'name="var:eleves:boursier"' in text and 'name="why:eleves:boursier"' in text
    assert 'name="var:eleves:ine"' not in text and "Jamais demandable" in text
    assert "Sensible" in text or "sensible" in text
    assert 'enctype="multipart/form-data"' in text and 'name="csrf_token"' in text
    assert 'for="champ-title"' in text and 'for="champ-end_date"' in text


def test_save_a_draft_then_edit_it_then_submit(portal: Portal) -> None:
    browser = portal.client("alice")
    before = portal.head_seq()
    project_id = _created(browser.post("apply", form(), files={"protocol": (
        "protocole.pdf", _pdf(), "application/pdf")}))
    assert h.status_version(portal, project_id) == ("draft", 1)
    assert h.actions(portal, before) == ["project.created"]
    with portal.enclave.db.sessions() as session:
        project = get_project(session, project_id)
        assert project.protocol_sha256 and project.legal_basis == "gdpr_6_1_e_art_89"
        assert {m.username: m.institution for m in members_of(session, project_id)} == {
            "alice": "Université de Lille", "rita": "CNRS"}
    page = browser.get(f"projects/{project_id}?notice=saved").text
    assert "Le brouillon est enregistré" in page and "Modifier le brouillon" in page
    edit = browser.get(f"projects/{project_id}/edit").text
    assert 'value="Bourses et réussite au collège"' in edit
    assert f"Mesurer l&#39;effet des bourses {TRICKY_ESCAPED}" in edit  # escaped, not executed
    assert 'name="var:eleves:boursier" value="1" checked' in edit
    done = browser.post(f"projects/{project_id}/edit", form(
        title="Bourses et réussite", action="submit", version="1", form_key=None))
    assert _created(done) == project_id
    assert h.status_version(portal, project_id)[0] == "submitted"
    assert h.actions(portal, before)[-2:] == ["project.updated", "project.submitted"]


def test_submit_a_saved_draft_from_its_page_and_a_second_submission_changes_nothing(
        portal: Portal) -> None:
    browser = portal.client("alice")
    project_id = _created(browser.post("apply", form()))
    first = browser.post(f"projects/{project_id}/submit", {"version": "1"})
    assert first.headers["location"].endswith("?notice=submitted")
    before = portal.head_seq()
    again = browser.post(f"projects/{project_id}/submit", {"version": "1"})
    assert again.status_code == 303 and again.headers["location"].endswith("?notice=twice")
    assert portal.head_seq() == before
    page = browser.get(again.headers["location"].removeprefix(PREFIX)).text
    assert "déjà été envoyé" in page


def test_the_same_form_sent_twice_creates_one_application(portal: Portal) -> None:
    browser = portal.client("alice")
    count = h.project_count(portal)
    first = _created(browser.post("apply", form(action="submit")))
    before = portal.head_seq()
    again = browser.post("apply", form(action="submit"))
    assert again.status_code == 303
    assert again.headers["location"] == f"{PREFIX}projects/{first}?notice=twice"
    assert h.project_count(portal) == count + 1 and portal.head_seq() == before


@pytest.mark.parametrize(("changes", "field", "files"), [
    ({"title": "x" * 301}, "title", None),
    ({"summary": "y" * 5001}, "summary", None),
    ({"title": "Titre\u202eevil"}, "title", None),
    ({"title": "Titre " + XSS}, "title", None),
    ({"planned_outputs": "<img src=x onerror=alert(1)>"}, "planned_outputs", None),
    ({"var:eleves:nope": "1", "why:eleves:nope": "why"}, "variables", None),
    ({"var:inconnu:x": "1", "why:inconnu:x": "why"}, "variables", None),
    ({"var:eleves:ine": "1", "why:eleves:ine": "pour relier"}, "variables", None),
    ({"var:eleves:boursier": None, "var:eleves:niveau": None}, "variables", None),
    ({"why:eleves:boursier": ""}, "why:eleves:boursier", None),
    ({"end_date": "2001-01-01"}, "end_date", None),
    ({"end_date": date.today().isoformat()}, "end_date", None),
    ({"end_date": "demain"}, "end_date", None),
    ({"years": "vingt"}, "years", None),
    ({"levels": ["CP", "MASTER"]}, "levels", None),
    ({"legal_basis": "other", "legal_basis_other": ""}, "legal_basis_other", None),
    ({"legal_basis": "consent"}, "legal_basis", None),
    ({"members": "inconnu; nulle part"}, "members", None),
    ({"members": "newbie; DEPP"}, "members", None),
    ({}, "protocol", ("p.pdf", b"MZ\x90\x00 this is an executable", "application/pdf")),
    ({}, "protocol", ("p.pdf", b"%PDF-1.4 truncated", "application/pdf")),
])
def test_bad_input_is_shown_next_to_its_field_and_nothing_is_stored(
        portal: Portal, changes: dict[str, Any], field: str,
        files: tuple[str, bytes, str] | None) -> None:
    browser = portal.client("alice")
    before, count = portal.head_seq(), h.project_count(portal)
    files_arg = {"protocol": files} if files else None
    page = browser.post("apply", form(action="submit", **changes), files=files_arg)
    assert page.status_code == 400, page.text[:500]
    anchor = field.replace("why:", "why-").replace(":", "-")
    assert f'id="erreur-{anchor}"' in page.text, page.text[:3000]
    assert 'aria-invalid="true"' in page.text and "rien n&#39;a été enregistré" in page.text
    assert portal.head_seq() == before and h.project_count(portal) == count
    assert not list(portal.enclave.settings.projects_dir.glob("*/protocol/*"))


def test_a_researcher_without_valid_accreditation_cannot_open_the_form(portal: Portal) -> None:
    page = portal.client("newbie").get("apply")
    assert page.status_code == 403 and "accreditation" in page.text
    assert portal.client("claire").get("apply").status_code == 403


def test_a_forged_form_without_csrf_token_stores_nothing(portal: Portal) -> None:
    before, count = portal.head_seq(), h.project_count(portal)
    page = portal.client("alice").post("apply", form(action="submit"), token=False)
    assert page.status_code == 403 and "Formulaire refusé" in page.text
    assert portal.head_seq() == before and h.project_count(portal) == count


def test_answer_a_change_request_and_resubmit(portal: Portal) -> None:
    browser = portal.client("alice")
    project_id = _created(browser.post("apply", form(action="submit")))
    staff = portal.client("claire")
    version = h.status_version(portal, project_id)[1]
    assert staff.post(f"review/{project_id}", {
        "decision": "request_changes", "reason": "Justifiez mieux la variable boursier",
        "version": str(version)}).status_code == 303
    status, version = h.status_version(portal, project_id)
    assert status == "changes_requested"
    project_page = browser.get(f"projects/{project_id}").text
    assert "Répondre aux modifications demandées" in project_page
    edit = browser.get(f"projects/{project_id}/edit").text
    assert "Justifiez mieux la variable boursier" in edit and "Redéposer la demande" in edit
    stale = browser.post(f"projects/{project_id}/edit", form(
        action="submit", version=str(version - 1), form_key=None))
    assert stale.status_code == 409 and "a changé depuis" in stale.text
    done = browser.post(f"projects/{project_id}/edit", form(
        action="submit", version=str(version), form_key=None,
        **{"why:eleves:boursier": "Effet propre des bourses, à niveau égal"}))
    assert _created(done) == project_id
    assert h.status_version(portal, project_id)[0] == "resubmitted"


def test_a_submitted_application_is_not_editable(portal: Portal) -> None:
    browser = portal.client("alice")
    project_id = _created(browser.post("apply", form(action="submit")))
    page = browser.get(f"projects/{project_id}/edit").text
    assert "plus modifiable" in page and 'id="formulaire-demande"' not in page
    before = portal.head_seq()
    refused = browser.post(f"projects/{project_id}/edit", form(version="2", form_key=None))
    assert refused.status_code == 403 and portal.head_seq() == before


def test_other_researchers_cannot_edit_or_submit(portal: Portal) -> None:
    project_id = _created(portal.client("alice").post("apply", form()))
    before = portal.head_seq()
    mallory = portal.client("mallory")
    assert mallory.get(f"projects/{project_id}/edit").status_code == 403
    assert mallory.post(f"projects/{project_id}/edit",
                        form(version="1", form_key=None)).status_code == 403
    assert mallory.post(f"projects/{project_id}/submit", {"version": "1"}).status_code == 403
    assert portal.head_seq() == before


# -- membership and extension requests ----------------------------------------------------------

def test_the_pi_requests_a_member_and_an_extension_and_staff_decide(portal: Portal) -> None:
    project_id = h.approved(portal)
    alice = portal.client("alice")
    assert "Modifier le projet" in alice.get(f"projects/{project_id}").text
    page = alice.get(f"projects/{project_id}/changes")
    assert page.status_code == 200
    before = portal.head_seq()
    added = alice.post(f"projects/{project_id}/changes/membership", {
        "change": "add", "username": "mallory", "institution": "INSEE", "reason": "Renfort"})
    assert added.headers["location"].endswith("?notice=membership_requested")
    later = (h.END + timedelta(days=100)).isoformat()
    extended = alice.post(f"projects/{project_id}/changes/extension", {
        "new_end_date": later, "reason_extension": "Terrain plus long"})
    assert extended.headers["location"].endswith("?notice=extension_requested")
    assert h.actions(portal, before) == ["membership.requested", "extension.requested"]

    staff = portal.client("claire")
    queue = staff.get("requests").text
    assert "mallory" in queue and "Terrain plus long" in queue
    with portal.enclave.db.sessions() as session:
        mbr = session.execute(select(MembershipRequest)).scalar_one()
        ext = session.execute(select(ExtensionRequest)).scalar_one()
    before = portal.head_seq()
    no_reason = staff.post(f"requests/extension/{ext.id}", {
        "decision": "approve", "reason": " ", "version": str(ext.version)})
    assert no_reason.status_code == 400 and f'id="erreur-{ext.id}"' in no_reason.text
    assert portal.head_seq() == before
    stale = staff.post(f"requests/extension/{ext.id}", {
        "decision": "approve", "reason": "ok", "version": str(ext.version + 1)})
    assert stale.status_code == 409 and portal.head_seq() == before
    assert staff.post(f"requests/extension/{ext.id}", {
        "decision": "approve", "reason": "Justifié", "version": str(ext.version)}
    ).headers["location"].endswith("?done=approved")
    assert staff.post(f"requests/membership/{mbr.id}", {
        "decision": "reject", "reason": "Pas de formation adaptée",
        "version": str(mbr.version)}).status_code == 303
    assert h.actions(portal, before) == ["extension.approved", "membership.rejected"]
    with portal.enclave.db.sessions() as session:
        assert get_project(session, project_id).end_date.isoformat() == later
        assert "mallory" not in [m.username for m in members_of(session, project_id)]


@pytest.mark.parametrize(("path", "data", "field"), [
    ("membership", {"change": "add", "username": "personne", "reason": "x"}, "username"),
    ("membership", {"change": "add", "username": "rita", "reason": "x"}, "username"),
    ("membership", {"change": "add", "username": "mallory", "reason": ""}, "reason"),
    ("membership", {"change": "swap", "username": "mallory", "reason": "x"}, "change"),
    ("extension", {"new_end_date": "2001-01-01", "reason_extension": "x"}, "new_end_date"),
    ("extension", {"new_end_date": "bientôt", "reason_extension": "x"}, "new_end_date"),
    ("extension", {"new_end_date": FUTURE, "reason_extension": ""}, "reason_extension"),
])
def test_bad_change_requests_are_refused_next_to_their_field(
        portal: Portal, path: str, data: dict[str, str], field: str) -> None:
    project_id = h.approved(portal)
    before = portal.head_seq()
    page = portal.client("alice").post(f"projects/{project_id}/changes/{path}", data)
    assert page.status_code == 400 and f'id="erreur-{field}"' in page.text
    assert portal.head_seq() == before


def test_only_the_pi_requests_changes(portal: Portal) -> None:
    project_id = h.approved(portal)
    before = portal.head_seq()
    rita = portal.client("rita")
    assert rita.get(f"projects/{project_id}/changes").status_code == 403
    assert rita.post(f"projects/{project_id}/changes/extension", {
        "new_end_date": FUTURE, "reason_extension": "x"}).status_code == 403
    assert portal.head_seq() == before


def test_access_messages_exist_in_both_languages_with_the_same_placeholders() -> None:
    fr, en = ACCESS_MESSAGES["fr"], ACCESS_MESSAGES["en"]
    assert set(fr) == set(en)
    for key in fr:
        assert sorted(re.findall(r"{(\w+)}", fr[key])) == \
            sorted(re.findall(r"{(\w+)}", en[key])), key


def test_the_draft_is_the_researchers_own_until_submitted(portal: Portal) -> None:
    project_id = _created(portal.client("alice").post("apply", form()))
    staff = portal.client("claire")
    assert project_id not in staff.get("review").text
    with portal.enclave.db.sessions() as session:
        claire = people.actor_for(session, "claire")
        assert project_id not in [p.id for p in decisions.review_queue(session, claire)]


def test_submitting_an_incomplete_draft_says_what_is_missing(portal: Portal) -> None:
    browser = portal.client("alice")
    project_id = _created(browser.post("apply", form(summary="")))
    before = portal.head_seq()
    page = browser.post(f"projects/{project_id}/submit", {"version": "1"})
    assert page.status_code == 400 and "summary" in page.text
    assert h.status_version(portal, project_id) == ("draft", 1)
    assert portal.head_seq() == before


def test_every_requestable_variable_of_the_catalogue_can_be_requested_at_once(
        portal: Portal) -> None:
    with portal.enclave.db.sessions() as session:
        from enclave.core.catalogue import Variable, VariableKind

        rows = session.execute(select(Variable.dataset_id, Variable.name).where(
            Variable.kind != VariableKind.DIRECT_IDENTIFIER.value)).all()
    data = form(action="submit")
    for dataset, name in rows:
        data[f"var:{dataset}:{name}"] = "1"
        data[f"why:{dataset}:{name}"] = f"Besoin de {name}"
    project_id = _created(portal.client("alice").post("apply", data))
    with portal.enclave.db.sessions() as session:
        assert get_project(session, project_id).status == "submitted"
    assert len(rows) > 20


#: Refusals of shape (read by the portal) and of content (the workflow's), in one form.
MANY_BAD = {"title": "<b>Titre</b>", "end_date": "demain", "years": "vingt",
            "var:eleves:ine": "1", "why:eleves:ine": "pour relier", "why:eleves:boursier": "",
            "members": "rita; CNRS\ninconnu; nulle part", "legal_basis": "other",
            "legal_basis_other": "art"}
MANY_ANCHORS = ["title", "end_date", "years", "variables", "why-eleves-boursier", "members",
                "legal_basis_other"]


def test_every_error_of_the_form_is_shown_next_to_its_field_in_one_round_trip(
        portal: Portal) -> None:
    browser = portal.client("alice")
    before, count = portal.head_seq(), h.project_count(portal)
    page = browser.post("apply", form(action="submit", **MANY_BAD), files={"protocol": (
        "p.pdf", b"MZ not a pdf", "application/pdf")})
    assert page.status_code == 400
    for anchor in [*MANY_ANCHORS, "protocol"]:
        assert f'id="erreur-{anchor}"' in page.text, anchor
    assert "Le formulaire contient 8 erreur(s)" in page.text
    assert "enter a date as YYYY-MM-DD" in page.text  # the portal's own word on the date
    assert "direct identifier" in page.text and "&#39;inconnu&#39;" in page.text
    assert portal.head_seq() == before and h.project_count(portal) == count
    assert not list(portal.enclave.settings.projects_dir.glob("*/protocol/*"))


def test_every_content_error_is_shown_when_the_shape_is_right(portal: Portal) -> None:
    before, count = portal.head_seq(), h.project_count(portal)
    page = portal.client("alice").post("apply", form(
        title="ab", summary="s" * 5001, levels=["CP", "MASTER"],
        end_date=(date.today() - timedelta(days=1)).isoformat()))
    assert page.status_code == 400
    for anchor in ("title", "summary", "levels", "end_date"):
        assert f'id="erreur-{anchor}"' in page.text, anchor
    assert portal.head_seq() == before and h.project_count(portal) == count


def test_an_edit_shows_every_error_and_changes_nothing(portal: Portal) -> None:
    browser = portal.client("alice")
    project_id = _created(browser.post("apply", form()))
    state = h.status_version(portal, project_id)
    before = portal.head_seq()
    page = browser.post(f"projects/{project_id}/edit",
                        form(version=str(state[1]), **MANY_BAD))
    assert page.status_code == 400
    for anchor in MANY_ANCHORS:
        assert f'id="erreur-{anchor}"' in page.text, anchor
    assert h.status_version(portal, project_id) == state and portal.head_seq() == before
    # someone who may not edit it gets no list of errors, only the refusal
    assert portal.client("mallory").post(f"projects/{project_id}/edit", form(
        version=str(state[1]), **MANY_BAD)).status_code == 403
    assert portal.head_seq() == before


def test_a_change_request_shows_every_error(portal: Portal) -> None:
    project_id = h.approved(portal)
    before = portal.head_seq()
    alice = portal.client("alice")
    page = alice.post(f"projects/{project_id}/changes/extension",
                      {"new_end_date": "bientôt", "reason_extension": ""})
    assert page.status_code == 400
    assert 'id="erreur-new_end_date"' in page.text and 'id="erreur-reason_extension"' in page.text
    page = alice.post(f"projects/{project_id}/changes/membership",
                      {"change": "swap", "username": "", "reason": ""})
    assert page.status_code == 400
    for anchor in ("change", "username", "reason"):
        assert f'id="erreur-{anchor}"' in page.text, anchor
    assert portal.head_seq() == before
