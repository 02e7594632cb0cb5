"""Applications: every field checked, bad input refused by name with nothing stored."""

from __future__ import annotations

import json
import stat
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from access_requests import applications, notifications
from access_requests.applications import protocol_path
from access_requests.exceptions import AlreadySubmitted, FieldError, StaleVersion
from access_requests.machine import ProjectStatus
from access_requests.models import Membership, Notification, Project
from enclave.core import people, policy
from enclave.core.exceptions import InvalidTransition, PermissionDenied, ValidationError
from enclave.core.files import sha256_bytes
from enclave.core.policy import Role
from tests.access_requests.conftest import snapshot
from tests.access_requests.helpers import FORM, create, make_pdf
from tests.workflows.factories import Factory, Person

LONG = "x" * 5001
BAD_INPUT: dict[str, tuple[dict[str, Any], str]] = {
    "title-too-long": ({"title": "T" * 301}, "title"),
    "title-too-short": ({"title": " ab "}, "title"),
    "title-control-char": ({"title": "Titre\x07 sonore"}, "title"),
    "title-newline": ({"title": "Titre\nsur deux lignes"}, "title"),
    "title-nul": ({"title": "Titre\x00"}, "title"),
    "summary-bidi-override": ({"summary": "Résumé \u202eesrever"}, "summary"),
    "summary-too-long": ({"summary": LONG}, "summary"),
    "summary-not-text": ({"summary": 42}, "summary"),
    "purpose-too-long": ({"scientific_purpose": "p" * 10_001}, "scientific_purpose"),
    "public-interest-escape": ({"public_interest": "ok \x1b[31m rouge"}, "public_interest"),
    "ethics-reference-newline": ({"ethics_reference": "CER\r\n2026"}, "ethics_reference"),
    "planned-outputs-too-long": ({"planned_outputs": LONG}, "planned_outputs"),
    "legal-basis-unknown": ({"legal_basis": "consent"}, "legal_basis"),
    "legal-basis-other-unstated": ({"legal_basis": "other", "legal_basis_other": "art"},
                                   "legal_basis_other"),
    "year-out-of-range": ({"years": [1850]}, "years"),
    "year-not-a-number": ({"years": ["2024"]}, "years"),
    "level-unknown": ({"levels": ["CM3"]}, "levels"),
    "territory-markup": ({"territories": ["<script>alert(1)</script>"]}, "territories"),
    "unknown-dataset": ({"variables": {"eleves_secret": [("sexe", "x")]}}, "variables"),
    "unknown-variable": ({"variables": {"eleves": [("revenu_parents", "x")]}}, "variables"),
    "direct-identifier-ine": ({"variables": {"eleves": [("ine", "pour relier")]}},
                              "variables"),
    "direct-identifier-statement": ({"variables": {"traces_xapi": [("statement_id", "x")]}},
                                    "variables"),
    "no-variable": ({"variables": {}}, "variables"),
    "variable-twice": ({"variables": {"eleves": [("sexe", "a"), ("sexe", "b")]}}, "variables"),
    "justification-missing": ({"variables": {"eleves": [("sexe", "  ")]}},
                              "variables.eleves.sexe"),
    "justification-too-long": ({"variables": {"eleves": [("sexe", "j" * 2001)]}},
                               "variables.eleves.sexe"),
    "end-date-past": ({"end_date": date.today() - timedelta(days=1)}, "end_date"),
    "end-date-today": ({"end_date": date.today()}, "end_date"),
    "end-date-not-a-date": ({"end_date": "2030-01-01"}, "end_date"),
    "member-unknown": ({"members": ["zoe"]}, "members"),
    "member-accreditation-expired": ({"members": ["ines"]}, "members"),
    "unknown-field": ({"colour": "blue"}, "colour"),
    "protocol-not-a-pdf": ({"protocol": b"<html><script>alert(1)</script></html>"},
                           "protocol"),
    "protocol-png": ({"protocol": b"\x89PNG\r\n\x1a\n" + b"\x00" * 64}, "protocol"),
    "protocol-empty": ({"protocol": b""}, "protocol"),
    "protocol-truncated": ({"protocol": make_pdf()[:-30]}, "protocol"),
    "protocol-bad-xref": ({"protocol": make_pdf().replace(b"startxref\n", b"startxref\n9")},
                          "protocol"),
    "protocol-javascript": ({"protocol": make_pdf(b"/AA << /O << /S /JavaScript /JS (x) >> >> ")},
                            "protocol"),
    "protocol-too-large": ({"protocol": make_pdf() + b"%" * (20 * 1024 * 1024)}, "protocol"),
}


