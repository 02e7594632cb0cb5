"""Every refused field of a form is reported at once (FieldErrors, each naming its field), on
both backends, and nothing is stored; the checks that need a role still refuse without it."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from access_requests import applications, decisions, membership
from access_requests.exceptions import FieldError, FieldErrors
from access_requests.machine import ProjectStatus
from enclave.core.exceptions import PermissionDenied
from tests.access_requests.conftest import snapshot
from tests.access_requests.helpers import FORM, create, in_review, version
from tests.workflows.factories import Factory

PAST = date.today() - timedelta(days=3)
#: Nine refusals in one form: text fields, legal basis, population, dates, variables, members.
MANY_BAD: dict[str, Any] = {
    "title": "<b>Titre</b>", "summary": "s" * 5001, "legal_basis": "other",
    "legal_basis_other": "art", "levels": ["CM3"], "end_date": PAST,
    "variables": {"eleves": [("ine", "relier"), ("revenu", "x"), ("sexe", "  ")]},
    "members": ["bruno", "personne"]}
EXPECTED_FIELDS = ["title", "summary", "legal_basis_other", "levels", "end_date", "variables",
                   "variables", "variables.eleves.sexe", "members"]


def _fields(error: FieldError) -> list[str]:
    return [e.field for e in error.errors]


def test_every_refused_field_of_an_application_is_reported_in_form_order(
        factory: Factory) -> None:
    before = snapshot(factory)
    with pytest.raises(FieldErrors) as refused, factory.enclave.db.transaction() as session:
        applications.create_application(
            session, factory.actor("alice"), protocol=b"MZ not a pdf",
            projects_dir=factory.enclave.settings.projects_dir, **{**FORM, **MANY_BAD})
    assert _fields(refused.value) == [*EXPECTED_FIELDS, "protocol"]
    reasons = " | ".join(e.reason for e in refused.value.errors)
    assert "direct identifier" in reasons and "no variable 'revenu'" in reasons
    assert "'personne'" in reasons and "not a PDF" in reasons
    # a FieldErrors is a FieldError: edges that show one error still show the first one
    assert isinstance(refused.value, FieldError) and refused.value.field == "title"
    assert snapshot(factory) == before


def test_a_single_refusal_is_still_one_named_field(factory: Factory) -> None:
    with pytest.raises(FieldError) as refused, factory.enclave.db.transaction() as session:
        applications.create_application(session, factory.actor("alice"),
                                        **{**FORM, "title": "ab"})
    assert _fields(refused.value) == ["title"]


def test_an_edit_reports_every_refusal_and_changes_nothing(factory: Factory) -> None:
    project_id = create(factory)
    before = snapshot(factory), factory.project_row(project_id)
    with pytest.raises(FieldErrors) as refused, factory.enclave.db.transaction() as session:
        applications.update_application(session, factory.actor("alice"), project_id,
                                        version=version(factory, project_id),
                                        **{**FORM, **MANY_BAD})
    assert _fields(refused.value) == EXPECTED_FIELDS
    assert (snapshot(factory), factory.project_row(project_id)) == before


def test_unknown_and_missing_keywords_are_reported_together(sqlite_factory: Factory) -> None:
    given = {k: v for k, v in FORM.items() if k not in ("title", "end_date")}
    with pytest.raises(FieldErrors) as refused, \
            sqlite_factory.enclave.db.transaction() as session:
        applications.create_application(session, sqlite_factory.actor("alice"), colour="red",
                                        **given)
    assert _fields(refused.value) == ["colour", "end_date", "title"]


def test_submission_reports_every_missing_requirement(factory: Factory) -> None:
    project_id = create(factory, summary="")
    before = snapshot(factory)
    with pytest.raises(FieldErrors) as refused, factory.enclave.db.transaction() as session:
        applications.submit(session, factory.actor("alice"), project_id,
                            version=version(factory, project_id),
                            today=date.today() + timedelta(days=400))
    assert _fields(refused.value) == ["summary", "end_date"]
    assert snapshot(factory) == before
    assert factory.project_row(project_id)[0] == ProjectStatus.DRAFT


def test_checking_a_form_writes_nothing_and_follows_the_policy(factory: Factory) -> None:
    form = applications.ApplicationForm(**{**FORM, **MANY_BAD})
    project_id = create(factory)
    before = snapshot(factory)
    with factory.enclave.db.sessions() as session:
        with pytest.raises(FieldErrors) as refused:
            applications.check_application(session, factory.actor("alice"), form)
        assert _fields(refused.value) == EXPECTED_FIELDS
        with pytest.raises(FieldErrors):  # a member edits; the PI's view decides membership
            applications.check_application(session, factory.actor("bruno"), form,
                                           project_id=project_id)
        applications.check_application(session, factory.actor("alice"),
                                        applications.ApplicationForm(**FORM))
        for who in ("claire", "gaelle", "admin", "nadia"):  # not an accredited researcher
            with pytest.raises(PermissionDenied):
                applications.check_application(session, factory.actor(who), form)
        with pytest.raises(PermissionDenied):  # an accredited researcher, not a member
            applications.check_application(session, factory.actor("rita"), form,
                                           project_id=project_id)
    assert snapshot(factory) == before


def test_an_opinion_reports_every_refused_field(factory: Factory) -> None:
    project_id = in_review(factory)
    before = snapshot(factory)
    with pytest.raises(FieldErrors) as refused, factory.enclave.db.transaction() as session:
        decisions.record_ethics_opinion(session, factory.actor("gaelle"), project_id,
                                        verdict="peut-être", reference="r" * 201,
                                        comment="<script>x</script>")
    assert _fields(refused.value) == ["verdict", "reference", "comment"]
    assert snapshot(factory) == before
    with pytest.raises(PermissionDenied), factory.enclave.db.transaction() as session:
        decisions.record_ethics_opinion(session, factory.actor("claire"), project_id,
                                        verdict="peut-être", reference="r" * 201)


def test_change_requests_report_every_refused_field(factory: Factory) -> None:
    project_id = factory.project(ProjectStatus.APPROVED)
    pi = factory.actor("alice")
    before = snapshot(factory)
    with pytest.raises(FieldErrors) as refused, factory.enclave.db.transaction() as session:
        membership.request_membership_change(session, pi, project_id, change="swap",
                                             username="", institution="i" * 201, reason=" ")
    assert _fields(refused.value) == ["change", "username", "institution", "reason"]
    with pytest.raises(FieldErrors) as refused, factory.enclave.db.transaction() as session:
        membership.request_membership_change(session, pi, project_id, change="add",
                                             username="personne", reason="")
    assert _fields(refused.value) == ["reason", "username"]
    with pytest.raises(FieldErrors) as refused, factory.enclave.db.transaction() as session:
        membership.request_extension(session, pi, project_id, new_end_date=PAST, reason="")
    assert _fields(refused.value) == ["new_end_date", "reason"]
    assert snapshot(factory) == before
    with pytest.raises(PermissionDenied), factory.enclave.db.transaction() as session:
        membership.request_extension(session, factory.actor("bruno"), project_id,
                                     new_end_date=PAST, reason="")
