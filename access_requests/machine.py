"""The project state machine as data, the one approval rule, and the facts the policy reads.

States follow the access issue: draft -> submitted -> in review -> (changes requested ->
resubmitted ->) approved (by the DEPP staff member whose approval completes the approval rule,
or by the system when the rule's last condition, a favourable ethics opinion, arrives after
the approvals) -> active <-> suspended; approved, active and suspended projects may
be revoked (staff) or expire at their end date (the system); active, suspended, revoked and
expired projects are closed by staff (extract deleted, key destroyed). ``rejected`` and
``closed`` are the end states. Every move goes through :func:`enclave.core.statemachine.move`,
which checks :data:`PROJECT_MACHINE` through the one policy module and writes the audit event
in the same transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from access_requests.models import (
    AgreementVersion,
    EthicsOpinion,
    Membership,
    Project,
    ProjectDecision,
    RequestedVariable,
)
from enclave.core.catalogue import Dataset, DatasetUnit, Variable, VariableKind
from enclave.core.exceptions import NotFound
from enclave.core.policy import Actor, Role, StateMachine, Transition, not_a_member
from enclave.provisioning.models import Extract

#: The agreement version seeded by migration 0002; the current one is the latest published.
CURRENT_AGREEMENT = "DUA-2026.1"


class ProjectStatus(StrEnum):
    """Where a project stands; statuses are never bare strings in code."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    IN_REVIEW = "in_review"
    CHANGES_REQUESTED = "changes_requested"
    RESUBMITTED = "resubmitted"
    APPROVED = "approved"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REJECTED = "rejected"
    REVOKED = "revoked"
    EXPIRED = "expired"
    CLOSED = "closed"


class EthicsVerdict(StrEnum):
    """An ethics committee opinion; only ``favourable`` counts towards an enhanced approval."""

    FAVOURABLE = "favourable"
    RESERVED = "reserved"
    UNFAVOURABLE = "unfavourable"


class DecisionKind(StrEnum):
    """What a DEPP staff member decided on an application in a review round."""

    START_REVIEW = "start_review"
    APPROVE = "approve"
    REJECT = "reject"
    REQUEST_CHANGES = "request_changes"


#: Statuses in which a project's data may exist and be used or kept (an extract, a key).
HOLDS_DATA = frozenset({ProjectStatus.APPROVED, ProjectStatus.ACTIVE, ProjectStatus.SUSPENDED,
                        ProjectStatus.REVOKED, ProjectStatus.EXPIRED})
#: Statuses with no move out.
END_STATES = frozenset({ProjectStatus.REJECTED, ProjectStatus.CLOSED})


# -- the one approval rule ----------------------------------------------------------------------

@dataclass(frozen=True)
class ApprovalOutcome:
    """The approval rule's answer: complete or not, and what is still missing."""

    complete: bool
    enhanced: bool
    required_approvals: int
    approvers: tuple[str, ...]
    ethics_verdict: str | None
    missing: tuple[str, ...]


def approval_rule(enhanced: bool, approvers: Collection[str],
                  ethics_verdict: str | None) -> ApprovalOutcome:
    """The decision rule, in one place: one DEPP staff approval, or for an enhanced review
    (a sensitive variable or learning traces requested) two approvals from distinct DEPP staff
    and a favourable ethics committee opinion on record."""
    distinct = tuple(sorted(set(approvers)))
    required = 2 if enhanced else 1
    missing = []
    if len(distinct) < required:
        missing.append(f"{required - len(distinct)} more approval(s) by distinct DEPP staff "
                       f"({required} needed" + (": sensitive data or learning traces)"
                                                 if enhanced else ")"))
    if enhanced and ethics_verdict != EthicsVerdict.FAVOURABLE:
        missing.append("a favourable ethics committee opinion on record (sensitive data or "
                       "learning traces); current: " + (ethics_verdict or "none"))
    return ApprovalOutcome(not missing, enhanced, required, distinct, ethics_verdict,
                           tuple(missing))


# -- conditions of the transition table ---------------------------------------------------------

def _member_may_apply(actor: Actor, facts: Mapping[str, Any]) -> str | None:
    """Members submit their application, with a valid accreditation (safe people)."""
    if actor.username not in facts.get("members", ()):
        return f"{actor.username} is not a member of this project"
    if not actor.accredited:
        return f"{actor.username} has no valid accreditation (training missing or expired)"
    return None


