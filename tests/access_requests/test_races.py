"""Races on PostgreSQL: an approval racing a revocation or suspension never leaves access open.

Each round starts two threads behind a barrier: thread A opens access (the system's
activation after approval, a staff reinstatement, or the staff approval itself), thread B
closes it (revocation or suspension). Whatever the interleaving, the row lock serialises them
and the version check refuses decisions made on a stale view; after every round the project's
status history in the audit chain is one unbroken path of the state machine, an active
project has a complete approval on record and no later closing move, and a successful
revocation or suspension is the last word.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from access_requests import decisions, lifecycle
from access_requests.exceptions import StaleVersion
from access_requests.machine import PROJECT_MACHINE, ProjectStatus, approval_status
from enclave.core import audit
from enclave.core.exceptions import InvalidTransition, PermissionDenied
from enclave.provisioning.extracts import try_activate
from tests.access_requests.helpers import in_review, version
from tests.workflows.factories import Factory

S = ProjectStatus
ROUNDS = 200
REFUSALS = (InvalidTransition, StaleVersion, PermissionDenied)
OPENING = {"project.activated", "project.reinstated"}
CLOSING = {"project.revoked", "project.suspended"}


def _race(a: Callable[[], Any], b: Callable[[], Any]) -> tuple[Any, Any]:
    """Run ``a`` and ``b`` at the same instant; each result is a value or the refusal."""
    barrier = threading.Barrier(2)
    results: list[Any] = [None, None]

    def run(index: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[index] = call()
        except REFUSALS as exc:
            results[index] = exc
        except BaseException as exc:
            results[index] = ("unexpected", exc)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate((a, b))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a racing transaction never finished"
    for result in results:
        assert not (isinstance(result, tuple) and result and result[0] == "unexpected"), result
    return results[0], results[1]


def _history(factory: Factory, project_id: str) -> list[tuple[str, str, str]]:
    with factory.enclave.db.sessions() as session:
        events = session.execute(select(audit.AuditEvent).where(
            audit.AuditEvent.project_id == project_id,
            audit.AuditEvent.object_type == "project",
            audit.AuditEvent.details.like('%"from":%'))
            .order_by(audit.AuditEvent.seq)).scalars()
        return [(e.action, json.loads(e.details)["from"], json.loads(e.details)["to"])
                for e in events]


def _check(factory: Factory, project_id: str, closed_ok: bool, closing_action: str) -> str:
    """The invariants of a round; returns the final status."""
    status = factory.project_row(project_id)[0]
    history = _history(factory, project_id)
    assert history[0][1] == S.DRAFT
    for (_, _, before), (_, after_from, _) in itertools.pairwise(history):
        assert before == after_from, f"broken status path: {history}"
    for action, source, target in history:
        assert any(t.action == action for t in PROJECT_MACHINE.moves(S(source), S(target)))
    assert history[-1][2] == status
    actions = [a for a, _, _ in history]
    if status == S.ACTIVE:
        with factory.enclave.db.sessions() as session:
            assert approval_status(session, project_id).complete
        assert actions[-1] in OPENING and "project.revoked" not in actions
    if closed_ok:
        last_close = max(i for i, a in enumerate(actions) if a == closing_action)
        assert not set(actions[last_close + 1:]) & OPENING, history
        assert status == (S.REVOKED if closing_action == "project.revoked" else S.SUSPENDED)
    return status


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_opening_access_racing_its_closure_never_leaves_access_open(factory: Factory) -> None:
    db = factory.enclave.db
    claire, david = factory.actor("claire"), factory.actor("david")
    cycling = factory.project(S.SUSPENDED)  # reused by the reinstate-vs-suspend rounds
    outcomes: dict[str, set[str]] = {}
    for round_no in range(ROUNDS):
        kind = ("activate-vs-revoke", "approve-vs-revoke", "reinstate-vs-suspend",
                "reinstate-vs-suspend")[round_no % 4]
        if kind == "activate-vs-revoke":
            project_id = factory.project(S.APPROVED, ready=True)
        elif kind == "approve-vs-revoke":
            project_id = in_review(factory)
        else:
            project_id = cycling
            if factory.project_row(project_id)[0] == S.ACTIVE:
                with db.transaction() as session:
                    lifecycle.suspend(session, david, project_id, reason="Remise à zéro")
        seen = version(factory, project_id)

        def close(pid: str = project_id, what: str = kind, v: int = seen) -> Any:
            with db.transaction() as session:
                if what.endswith("revoke"):
                    return lifecycle.revoke(session, david, pid, reason="Révocation",
                                            version=v)
                return lifecycle.suspend(session, david, pid, reason="Suspension", version=v)

        def open_(pid: str = project_id, what: str = kind, v: int = seen) -> Any:
            if what.startswith("activate"):
                return try_activate(db, pid)
            with db.transaction() as session:
                if what.startswith("approve"):
                    return decisions.approve(session, claire, pid, version=v)
                return lifecycle.reinstate(session, claire, pid, version=v)

        opened, closed = _race(open_, close)
        closed_ok = not isinstance(closed, Exception)
        final = _check(factory, project_id, closed_ok,
                       "project.revoked" if kind.endswith("revoke") else "project.suspended")
        if kind.endswith("revoke"):
            if kind == "activate-vs-revoke":
                assert closed_ok and final == S.REVOKED  # revocation always lands
            else:
                assert final == (S.REVOKED if closed_ok else S.APPROVED)
        outcomes.setdefault(kind, set()).add(
            f"{'open' if not isinstance(opened, Exception) and opened is not False else '-'}"
            f"/{'close' if closed_ok else '-'}->{final}")
    assert factory.enclave.chain.verify().ok
    # Both orders were seen at least for the rounds whose outcome depends on the order.
    print({k: sorted(v) for k, v in outcomes.items()})


OPINION_ROUNDS = 60


def _opinion_round_invariants(factory: Factory, project_id: str, kind: str, opinion_ok: bool,
                              closed_ok: bool) -> str:
    """The invariants of one opinion race; returns the final status."""
    status = factory.project_row(project_id)[0]
    history = _history(factory, project_id)
    for (_, _, before), (_, after_from, _) in itertools.pairwise(history):
        assert before == after_from, f"broken status path: {history}"
    for action, source, target in history:
        assert any(t.action == action for t in PROJECT_MACHINE.moves(S(source), S(target)))
    assert history[-1][2] == status
    actions = [a for a, _, _ in history]
    with factory.enclave.db.sessions() as session:
        opinions = session.execute(select(audit.AuditEvent.actor).where(
            audit.AuditEvent.project_id == project_id,
            audit.AuditEvent.action == "ethics.opinion_recorded")).scalars().all()
        approved_by = session.execute(select(audit.AuditEvent.actor).where(
            audit.AuditEvent.project_id == project_id,
            audit.AuditEvent.action == "project.approved")).scalars().all()
        complete = approval_status(session, project_id).complete
    assert len(opinions) == (1 if opinion_ok else 0)
    # the approval exists exactly when the opinion landed on the project still in review,
    # completed by the rule (the system), never by a person in these rounds
    assert approved_by == (["system"] if opinion_ok else [])
    if kind == "reject":
        assert opinion_ok != closed_ok, "the opinion and the rejection both landed"
        assert status == (S.APPROVED if opinion_ok else S.REJECTED)
    elif kind == "revoke":
        assert opinion_ok, "an opinion on a project in review is never refused by a revocation"
        assert status == (S.REVOKED if closed_ok else S.APPROVED)
        if closed_ok:
            assert actions[-2:] == ["project.approved", "project.revoked"]
    else:  # a project in review or just approved cannot be suspended (only an active one)
        assert not closed_ok and opinion_ok and status == S.APPROVED
    if status == S.APPROVED:
        assert complete
    assert status != S.ACTIVE
    return status


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_an_opinion_completing_the_approval_racing_a_closing_decision(factory: Factory) -> None:
    """A favourable opinion that completes a two-staff approval races a rejection (on the
    version the staff member saw), a revocation or a suspension (on what is current): the
    row lock serialises them, so either the rejection lands and the opinion is refused
    (the application was decided), or the approval lands and the rejection is refused; a
    revocation after the approval is the last word; nothing is ever half-applied."""
    db = factory.enclave.db
    gaelle, dora = factory.actor("gaelle"), factory.actor("dora")
    outcomes: dict[str, set[str]] = {}
    for round_no in range(OPINION_ROUNDS):
        kind = ("reject", "revoke", "suspend")[round_no % 3]
        project_id = in_review(factory, variables={"eleves": [("boursier", "Effet")]})
        for staff in ("claire", "david"):
            with db.transaction() as session:
                decisions.approve(session, factory.actor(staff), project_id,
                                  version=version(factory, project_id))
        seen = version(factory, project_id)

        def opine(pid: str = project_id) -> Any:
            with db.transaction() as session:
                return decisions.record_ethics_opinion(session, gaelle, pid,
                                                       verdict="favourable",
                                                       reference="CE-2026-99")

        def close(pid: str = project_id, what: str = kind, v: int = seen) -> Any:
            with db.transaction() as session:
                if what == "reject":
                    return decisions.reject(session, dora, pid, version=v, reason="Refus")
                if what == "revoke":
                    return lifecycle.revoke(session, dora, pid, reason="Révocation")
                return lifecycle.suspend(session, dora, pid, reason="Suspension")

        opined, closed = _race(opine, close) if round_no % 2 else _race(close, opine)[::-1]
        opinion_ok = not isinstance(opined, Exception)
        closed_ok = not isinstance(closed, Exception)
        final = _opinion_round_invariants(factory, project_id, kind, opinion_ok, closed_ok)
        outcomes.setdefault(kind, set()).add(
            f"{'opinion' if opinion_ok else '-'}/{'close' if closed_ok else '-'}->{final}")
    assert factory.enclave.chain.verify().ok
    print({k: sorted(v) for k, v in outcomes.items()})
