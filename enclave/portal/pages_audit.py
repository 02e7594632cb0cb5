"""The ethics committee's pages: the audit trail, its CSV export, chain verification, activity."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from enclave.core import policy
from enclave.portal import actions, charts, queries
from enclave.portal.csvexport import csv_lines
from enclave.portal.extensions import Entry, Extension
from enclave.portal.forms import parse_audit_filter
from enclave.portal.runtime import portal_of
from enclave.portal.viewer import Viewer, page_guard

router = APIRouter()


def _query(params: dict[str, str], **extra: int) -> str:
    return "?" + urlencode({**params, **{k: str(v) for k, v in extra.items()}})


@router.get("/audit", response_class=HTMLResponse, include_in_schema=False)
def audit_trail(request: Request, viewer: Annotated[Viewer, page_guard(policy.check_read_audit)]
                ) -> HTMLResponse:
    """The trail, newest first, filtered by actor, project, action and dates, 50 at a time."""
    portal = portal_of(request)
    form = parse_audit_filter(request.query_params)
    known_actions = portal.activity.snapshot().actions
    page = queries.AuditPage([], 0)  # an invalid filter shows the form and its errors only
    if not form.errors:
        within = portal.activity.seq_range(form.filter.date_from, form.filter.date_to)
        with portal.enclave.db.sessions() as session:
            page = queries.audit_page(session, form.filter, before=form.before,
                                      after=form.after, counter=portal.counter,
                                      seq_range=within)
    families = sorted({a.split(".", 1)[0] + ".*" for a in known_actions if "." in a})
    params = form.filter.params()
    links = {
        "newer": _query(params, after=page.newer_after) if page.newer_after else None,
        "older": _query(params, before=page.older_before) if page.older_before else None,
        "latest": _query(params) if (form.before or form.after) else None,
        "export": portal.url("audit/export.csv") + _query(params),
    }
    status = 400 if form.errors else 200
    return portal.renderer.page(request, viewer, "audit.html", "audit.title", status,
                                form=form, page=page, actions=families + known_actions,
                                links=links)


@router.get("/audit/export.csv", include_in_schema=False)
def audit_export(request: Request,
                 viewer: Annotated[Viewer, page_guard(policy.check_read_audit)]) -> Response:
    """The filtered trail as CSV (formula-safe cells); the export itself is recorded."""
    portal = portal_of(request)
    form = parse_audit_filter(request.query_params)
    if form.errors:
        return portal.renderer.error(request, 400, "error.bad_filter_title",
                                     "error.bad_filter", viewer=viewer)
    actions.record_export(portal.enclave, viewer.actor, form.filter, via="portal")

    def rows() -> Iterator[str]:
        within = portal.activity.seq_range(form.filter.date_from, form.filter.date_to)
        yield from csv_lines(queries.CSV_HEADER, (row.as_csv() for row in queries.iter_audit(
            portal.enclave.db, form.filter, seq_range=within)))

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(rows(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="journal-audit-{stamp}.csv"'})


@router.get("/audit/verify", response_class=HTMLResponse, include_in_schema=False)
def verify_form(request: Request,
                viewer: Annotated[Viewer, page_guard(policy.check_verify_audit)]
                ) -> HTMLResponse:
    """The "verify the chain" action, before it runs."""
    return portal_of(request).renderer.page(request, viewer, "verify.html", "verify.title",
                                            result=None)


@router.post("/audit/verify", response_class=HTMLResponse, include_in_schema=False)
def verify_run(request: Request,
               viewer: Annotated[Viewer, page_guard(policy.check_verify_audit)]
               ) -> HTMLResponse:
    """Verify every link and the last signed checkpoint, and show the result."""
    portal = portal_of(request)
    result = actions.verify_chain(portal.enclave, viewer.actor, via="portal")
    return portal.renderer.page(request, viewer, "verify.html", "verify.title", result=result)


@router.get("/activity", response_class=HTMLResponse, include_in_schema=False)
def activity(request: Request, viewer: Annotated[Viewer, page_guard(policy.check_read_audit)]
             ) -> HTMLResponse:
    """Charts of the activity recorded in the trail (SVG drawn on the server, no script)."""
    portal = portal_of(request)
    t = portal.renderer.messages.translator(viewer.lang)
    figures = portal.activity.snapshot()
    states = charts.horizontal_bars([(t(f"state.{s}", default=s), n)
                                     for s, n in figures.by_state])
    per_day = charts.columns([(d.strftime("%d/%m"), n) for d, n in figures.per_day])
    active = charts.line([(d.strftime("%d/%m"), n) for d, n in figures.active])
    buckets = charts.horizontal_bars([(t("activity.bucket", low=lo, high=hi) if hi is not None
                                       else t("activity.bucket_open", low=lo), n)
                                      for (lo, hi), n in figures.decision_buckets])
    return portal.renderer.page(request, viewer, "activity.html", "activity.title",
                                figures=figures, states=states, per_day=per_day,
                                active=active, buckets=buckets)


AUDIT = Extension("audit", pages=router, menu=(
    Entry("nav.audit", "audit", policy.can_read_audit, order=50),
    Entry("nav.activity", "activity", policy.can_read_audit, order=60),
), tiles=(
    Entry("nav.audit", "audit", policy.can_read_audit, "tile.audit", order=50),
    Entry("verify.title", "audit/verify", policy.can_verify_audit, "tile.verify", order=55),
    Entry("nav.activity", "activity", policy.can_read_audit, "tile.activity", order=60),
))
