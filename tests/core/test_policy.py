"""The policy as truth tables: every role x every rule, and the check/can twins always agree."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

import pytest

from enclave.core import policy
from enclave.core.exceptions import InvalidTransition, PermissionDenied
from enclave.core.policy import Actor, Role, StateMachine, Transition

TODAY = date(2026, 3, 15)
YESTERDAY = TODAY - timedelta(days=1)
R = Role
ALL_ROLES = frozenset(Role)


def _actor(name: str, *roles: Role, active: bool = True,
           accredited_until: date | None = TODAY) -> Actor:
    return Actor(name, frozenset(roles), active, accredited_until, TODAY)


#: One actor per role (active, accredited until today), plus the edge cases of deny by default.
ACTORS: dict[str, Actor] = {role.value: _actor(f"u-{role.value}", role) for role in Role}
ACTORS["no-role"] = _actor("u-nobody")
ACTORS["inactive-with-every-role"] = _actor("u-gone", *Role, active=False)
ACTORS["inactive-researcher"] = _actor("u-gone2", R.RESEARCHER, active=False)

# -- the rules and the facts most favourable to the actor ------------------------------------------
# Each entry: the rule's name (check_<name> / can_<name>), a function giving the arguments for an
# actor (facts that satisfy every condition but the role), and the roles expected to be allowed.

Args = Callable[[Actor], tuple[Any, ...]]


def _no_facts(actor: Actor) -> tuple[Any, ...]:
    return (actor,)


def _member_facts(actor: Actor) -> tuple[Any, ...]:
    return (actor, [actor.username], [actor.username], True)


def _outsider_facts(actor: Actor) -> tuple[Any, ...]:
    return (actor, ["alice", "bob"])


RULES: dict[str, tuple[Args, frozenset[Role]]] = {
    "manage_people": (_no_facts, frozenset({R.PLATFORM_ADMIN, R.SYSTEM})),
    "log_in": (_no_facts, frozenset(policy.HUMAN_ROLES)),
    "open_review_queue": (_no_facts, frozenset({R.DEPP_STAFF})),
    "record_accreditation": (_no_facts, frozenset({R.DEPP_STAFF, R.SYSTEM})),
    "load_catalogue": (_no_facts, frozenset({R.DEPP_STAFF, R.PLATFORM_ADMIN, R.SYSTEM})),
    "view_catalogue": (_no_facts, ALL_ROLES),
    "read_audit": (_no_facts, frozenset({R.ETHICS_COMMITTEE, R.PLATFORM_ADMIN, R.SYSTEM})),
    "verify_audit": (_no_facts, frozenset({R.ETHICS_COMMITTEE, R.PLATFORM_ADMIN, R.SYSTEM})),
    "apply_for_project": (_no_facts, frozenset({R.RESEARCHER})),
    "decide_on_project": (_outsider_facts, frozenset({R.DEPP_STAFF})),
    "use_project_data": (_member_facts, frozenset({R.RESEARCHER})),
    "build_extract": (_outsider_facts, frozenset({R.DEPP_STAFF, R.SYSTEM})),
    "request_output": (_member_facts, frozenset({R.RESEARCHER})),
    "review_output": (lambda a: (a, ["alice", "bob"], "alice", ["carol"]),
                      frozenset({R.OUTPUT_CHECKER})),
    "release_output": (lambda a: (a, ["alice"], ["carol", "dave"]),
                       frozenset({R.OUTPUT_CHECKER})),
    "read_reviews": (_outsider_facts, frozenset({R.OUTPUT_CHECKER, R.ETHICS_COMMITTEE})),
    "rerun_output": (_outsider_facts, frozenset({R.OUTPUT_CHECKER})),
    "download_release": (lambda a: (a, a.username), frozenset({R.RESEARCHER})),
    "destroy_project_key": (_no_facts, frozenset({R.DEPP_STAFF, R.SYSTEM})),
    "view_project": (lambda a: (a, [a.username]),
                     frozenset({R.RESEARCHER, R.DEPP_STAFF, R.ETHICS_COMMITTEE, R.SYSTEM})),
    "edit_application": (lambda a: (a, [a.username]), frozenset({R.RESEARCHER})),
    "record_ethics_opinion": (_outsider_facts, frozenset({R.ETHICS_COMMITTEE})),
    "accept_agreement": (lambda a: (a, [a.username], True), frozenset(policy.HUMAN_ROLES)),
    "request_project_change": (lambda a: (a, a.username), frozenset({R.RESEARCHER})),
    "publish_agreement": (_no_facts, frozenset({R.DEPP_STAFF})),
    "read_notifications": (lambda a: (a, a.username), ALL_ROLES),
    "deliver_notifications": (_no_facts, frozenset({R.PLATFORM_ADMIN, R.SYSTEM})),
    "set_privacy_budget": (_outsider_facts, frozenset({R.DEPP_STAFF})),
    "spend_privacy_budget": (_member_facts, frozenset({R.RESEARCHER})),
    "read_privacy_ledger": (lambda a: (a, [a.username]),
                            frozenset({R.RESEARCHER, R.DEPP_STAFF, R.ETHICS_COMMITTEE, R.SYSTEM})),
}


def _pair(name: str) -> tuple[Callable[..., None], Callable[..., bool]]:
    return getattr(policy, f"check_{name}"), getattr(policy, f"can_{name}")


def _outcome(name: str, *args: Any) -> bool:
    """Run both twins; assert they agree and return whether the action is allowed."""
    check, can = _pair(name)
    allowed = can(*args)
    assert isinstance(allowed, bool)
    try:
        check(*args)
    except PermissionDenied as exc:
        assert str(exc), f"check_{name} raised without a reason"
        assert allowed is False, f"can_{name} says yes but check_{name} raised: {exc}"
        return False
    assert allowed is True, f"check_{name} passed but can_{name} says no"
    return True


def _expected(actor: Actor, allowed_roles: frozenset[Role]) -> bool:
    return actor.active and any(role in allowed_roles for role in actor.roles)


@pytest.mark.parametrize("actor_name", list(ACTORS))
@pytest.mark.parametrize("rule", list(RULES))
def test_truth_table(rule: str, actor_name: str) -> None:
    args, allowed_roles = RULES[rule]
    actor = ACTORS[actor_name]
    assert _outcome(rule, *args(actor)) is _expected(actor, allowed_roles)


def test_truth_table_covers_every_rule_of_the_policy() -> None:
    public = {name.removeprefix("check_") for name in dir(policy) if name.startswith("check_")}
    assert public - {"transition"} == set(RULES)


def test_every_check_has_its_can_twin_and_vice_versa() -> None:
    checks = {n.removeprefix("check_") for n, f in vars(policy).items()
              if n.startswith("check_") and callable(f)}
    cans = {n.removeprefix("can_") for n, f in vars(policy).items()
            if n.startswith("can_") and callable(f)}
    assert checks == cans
    assert len(checks) >= 17
    for name in checks:
        check, can = _pair(name)
        assert check.__doc__ and can.__doc__, name


def test_no_rule_allows_an_inactive_account_or_an_account_without_roles() -> None:
    for rule, (args, _) in RULES.items():
        for actor in (ACTORS["no-role"], ACTORS["inactive-with-every-role"]):
            assert not _outcome(rule, *args(actor)), (rule, actor.username)


# -- accreditation (safe people) ------------------------------------------------------------------

@pytest.mark.parametrize(("until", "allowed"), [
    (None, False), (YESTERDAY, False), (TODAY, True), (TODAY + timedelta(days=400), True)],
    ids=["never-trained", "expired-yesterday", "valid-today", "valid-next-year"])
def test_researcher_needs_a_valid_accreditation_to_apply(until: date | None,
                                                          allowed: bool) -> None:
    actor = _actor("rita", R.RESEARCHER, accredited_until=until)
    assert _outcome("apply_for_project", actor) is allowed


@pytest.mark.parametrize("rule", ["use_project_data", "request_output"])
def test_expired_accreditation_stops_use_of_project_data(rule: str) -> None:
    actor = _actor("rita", R.RESEARCHER, accredited_until=YESTERDAY)
    assert _outcome(rule, *_member_facts(actor)) is False


# -- projects --------------------------------------------------------------------------------------

def test_decide_on_project_refused_to_a_member() -> None:
    staff = ACTORS[R.DEPP_STAFF]
    assert _outcome("decide_on_project", staff, ["alice", staff.username]) is False
    assert _outcome("decide_on_project", staff, ["alice"]) is True


def test_build_extract_refused_to_a_member_but_not_to_the_system() -> None:
    staff = ACTORS[R.DEPP_STAFF]
    assert _outcome("build_extract", staff, [staff.username]) is False
    assert _outcome("build_extract", policy.SYSTEM, ["system"]) is True


@pytest.mark.parametrize(("members", "agreed", "active", "allowed"), [
    (["rita"], ["rita"], True, True),
    (["alice"], ["rita"], True, False),       # not a member
    (["rita"], [], True, False),               # agreement not accepted
    (["rita"], ["rita"], False, False),        # project not active
], ids=["member", "not-member", "no-agreement", "inactive-project"])
def test_use_project_data_needs_membership_agreement_and_active_project(
        members: list[str], agreed: list[str], active: bool, allowed: bool) -> None:
    actor = _actor("rita", R.RESEARCHER)
    assert _outcome("use_project_data", actor, members, agreed, active) is allowed
    assert _outcome("request_output", actor, members, agreed, active) is allowed


# -- outputs ---------------------------------------------------------------------------------------

def test_review_output_refused_to_a_member() -> None:
    checker = _actor("carol", R.OUTPUT_CHECKER)
    assert _outcome("review_output", checker, ["alice", "carol"], "alice", []) is False


def test_review_output_refused_to_the_author() -> None:
    checker = _actor("carol", R.OUTPUT_CHECKER, R.RESEARCHER)
    assert _outcome("review_output", checker, ["alice"], "carol", []) is False


def test_review_output_refused_to_someone_who_already_reviewed() -> None:
    checker = _actor("carol", R.OUTPUT_CHECKER)
    assert _outcome("review_output", checker, ["alice"], "alice", ["carol"]) is False
    assert _outcome("review_output", checker, ["alice"], "alice", ["dave"]) is True


@pytest.mark.parametrize(("approvers", "allowed"), [
    ([], False), (["carol"], False), (["carol", "carol"], False), (["carol", "dave"], True),
    (["carol", "dave", "carol"], True)])
def test_release_output_needs_two_distinct_approvers(approvers: list[str],
                                                     allowed: bool) -> None:
    checker = _actor("erin", R.OUTPUT_CHECKER)
    assert _outcome("release_output", checker, ["alice"], approvers) is allowed


def test_release_output_refused_to_a_member() -> None:
    checker = _actor("erin", R.OUTPUT_CHECKER)
    assert _outcome("release_output", checker, ["alice", "erin"], ["carol", "dave"]) is False


def test_download_release_only_by_the_requester() -> None:
    rita = _actor("rita", R.RESEARCHER)
    assert _outcome("download_release", rita, "rita") is True
    assert _outcome("download_release", rita, "alice") is False
    assert _outcome("download_release", _actor("dave", *Role), "rita") is False


def test_download_release_refused_to_a_requester_who_lost_every_role() -> None:
    assert _outcome("download_release", _actor("rita"), "rita") is False
    assert _outcome("download_release", _actor("rita", R.RESEARCHER, active=False),
                    "rita") is False


# -- logging in ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("actor", "allowed"), [
    (_actor("x"), False),
    (_actor("x", R.SYSTEM), False),
    (_actor("x", R.RESEARCHER, accredited_until=None), False),
    (_actor("x", R.RESEARCHER, accredited_until=YESTERDAY), False),
    (_actor("x", R.RESEARCHER, accredited_until=TODAY), True),
    (_actor("x", R.DEPP_STAFF, accredited_until=None), True),
    (_actor("x", R.OUTPUT_CHECKER, accredited_until=None), True),
    (_actor("x", R.RESEARCHER, R.DEPP_STAFF, accredited_until=None), True),
    (_actor("x", R.DEPP_STAFF, active=False), False),
], ids=["no-role", "system-only", "researcher-never-trained", "researcher-expired",
        "researcher-accredited", "staff-unaccredited", "checker-unaccredited",
        "researcher-and-staff-unaccredited", "inactive-staff"])
def test_log_in(actor: Actor, allowed: bool) -> None:
    assert _outcome("log_in", actor) is allowed


def test_refusals_state_the_reason() -> None:
    with pytest.raises(PermissionDenied, match="not an active account"):
        policy.check_manage_people(ACTORS["inactive-with-every-role"])
    with pytest.raises(PermissionDenied, match="needs the role platform_admin or system"):
        policy.check_manage_people(ACTORS[R.RESEARCHER])
    with pytest.raises(PermissionDenied, match="accreditation"):
        policy.check_log_in(_actor("x", R.RESEARCHER, accredited_until=None))
    with pytest.raises(PermissionDenied, match="two distinct"):
        policy.check_release_output(ACTORS[R.OUTPUT_CHECKER], [], ["a"])


# -- state machines as data ------------------------------------------------------------------------

class Door(StrEnum):
    """A toy workflow for the generic transition checks."""

    SHUT = "shut"
    OPEN = "open"
    LOCKED = "locked"


def _has_key(actor: Actor, facts: Mapping[str, Any]) -> str | None:
    return None if actor.username in facts.get("keys", ()) else f"{actor.username} has no key"


DOOR = StateMachine("door", Door, (
    Transition(Door.SHUT, Door.OPEN, R.RESEARCHER, "door.opened"),
    Transition(Door.OPEN, Door.SHUT, R.RESEARCHER, "door.shut"),
    Transition(Door.SHUT, Door.LOCKED, R.DEPP_STAFF, "door.locked", _has_key),
    Transition(Door.LOCKED, Door.SHUT, R.DEPP_STAFF, "door.unlocked", _has_key),
    Transition(Door.LOCKED, Door.SHUT, R.SYSTEM, "door.unlocked"),
))

#: (source, target, actor, facts) -> "ok" (with the action taken), "denied" or "invalid".
DOOR_TABLE: list[tuple[Door, Door, Actor, dict[str, Any], str]] = [
    (Door.SHUT, Door.OPEN, ACTORS[R.RESEARCHER], {}, "door.opened"),
    (Door.SHUT, Door.OPEN, ACTORS[R.DEPP_STAFF], {}, "denied"),
    (Door.SHUT, Door.OPEN, ACTORS["inactive-researcher"], {}, "denied"),
    (Door.SHUT, Door.OPEN, ACTORS["no-role"], {}, "denied"),
    (Door.OPEN, Door.LOCKED, ACTORS[R.DEPP_STAFF], {"keys": ["u-depp_staff"]}, "invalid"),
    (Door.OPEN, Door.OPEN, ACTORS[R.RESEARCHER], {}, "invalid"),
    (Door.SHUT, Door.LOCKED, ACTORS[R.DEPP_STAFF], {"keys": ["u-depp_staff"]}, "door.locked"),
    (Door.SHUT, Door.LOCKED, ACTORS[R.DEPP_STAFF], {"keys": []}, "denied"),
    (Door.SHUT, Door.LOCKED, ACTORS[R.RESEARCHER], {"keys": ["u-researcher"]}, "denied"),
    (Door.LOCKED, Door.SHUT, ACTORS[R.DEPP_STAFF], {"keys": []}, "denied"),
    (Door.LOCKED, Door.SHUT, ACTORS[R.SYSTEM], {}, "door.unlocked"),
    (Door.LOCKED, Door.SHUT, ACTORS[R.DEPP_STAFF], {"keys": ["u-depp_staff"]}, "door.unlocked"),
    (Door.LOCKED, Door.OPEN, ACTORS[R.SYSTEM], {}, "invalid"),
]


@pytest.mark.parametrize(("source", "target", "actor", "facts", "expected"), DOOR_TABLE,
                         ids=[f"{s}-{t}-{a.username}-{e}" for s, t, a, _, e in DOOR_TABLE])
def test_transition_truth_table(source: Door, target: Door, actor: Actor,
                                facts: dict[str, Any], expected: str) -> None:
    allowed = policy.can_transition(actor, DOOR, source, target, facts)
    if expected == "invalid":
        with pytest.raises(InvalidTransition, match=f"door cannot go from {source} to {target}"):
            policy.check_transition(actor, DOOR, source, target, facts)
        assert allowed is False
    elif expected == "denied":
        with pytest.raises(PermissionDenied) as info:
            policy.check_transition(actor, DOOR, source, target, facts)
        assert str(info.value)
        assert allowed is False
    else:
        move = policy.check_transition(actor, DOOR, source, target, facts)
        assert move.action == expected
        assert allowed is True


def test_refused_transition_gives_every_reason_once() -> None:
    with pytest.raises(PermissionDenied) as info:
        policy.check_transition(ACTORS[R.RESEARCHER], DOOR, Door.LOCKED, Door.SHUT, {})
    message = str(info.value)
    assert "needs the role depp_staff" in message
    assert "needs the role system" in message


def test_failed_condition_reason_is_reported() -> None:
    with pytest.raises(PermissionDenied, match="u-depp_staff has no key"):
        policy.check_transition(ACTORS[R.DEPP_STAFF], DOOR, Door.SHUT, Door.LOCKED, {})


@pytest.mark.parametrize(("condition", "members", "allowed"), [
    (policy.not_a_member, ["u-depp_staff"], False), (policy.not_a_member, ["alice"], True),
    (policy.is_a_member, ["u-depp_staff"], True), (policy.is_a_member, ["alice"], False)])
def test_shared_membership_conditions(condition: policy.Condition, members: list[str],
                                      allowed: bool) -> None:
    assert (condition(ACTORS[R.DEPP_STAFF], {"members": members}) is None) is allowed



# -- access projects: the rules added with the access workflow -----------------------------------

def test_view_project_refused_to_a_researcher_outside_the_project() -> None:
    rita = _actor("rita", R.RESEARCHER)
    assert _outcome("view_project", rita, ["alice"]) is False
    assert _outcome("view_project", ACTORS[R.ETHICS_COMMITTEE], ["alice"]) is True
    assert _outcome("view_project", ACTORS[R.OUTPUT_CHECKER], ["alice"]) is False


@pytest.mark.parametrize(("until", "members", "allowed"), [
    (TODAY, ["rita"], True), (YESTERDAY, ["rita"], False), (TODAY, ["alice"], False)],
    ids=["member-accredited", "member-expired", "not-a-member"])
def test_edit_application_needs_membership_and_accreditation(
        until: date, members: list[str], allowed: bool) -> None:
    rita = _actor("rita", R.RESEARCHER, accredited_until=until)
    assert _outcome("edit_application", rita, members) is allowed


def test_record_ethics_opinion_refused_to_a_member() -> None:
    gaelle = _actor("gaelle", R.ETHICS_COMMITTEE)
    assert _outcome("record_ethics_opinion", gaelle, ["alice", "gaelle"]) is False


@pytest.mark.parametrize(("members", "approved", "allowed"), [
    (["rita"], True, True), (["alice"], True, False), (["rita"], False, False)],
    ids=["member-approved", "not-a-member", "not-yet-approved"])
def test_accept_agreement_needs_membership_and_an_approved_project(
        members: list[str], approved: bool, allowed: bool) -> None:
    rita = _actor("rita", R.RESEARCHER)
    assert _outcome("accept_agreement", rita, members, approved) is allowed
    assert _outcome("accept_agreement", policy.SYSTEM, ["system"], True) is False


def test_request_project_change_only_by_the_accredited_principal_investigator() -> None:
    assert _outcome("request_project_change", _actor("rita", R.RESEARCHER), "alice") is False
    assert _outcome("request_project_change",
                    _actor("rita", R.RESEARCHER, accredited_until=YESTERDAY), "rita") is False


def test_read_notifications_only_ones_own() -> None:
    assert _outcome("read_notifications", _actor("rita", R.RESEARCHER), "alice") is False
    assert _outcome("read_notifications", _actor("rita", R.RESEARCHER), "rita") is True


# -- differential privacy budgets: the rules added with the privacy budget ledger --------------

def test_set_privacy_budget_refused_to_a_staff_member_of_the_project() -> None:
    staff = ACTORS[R.DEPP_STAFF]
    assert _outcome("set_privacy_budget", staff, ["alice", staff.username]) is False
    assert _outcome("set_privacy_budget", staff, ["alice"]) is True
    assert _outcome("set_privacy_budget", ACTORS[R.ETHICS_COMMITTEE], ["alice"]) is False


@pytest.mark.parametrize(("members", "agreed", "active", "until", "allowed"), [
    (["rita"], ["rita"], True, TODAY, True),
    (["alice"], ["alice"], True, TODAY, False),     # not a member
    (["rita"], [], True, TODAY, False),             # agreement not accepted
    (["rita"], ["rita"], False, TODAY, False),      # project not active
    (["rita"], ["rita"], True, YESTERDAY, False),   # training expired
], ids=["member", "not-member", "no-agreement", "inactive-project", "expired-training"])
def test_spend_privacy_budget_needs_the_right_to_use_the_data(
        members: list[str], agreed: list[str], active: bool, until: date,
        allowed: bool) -> None:
    rita = _actor("rita", R.RESEARCHER, accredited_until=until)
    assert _outcome("spend_privacy_budget", rita, members, agreed, active) is allowed
    assert _outcome("use_project_data", rita, members, agreed, active) is allowed


def test_read_privacy_ledger_by_oversight_or_by_the_project_s_own_researchers() -> None:
    rita = _actor("rita", R.RESEARCHER)
    assert _outcome("read_privacy_ledger", rita, ["rita"]) is True
    assert _outcome("read_privacy_ledger", rita, ["alice"]) is False
    for role in (R.ETHICS_COMMITTEE, R.DEPP_STAFF):
        assert _outcome("read_privacy_ledger", ACTORS[role], []) is True
    for role in (R.OUTPUT_CHECKER, R.PLATFORM_ADMIN, R.DATA_PROVIDER):
        assert _outcome("read_privacy_ledger", ACTORS[role], [ACTORS[role].username]) is False


def test_rerun_output_refused_to_a_member() -> None:
    checker = ACTORS[R.OUTPUT_CHECKER.value]
    assert _outcome("rerun_output", checker, [checker.username, "alice"]) is False
    assert _outcome("rerun_output", checker, ["alice"]) is True
