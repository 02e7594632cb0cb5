"""Access projects in the portal: "my projects", a project's page, accepting the agreement, and
DEPP staff's review queue with its decision form.

Every route is guarded by a policy rule about the person (``page_guard``); the rules about the
person *and the project* (member, not a member, project approved...) are applied by the access
workflow's own operations, which raise ``PermissionDenied`` (a 403 page). Forms get the CSRF
check from the application; a decision carries the project version the staff member saw, and a
decision on an older view is refused with nothing changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from access_requests import (
    agreements,
    applications,
    decisions,
    membership,
    register,
    workflow,
)
from access_requests.exceptions import AlreadyApproved, FieldError, StaleVersion
from access_requests.machine import ProjectStatus, current_agreement
from enclave.core import policy
from enclave.core.exceptions import InvalidTransition
from enclave.portal import queries
from enclave.portal.extensions import Entry, Extension
from enclave.portal.i18n import PROJECT_MESSAGES
from enclave.portal.pages_core import KIND_BADGES
from enclave.portal.runtime import Portal, portal_of
from enclave.portal.viewer import Viewer, page_guard
from enclave.provisioning.extracts import accept_agreement_and_activate

router = APIRouter()
S = ProjectStatus

#: The decisions a staff member can take from the form, and the status each leads to.
DECISIONS = decisions.QUEUE_DECISIONS
REASON_MAX = 5000
#: DSFR badge modifier of each status.
STATE_BADGES = {"draft": "", "submitted": "fr-badge--info", "resubmitted": "fr-badge--info",
                "in_review": "fr-badge--new", "changes_requested": "fr-badge--warning",
                "approved": "fr-badge--success", "active": "fr-badge--success",
                "suspended": "fr-badge--warning", "rejected": "fr-badge--error",
                "revoked": "fr-badge--error", "expired": "", "closed": ""}


#: The queue shows the oldest applications first, this many at a time.
QUEUE_PAGE = 100
#: Notices a project's page shows after an action elsewhere (``?notice=<name>``).
PROJECT_NOTICES = frozenset({"saved", "submitted", "twice", "stale", "membership_requested",
                             "extension_requested", "opinion"})

#: DEPP staff open the review queue; deciding on a project is then checked per project.
REVIEWER = page_guard(policy.check_open_review_queue)


@dataclass
class DecisionForm:
    """The decision form as typed, with its errors by field (message keys)."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    decision: str = ""
    reason: str = ""
    version: int = 0


def _parse_decision(form: Any) -> DecisionForm:
    out = DecisionForm()
    decision = str(form.get("decision") or "")
    reason = str(form.get("reason") or "")
    version = str(form.get("version") or "")
    out.values = {"decision": decision[:40], "reason": reason[:REASON_MAX * 2]}
    if decision not in DECISIONS:
        out.errors["decision"] = "review.error_decision"
    text = reason.strip()
    if not text:
        out.errors["reason"] = "review.error_reason"
    elif len(text) > REASON_MAX:
        out.errors["reason"] = "error.too_long"
    elif any((ord(ch) < 32 and ch not in "\r\n\t") or ord(ch) == 127 for ch in text):
        out.errors["reason"] = "error.control_chars"
    if not version.isdigit() or len(version) > 9:
        out.errors["version"] = "review.error_version"
    else:
        out.version = int(version)
    out.decision, out.reason = decision, text
    return out


def _history(portal: Portal, project_id: str) -> list[queries.AuditRow]:
    return list(queries.iter_audit(portal.enclave.db, queries.AuditFilter(project=project_id)))


@router.get("/projects", response_class=HTMLResponse, include_in_schema=False)
def my_projects(request: Request, viewer: Annotated[Viewer, page_guard(policy.check_log_in)]
                ) -> HTMLResponse:
    """The projects I am a member of, newest first, with their status and members."""
    portal = portal_of(request)
    with portal.enclave.db.sessions() as session:
        mine = workflow.projects_of(session, viewer.actor)
        members = register.members_by_project(session, [p.id for p in mine])
        rows = [(p, members[p.id]) for p in mine]
    return portal.renderer.page(request, viewer, "projects.html", "projects.title",
                                rows=rows, badges=STATE_BADGES)