def _expired_researcher(factory: Factory) -> None:
    factory.create_people([Person("ines", (Role.RESEARCHER,), accredited=False)])
    with factory.enclave.db.transaction() as session:
        people.record_accreditation(session, policy.SYSTEM, "ines",
                                    date.today() - timedelta(days=5 * 365))


def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored(
        sqlite_factory: Factory) -> None:
    # One enclave for every case (a fresh one each would triple the run time): each refusal
    # must leave it exactly as it was, which is what is asserted.
    factory = sqlite_factory
    _expired_researcher(factory)
    before = snapshot(factory)
    for case, (change, field) in BAD_INPUT.items():
        with pytest.raises(FieldError) as info, factory.enclave.db.transaction() as session:
            applications.create_application(
                session, factory.actor("alice"),
                projects_dir=factory.enclave.settings.projects_dir, **{**FORM, **change})
        assert info.value.field == field, case
        assert str(info.value).startswith(field + ": "), case
        assert isinstance(info.value, ValidationError), case
        assert snapshot(factory) == before, case  # no row, no file, no audit event


@pytest.mark.parametrize("who", ["nadia", "claire", "gaelle", "system"])
def test_only_accredited_researchers_apply(sqlite_factory: Factory, who: str) -> None:
    before = snapshot(sqlite_factory)
    with pytest.raises(PermissionDenied), sqlite_factory.enclave.db.transaction() as session:
        applications.create_application(session, sqlite_factory.actor(who), **FORM)
    assert snapshot(sqlite_factory) == before


def test_a_complete_application_is_stored_with_every_field(factory: Factory) -> None:
    pdf = make_pdf()
    head = factory.audit_head()
    project_id = create(factory, protocol=pdf, pi_institution="Université de Lille",
                        members=["bruno", applications.MemberEntry("rita", "INSEE")])
    with factory.enclave.db.sessions() as session:
        project = session.get(Project, project_id)
        assert project is not None
        assert (project.status, project.version, project.principal_investigator) == (
            "draft", 1, "alice")
        assert project.scientific_purpose == FORM["scientific_purpose"]
        assert json.loads(project.population) == {
            "years": [2024, 2025], "levels": ["CM2", "6E"],
            "territories": ["Académie de Lille", "59"]}
        assert project.legal_basis == "gdpr_6_1_e_art_89"
        assert project.protocol_sha256 == sha256_bytes(pdf)
        members = {m.username: (m.role_in_project, m.institution) for m in session.execute(
            select(Membership).where(Membership.project_id == project_id)).scalars()}
    assert members == {"alice": ("pi", "Université de Lille"), "bruno": ("member", ""),
                       "rita": ("member", "INSEE")}
    path = protocol_path(factory.enclave.settings.projects_dir, project_id, sha256_bytes(pdf))
    assert path.read_bytes() == pdf
    assert stat.S_IMODE(path.stat().st_mode) == 0o440
    (event,) = factory.audit_events_after(head)
    assert event.action == "project.created"
    assert json.loads(event.details)["protocol_sha256"] == sha256_bytes(pdf)


def test_plain_text_with_comparisons_and_braces_is_stored_as_typed(factory: Factory) -> None:
    title = "Effectifs < 10 & seuils <= 5 {title} 'quoted'"
    project_id = create(factory, title=title, summary="a<3 n'est pas une balise ; x > y")
    with factory.enclave.db.transaction() as session:
        applications.submit(session, factory.actor("alice"), project_id, version=1)
    with factory.enclave.db.sessions() as session:
        project = session.get(Project, project_id)
        assert project is not None and project.title == title
        assert project.summary == "a<3 n'est pas une balise ; x > y"
        bodies = session.execute(select(Notification.body_en).where(
            Notification.project_id == project_id)).scalars().all()
    assert bodies and all(f'"{title}"' in body for body in bodies)


@pytest.mark.parametrize(("field", "markup"), [
    ("title", "<script>alert('x')</script>"), ("summary", "<img src=x onerror=1>"),
    ("scientific_purpose", "</textarea>"), ("public_interest", "<!-- c -->"),
    ("planned_outputs", "<?xml ?>"), ("ethics_reference", "<svg/onload=1>"),
    ("pi_institution", "<b>Inserm</b>")])
def test_markup_in_any_text_field_is_refused_and_nothing_is_stored(
        factory: Factory, field: str, markup: str) -> None:
    before = snapshot(factory)
    with pytest.raises(FieldError, match=f"{field}: contains markup"):
        create(factory, **{field: "Texte " + markup})
    assert snapshot(factory) == before


