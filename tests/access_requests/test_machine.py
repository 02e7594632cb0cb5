"""The transition tables as data: every status declared, end states closed, the approval rule."""

from __future__ import annotations

from collections import deque

import pytest

from access_requests.machine import (
    END_STATES,
    PROJECT_MACHINE,
    EthicsVerdict,
    ProjectStatus,
    approval_rule,
)
from access_requests.membership import EXTENSION_MACHINE, MEMBERSHIP_MACHINE, RequestStatus
from enclave.core.policy import Role, StateMachine

S = ProjectStatus
MACHINES = {"project": (PROJECT_MACHINE, S.DRAFT, END_STATES),
            "membership": (MEMBERSHIP_MACHINE, RequestStatus.REQUESTED,
                           {RequestStatus.APPROVED, RequestStatus.REJECTED}),
            "extension": (EXTENSION_MACHINE, RequestStatus.REQUESTED,
                          {RequestStatus.APPROVED, RequestStatus.REJECTED})}


def _reachable(machine: StateMachine[ProjectStatus], start: S) -> set[S]:
    seen, queue = {start}, deque([start])
    while queue:
        here = queue.popleft()
        for move in machine.transitions:
            if move.source == here and move.target not in seen:
                seen.add(move.target)
                queue.append(move.target)
    return seen


@pytest.mark.parametrize("name", list(MACHINES))
def test_every_status_is_declared_reachable_and_end_states_have_no_way_out(name: str) -> None:
    machine, start, ends = MACHINES[name]
    assert _reachable(machine, start) == set(machine.states)
    for status in machine.states:
        outgoing = [t for t in machine.transitions if t.source == status]
        if status in ends:
            assert outgoing == [], f"end state {status} has moves out"
        else:
            assert outgoing, f"{status} has no transition declared"


@pytest.mark.parametrize("name", list(MACHINES))
def test_every_transition_has_one_owner_role_and_an_audit_action(name: str) -> None:
    machine = MACHINES[name][0]
    pairs = [(t.source, t.target) for t in machine.transitions]
    assert len(pairs) == len(set(pairs)), "a move is declared twice"
    for move in machine.transitions:
        assert move.role in {Role.RESEARCHER, Role.DEPP_STAFF, Role.SYSTEM}
        assert move.action.startswith(machine.object_type.split("_")[0] + ".")


def test_owners_follow_the_issue() -> None:
    owner = {(t.source, t.target): t.role for t in PROJECT_MACHINE.transitions}
    assert owner[S.DRAFT, S.SUBMITTED] is Role.RESEARCHER
    assert owner[S.CHANGES_REQUESTED, S.RESUBMITTED] is Role.RESEARCHER
    assert owner[S.APPROVED, S.ACTIVE] is Role.SYSTEM
    assert {owner[s, S.EXPIRED] for s in (S.APPROVED, S.ACTIVE, S.SUSPENDED)} == {Role.SYSTEM}
    assert {r for (_, t), r in owner.items() if t in (S.APPROVED, S.REJECTED, S.REVOKED,
                                                       S.SUSPENDED, S.CLOSED)} == {
        Role.DEPP_STAFF}
    assert {S.REJECTED, S.CLOSED} == END_STATES


F = EthicsVerdict.FAVOURABLE


@pytest.mark.parametrize(("enhanced", "approvers", "ethics", "complete"), [
    (False, [], None, False),
    (False, ["claire"], None, True),
    (False, ["claire", "david"], None, True),
    (True, ["claire"], F, False),
    (True, ["claire", "claire"], F, False),
    (True, ["claire", "david"], None, False),
    (True, ["claire", "david"], EthicsVerdict.RESERVED, False),
    (True, ["claire", "david"], EthicsVerdict.UNFAVOURABLE, False),
    (True, ["claire", "david"], F, True),
], ids=["none", "one", "two", "enhanced-one", "enhanced-same-twice", "enhanced-no-opinion",
        "enhanced-reserved", "enhanced-unfavourable", "enhanced-complete"])
def test_approval_rule(enhanced: bool, approvers: list[str], ethics: str | None,
                       complete: bool) -> None:
    outcome = approval_rule(enhanced, approvers, ethics)
    assert outcome.complete is complete
    assert bool(outcome.missing) is not complete
    assert outcome.required_approvals == (2 if enhanced else 1)