def _project_page(request: Request, viewer: Viewer, project_id: str, *, status: int = 200,
                  errors: dict[str, str] | None = None, notice: str | None = None
                  ) -> HTMLResponse:
    portal = portal_of(request)
    with portal.enclave.db.sessions() as session:
        view = workflow.view_project(session, viewer.actor, project_id)
        agreement = current_agreement(session)
        members = [m.username for m in view.members]
        mine = next((m for m in view.members if m.username == viewer.actor.username), None)
        may_accept = (agreement is not None and mine is not None
                      and mine.agreement_version != agreement.version
                      and policy.can_accept_agreement(viewer.actor, members,
                                                      view.project.status
                                                      in agreements.ACCEPTING))
        actor, state = viewer.actor, view.project.status
        links = {
            "edit": state in applications.EDITABLE
            and policy.can_edit_application(actor, members),
            "changes": state in membership.CHANGEABLE
            and policy.can_request_project_change(actor, view.project.principal_investigator),
            "manage": policy.can_decide_on_project(actor, members),
            "review": state in (S.SUBMITTED, S.RESUBMITTED, S.IN_REVIEW)
            and policy.can_decide_on_project(actor, members),
            "opinion": state in decisions.OPINION_STATUSES
            and policy.can_record_ethics_opinion(actor, members),
        }
    return portal.renderer.page(
        request, viewer, "project.html", "project.title", status, view=view,
        agreement=agreement, may_accept=may_accept, history=_history(portal, project_id),
        badges=STATE_BADGES, errors=errors or {}, notice=notice, links=links)


@router.get("/projects/{project_id}", response_class=HTMLResponse, include_in_schema=False)
def project_page(request: Request, project_id: str,
                 viewer: Annotated[Viewer, page_guard(policy.check_log_in)]) -> HTMLResponse:
    """One project as the person may see it (members, DEPP staff, ethics committee)."""
    notice = "project.accepted" if request.query_params.get("accepted") == "1" else None
    asked = request.query_params.get("notice", "")
    if asked in PROJECT_NOTICES:
        notice = f"project.notice.{asked}"
    return _project_page(request, viewer, project_id, notice=notice)


@router.post("/projects/{project_id}/agreement", include_in_schema=False)
async def accept(request: Request, project_id: str,
                 viewer: Annotated[Viewer, page_guard(policy.check_log_in)]) -> Response:
    """A member accepts the current data-use agreement; the project activates if it can."""
    form = await request.form()
    version = str(form.get("version") or "")[:40]
    return await run_in_threadpool(_accept, request, viewer, project_id, version)


def _accept(request: Request, viewer: Viewer, project_id: str, version: str) -> Response:
    portal = portal_of(request)
    try:
        accept_agreement_and_activate(portal.enclave.db, viewer.actor, project_id,
                                      version or None)
    except FieldError:
        return _project_page(request, viewer, project_id, status=409,
                             errors={"version": "project.error_agreement_version"})
    return RedirectResponse(portal.url(f"projects/{project_id}") + "?accepted=1",
                            status_code=303)


@router.get("/review", response_class=HTMLResponse, include_in_schema=False)
def review_queue(request: Request, viewer: Annotated[Viewer, REVIEWER]) -> HTMLResponse:
    """Applications waiting for DEPP staff (never those of the staff member's own projects)."""
    portal = portal_of(request)
    with portal.enclave.db.sessions() as session:
        queue = decisions.review_queue(session, viewer.actor, limit=QUEUE_PAGE)
        waiting = decisions.review_queue_size(session, viewer.actor)
        members = register.members_by_project(session, [p.id for p in queue])
        rows = [(p, members[p.id]) for p in queue]
    decided = request.query_params.get("decided", "")[:40]
    return portal.renderer.page(request, viewer, "review.html", "review.title", rows=rows,
                                badges=STATE_BADGES, decided=decided, waiting=waiting)


