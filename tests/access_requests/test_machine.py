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
from enclave.core import policy
from enclave.core.exceptions import PermissionDenied
from enclave.core.policy import SYSTEM, Actor, Role, StateMachine

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
    triples = [(t.source, t.target, t.role) for t in machine.transitions]
    assert len(triples) == len(set(triples)), "a move is declared twice for one role"
    for source, target, _ in triples:  # a move with several owners keeps one audit action
        assert len({t.action for t in machine.moves(source, target)}) == 1
    for move in machine.transitions:
        assert move.role in {Role.RESEARCHER, Role.DEPP_STAFF, Role.SYSTEM}
        assert move.action.startswith(machine.object_type.split("_")[0] + ".")


def test_owners_follow_the_issue() -> None:
    owner = {(t.source, t.target): t.role for t in PROJECT_MACHINE.transitions}
    assert owner[S.DRAFT, S.SUBMITTED] is Role.RESEARCHER
    assert owner[S.CHANGES_REQUESTED, S.RESUBMITTED] is Role.RESEARCHER
    assert owner[S.APPROVED, S.ACTIVE] is Role.SYSTEM
    assert {owner[s, S.EXPIRED] for s in (S.APPROVED, S.ACTIVE, S.SUSPENDED)} == {Role.SYSTEM}
    assert {r for (_, t), r in owner.items() if t in (S.REJECTED, S.REVOKED,
                                                       S.SUSPENDED, S.CLOSED)} == {
        Role.DEPP_STAFF}
    # approval: the staff member whose approval completes the rule, or the system when the
    # rule's last condition (the ethics opinion) arrives after the approvals
    assert {t.role for t in PROJECT_MACHINE.moves(S.IN_REVIEW, S.APPROVED)} == {
        Role.DEPP_STAFF, Role.SYSTEM}
    assert [(t.source, t.target) for t in PROJECT_MACHINE.transitions
            if t.target == S.APPROVED] == [(S.IN_REVIEW, S.APPROVED)] * 2
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


ON_RECORD = {"members": ["alice", "bruno"], "enhanced_review": True,
             "approvals": ["claire", "david"], "ethics_verdict": F}


@pytest.mark.parametrize(("who", "changes", "allowed"), [
    ("system", {}, True),
    ("system", {"ethics_verdict": EthicsVerdict.RESERVED}, False),
    ("system", {"ethics_verdict": EthicsVerdict.UNFAVOURABLE}, False),
    ("system", {"ethics_verdict": None}, False),
    ("system", {"approvals": ["claire"]}, False),
    ("system", {"approvals": ["claire", "claire"]}, False),
    ("system", {"approvals": []}, False),
    ("system", {"approvals": ["claire", "bruno"]}, False),
    ("system", {"enhanced_review": False, "approvals": [], "ethics_verdict": None}, False),
    ("system", {"enhanced_review": False, "approvals": ["claire"], "ethics_verdict": None},
     True),
    ("ethics", {}, False),
    ("researcher", {}, False),
    ("admin", {}, False),
], ids=["complete", "reserved", "unfavourable", "no-opinion", "one-approval", "same-twice",
        "no-approval", "member-approved", "plain-none", "plain-one", "ethics-committee",
        "researcher", "platform-admin"])
def test_the_rule_completes_on_record_only_for_the_system_and_only_when_complete(
        who: str, changes: dict[str, object], allowed: bool) -> None:
    actors = {"system": SYSTEM,
              "ethics": Actor("gaelle", frozenset({Role.ETHICS_COMMITTEE})),
              "researcher": Actor("rita", frozenset({Role.RESEARCHER})),
              "admin": Actor("admin", frozenset({Role.PLATFORM_ADMIN}))}
    facts = {**ON_RECORD, **changes}
    assert policy.can_transition(actors[who], PROJECT_MACHINE, S.IN_REVIEW, S.APPROVED,
                                 facts) is allowed
    if not allowed:
        with pytest.raises(PermissionDenied):
            policy.check_transition(actors[who], PROJECT_MACHINE, S.IN_REVIEW, S.APPROVED,
                                    facts)


def test_a_staff_member_still_completes_the_rule_with_their_own_approval() -> None:
    claire = Actor("claire", frozenset({Role.DEPP_STAFF}))
    facts = {**ON_RECORD, "approvals": ["david"]}
    assert policy.check_transition(claire, PROJECT_MACHINE, S.IN_REVIEW, S.APPROVED,
                                   facts).role is Role.DEPP_STAFF
    assert not policy.can_transition(claire, PROJECT_MACHINE, S.IN_REVIEW, S.APPROVED,
                                     {**facts, "members": ["claire"]})
