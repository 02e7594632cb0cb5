"""The register of every application and every decision, for oversight.

The ethics committee reads every decision (DESIGN.md) and DEPP staff see every application;
researchers see only their own projects (:func:`access_requests.workflow.projects_of`). The
register is read a page at a time, newest first, so that it stays fast with ten thousand
projects; each page's extra facts (latest ethics verdict, approvals) are read for that page's
projects only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from access_requests.exceptions import FieldError
from access_requests.machine import DecisionKind, ProjectStatus
from access_requests.models import EthicsOpinion, Membership, Project, ProjectDecision
from enclave.core import policy
from enclave.core.policy import Actor

MAX_PAGE = 200


@dataclass(frozen=True)
class ApplicationRow:
    """One application as the register lists it."""

    id: str
    title: str
    status: str
    principal_investigator: str
    created_at: datetime
    submitted_at: datetime | None
    end_date: date
    version: int
    ethics_verdict: str | None
    decisions: int


@dataclass(frozen=True)
class DecisionRow:
    """One decision on an application: by DEPP staff (approve, reject, changes, review) or an
    ethics committee opinion (``kind`` = ``ethics_opinion``, ``decision`` = the verdict)."""

    kind: str  # staff_decision | ethics_opinion
    project_id: str
    project_title: str
    by: str
    decision: str
    reason: str
    at: datetime
    review_round: int | None


@dataclass(frozen=True)
class RegisterPage:
    """A page of the register and how many rows match in all."""

    rows: list[ApplicationRow]
    total: int
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        """The offset of the next page, if any."""
        return self.offset + self.limit if self.offset + self.limit < self.total else None

    @property
    def previous_offset(self) -> int | None:
        """The offset of the previous page, if any."""
        return max(0, self.offset - self.limit) if self.offset > 0 else None


def _page(limit: int, offset: int) -> tuple[int, int]:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise FieldError("limit", f"must be between 1 and {MAX_PAGE}")
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= 10**9:
        raise FieldError("offset", "must be a non-negative number")
    return limit, offset


def applications(session: Session, actor: Actor, *, status: str | None = None,
                 limit: int = 50, offset: int = 0) -> RegisterPage:
    """Every application (or those in ``status``), newest first; DEPP staff and the ethics
    committee (policy ``view_project`` for a project the actor is not a member of)."""
    policy.check_view_project(actor, ())
    limit, offset = _page(limit, offset)
    query = select(Project)
    count = select(func.count()).select_from(Project)
    if status:
        try:
            state = ProjectStatus(status)
        except ValueError:
            raise FieldError("status", "is not a project status") from None
        query, count = query.where(Project.status == state.value), \
            count.where(Project.status == state.value)
    total = int(session.execute(count).scalar() or 0)
    # sort the narrow (created_at, id) pairs, then load the page's rows only
    ids = list(session.execute(query.with_only_columns(Project.id)
                               .order_by(Project.created_at.desc(), Project.id.desc())
                               .limit(limit).offset(offset)).scalars())
    loaded = {p.id: p for p in session.execute(select(Project).where(Project.id.in_(ids)))
              .scalars()} if ids else {}
    projects = [loaded[i] for i in ids]
    verdicts: dict[str, str] = {}
    counts: dict[str, int] = {}
    if ids:
        for project_id, verdict in session.execute(
                select(EthicsOpinion.project_id, EthicsOpinion.verdict)
                .where(EthicsOpinion.project_id.in_(ids))
                .order_by(EthicsOpinion.given_at, EthicsOpinion.id)):
            verdicts[project_id] = verdict  # the latest one wins
        counts = {pid: int(n) for pid, n in session.execute(
            select(ProjectDecision.project_id, func.count())
            .where(ProjectDecision.project_id.in_(ids),
                   ProjectDecision.decision != DecisionKind.START_REVIEW.value)
            .group_by(ProjectDecision.project_id))}
    rows = [ApplicationRow(p.id, p.title, p.status, p.principal_investigator, p.created_at,
                           p.submitted_at, p.end_date, p.version, verdicts.get(p.id),
                           counts.get(p.id, 0)) for p in projects]
    return RegisterPage(rows, total, offset, limit)


def decisions(session: Session, actor: Actor, *, project_id: str | None = None,
              limit: int = 50) -> list[DecisionRow]:
    """The latest staff decisions and ethics opinions (of one project, or of all), newest
    first; who may read them as for :func:`applications`."""
    policy.check_view_project(actor, ())
    limit, _ = _page(limit, 0)
    staff = select(ProjectDecision, Project.title).join(
        Project, Project.id == ProjectDecision.project_id)
    opinions = select(EthicsOpinion, Project.title).join(
        Project, Project.id == EthicsOpinion.project_id)
    if project_id is not None:
        staff = staff.where(ProjectDecision.project_id == project_id)
        opinions = opinions.where(EthicsOpinion.project_id == project_id)
    rows = [DecisionRow("staff_decision", d.project_id, title, d.decided_by, d.decision,
                        d.reason, d.decided_at, d.review_round)
            for d, title in session.execute(staff.order_by(ProjectDecision.id.desc())
                                            .limit(limit))]
    rows += [DecisionRow("ethics_opinion", o.project_id, title, o.author, o.verdict,
                         o.comment, o.given_at, None)
             for o, title in session.execute(opinions.order_by(EthicsOpinion.id.desc())
                                             .limit(limit))]
    rows.sort(key=lambda r: r.at, reverse=True)
    return rows[:limit]


def members_by_project(session: Session, project_ids: list[str]) -> dict[str, list[str]]:
    """The usernames of each project's members, in one query (for lists of projects the
    caller was already allowed to see)."""
    out: dict[str, list[str]] = {pid: [] for pid in project_ids}
    for start in range(0, len(project_ids), 500):
        chunk = project_ids[start:start + 500]
        for project_id, username in session.execute(
                select(Membership.project_id, Membership.username)
                .where(Membership.project_id.in_(chunk))
                .order_by(Membership.project_id, Membership.username)):
            out[project_id].append(username)
    return out