@dataclass(frozen=True)
class SideBySide:
    """One requested dataset: its catalogue next to what the application asks of it."""

    dataset: queries.DatasetSummary
    catalogue: list[queries.VariableRow]
    requested: dict[str, str]  # variable -> justification


def side_by_side(session: Any, view: workflow.ProjectView) -> list[SideBySide]:
    """The requested variables grouped by dataset, each beside the dataset's whole catalogue."""
    wanted: dict[str, dict[str, str]] = {}
    for var in view.variables:
        wanted.setdefault(var.dataset_id, {})[var.variable] = var.justification
    out = []
    for dataset_id, requested in sorted(wanted.items()):
        summary, variables = queries.dataset(session, dataset_id)
        out.append(SideBySide(summary, variables, requested))
    return out


def _review_page(request: Request, viewer: Viewer, project_id: str, *, status: int = 200,
                 form: DecisionForm | None = None, stale: bool = False,
                 notice: str | None = None) -> HTMLResponse:
    portal = portal_of(request)
    with portal.enclave.db.sessions() as session:
        view = workflow.view_project(session, viewer.actor, project_id)
        policy.check_decide_on_project(viewer.actor, [m.username for m in view.members])
        compared = side_by_side(session, view)
    return portal.renderer.page(
        request, viewer, "review_project.html", "review.decide_title", status, view=view,
        form=form or DecisionForm(), stale=stale, decisions=DECISIONS,
        history=_history(portal, project_id), badges=STATE_BADGES, compared=compared,
        kind_badges=KIND_BADGES, notice=notice,
        open_for_decision=view.project.status in (S.SUBMITTED, S.RESUBMITTED, S.IN_REVIEW))


@router.get("/review/{project_id}", response_class=HTMLResponse, include_in_schema=False)
def review_project(request: Request, project_id: str,
                   viewer: Annotated[Viewer, REVIEWER]) -> HTMLResponse:
    """The application side by side with the decision form."""
    return _review_page(request, viewer, project_id)


@router.post("/review/{project_id}", include_in_schema=False)
async def decide(request: Request, project_id: str,
                 viewer: Annotated[Viewer, REVIEWER]) -> Response:
    """Approve, request changes or reject, with a reason, on the version the person saw.

    A submitted (or resubmitted) application is taken into review by the same decision.
    """
    form = _parse_decision(await request.form())
    return await run_in_threadpool(_decide, request, viewer, project_id, form)


def _decide(request: Request, viewer: Viewer, project_id: str, form: DecisionForm) -> Response:
    portal = portal_of(request)
    if form.errors:
        return _review_page(request, viewer, project_id, status=400, form=form)
    try:
        with portal.enclave.db.transaction() as session:
            decisions.decide_from_queue(session, viewer.actor, project_id, form.decision,
                                        version=form.version, reason=form.reason)
    except StaleVersion:
        return _review_page(request, viewer, project_id, status=409, form=form, stale=True)
    except AlreadyApproved:
        return _review_page(request, viewer, project_id, status=409, form=form,
                            notice="review.already_approved")
    except FieldError as exc:
        form.errors[exc.field if exc.field in ("reason",) else "decision"] = \
            "review.error_refused"
        return _review_page(request, viewer, project_id, status=400, form=form)
    except InvalidTransition:
        form.errors["decision"] = "review.error_refused"
        return _review_page(request, viewer, project_id, status=409, form=form)
    return RedirectResponse(portal.url("review") + f"?decided={project_id}", status_code=303)


PROJECTS = Extension("projects", pages=router, menu=(
    Entry("nav.projects", "projects", policy.can_apply_for_project, order=20),
    Entry("nav.review", "review", policy.can_open_review_queue, order=30),
), tiles=(
    Entry("nav.projects", "projects", policy.can_apply_for_project, "tile.projects", order=20),
    Entry("nav.review", "review", policy.can_open_review_queue, "tile.review", order=30),
), messages=PROJECT_MESSAGES)
