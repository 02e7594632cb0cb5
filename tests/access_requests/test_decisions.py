"""Decisions: one or two DEPP staff, the ethics opinion, members excluded, stale views refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from access_requests import applications, decisions
from access_requests.exceptions import FieldError, StaleVersion
from access_requests.machine import EthicsVerdict, ProjectStatus, approval_status
from enclave.core.exceptions import InvalidTransition, PermissionDenied
from tests.access_requests.conftest import snapshot
from tests.access_requests.helpers import FORM, SENSITIVE, TRACES, create, in_review, version
from tests.workflows.factories import Factory

S = ProjectStatus


def _approve(factory: Factory, who: str, project_id: str, seen: int | None = None) -> Any:
    with factory.enclave.db.transaction() as session:
        return decisions.approve(session, factory.actor(who), project_id,
                                 version=version(factory, project_id) if seen is None else seen,
                                 reason="Proportionné à la finalité")


def _opinion(factory: Factory, project_id: str, verdict: EthicsVerdict,
             who: str = "gaelle") -> None:
    with factory.enclave.db.transaction() as session:
        decisions.record_ethics_opinion(session, factory.actor(who), project_id,
                                        verdict=verdict, reference="CE-2026-07")


def test_one_staff_approval_suffices_without_sensitive_data(factory: Factory) -> None:
    project_id = in_review(factory)
    head = factory.audit_head()
    outcome = _approve(factory, "claire", project_id)
    assert outcome.complete and outcome.approvers == ("claire",) and not outcome.enhanced
    assert factory.project_row(project_id)[0] == S.APPROVED
    events = factory.audit_events_after(head)
    assert [e.action for e in events] == ["project.approved"]
    assert json.loads(events[0].details)["approvers"] == ["claire"]


@pytest.mark.parametrize("variables", [SENSITIVE, TRACES], ids=["sensitive", "traces"])
def test_sensitive_data_needs_two_distinct_staff_and_a_favourable_opinion(
        factory: Factory, variables: dict[str, Any]) -> None:
    project_id = in_review(factory, variables=variables)
    head = factory.audit_head()
    first = _approve(factory, "claire", project_id)
    assert not first.complete and first.enhanced and len(first.missing) == 2
    assert factory.project_row(project_id)[0] == S.IN_REVIEW
    with pytest.raises(PermissionDenied, match="already approved"):
        _approve(factory, "claire", project_id)
    second = _approve(factory, "david", project_id)
    assert not second.complete and second.missing == (second.missing[0],)
    assert "ethics" in second.missing[0]
    _opinion(factory, project_id, EthicsVerdict.RESERVED)
    with factory.enclave.db.sessions() as session:
        assert not approval_status(session, project_id).complete
    assert factory.project_row(project_id)[0] == S.IN_REVIEW  # a reserved opinion: no
    _opinion(factory, project_id, EthicsVerdict.FAVOURABLE)
    # The favourable opinion was the last missing condition: it completes the approval in its
    # own transaction, and no third staff approval is needed (nor possible).
    assert factory.project_row(project_id)[0] == S.APPROVED
    with pytest.raises(InvalidTransition):
        _approve(factory, "dora", project_id)
    events = factory.audit_events_after(head)
    assert [e.action for e in events] == ["project.approval_recorded",
                                          "project.approval_recorded",
                                          "ethics.opinion_recorded", "ethics.opinion_recorded",
                                          "project.approved"]
    assert [e.actor for e in events] == ["claire", "david", "gaelle", "gaelle", "system"]
    approved = json.loads(events[-1].details)
    assert approved["completed_by"] == "approval_rule"
    assert approved["approvers"] == ["claire", "david"]
    assert approved["ethics_opinion_by"] == "gaelle" and approved["ethics_verdict"] == "favourable"
    assert (approved["from"], approved["to"]) == ("in_review", "approved")
    with factory.enclave.db.sessions() as session:
        assert approval_status(session, project_id).complete


@pytest.mark.parametrize("verdict", [EthicsVerdict.UNFAVOURABLE, EthicsVerdict.RESERVED])
def test_an_opinion_that_is_not_favourable_never_approves(factory: Factory,
                                                          verdict: EthicsVerdict) -> None:
    project_id = in_review(factory, variables=SENSITIVE)
    _approve(factory, "claire", project_id)
    _approve(factory, "david", project_id)
    head = factory.audit_head()
    _opinion(factory, project_id, verdict)
    assert factory.project_row(project_id)[0] == S.IN_REVIEW
    assert [e.action for e in factory.audit_events_after(head)] == ["ethics.opinion_recorded"]
    # and a third staff approval is still not enough without a favourable opinion
    third = _approve(factory, "dora", project_id)
    assert not third.complete and "favourable ethics" in third.missing[0]
    assert factory.project_row(project_id)[0] == S.IN_REVIEW


def test_a_favourable_opinion_after_an_unfavourable_one_completes_the_approval(
        factory: Factory) -> None:
    project_id = in_review(factory, variables=TRACES)
    _opinion(factory, project_id, EthicsVerdict.UNFAVOURABLE)
    _approve(factory, "claire", project_id)
    _approve(factory, "david", project_id)
    assert factory.project_row(project_id)[0] == S.IN_REVIEW
    _opinion(factory, project_id, EthicsVerdict.FAVOURABLE)
    assert factory.project_row(project_id)[0] == S.APPROVED


def test_a_favourable_opinion_with_one_approval_waits_for_the_second(factory: Factory) -> None:
    project_id = in_review(factory, variables=SENSITIVE)
    _approve(factory, "claire", project_id)
    head = factory.audit_head()
    _opinion(factory, project_id, EthicsVerdict.FAVOURABLE)
    assert factory.project_row(project_id)[0] == S.IN_REVIEW
    assert [e.action for e in factory.audit_events_after(head)] == ["ethics.opinion_recorded"]
    assert _approve(factory, "david", project_id).complete
    events = factory.audit_events_after(head)
    assert [(e.action, e.actor) for e in events][-1] == ("project.approved", "david")


def test_a_favourable_opinion_alone_does_not_approve_a_plain_application(
        factory: Factory) -> None:
    project_id = in_review(factory)
    _opinion(factory, project_id, EthicsVerdict.FAVOURABLE)
    assert factory.project_row(project_id)[0] == S.IN_REVIEW


def test_approvals_of_an_earlier_round_are_not_completed_by_a_later_opinion(
        factory: Factory) -> None:
    project_id = in_review(factory, variables=SENSITIVE)
    _approve(factory, "claire", project_id)
    _approve(factory, "david", project_id)
    with factory.enclave.db.transaction() as session:
        decisions.request_changes(session, factory.actor("dora"), project_id,
                                  version=version(factory, project_id),
                                  reason="Préciser la finalité")
    _opinion(factory, project_id, EthicsVerdict.FAVOURABLE)  # returned: nothing to complete
    assert factory.project_row(project_id)[0] == S.CHANGES_REQUESTED
    with factory.enclave.db.transaction() as session:
        applications.submit(session, factory.actor("alice"), project_id,
                            version=version(factory, project_id))
    _opinion(factory, project_id, EthicsVerdict.FAVOURABLE)  # resubmitted: not in review
    assert factory.project_row(project_id)[0] == S.RESUBMITTED
    with factory.enclave.db.transaction() as session:
        decisions.start_review(session, factory.actor("claire"), project_id,
                               version=version(factory, project_id))
    _opinion(factory, project_id, EthicsVerdict.FAVOURABLE)  # new round: no approval yet
    assert factory.project_row(project_id)[0] == S.IN_REVIEW
    assert not _approve(factory, "claire", project_id).complete
    assert _approve(factory, "david", project_id).complete


def test_only_the_ethics_committee_outside_the_project_completes_by_opinion(
        factory: Factory) -> None:
    project_id = in_review(factory, members=["bruno", "gaelle"], variables=SENSITIVE)
    _approve(factory, "claire", project_id)
    _approve(factory, "david", project_id)
    before = snapshot(factory)
    for who, match in (("gaelle", "member"), ("claire", "ethics_committee"),
                       ("alice", "ethics_committee"), ("emma", "ethics_committee"),
                       ("admin", "ethics_committee"), ("system", "ethics_committee")):
        with pytest.raises(PermissionDenied, match=match):
            _opinion(factory, project_id, EthicsVerdict.FAVOURABLE, who=who)
    assert snapshot(factory) == before
    assert factory.project_row(project_id)[0] == S.IN_REVIEW


def test_the_opinion_first_then_two_approvals(factory: Factory) -> None:
    project_id = in_review(factory, variables=SENSITIVE)
    _opinion(factory, project_id, EthicsVerdict.FAVOURABLE)
    assert not _approve(factory, "claire", project_id).complete
    assert _approve(factory, "david", project_id).complete
    assert factory.project_row(project_id)[0] == S.APPROVED


@pytest.mark.parametrize(("who", "error"), [
    ("alice", PermissionDenied), ("bruno", PermissionDenied), ("rita", PermissionDenied),
    ("gaelle", PermissionDenied), ("emma", PermissionDenied), ("system", PermissionDenied)])
def test_only_staff_outside_the_project_decide(sqlite_factory: Factory, who: str,
                                               error: type[Exception]) -> None:
    project_id = in_review(sqlite_factory, members=["bruno", "dora"])
    before = snapshot(sqlite_factory)
    for attempt in (lambda s, a, v: decisions.approve(s, a, project_id, version=v),
                    lambda s, a, v: decisions.reject(s, a, project_id, version=v, reason="r"),
                    lambda s, a, v: decisions.request_changes(s, a, project_id, version=v,
                                                              reason="r")):
        with pytest.raises(error), sqlite_factory.enclave.db.transaction() as session:
            attempt(session, sqlite_factory.actor(who), version(sqlite_factory, project_id))
    assert snapshot(sqlite_factory) == before


def test_a_staff_member_of_the_project_may_not_decide_on_it(sqlite_factory: Factory) -> None:
    project_id = in_review(sqlite_factory, members=["bruno", "dora"])
    before = snapshot(sqlite_factory)
    with pytest.raises(PermissionDenied, match="dora is a member"):
        _approve(sqlite_factory, "dora", project_id)
    assert snapshot(sqlite_factory) == before


def test_a_decision_on_a_stale_view_is_refused(factory: Factory) -> None:
    project_id = in_review(factory, variables=SENSITIVE)
    seen = version(factory, project_id)
    _opinion(factory, project_id, EthicsVerdict.FAVOURABLE)  # changes the project meanwhile
    before = snapshot(factory)
    with pytest.raises(StaleVersion, match=f"you saw version {seen}"):
        _approve(factory, "claire", project_id, seen=seen)
    with pytest.raises(StaleVersion), factory.enclave.db.transaction() as session:
        decisions.reject(session, factory.actor("claire"), project_id, version=seen,
                         reason="Finalité imprécise")
    assert snapshot(factory) == before


def test_changes_requested_starts_a_new_round_that_voids_earlier_approvals(
        factory: Factory) -> None:
    project_id = in_review(factory, variables=SENSITIVE)
    assert not _approve(factory, "claire", project_id).complete
    with factory.enclave.db.transaction() as session:
        decisions.request_changes(session, factory.actor("david"), project_id,
                                  version=version(factory, project_id),
                                  reason="Préciser la justification de « boursier »")
    with factory.enclave.db.transaction() as session:
        applications.update_application(session, factory.actor("alice"), project_id,
                                        version=version(factory, project_id),
                                        **{**FORM, "variables": SENSITIVE})
        applications.submit(session, factory.actor("alice"), project_id)
    assert factory.project_row(project_id)[0] == S.RESUBMITTED
    with factory.enclave.db.transaction() as session:
        decisions.start_review(session, factory.actor("claire"), project_id,
                               version=version(factory, project_id))
    with factory.enclave.db.sessions() as session:
        assert approval_status(session, project_id).approvers == ()


def test_reject_and_changes_need_a_reason(factory: Factory) -> None:
    project_id = in_review(factory)
    before = snapshot(factory)
    for call in (decisions.reject, decisions.request_changes):
        with pytest.raises(FieldError) as info, factory.enclave.db.transaction() as session:
            call(session, factory.actor("claire"), project_id,
                 version=version(factory, project_id), reason="  ")
        assert info.value.field == "reason"
    assert snapshot(factory) == before
    claire, gaelle = factory.actor("claire"), factory.actor("gaelle")
    with factory.enclave.db.transaction() as session:  # (SQLite: no second session inside)
        decisions.reject(session, claire, project_id, version=version(factory, project_id),
                         reason="Hors du champ")
        assert [d.decision for d in decisions.decisions_of(session, gaelle, project_id)] == [
            "reject"]
    assert factory.project_row(project_id)[0] == S.REJECTED
    with pytest.raises(InvalidTransition):
        _approve(factory, "david", project_id)


def test_ethics_opinion_rules(factory: Factory) -> None:
    project_id = in_review(factory, members=["bruno", "gaelle"], variables=SENSITIVE)
    before = snapshot(factory)
    with pytest.raises(PermissionDenied, match="member"):
        _opinion(factory, project_id, EthicsVerdict.FAVOURABLE, who="gaelle")
    with pytest.raises(PermissionDenied, match="ethics_committee"):
        _opinion(factory, project_id, EthicsVerdict.FAVOURABLE, who="claire")
    assert snapshot(factory) == before


def test_review_queue_hides_the_staff_members_own_projects(factory: Factory) -> None:
    theirs = in_review(factory, members=["bruno", "dora"])
    other = in_review(factory)
    with factory.enclave.db.sessions() as session:
        assert {p.id for p in decisions.review_queue(session, factory.actor("dora"))} == {other}
        assert {p.id for p in decisions.review_queue(session, factory.actor("claire"))} == {
            theirs, other}


def _submitted(factory: Factory) -> str:
    project_id = create(factory, "alice")
    with factory.enclave.db.transaction() as session:
        applications.submit(session, factory.actor("alice"), project_id,
                            version=version(factory, project_id))
    return project_id


def test_a_decision_from_the_queue_takes_a_submitted_application_into_review(
        factory: Factory) -> None:
    project_id = _submitted(factory)
    head = factory.audit_head()
    with factory.enclave.db.transaction() as session:
        decisions.decide_from_queue(session, factory.actor("claire"), project_id, "approve",
                                    version=version(factory, project_id), reason="Proportionné")
    assert factory.project_row(project_id)[0] == S.APPROVED
    actions = [e.action for e in factory.audit_events_after(head)]
    assert actions[:1] == ["project.review_started"]
    assert "project.approved" in actions


def test_a_decision_from_the_queue_on_a_stale_view_changes_nothing(factory: Factory) -> None:
    project_id = _submitted(factory)
    seen = version(factory, project_id) - 1
    before = factory.project_row(project_id)
    with pytest.raises(StaleVersion), factory.enclave.db.transaction() as session:
        decisions.decide_from_queue(session, factory.actor("claire"), project_id, "reject",
                                    version=seen, reason="Trop large")
    assert factory.project_row(project_id) == before


def test_an_unknown_decision_from_the_queue_is_refused(factory: Factory) -> None:
    project_id = _submitted(factory)
    with pytest.raises(InvalidTransition), factory.enclave.db.transaction() as session:
        decisions.decide_from_queue(session, factory.actor("claire"), project_id, "maybe",
                                    version=version(factory, project_id), reason="?")
