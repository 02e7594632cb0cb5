"""Submitting the ``release_request.json`` a notebook wrote, on both backends: the request made
from it, exception requests stored as each file's own field (rules and reason), who may and
may not, and malformed files refused with nothing persisted."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from enclave.core.exceptions import PermissionDenied, ValidationError
from output_control.request_manifest import ExceptionRequest, write_request
from output_control.review import workflow as outputs
from output_control.review.manifests import pending_manifests, submit_manifest
from output_control.review.models import OutputRequest
from output_control.review.workflow import Amendment, Decision
from tests.workflows.factories import OUTPUT_NAME, Factory

REASON = "Le seuil est atteint par construction : chaque cellule compte 12 élèves."


def _write(factory: Factory, project_id: str) -> None:
    factory.output_file(project_id)
    factory.output_file(project_id, "second.csv")
    write_request({OUTPUT_NAME: ("Tableau 1 de l'article",
                                 {"rules": ["minimum_count", "zeros"], "reason": REASON}),
                   "second.csv": "Tableau 2"},
                  "Résultats de l'étude", outputs_dir=factory.outputs_dir(project_id))


def _requests(factory: Factory, project_id: str) -> int:
    with factory.enclave.db.sessions() as session:
        return int(session.execute(select(func.count()).select_from(OutputRequest).where(
            OutputRequest.project_id == project_id)).scalar_one())


def test_the_request_file_becomes_a_request_with_exceptions_as_fields(
        factory: Factory) -> None:
    project_id = factory.active_project()
    _write(factory, project_id)
    head = factory.audit_head()
    request_id = submit_manifest(factory.enclave.db, factory.enclave.settings,
                                 factory.actor("bruno"), project_id)
    view = outputs.view_request(factory.enclave.db, factory.actor("emma"), request_id)
    assert view.request.justification == "Résultats de l'étude"
    rows = {f.row.name: f.row for f in view.files}
    assert rows[OUTPUT_NAME].justification == "Tableau 1 de l'article"
    assert outputs.exception_rules(rows[OUTPUT_NAME]) == ["minimum_count", "zeros"]
    assert rows[OUTPUT_NAME].exception_request == REASON
    assert outputs.exception_rules(rows["second.csv"]) == []
    assert rows["second.csv"].exception_request == ""
    events = factory.audit_events_after(head)
    assert [e.action for e in events] == ["output.submitted"]
    origin = json.loads(events[0].details)["origin"]
    assert origin["manifest"] == "release_request.json" and len(origin["manifest_sha256"]) == 64


@pytest.mark.parametrize(("who", "allowed"), [("alice", True), ("bruno", True),
                                              ("rita", False), ("dora", False),
                                              ("emma", False), ("gaelle", False),
                                              ("admin", False)])
def test_only_members_who_may_ask_for_outputs_submit_the_request_file(
        factory: Factory, who: str, allowed: bool) -> None:
    project_id = factory.active_project()
    _write(factory, project_id)
    head = factory.audit_head()
    if allowed:
        submit_manifest(factory.enclave.db, factory.enclave.settings, factory.actor(who),
                        project_id)
        assert _requests(factory, project_id) == 1
        return
    with pytest.raises(PermissionDenied):
        submit_manifest(factory.enclave.db, factory.enclave.settings, factory.actor(who),
                        project_id)
    assert _requests(factory, project_id) == 0
    assert factory.audit_events_after(head) == []


@pytest.mark.parametrize(("content", "problem"), [
    (None, "missing"),
    (b"{not json", "not valid JSON"),
    (json.dumps({"format": "enclave-release-request/1", "justification": "x",
                 "files": [{"name": "absent.csv", "justification": "y",
                            "exception": None}]}).encode(), "absent.csv"),
    (json.dumps({"format": "enclave-release-request/1", "justification": "x",
                 "files": [{"name": OUTPUT_NAME, "justification": "y",
                            "exception": {"rules": ["no_such_rule"],
                                          "reason": REASON}}]}).encode(), "rule names"),
])
def test_a_bad_request_file_is_refused_and_nothing_is_submitted(
        factory: Factory, content: bytes | None, problem: str) -> None:
    project_id = factory.active_project()
    factory.output_file(project_id)
    if content is not None:
        (factory.outputs_dir(project_id) / "release_request.json").write_bytes(content)
    head = factory.audit_head()
    with pytest.raises(ValidationError, match=problem):
        submit_manifest(factory.enclave.db, factory.enclave.settings, factory.actor("alice"),
                        project_id)
    assert _requests(factory, project_id) == 0
    assert factory.audit_events_after(head) == []


def test_pending_request_files_are_listed_for_members_only(factory: Factory) -> None:
    project_id = factory.active_project()
    _write(factory, project_id)
    mine = pending_manifests(factory.enclave.db, factory.enclave.settings,
                             factory.actor("alice"))
    assert [(p.project_id, p.problem) for p in mine] == [(project_id, "")]
    assert mine[0].request is not None and len(mine[0].request.files) == 2
    assert pending_manifests(factory.enclave.db, factory.enclave.settings,
                             factory.actor("rita")) == []


def test_an_exception_request_naming_an_unknown_rule_is_refused_by_the_workflow(
        factory: Factory) -> None:
    project_id = factory.active_project()
    factory.output_file(project_id)
    head = factory.audit_head()
    with pytest.raises(ValidationError, match="distinct rules"):
        outputs.submit_request(factory.enclave.db, factory.enclave.settings,
                               factory.actor("alice"), project_id, {OUTPUT_NAME: "Tableau"},
                               exception_requests={OUTPUT_NAME: ExceptionRequest(
                                   ("bogus",), REASON)})
    assert _requests(factory, project_id) == 0
    assert factory.audit_events_after(head) == []


def test_amending_the_reason_as_text_keeps_the_rules_an_empty_text_asks_none(
        factory: Factory) -> None:
    project_id = factory.active_project()
    _write(factory, project_id)
    request_id = submit_manifest(factory.enclave.db, factory.enclave.settings,
                                 factory.actor("alice"), project_id)
    names = [OUTPUT_NAME, "second.csv"]
    factory.vote(request_id, "emma", Decision.RETURN, names)
    factory.vote(request_id, "farid", Decision.APPROVE, names)
    outputs.resubmit(factory.enclave.db, factory.enclave.settings, factory.actor("alice"),
                     request_id, Amendment(exception_requests={
                         OUTPUT_NAME: REASON + " Voir p. 3.", "second.csv": ""}))
    with factory.enclave.db.sessions() as session:
        rows = {f.name: f for f in outputs.files_of(session, request_id)}
    assert outputs.exception_rules(rows[OUTPUT_NAME]) == ["minimum_count", "zeros"]
    assert rows[OUTPUT_NAME].exception_request.endswith("Voir p. 3.")
    assert outputs.exception_rules(rows["second.csv"]) == []
