"""The one policy module: who may do what, as ``check_*`` (raises) / ``can_*`` (bool) pairs.

Every rule is a function returning ``None`` when the action is allowed, or the reason it is
denied. ``check_*`` raises :class:`PermissionDenied` with that reason, ``can_*`` returns a bool;
routes, hub hooks, the CLI and the workflows call these and nothing else. Rules take the actor
and plain facts (member lists, previous reviewers), never workflow objects, so that the core
knows no workflow. Deny by default: an inactive person or a missing role is always refused.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any, Generic, TypeVar

from enclave.core.exceptions import InvalidTransition, PermissionDenied


class Role(StrEnum):
    """The roles of DESIGN.md; ``SYSTEM`` is the enclave itself (timers, automatic moves)."""

    RESEARCHER = "researcher"
    DEPP_STAFF = "depp_staff"
    OUTPUT_CHECKER = "output_checker"
    ETHICS_COMMITTEE = "ethics_committee"
    DATA_PROVIDER = "data_provider"
    PLATFORM_ADMIN = "platform_admin"
    SYSTEM = "system"


#: Identity-provider groups and the role each grants (Keycloak in production).
GROUP_ROLES: Mapping[str, Role] = {
    "researchers": Role.RESEARCHER,
    "depp-staff": Role.DEPP_STAFF,
    "output-checkers": Role.OUTPUT_CHECKER,
    "ethics-committee": Role.ETHICS_COMMITTEE,
    "data-providers": Role.DATA_PROVIDER,
    "enclave-admins": Role.PLATFORM_ADMIN,
}
HUMAN_ROLES = frozenset(GROUP_ROLES.values())


@dataclass(frozen=True)
class Actor:
    """A person (or the system) as the policy sees them at the moment of a decision."""

    username: str
    roles: frozenset[Role] = frozenset()
    active: bool = True
    accredited_until: date | None = None
    today: date = field(default_factory=date.today)

    def has(self, role: Role) -> bool:
        """True if active and holding ``role``."""
        return self.active and role in self.roles

    @property
    def accredited(self) -> bool:
        """Safe people: training recorded and not expired today."""
        return self.accredited_until is not None and self.accredited_until >= self.today


SYSTEM = Actor("system", frozenset({Role.SYSTEM}))

Rule = Callable[..., str | None]


def _pair(rule: Rule) -> tuple[Callable[..., None], Callable[..., bool]]:
    def check(*args: Any, **kwargs: Any) -> None:
        reason = rule(*args, **kwargs)
        if reason is not None:
            raise PermissionDenied(reason)

    def can(*args: Any, **kwargs: Any) -> bool:
        return rule(*args, **kwargs) is None

    check.__doc__ = f"Raise PermissionDenied unless allowed: {rule.__doc__}"
    can.__doc__ = f"True if allowed: {rule.__doc__}"
    return check, can


def _needs(actor: Actor, *roles: Role) -> str | None:
    if not actor.active:
        return f"{actor.username} is not an active account"
    if not any(role in actor.roles for role in roles):
        names = " or ".join(r.value for r in roles)
        return f"{actor.username} needs the role {names}"
    return None


def _outsider(actor: Actor, members: Collection[str], role: Role, doing: str) -> str | None:
    """Holding ``role`` and not a member of the project: nobody acts on their own project."""
    if (reason := _needs(actor, role)) is not None:
        return reason
    if actor.username in members:
        return f"{actor.username} is a member of this project and may not {doing}"
    return None


# -- people and the catalogue ---------------------------------------------------------------------

def _manage_people(actor: Actor) -> str | None:
    """Platform admins create accounts and sync roles from the identity provider."""
    return _needs(actor, Role.PLATFORM_ADMIN, Role.SYSTEM)


def _record_accreditation(actor: Actor) -> str | None:
    """DEPP staff record a person's training (safe people)."""
    return _needs(actor, Role.DEPP_STAFF, Role.SYSTEM)


def _load_catalogue(actor: Actor) -> str | None:
    """DEPP staff (or the system at start-up) load the raw zone's metadata into the catalogue."""
    return _needs(actor, Role.DEPP_STAFF, Role.PLATFORM_ADMIN, Role.SYSTEM)


def _view_catalogue(actor: Actor) -> str | None:
    """Any active person with a role may read the catalogue (metadata, never data)."""
    return _needs(actor, *HUMAN_ROLES, Role.SYSTEM)


def _log_in(actor: Actor) -> str | None:
    """Fail closed: a role is needed; researchers also need a valid accreditation."""
    if not actor.active:
        return f"{actor.username} is not an active account"
    roles = actor.roles & HUMAN_ROLES
    if not roles:
        return f"{actor.username} holds no enclave role"
    if roles == {Role.RESEARCHER} and not actor.accredited:
        return (f"{actor.username} has no valid accreditation (training missing or expired); "
                "contact DEPP staff")
    return None


