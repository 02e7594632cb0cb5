"""Oversight pages: the register of every application and decision, the ethics committee's
opinion form, and the differential-privacy budget ledgers.

The register and the ledgers are read through their workflows, which ask the policy
(``view_project`` for a project one is not a member of: DEPP staff and the ethics committee;
``read_privacy_ledger``); the opinion is recorded by
:func:`access_requests.decisions.record_ethics_opinion` with its audit event. The routes add
no rule of their own.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from access_requests import decisions, register, workflow
from access_requests.exceptions import FieldError, OpinionClosed
from access_requests.machine import EthicsVerdict, ProjectStatus
from enclave.core import policy
from enclave.portal.application_form import errors_by_field
from enclave.portal.pages_projects import STATE_BADGES
from enclave.portal.runtime import portal_of
from enclave.portal.viewer import Viewer, page_guard
from enclave.privacy_budget.ledger import ledger as budget_ledger
from enclave.privacy_budget.ledger import ledgers as budget_ledgers

router = APIRouter()
#: Anyone logged in may ask; the workflows decide who sees the register and the ledgers.
SIGNED_IN = page_guard(policy.check_log_in)
#: The opinion form is for those who read the trail; recording is checked per project.
COMMITTEE = page_guard(policy.check_read_audit)
PAGE = 50


@router.get("/register", response_class=HTMLResponse, include_in_schema=False)
def register_page(request: Request, viewer: Annotated[Viewer, SIGNED_IN]) -> HTMLResponse:
    """Every application (filtered by status, 50 at a time) and the latest decisions."""
    portal = portal_of(request)
    status = request.query_params.get("status", "")[:30]
    offset_text = request.query_params.get("offset", "0")[:10]
    offset = int(offset_text) if offset_text.isdigit() else 0
    error = None
    if status and status not in {s.value for s in ProjectStatus}:
        error, status = "register.error_status", ""
    with portal.enclave.db.sessions() as session:
        page = register.applications(session, viewer.actor, status=status or None,
                                     limit=PAGE, offset=offset)
        latest = register.decisions(session, viewer.actor, limit=PAGE)
    return portal.renderer.page(
        request, viewer, "register.html", "register.title", 400 if error else 200,
        page=page, latest=latest, chosen_status=status, error=error, badges=STATE_BADGES,
        statuses=[s.value for s in ProjectStatus],
        committee=policy.can_record_ethics_opinion(viewer.actor, ()),
        staff=policy.can_decide_on_project(viewer.actor, ()),
        opinion_statuses={s.value for s in decisions.OPINION_STATUSES})


def _opinion_page(request: Request, viewer: Viewer, project_id: str, *, status: int = 200,
                  values: dict[str, str] | None = None, errors: dict[str, str] | None = None
                  ) -> HTMLResponse:
    portal = portal_of(request)
    with portal.enclave.db.sessions() as session:
        view = workflow.view_project(session, viewer.actor, project_id)
        policy.check_record_ethics_opinion(viewer.actor, [m.username for m in view.members])
        opinions = decisions.opinions_of(session, viewer.actor, project_id)
    return portal.renderer.page(
        request, viewer, "opinion.html", "opinion.title", status, view=view, opinions=opinions,
        values=values or {}, errors=errors or {}, verdicts=[v.value for v in EthicsVerdict],
        badges=STATE_BADGES, history=[],
        open_for_opinion=view.project.status in decisions.OPINION_STATUSES)


@router.get("/ethics/{project_id}/opinion", response_class=HTMLResponse,
            include_in_schema=False)
def opinion_form(request: Request, project_id: str,
                 viewer: Annotated[Viewer, COMMITTEE]) -> HTMLResponse:
    """The application and the committee's opinions so far, with the form for a new one."""
    return _opinion_page(request, viewer, project_id)


@router.post("/ethics/{project_id}/opinion", include_in_schema=False)
async def give_opinion(request: Request, project_id: str,
                       viewer: Annotated[Viewer, COMMITTEE]) -> Response:
    """Record the committee's opinion (favourable, reserved or unfavourable) on the project."""
    form = await request.form()
    values = {n: str(form.get(n) or "")[:20_000] for n in ("verdict", "reference", "comment")}
    return await run_in_threadpool(_give, request, viewer, project_id, values)


def _give(request: Request, viewer: Viewer, project_id: str,
          values: dict[str, str]) -> Response:
    portal = portal_of(request)
    try:
        with portal.enclave.db.transaction() as session:
            decisions.record_ethics_opinion(session, viewer.actor, project_id,
                                            verdict=values["verdict"],
                                            reference=values["reference"],
                                            comment=values["comment"])
    except FieldError as exc:
        return _opinion_page(request, viewer, project_id, status=400, values=values,
                             errors=errors_by_field(exc, shown_at=str))
    except OpinionClosed as exc:
        return _opinion_page(request, viewer, project_id, status=409, values=values,
                             errors={"verdict": str(exc)})
    return RedirectResponse(portal.url(f"projects/{project_id}") + "?notice=opinion",
                            status_code=303)


@router.get("/privacy", response_class=HTMLResponse, include_in_schema=False)
def privacy(request: Request, viewer: Annotated[Viewer, SIGNED_IN]) -> HTMLResponse:
    """Every project's differential-privacy budget per dataset: total, spent, remaining."""
    portal = portal_of(request)
    rows = budget_ledgers(portal.enclave.db, viewer.actor)
    return portal.renderer.page(request, viewer, "privacy.html", "privacy.title",
                                ledgers=rows, detail=None)


@router.get("/privacy/{project_id}/{dataset_id}", response_class=HTMLResponse,
            include_in_schema=False)
def privacy_ledger(request: Request, project_id: str, dataset_id: str,
                   viewer: Annotated[Viewer, SIGNED_IN]) -> HTMLResponse:
    """One budget with every spend in order (who, when, what query, how much, outcome)."""
    portal = portal_of(request)
    detail = budget_ledger(portal.enclave.db, viewer.actor, project_id, dataset_id)
    return portal.renderer.page(request, viewer, "privacy.html", "privacy.title",
                                ledgers=[], detail=detail)
