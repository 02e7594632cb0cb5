"""DEPP staff decisions on applications, and the ethics committee's opinions.

Each decision carries the project version the staff member saw; a decision on an older view is
refused (:class:`StaleVersion`). Approval follows :func:`access_requests.machine.approval_rule`
(the one place the rule lives): the approval that completes the rule moves the project to
``approved`` with one audit event; an approval that does not (the first of two) is recorded
with its own event and waits for the second approval and the ethics opinion. When the ethics
opinion is the last condition to arrive, recording it completes the approval
(:func:`record_ethics_opinion`): no third staff approval is needed, whatever the order.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from access_requests import notifications, validation
from access_requests.exceptions import AlreadyApproved, FieldError, OpinionClosed
from access_requests.machine import (
    PROJECT_MACHINE,
    ApprovalOutcome,
    DecisionKind,
    EthicsVerdict,
    ProjectStatus,
    approval_status,
    facts,
    members_of,
)
from access_requests.models import EthicsOpinion, Membership, Project, ProjectDecision
from access_requests.moves import advance, check_version, locked_project
from enclave.core import audit, policy
from enclave.core.db import utcnow
from enclave.core.exceptions import InvalidTransition
from enclave.core.policy import SYSTEM, Actor, Role

S = ProjectStatus
#: Statuses in which the ethics committee may give its opinion (before the decision).
OPINION_STATUSES = frozenset({S.SUBMITTED, S.IN_REVIEW, S.CHANGES_REQUESTED, S.RESUBMITTED})


def _record(session: Session, actor: Actor, project: Project, kind: DecisionKind,
            reason: str, seen: int | None) -> ProjectDecision:
    row = ProjectDecision(project_id=project.id, review_round=project.review_round,
                          decided_by=actor.username, decision=kind.value, reason=reason,
                          seen_version=seen, decided_at=utcnow())
    session.add(row)
    return row


def _reason(reason: str, required: bool) -> str:
    return validation.text("reason", reason, max_len=5000, min_len=1 if required else 0,
                           multiline=True)


def start_review(session: Session, actor: Actor, project_id: str, *,
                 version: int | None) -> Project:
    """A DEPP staff member (not a member) takes a submitted application into review."""
    project = locked_project(session, project_id)
    target = S.IN_REVIEW
    policy.check_transition(actor, PROJECT_MACHINE, S(project.status), target,
                            facts(session, project_id))
    check_version(f"project {project_id}", project.version, version)
    advance(session, actor, project, target)
    return project


def decide(session: Session, actor: Actor, project_id: str, target: ProjectStatus, *,
           version: int | None, reason: str = "", require_reason: bool = False) -> Project:
    """Reject or return for changes (``target``): a recorded decision and its move."""
    kinds = {S.REJECTED: DecisionKind.REJECT, S.CHANGES_REQUESTED: DecisionKind.REQUEST_CHANGES}
    if target not in kinds:
        raise ValueError(f"decide() handles {', '.join(kinds)}; use approve() to approve")
    project = locked_project(session, project_id)
    policy.check_transition(actor, PROJECT_MACHINE, S(project.status), target,
                            facts(session, project_id))
    check_version(f"project {project_id}", project.version, version)
    reason = _reason(reason, required=require_reason)
    decision = _record(session, actor, project, kinds[target], reason, version)
    session.flush()
    advance(session, actor, project, target, reason=reason,
            details={"decision_id": decision.id, "review_round": project.review_round})
    return project


def request_changes(session: Session, actor: Actor, project_id: str, *, version: int,
                    reason: str) -> Project:
    """Return the application to its members with what to change (a reason is required)."""
    return decide(session, actor, project_id, S.CHANGES_REQUESTED, version=version,
                  reason=reason, require_reason=True)


def reject(session: Session, actor: Actor, project_id: str, *, version: int,
           reason: str) -> Project:
    """Reject the application (an end state; a reason is required)."""
    return decide(session, actor, project_id, S.REJECTED, version=version, reason=reason,
                  require_reason=True)


def approve(session: Session, actor: Actor, project_id: str, *, version: int | None,
            reason: str = "") -> ApprovalOutcome:
    """Record the actor's approval; move the project to approved once the rule is complete.

    Returns the rule's outcome after this approval (``complete`` or what is still missing).
    """
    project = locked_project(session, project_id)
    source = S(project.status)
    if not PROJECT_MACHINE.moves(source, S.APPROVED):
        raise InvalidTransition(f"a project cannot go from {source.value} to approved")
    known = facts(session, project_id)
    policy.check_decide_on_project(actor, known["members"])
    check_version(f"project {project_id}", project.version, version)
    if actor.username in known["approvals"]:
        raise AlreadyApproved(f"{actor.username} already approved this application in this "
                              "review round; the second approval must come from another "
                              "DEPP staff member")
    reason = _reason(reason, required=False)
    if policy.can_transition(actor, PROJECT_MACHINE, source, S.APPROVED, known):
        decision = _record(session, actor, project, DecisionKind.APPROVE, reason, version)
        session.flush()
        outcome = approval_status(session, project_id)
        advance(session, actor, project, S.APPROVED, reason=reason,
                details={"decision_id": decision.id, "approvers": list(outcome.approvers),
                         "review_round": project.review_round,
                         "enhanced_review": outcome.enhanced,
                         "ethics_verdict": outcome.ethics_verdict})
        return outcome
    decision = _record(session, actor, project, DecisionKind.APPROVE, reason, version)
    project.version += 1
    session.flush()
    outcome = approval_status(session, project_id)
    audit.record(session, actor=actor.username, action="project.approval_recorded",
                 object_type="project", object_id=project_id, project_id=project_id,
                 details={"decision_id": decision.id, "review_round": project.review_round,
                          "approvers": list(outcome.approvers), "missing": list(outcome.missing),
                          **({"reason": reason} if reason else {})})
    notifications.notify(session, "project.approval_recorded",
                         notifications.people_with_role(session, Role.DEPP_STAFF),
                         project_id=project_id, exclude=[*known["members"], actor.username],
                         title=project.title)
    return outcome


def _verdict(value: EthicsVerdict | str) -> EthicsVerdict:
    try:
        return EthicsVerdict(value)
    except ValueError:
        raise FieldError("verdict", "must be " + ", ".join(v.value for v in EthicsVerdict)) \
            from None


def record_ethics_opinion(session: Session, actor: Actor, project_id: str, *,
                          verdict: EthicsVerdict | str, reference: str = "",
                          comment: str = "") -> EthicsOpinion:
    """The ethics committee records its opinion on an application awaiting a decision.

    A favourable opinion on an application in review whose current round already holds the
    DEPP staff approvals the rule asks for completes the approval in the same transaction:
    the project moves to ``approved`` through the state machine's system-owned move, checked
    by the policy (:func:`access_requests.machine.approval_rule` on what is on record). Two
    audit events are written, in this order: ``ethics.opinion_recorded`` naming the committee
    member (the person who acted), then ``project.approved`` naming the ``system`` actor
    (nobody approved at that moment: the rule completed), whose details name the staff
    approvers, the opinion and its author, and ``completed_by: approval_rule``. Any other
    verdict never approves. All refused fields are reported together (:class:`FieldErrors`).
    """
    project = locked_project(session, project_id)
    members = [m.username for m in members_of(session, project_id)]
    policy.check_record_ethics_opinion(actor, members)
    if project.status not in OPINION_STATUSES:
        raise OpinionClosed(f"the application is {project.status}; opinions are given "
                            "before the decision")
    fields = validation.Collector()
    checked = fields.check(_verdict, verdict)
    reference_ = fields.check(validation.text, "reference", reference, max_len=200)
    comment_ = fields.check(validation.text, "comment", comment, max_len=10_000, multiline=True)
    if checked is None or reference_ is None or comment_ is None:
        fields.fail()
    opinion = EthicsOpinion(project_id=project_id, author=actor.username, verdict=checked.value,
                            reference=reference_, comment=comment_, given_at=utcnow())
    session.add(opinion)
    project.version += 1
    session.flush()
    audit.record(session, actor=actor.username, action="ethics.opinion_recorded",
                 object_type="project", object_id=project_id, project_id=project_id,
                 details={"opinion_id": opinion.id, "verdict": checked.value,
                          "reference": reference_})
    notifications.notify(session, "ethics.opinion_recorded",
                         notifications.people_with_role(session, Role.DEPP_STAFF),
                         project_id=project_id, exclude=members, title=project.title,
                         verdict=checked.value)
    if checked is EthicsVerdict.FAVOURABLE and project.status == S.IN_REVIEW:
        _complete_on_record(session, project, opinion)
    return opinion


def _complete_on_record(session: Session, project: Project, opinion: EthicsOpinion) -> None:
    """Move an in-review project to approved if the rule is now complete on record (the
    system's move of the transition table, checked by the policy under the row lock)."""
    known = facts(session, project.id)
    if not policy.can_transition(SYSTEM, PROJECT_MACHINE, S.IN_REVIEW, S.APPROVED, known):
        return
    outcome = approval_status(session, project.id)
    advance(session, SYSTEM, project, S.APPROVED,
            details={"completed_by": "approval_rule", "approvers": list(outcome.approvers),
                     "review_round": project.review_round,
                     "enhanced_review": outcome.enhanced,
                     "ethics_verdict": outcome.ethics_verdict,
                     "ethics_opinion_id": opinion.id, "ethics_opinion_by": opinion.author})


def decisions_of(session: Session, actor: Actor, project_id: str) -> list[ProjectDecision]:
    """Every staff decision on the project, oldest first."""
    policy.check_view_project(actor, [m.username for m in members_of(session, project_id)])
    return list(session.execute(select(ProjectDecision).where(
        ProjectDecision.project_id == project_id).order_by(ProjectDecision.id)).scalars())


def opinions_of(session: Session, actor: Actor, project_id: str) -> list[EthicsOpinion]:
    """Every ethics opinion on the project, oldest first."""
    policy.check_view_project(actor, [m.username for m in members_of(session, project_id)])
    return list(session.execute(select(EthicsOpinion).where(
        EthicsOpinion.project_id == project_id).order_by(EthicsOpinion.id)).scalars())


def _queue_clauses(actor: Actor) -> list[Any]:
    mine = select(Membership.project_id).where(Membership.username == actor.username)
    return [Project.status.in_([S.SUBMITTED.value, S.RESUBMITTED.value, S.IN_REVIEW.value]),
            Project.id.not_in(mine)]


def review_queue(session: Session, actor: Actor, *, limit: int | None = None) -> list[Project]:
    """Applications awaiting DEPP staff, oldest submission first, except those of projects
    the actor is a member of (the ``limit`` oldest ones when given)."""
    policy.check_decide_on_project(actor, [])
    query = select(Project).where(*_queue_clauses(actor)).order_by(Project.submitted_at,
                                                                   Project.id)
    if limit is not None:
        query = query.limit(max(1, limit))
    return list(session.execute(query).scalars())


def review_queue_size(session: Session, actor: Actor) -> int:
    """How many applications await the actor's decision (same selection as the queue)."""
    policy.check_decide_on_project(actor, [])
    return int(session.execute(select(func.count()).select_from(Project)
                               .where(*_queue_clauses(actor))).scalar() or 0)


#: The decisions DEPP staff take on an application in one step from the review queue.
QUEUE_DECISIONS = ("approve", "request_changes", "reject")


def decide_from_queue(session: Session, actor: Actor, project_id: str, decision: str, *,
                      version: int, reason: str) -> Project:
    """Take a (re)submitted application into review if needed, then apply ``decision``.

    ``version`` is the one the staff member saw: a change since then is refused
    (:class:`StaleVersion`), including by the implicit start of the review.
    """
    if decision not in QUEUE_DECISIONS:
        raise InvalidTransition(f"{decision!r} is not a decision on an application")
    project = locked_project(session, project_id)
    seen = version
    if project.status in (S.SUBMITTED, S.RESUBMITTED):
        seen = start_review(session, actor, project_id, version=version).version
    if decision == "approve":
        approve(session, actor, project_id, version=seen, reason=reason)
    elif decision == "request_changes":
        request_changes(session, actor, project_id, version=seen, reason=reason)
    else:
        reject(session, actor, project_id, version=seen, reason=reason)
    return locked_project(session, project_id)