check_manage_people, can_manage_people = _pair(_manage_people)
check_log_in, can_log_in = _pair(_log_in)
check_record_accreditation, can_record_accreditation = _pair(_record_accreditation)
check_load_catalogue, can_load_catalogue = _pair(_load_catalogue)
check_view_catalogue, can_view_catalogue = _pair(_view_catalogue)


# -- audit ----------------------------------------------------------------------------------------

def _read_audit(actor: Actor) -> str | None:
    """The ethics committee reads the whole trail; platform admins read it to operate."""
    return _needs(actor, Role.ETHICS_COMMITTEE, Role.PLATFORM_ADMIN, Role.SYSTEM)


def _verify_audit(actor: Actor) -> str | None:
    """Anyone who may read the trail may verify the chain."""
    return _read_audit(actor)


check_read_audit, can_read_audit = _pair(_read_audit)
check_verify_audit, can_verify_audit = _pair(_verify_audit)


# -- projects -------------------------------------------------------------------------------------

def _apply_for_project(actor: Actor) -> str | None:
    """Researchers with a valid accreditation may apply for a project."""
    if (reason := _needs(actor, Role.RESEARCHER)) is not None:
        return reason
    if not actor.accredited:
        return (f"{actor.username} has no valid accreditation (training missing or expired "
                f"on {actor.accredited_until})")
    return None


def _decide_on_project(actor: Actor, members: Collection[str]) -> str | None:
    """DEPP staff decide on applications, never on a project they are a member of."""
    return _outsider(actor, members, Role.DEPP_STAFF, "decide on it")


def _use_project_data(actor: Actor, members: Collection[str], agreed: Collection[str],
                      project_active: bool) -> str | None:
    """A member with an accepted agreement and valid accreditation works on an active project."""
    if (reason := _needs(actor, Role.RESEARCHER)) is not None:
        return reason
    if actor.username not in members:
        return f"{actor.username} is not a member of this project"
    if not project_active:
        return "the project is not active"
    if actor.username not in agreed:
        return f"{actor.username} has not accepted the current data-use agreement"
    if not actor.accredited:
        return f"{actor.username} has no valid accreditation"
    return None


def _build_extract(actor: Actor, members: Collection[str]) -> str | None:
    """DEPP staff (or the system on their behalf) build extracts, not for their own project."""
    if actor.has(Role.SYSTEM):
        return None
    return _decide_on_project(actor, members)


def _view_project(actor: Actor, members: Collection[str]) -> str | None:
    """Members, DEPP staff and the ethics committee read an application and its history."""
    if actor.has(Role.DEPP_STAFF) or actor.has(Role.ETHICS_COMMITTEE) or actor.has(Role.SYSTEM):
        return None
    if (reason := _needs(actor, Role.RESEARCHER)) is not None:
        return reason
    if actor.username not in members:
        return f"{actor.username} is not a member of this project"
    return None


def _edit_application(actor: Actor, members: Collection[str]) -> str | None:
    """Accredited researchers who are members edit their project's application."""
    if (reason := _apply_for_project(actor)) is not None:
        return reason
    if actor.username not in members:
        return f"{actor.username} is not a member of this project"
    return None


def _record_ethics_opinion(actor: Actor, members: Collection[str]) -> str | None:
    """The ethics committee gives opinions on applications, never on a project of its own."""
    return _outsider(actor, members, Role.ETHICS_COMMITTEE, "give an opinion on it")


def _accept_agreement(actor: Actor, members: Collection[str], approved: bool) -> str | None:
    """Each member (a person, whatever their role) accepts the agreement once approved."""
    if (reason := _needs(actor, *HUMAN_ROLES)) is not None:
        return reason
    if actor.username not in members:
        return f"{actor.username} is not a member of this project"
    if not approved:
        return "agreements are accepted once the project is approved"
    return None


def _request_project_change(actor: Actor, principal_investigator: str) -> str | None:
    """The principal investigator, still accredited, asks for member changes and extensions."""
    if (reason := _apply_for_project(actor)) is not None:
        return reason
    if actor.username != principal_investigator:
        return (f"{actor.username} is not the principal investigator; only they may ask to "
                "change the project's members or end date")
    return None


def _publish_agreement(actor: Actor) -> str | None:
    """DEPP staff publish new versions of the data-use agreement."""
    return _needs(actor, Role.DEPP_STAFF)