def _approval_complete(actor: Actor, facts: Mapping[str, Any]) -> str | None:
    """Approval is the move of the staff member whose approval completes the rule."""
    if (reason := not_a_member(actor, facts)) is not None:
        return reason
    outcome = approval_rule(bool(facts.get("enhanced_review", False)),
                            [*facts.get("approvals", ()), actor.username],
                            facts.get("ethics_verdict"))
    return None if outcome.complete else "approval needs " + "; ".join(outcome.missing)


def _approval_complete_on_record(actor: Actor, facts: Mapping[str, Any]) -> str | None:
    """The rule completes itself when its last missing condition arrives (a favourable ethics
    opinion after the staff approvals): only the approvals already on record count, the system
    adds none, and no approver may be a member of the project."""
    approvals = list(facts.get("approvals", ()))
    if not approvals:
        return "no DEPP staff approval is on record"
    inside = sorted(set(approvals) & set(facts.get("members", ())))
    if inside:
        return "approved by members of the project: " + ", ".join(inside)
    outcome = approval_rule(bool(facts.get("enhanced_review", False)), approvals,
                            facts.get("ethics_verdict"))
    return None if outcome.complete else "approval needs " + "; ".join(outcome.missing)


def _ready_to_activate(actor: Actor, facts: Mapping[str, Any]) -> str | None:
    """Active needs every member's accepted agreement and a published extract."""
    missing = sorted(set(facts.get("members", ())) - set(facts.get("agreed", ())))
    if missing:
        return "members have not accepted the data-use agreement: " + ", ".join(missing)
    if not facts.get("extract_published"):
        return "the project has no published extract yet"
    return None


def _may_reinstate(actor: Actor, facts: Mapping[str, Any]) -> str | None:
    """Staff reinstate a suspended project they are not in, before its end date."""
    if (reason := not_a_member(actor, facts)) is not None:
        return reason
    end, today = facts.get("end_date"), facts.get("today")
    if isinstance(end, date) and isinstance(today, date) and end < today:
        return f"the project ended on {end.isoformat()}; it can no longer be reinstated"
    return None


def past_end_date(actor: Actor, facts: Mapping[str, Any]) -> str | None:
    """A project expires only after its end date (the last day of access)."""
    end, today = facts.get("end_date"), facts.get("today")
    if not isinstance(end, date) or not isinstance(today, date) or today <= end:
        return f"the project's end date ({end}) has not passed"
    return None


S = ProjectStatus
T = Transition
STAFF, RESEARCHER, SYSTEM_ROLE = Role.DEPP_STAFF, Role.RESEARCHER, Role.SYSTEM
PROJECT_MACHINE: StateMachine[ProjectStatus] = StateMachine("project", ProjectStatus, (
    T(S.DRAFT, S.SUBMITTED, RESEARCHER, "project.submitted", _member_may_apply),
    T(S.SUBMITTED, S.IN_REVIEW, STAFF, "project.review_started", not_a_member),
    T(S.IN_REVIEW, S.CHANGES_REQUESTED, STAFF, "project.changes_requested", not_a_member),
    T(S.CHANGES_REQUESTED, S.RESUBMITTED, RESEARCHER, "project.resubmitted", _member_may_apply),
    T(S.RESUBMITTED, S.IN_REVIEW, STAFF, "project.review_started", not_a_member),
    T(S.IN_REVIEW, S.APPROVED, STAFF, "project.approved", _approval_complete),
    # the same move when the rule's last condition (the ethics opinion) arrives after the
    # approvals: completed by the rule, so by the system, never by a person
    T(S.IN_REVIEW, S.APPROVED, SYSTEM_ROLE, "project.approved", _approval_complete_on_record),
    T(S.IN_REVIEW, S.REJECTED, STAFF, "project.rejected", not_a_member),
    T(S.APPROVED, S.ACTIVE, SYSTEM_ROLE, "project.activated", _ready_to_activate),
    T(S.ACTIVE, S.SUSPENDED, STAFF, "project.suspended", not_a_member),
    T(S.SUSPENDED, S.ACTIVE, STAFF, "project.reinstated", _may_reinstate),
    T(S.APPROVED, S.REVOKED, STAFF, "project.revoked", not_a_member),
    T(S.ACTIVE, S.REVOKED, STAFF, "project.revoked", not_a_member),
    T(S.SUSPENDED, S.REVOKED, STAFF, "project.revoked", not_a_member),
    T(S.APPROVED, S.EXPIRED, SYSTEM_ROLE, "project.expired", past_end_date),
    T(S.ACTIVE, S.EXPIRED, SYSTEM_ROLE, "project.expired", past_end_date),
    T(S.SUSPENDED, S.EXPIRED, SYSTEM_ROLE, "project.expired", past_end_date),
    T(S.ACTIVE, S.CLOSED, STAFF, "project.closed", not_a_member),
    T(S.SUSPENDED, S.CLOSED, STAFF, "project.closed", not_a_member),
    T(S.REVOKED, S.CLOSED, STAFF, "project.closed", not_a_member),
    T(S.EXPIRED, S.CLOSED, STAFF, "project.closed", not_a_member),
))