def test_a_protocol_written_in_a_rolled_back_transaction_is_removed(factory: Factory) -> None:
    pdf = make_pdf(b"/Rotate 90 ")
    before = snapshot(factory)
    with pytest.raises(RuntimeError), factory.enclave.db.transaction() as session:
        project = applications.create_application(
            session, factory.actor("alice"), protocol=pdf,
            projects_dir=factory.enclave.settings.projects_dir, **FORM)
        assert protocol_path(factory.enclave.settings.projects_dir, project.id,
                             sha256_bytes(pdf)).exists()
        raise RuntimeError("the commit never happens")
    assert snapshot(factory) == before


def test_submit_twice_is_refused_cleanly(factory: Factory) -> None:
    project_id = create(factory)
    with factory.enclave.db.transaction() as session:
        applications.submit(session, factory.actor("alice"), project_id, version=1)
    before = snapshot(factory)
    for attempt_version in (1, 2, None):
        with pytest.raises(AlreadySubmitted, match="already submitted") as info, \
                factory.enclave.db.transaction() as session:
            applications.submit(session, factory.actor("alice"), project_id,
                                version=attempt_version)
        assert isinstance(info.value, ValidationError)
        assert isinstance(info.value, InvalidTransition)
    assert snapshot(factory) == before
    assert factory.project_row(project_id) == (ProjectStatus.SUBMITTED, 2)


def test_submission_notifies_staff_in_the_same_transaction(factory: Factory) -> None:
    project_id = create(factory)
    with factory.enclave.db.transaction() as session:
        applications.submit(session, factory.actor("alice"), project_id, version=1)
    with factory.enclave.db.sessions() as session:
        rows = session.execute(select(Notification.recipient, Notification.channel).where(
            Notification.project_id == project_id)).all()
    assert set(rows) == {(s, c) for s in ("claire", "david", "dora")
                         for c in ("email", "in_app")}


def test_an_edit_on_a_stale_view_is_refused(factory: Factory) -> None:
    project_id = create(factory)
    with factory.enclave.db.transaction() as session:
        applications.update_application(session, factory.actor("bruno"), project_id,
                                        version=1, **{**FORM, "title": "Nouveau titre"})
    before = snapshot(factory)
    with pytest.raises(StaleVersion, match="version 1"), \
            factory.enclave.db.transaction() as session:
        applications.update_application(session, factory.actor("alice"), project_id,
                                        version=1, **{**FORM, "title": "Autre titre"})
    assert snapshot(factory) == before
    assert factory.project_row(project_id) == ("draft", 2)


def test_an_application_cannot_be_edited_once_submitted_or_by_an_outsider(
        factory: Factory) -> None:
    project_id = create(factory)
    with pytest.raises(PermissionDenied, match="not a member"), \
            factory.enclave.db.transaction() as session:
        applications.update_application(session, factory.actor("rita"), project_id,
                                        version=1, **FORM)
    with factory.enclave.db.transaction() as session:
        applications.submit(session, factory.actor("alice"), project_id, version=1)
    with pytest.raises(PermissionDenied, match="submitted"), \
            factory.enclave.db.transaction() as session:
        applications.update_application(session, factory.actor("alice"), project_id,
                                        version=2, **FORM)


def test_an_end_date_that_passed_before_submission_is_refused(factory: Factory) -> None:
    long_ago = date.today() - timedelta(days=30)
    project_id = create(factory, end_date=long_ago + timedelta(days=10), today=long_ago)
    before = snapshot(factory)
    with pytest.raises(FieldError) as info, factory.enclave.db.transaction() as session:
        applications.submit(session, factory.actor("alice"), project_id, version=1)
    assert info.value.field == "end_date"
    assert snapshot(factory) == before


def test_an_outsider_cannot_submit(factory: Factory) -> None:
    project_id = create(factory)
    head = factory.audit_head()
    with pytest.raises(PermissionDenied), factory.enclave.db.transaction() as session:
        applications.submit(session, factory.actor("rita"), project_id, version=1)
    assert factory.audit_events_after(head) == []


def test_in_app_notifications_are_private_and_marked_read(factory: Factory) -> None:
    project_id = create(factory)
    with factory.enclave.db.transaction() as session:
        applications.submit(session, factory.actor("alice"), project_id, version=1)
    claire, david = factory.actor("claire"), factory.actor("david")
    with factory.enclave.db.transaction() as session:
        mine = notifications.unread_notifications(session, claire)
        assert [n.event for n in mine] == ["project.submitted"]
        theirs = notifications.unread_notifications(session, david)
        assert notifications.mark_read(session, claire, [n.id for n in theirs]) == 0
        assert notifications.mark_read(session, claire, [n.id for n in mine]) == 1
        assert notifications.unread_count(session, claire) == 0
        assert notifications.unread_count(session, david) == 1
    with pytest.raises(PermissionDenied), factory.enclave.db.sessions() as session:
        notifications.unread_notifications(session, policy.Actor("claire", active=False))