def _open_review_queue(actor: Actor) -> str | None:
    """DEPP staff open the queue of applications (deciding is then checked per project)."""
    return _needs(actor, Role.DEPP_STAFF)


check_apply_for_project, can_apply_for_project = _pair(_apply_for_project)
check_open_review_queue, can_open_review_queue = _pair(_open_review_queue)
check_view_project, can_view_project = _pair(_view_project)
check_edit_application, can_edit_application = _pair(_edit_application)
check_record_ethics_opinion, can_record_ethics_opinion = _pair(_record_ethics_opinion)
check_accept_agreement, can_accept_agreement = _pair(_accept_agreement)
check_request_project_change, can_request_project_change = _pair(_request_project_change)
check_publish_agreement, can_publish_agreement = _pair(_publish_agreement)
check_decide_on_project, can_decide_on_project = _pair(_decide_on_project)
check_use_project_data, can_use_project_data = _pair(_use_project_data)
check_build_extract, can_build_extract = _pair(_build_extract)


# -- outputs --------------------------------------------------------------------------------------

def _request_output(actor: Actor, members: Collection[str], agreed: Collection[str],
                    project_active: bool) -> str | None:
    """Only members who may use the project's data ask for its outputs to be released."""
    return _use_project_data(actor, members, agreed, project_active)


def _review_output(actor: Actor, members: Collection[str], author: str,
                   reviewers: Collection[str]) -> str | None:
    """Disclosure controllers review requests of projects they are not in, each once."""
    if (reason := _needs(actor, Role.OUTPUT_CHECKER)) is not None:
        return reason
    if actor.username in members or actor.username == author:
        return f"{actor.username} belongs to this project and may not review its outputs"
    if actor.username in reviewers:
        return f"{actor.username} has already reviewed this request"
    return None


def _release_output(actor: Actor, members: Collection[str],
                    approvers: Collection[str]) -> str | None:
    """A controller releases once two distinct controllers approved every file."""
    if (reason := _needs(actor, Role.OUTPUT_CHECKER)) is not None:
        return reason
    if actor.username in members:
        return f"{actor.username} belongs to this project and may not release its outputs"
    if len(set(approvers)) < 2:
        return "two distinct disclosure controllers must approve every file before release"
    return None


def _download_release(actor: Actor, requester: str) -> str | None:
    """Only the requester, still a researcher, downloads a release package."""
    if (reason := _needs(actor, Role.RESEARCHER)) is not None:
        return reason
    if actor.username != requester:
        return "only the researcher who requested this release may download it"
    return None


def _read_reviews(actor: Actor, members: Collection[str]) -> str | None:
    """Controllers outside the project and the ethics committee see reviewers' votes."""
    if actor.has(Role.ETHICS_COMMITTEE):
        return None
    if (reason := _needs(actor, Role.OUTPUT_CHECKER)) is not None:
        return reason
    if actor.username in members:
        return f"{actor.username} belongs to this project and may not see its reviews"
    return None


def _rerun_output(actor: Actor, members: Collection[str]) -> str | None:
    """Disclosure controllers outside the project ask the enclave to re-run a request's
    notebooks and compare the results (it runs project code on the extract: not the ethics
    committee, who changes nothing, nor a member, who would check their own work)."""
    if (reason := _needs(actor, Role.OUTPUT_CHECKER)) is not None:
        return reason
    if actor.username in members:
        return f"{actor.username} belongs to this project and may not re-run its outputs"
    return None


check_request_output, can_request_output = _pair(_request_output)
check_rerun_output, can_rerun_output = _pair(_rerun_output)
check_read_reviews, can_read_reviews = _pair(_read_reviews)
check_review_output, can_review_output = _pair(_review_output)
check_release_output, can_release_output = _pair(_release_output)
check_download_release, can_download_release = _pair(_download_release)


# -- keys -----------------------------------------------------------------------------------------

def _destroy_project_key(actor: Actor) -> str | None:
    """Keys are destroyed when DEPP staff close a project, or by the system on expiry."""
    return _needs(actor, Role.DEPP_STAFF, Role.SYSTEM)


check_destroy_project_key, can_destroy_project_key = _pair(_destroy_project_key)


# -- notifications --------------------------------------------------------------------------------

def _read_notifications(actor: Actor, recipient: str) -> str | None:
    """People read and mark as read their own in-app notifications only."""
    if not actor.active:
        return f"{actor.username} is not an active account"
    if actor.username != recipient or not actor.roles:
        return f"{actor.username} may only read their own notifications"
    return None


def _deliver_notifications(actor: Actor) -> str | None:
    """The system (or a platform admin operating it) sends the e-mail outbox."""
    return _needs(actor, Role.SYSTEM, Role.PLATFORM_ADMIN)