# -- reading projects and their facts -----------------------------------------------------------

def get_project(session: Session, project_id: str) -> Project:
    """The project, or NotFound."""
    project = session.get(Project, project_id) if isinstance(project_id, str) else None
    if project is None:
        raise NotFound(f"no project {project_id!r}")
    return project


def members_of(session: Session, project_id: str) -> list[Membership]:
    """The project's memberships, by username."""
    return list(session.execute(select(Membership).where(Membership.project_id == project_id)
                                .order_by(Membership.username)).scalars())


def current_agreement(session: Session) -> AgreementVersion | None:
    """The latest published data-use agreement version."""
    return session.execute(select(AgreementVersion).order_by(
        AgreementVersion.published_at.desc(), AgreementVersion.version.desc()).limit(1)).scalar()


def enhanced_review_reasons(session: Session, project_id: str) -> list[str]:
    """Why an application needs two approvals and an ethics opinion (empty: it does not)."""
    rows = session.execute(
        select(RequestedVariable.dataset_id, RequestedVariable.variable, Variable.kind,
               Dataset.unit)
        .join(Dataset, Dataset.id == RequestedVariable.dataset_id)
        .join(Variable, (Variable.dataset_id == RequestedVariable.dataset_id)
              & (Variable.name == RequestedVariable.variable), isouter=True)
        .where(RequestedVariable.project_id == project_id)
        .order_by(RequestedVariable.dataset_id, RequestedVariable.variable)).all()
    reasons = [f"{d}.{v} is a sensitive variable" for d, v, kind, _ in rows
               if kind == VariableKind.SENSITIVE]
    reasons += [f"{d} holds learning traces (one row per event)"
                for d in dict.fromkeys(d for d, _, _, unit in rows if unit == DatasetUnit.EVENT)]
    return reasons


def approvals_in_round(session: Session, project: Project) -> list[str]:
    """Who approved the application in its current review round."""
    return list(session.execute(select(ProjectDecision.decided_by).where(
        ProjectDecision.project_id == project.id,
        ProjectDecision.review_round == project.review_round,
        ProjectDecision.decision == DecisionKind.APPROVE.value)
        .order_by(ProjectDecision.id)).scalars())


def latest_ethics_verdict(session: Session, project_id: str) -> str | None:
    """The verdict of the latest ethics committee opinion on the project, if any."""
    return session.execute(select(EthicsOpinion.verdict).where(
        EthicsOpinion.project_id == project_id)
        .order_by(EthicsOpinion.given_at.desc(), EthicsOpinion.id.desc()).limit(1)).scalar()


def approval_status(session: Session, project_id: str) -> ApprovalOutcome:
    """The approval rule applied to what is on record for the current review round."""
    project = get_project(session, project_id)
    return approval_rule(bool(enhanced_review_reasons(session, project_id)),
                         approvals_in_round(session, project),
                         latest_ethics_verdict(session, project_id))


def facts(session: Session, project_id: str, **extra: Any) -> dict[str, Any]:
    """The plain facts the policy needs about a project, read from the database.

    Facts read from the database win over ``extra``: a caller cannot make itself a non-member,
    claim an extract that was never published or an approval that was never given. Only
    ``today`` (the date the caller acts on, for the system's timers) may be passed in.
    """
    project = get_project(session, project_id)
    members = members_of(session, project_id)
    agreement = current_agreement(session)
    current = agreement.version if agreement is not None else None
    published = session.execute(select(Extract.id).where(
        Extract.project_id == project_id, Extract.status == "published").limit(1)).first()
    reasons = enhanced_review_reasons(session, project_id)
    today = extra.get("today")
    return {**extra, "members": [m.username for m in members],
            "agreed": [m.username for m in members
                       if current is not None and m.agreement_version == current],
            "pi": project.principal_investigator,
            "status": project.status,
            "active": project.status == ProjectStatus.ACTIVE,
            "extract_published": published is not None,
            "end_date": project.end_date,
            "today": today if isinstance(today, date) else date.today(),
            "enhanced_review": bool(reasons), "enhanced_reasons": reasons,
            "approvals": approvals_in_round(session, project),
            "ethics_verdict": latest_ethics_verdict(session, project_id)}
