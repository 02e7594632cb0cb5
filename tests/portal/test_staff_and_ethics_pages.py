"""DEPP staff's side-by-side review, the two-staff rule with the ethics opinion given through
the portal, the lifecycle buttons with their reasons, the register and the privacy ledgers."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from access_requests.machine import get_project
from enclave.core import people
from enclave.core.audit import AuditEvent
from enclave.portal import pages_projects
from enclave.privacy_budget.ledger import set_budget
from enclave.provisioning.models import Extract
from tests.portal import access_helpers as h
from tests.portal.factories import PREFIX, TRICKY, TRICKY_ESCAPED, Portal

SENSITIVE = {"variables": {"eleves": [("boursier", "Effet des bourses"),
                                      ("niveau", "Contrôle")]}}


def _decide(portal: Portal, who: str, project_id: str, decision: str = "approve",
            reason: str = "Conforme") -> object:
    version = h.status_version(portal, project_id)[1]
    return portal.client(who).post(f"review/{project_id}", {
        "decision": decision, "reason": reason, "version": str(version)})


def test_the_review_page_shows_the_application_beside_the_catalogue(portal: Portal) -> None:
    project_id = h.submitted(portal, **SENSITIVE)
    page = portal.client("claire").get(f"review/{project_id}").text
    assert 'id="cote-a-cote"' in page
    assert "Effet des bourses" in page and "eleves.boursier is a sensitive variable" in page
    assert "Examen renforcé" in page
    # the dataset's whole catalogue is beside the request, requested variables marked
    assert "<code>ine</code>" in page and "<code>boursier</code>" in page
    assert page.count("— demandée") == 2


def test_two_distinct_staff_and_the_ethics_opinion_from_the_portal(portal: Portal) -> None:
    project_id = h.submitted(portal, **SENSITIVE)
    before = portal.head_seq()
    assert _decide(portal, "claire", project_id).status_code == 303
    assert h.status_version(portal, project_id)[0] == "in_review"
    # the same person again: a plain message, not a 500 nor a bare "access denied"
    seq = portal.head_seq()
    again = _decide(portal, "claire", project_id)
    assert again.status_code == 409 and "Vous avez déjà approuvé" in again.text
    assert portal.head_seq() == seq
    # what is still missing is shown to the next reviewer
    waiting = portal.client("david").get(f"review/{project_id}").text
    assert "Il manque" in waiting and "favourable ethics committee opinion" in waiting
    gaelle = portal.client("gaelle")
    form = gaelle.get(f"ethics/{project_id}/opinion")
    assert form.status_code == 200 and 'name="verdict"' in form.text
    assert gaelle.post(f"ethics/{project_id}/opinion", {
        "verdict": "favourable", "reference": "CE-2026-7", "comment": "Rien à redire " + TRICKY}
    ).headers["location"].endswith("?notice=opinion")
    assert _decide(portal, "david", project_id).status_code == 303
    assert h.status_version(portal, project_id)[0] == "approved"
    assert h.actions(portal, before) == [
        "project.review_started", "project.approval_recorded", "ethics.opinion_recorded",
        "project.approved"]
    register = gaelle.get("register").text
    assert project_id in register and "Favorable" in register and "Approbation" in register
    assert f"Rien à redire {TRICKY_ESCAPED}" in register and TRICKY not in register


def test_a_stale_decision_after_an_opinion_is_refused(portal: Portal) -> None:
    project_id = h.submitted(portal, **SENSITIVE)
    seen = h.status_version(portal, project_id)[1]
    portal.client("gaelle").post(f"ethics/{project_id}/opinion", {"verdict": "reserved"})
    before = portal.head_seq()
    page = portal.client("claire").post(f"review/{project_id}", {
        "decision": "approve", "reason": "ok", "version": str(seen)})
    assert page.status_code == 409 and portal.head_seq() == before


def test_bad_opinions_are_refused_next_to_their_field(portal: Portal) -> None:
    project_id = h.submitted(portal)
    gaelle = portal.client("gaelle")
    before = portal.head_seq()
    bad = gaelle.post(f"ethics/{project_id}/opinion", {"verdict": "peut-être"})
    assert bad.status_code == 400 and 'id="erreur-verdict"' in bad.text
    long = gaelle.post(f"ethics/{project_id}/opinion", {"verdict": "favourable",
                                                       "reference": "r" * 201})
    assert long.status_code == 400 and 'id="erreur-reference"' in long.text
    assert portal.head_seq() == before
    decided = h.approved(portal)
    late = gaelle.post(f"ethics/{decided}/opinion", {"verdict": "favourable"})
    assert late.status_code == 409 and "before the decision" in late.text
    assert portal.client("claire").get(f"ethics/{project_id}/opinion").status_code == 403
    assert portal.client("admin").get(f"ethics/{project_id}/opinion").status_code == 403


def _events(portal: Portal, project_id: str) -> list[str]:
    with portal.enclave.db.sessions() as session:
        return list(session.execute(select(AuditEvent.action).where(
            AuditEvent.project_id == project_id).order_by(AuditEvent.seq)).scalars())


def test_suspend_reinstate_revoke_close_each_need_a_reason(portal: Portal) -> None:
    project_id = h.active(portal)
    staff = portal.client("claire")
    page = staff.get(f"manage/{project_id}").text
    for action in ("suspend", "revoke", "close"):
        assert f'action="{PREFIX}manage/{project_id}/{action}"' in page
    assert f"manage/{project_id}/reinstate" not in page
    version = h.status_version(portal, project_id)[1]
    before = portal.head_seq()
    empty = staff.post(f"manage/{project_id}/suspend", {"reason": "  ", "version": str(version)})
    assert empty.status_code == 400 and 'id="erreur-suspend"' in empty.text
    assert portal.head_seq() == before
    assert staff.post(f"manage/{project_id}/suspend", {
        "reason": "Incident signalé", "version": str(version)}).status_code == 303
    status, version = h.status_version(portal, project_id)
    assert status == "suspended"
    stale = staff.post(f"manage/{project_id}/reinstate", {"reason": "ok",
                                                          "version": str(version - 1)})
    assert stale.status_code == 409 and h.status_version(portal, project_id)[0] == "suspended"
    no_reason = staff.post(f"manage/{project_id}/reinstate", {"reason": "",
                                                              "version": str(version)})
    assert no_reason.status_code == 400
    assert staff.post(f"manage/{project_id}/reinstate", {
        "reason": "Incident clos", "version": str(version)}).status_code == 303
    assert h.status_version(portal, project_id)[0] == "active"
    version = h.status_version(portal, project_id)[1]
    assert staff.post(f"manage/{project_id}/revoke", {
        "reason": "Manquement", "version": str(version)}).status_code == 303
    with portal.enclave.db.sessions() as session:
        folder = Path(session.execute(select(Extract.path).where(
            Extract.project_id == project_id)).scalar_one())
    assert folder.exists()
    version = h.status_version(portal, project_id)[1]
    closed = staff.post(f"manage/{project_id}/close", {"reason": "Fin",
                                                       "version": str(version)})
    assert closed.status_code == 303
    assert "Le projet est clôturé" in staff.get(
        closed.headers["location"].removeprefix(PREFIX)).text
    assert h.status_version(portal, project_id)[0] == "closed" and not folder.exists()
    events = _events(portal, project_id)
    assert events[-6:] == ["project.suspended", "project.reinstated", "project.revoked",
                           "key.destroyed", "project.closed", "project.destruction_certified"]


def test_lifecycle_moves_the_state_does_not_allow_are_refused(portal: Portal) -> None:
    project_id = h.approved(portal)
    staff = portal.client("claire")
    version = h.status_version(portal, project_id)[1]
    before = portal.head_seq()
    for action in ("suspend", "reinstate", "close", "explode"):
        page = staff.post(f"manage/{project_id}/{action}", {"reason": "x",
                                                            "version": str(version)})
        assert page.status_code in (403, 409), (action, page.status_code)
    assert portal.head_seq() == before
    assert h.status_version(portal, project_id)[0] == "approved"


def test_staff_cannot_manage_a_project_they_belong_to(portal: Portal) -> None:
    with portal.enclave.db.transaction() as session:
        from access_requests import applications

        claire = people.actor_for(session, "alice")
        project = applications.create_application(
            session, claire, projects_dir=portal.enclave.settings.projects_dir,
            **{**h.PLAIN, "members": ["rita"]})
        project_id = project.id
    from access_requests.models import Membership

    with portal.enclave.db.transaction() as session:
        session.add(Membership(project_id=project_id, username="claire"))
    assert portal.client("claire").get(f"manage/{project_id}").status_code == 403


def test_the_register_lists_every_application_for_oversight(portal: Portal) -> None:
    ids = [h.submitted(portal) for _ in range(3)]
    for who in ("gaelle", "claire"):
        page = portal.client(who).get("register")
        assert page.status_code == 200
        assert all(i in page.text for i in ids)
    filtered = portal.client("gaelle").get("register?status=approved").text
    assert ids[0] not in filtered
    assert portal.client("gaelle").get("register?status=nope").status_code == 400
    for who in ("alice", "emma", "admin"):
        assert portal.client(who).get("register").status_code == 403


def test_the_privacy_budget_ledger_page(portal: Portal) -> None:
    project_id = h.approved(portal)
    with portal.enclave.db.sessions() as session:
        claire = people.actor_for(session, "claire")
    set_budget(portal.enclave.db, claire, project_id, "eleves", epsilon="1.5",
               delta="0.000001", reason="Budget initial")
    gaelle = portal.client("gaelle")
    page = gaelle.get("privacy")
    assert page.status_code == 200 and project_id in page.text and "1.5" in page.text
    detail = gaelle.get(f"privacy/{project_id}/eleves")
    assert detail.status_code == 200 and "Budget initial" in detail.text
    assert gaelle.get(f"privacy/{project_id}/traces").status_code == 404
    for who in ("emma", "admin", "depot"):
        assert portal.client(who).get("privacy").status_code == 403
    assert portal.client("alice").get("privacy").status_code == 403
    assert portal.client("alice").get(f"privacy/{project_id}/eleves").status_code == 200
    assert portal.client("mallory").get(f"privacy/{project_id}/eleves").status_code == 403


def test_closing_destroys_the_key(portal: Portal) -> None:
    project_id = h.active(portal)
    staff = portal.client("claire")
    version = h.status_version(portal, project_id)[1]
    assert staff.post(f"manage/{project_id}/close", {"reason": "Terminé",
                                                     "version": str(version)}).status_code == 303
    with portal.enclave.db.sessions() as session:
        assert get_project(session, project_id).status == "closed"
        row = session.execute(select(AuditEvent.details).where(
            AuditEvent.action == "project.destruction_certified",
            AuditEvent.project_id == project_id)).scalar_one()
    assert "key_ids" in row and "enclave-destruction-certificate/1" in row


def test_the_queue_shows_the_oldest_applications_and_how_many_wait(
        portal: Portal, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [h.submitted(portal) for _ in range(3)]
    monkeypatch.setattr(pages_projects, "QUEUE_PAGE", 2)
    page = portal.client("claire").get("review").text
    assert ids[0] in page and ids[1] in page and ids[2] not in page
    assert "les plus anciennes sur 3 en attente" in page


def test_a_favourable_opinion_after_two_approvals_approves_without_a_third(
        portal: Portal) -> None:
    project_id = h.submitted(portal, **SENSITIVE)
    before = portal.head_seq()
    assert _decide(portal, "claire", project_id).status_code == 303
    assert _decide(portal, "david", project_id).status_code == 303
    assert h.status_version(portal, project_id)[0] == "in_review"
    gaelle = portal.client("gaelle")
    sent = gaelle.post(f"ethics/{project_id}/opinion", {"verdict": "favourable",
                                                       "reference": "CE-2026-8"})
    assert sent.status_code == 303
    assert h.status_version(portal, project_id)[0] == "approved"
    page = gaelle.get(sent.headers["location"].removeprefix(PREFIX)).text
    assert "la demande est approuvée" in page
    assert h.actions(portal, before) == [
        "project.review_started", "project.approval_recorded", "project.approval_recorded",
        "ethics.opinion_recorded", "project.approved"]
    with portal.enclave.db.sessions() as session:
        approved_by = session.execute(select(AuditEvent.actor).where(
            AuditEvent.project_id == project_id,
            AuditEvent.action == "project.approved")).scalar_one()
    assert approved_by == "system"
    # nobody needs to (or can) approve again
    seq = portal.head_seq()
    assert _decide(portal, "dora", project_id).status_code in (403, 409)
    assert portal.head_seq() == seq


def test_an_unfavourable_opinion_after_two_approvals_leaves_the_application_in_review(
        portal: Portal) -> None:
    project_id = h.submitted(portal, **SENSITIVE)
    assert _decide(portal, "claire", project_id).status_code == 303
    assert _decide(portal, "david", project_id).status_code == 303
    for who in ("claire", "alice", "emma", "admin"):  # only the ethics committee gives one
        assert portal.client(who).post(f"ethics/{project_id}/opinion", {
            "verdict": "favourable"}).status_code == 403
    assert h.status_version(portal, project_id)[0] == "in_review"
    assert portal.client("gaelle").post(f"ethics/{project_id}/opinion", {
        "verdict": "unfavourable", "comment": "Finalité insuffisante"}).status_code == 303
    assert h.status_version(portal, project_id)[0] == "in_review"
    waiting = portal.client("claire").get(f"review/{project_id}").text
    assert "Il manque" in waiting and "current: unfavourable" in waiting


def test_every_error_of_an_opinion_is_shown_at_once(portal: Portal) -> None:
    project_id = h.submitted(portal)
    before = portal.head_seq()
    page = portal.client("gaelle").post(f"ethics/{project_id}/opinion", {
        "verdict": "peut-être", "reference": "r" * 201, "comment": "<script>x</script>"})
    assert page.status_code == 400
    for anchor in ("verdict", "reference", "comment"):
        assert f'id="erreur-{anchor}"' in page.text, anchor
    assert portal.head_seq() == before