check_read_notifications, can_read_notifications = _pair(_read_notifications)
check_deliver_notifications, can_deliver_notifications = _pair(_deliver_notifications)


# -- state machines ------------------------------------------------------------------------

S = TypeVar("S", bound=StrEnum)
Condition = Callable[[Actor, Mapping[str, Any]], str | None]


@dataclass(frozen=True)
class Transition(Generic[S]):
    """One allowed move: from ``source`` to ``target`` by ``role``, if ``condition`` holds."""

    source: S
    target: S
    role: Role
    action: str
    condition: Condition | None = None


@dataclass(frozen=True)
class StateMachine(Generic[S]):
    """A workflow's states and moves, as data; the only way a status changes."""

    object_type: str
    states: type[S]
    transitions: tuple[Transition[S], ...]

    def moves(self, source: S, target: S) -> list[Transition[S]]:
        """Transitions from ``source`` to ``target`` (possibly several roles)."""
        return [t for t in self.transitions if t.source == source and t.target == target]


def _transition(actor: Actor, machine: StateMachine[Any], source: StrEnum, target: StrEnum,
                facts: Mapping[str, Any]) -> str | None:
    """The move exists from the current state, the actor holds its role, and its condition holds."""
    moves = machine.moves(source, target)
    if not moves:
        return None  # reported as InvalidTransition by check_transition
    reasons = []
    for move in moves:
        if (reason := _needs(actor, move.role)) is not None:
            reasons.append(reason)
            continue
        if move.condition is not None and (reason := move.condition(actor, facts)) is not None:
            reasons.append(reason)
            continue
        return None
    return "; ".join(dict.fromkeys(reasons))


def check_transition(actor: Actor, machine: StateMachine[Any], source: StrEnum,
                     target: StrEnum, facts: Mapping[str, Any]) -> Transition[Any]:
    """Return the transition the actor may take, or raise InvalidTransition / PermissionDenied."""
    moves = machine.moves(source, target)
    if not moves:
        raise InvalidTransition(f"a {machine.object_type} cannot go from {source.value} "
                                f"to {target.value}")
    reason = _transition(actor, machine, source, target, facts)
    if reason is not None:
        raise PermissionDenied(reason)
    for move in moves:
        if _needs(actor, move.role) is None and (
                move.condition is None or move.condition(actor, facts) is None):
            return move
    raise PermissionDenied("no transition applies")  # pragma: no cover - guarded above


def can_transition(actor: Actor, machine: StateMachine[Any], source: StrEnum, target: StrEnum,
                   facts: Mapping[str, Any]) -> bool:
    """True if ``check_transition`` would succeed."""
    return bool(machine.moves(source, target)) and \
        _transition(actor, machine, source, target, facts) is None


# Conditions shared by workflows' transition tables.

def not_a_member(actor: Actor, facts: Mapping[str, Any]) -> str | None:
    """Nobody decides on, reviews or builds for a project they are a member of."""
    if actor.username in facts.get("members", ()):
        return f"{actor.username} is a member of this project"
    return None


def is_a_member(actor: Actor, facts: Mapping[str, Any]) -> str | None:
    """Only members act for their project."""
    if actor.username not in facts.get("members", ()):
        return f"{actor.username} is not a member of this project"
    return None


# -- differential privacy budgets -------------------------------------------------------------

def _set_privacy_budget(actor: Actor, members: Collection[str]) -> str | None:
    """DEPP staff set a project's privacy budget on a dataset, never for a project of theirs."""
    return _outsider(actor, members, Role.DEPP_STAFF, "set its privacy budget")


def _spend_privacy_budget(actor: Actor, members: Collection[str], agreed: Collection[str],
                          project_active: bool) -> str | None:
    """Only members who may use the project's data spend its privacy budget on DP queries."""
    return _use_project_data(actor, members, agreed, project_active)


def _read_privacy_ledger(actor: Actor, members: Collection[str]) -> str | None:
    """The ethics committee and DEPP staff read every budget ledger; researchers their own."""
    if actor.has(Role.ETHICS_COMMITTEE) or actor.has(Role.DEPP_STAFF) or actor.has(Role.SYSTEM):
        return None
    if (reason := _needs(actor, Role.RESEARCHER)) is not None:
        return reason
    if actor.username not in members:
        return f"{actor.username} is not a member of this project"
    return None


check_set_privacy_budget, can_set_privacy_budget = _pair(_set_privacy_budget)
check_spend_privacy_budget, can_spend_privacy_budget = _pair(_spend_privacy_budget)
check_read_privacy_ledger, can_read_privacy_ledger = _pair(_read_privacy_ledger)
