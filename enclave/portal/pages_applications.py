"""Researchers' pages: the application form (new, draft, answer to a change request), its
submission, and requests to change a running project's members or end date.

Routes only read the form's shape (:mod:`enclave.portal.application_form`) and call the access
workflow, which checks everything and writes in one transaction with its audit event: a
refused form is shown again with every refusal next to its field (those of shape and those of
content, in one round trip), and nothing is stored. Every route is guarded by
``apply_for_project`` (an accredited researcher); who may touch *this* project is the
workflow's check.
"""

from __future__ import annotations

import secrets
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from access_requests import applications, decisions, membership, workflow
from access_requests.exceptions import AlreadySubmitted, FieldError, StaleVersion
from access_requests.machine import DecisionKind
from access_requests.validation import LEVELS, MAX_PROTOCOL_BYTES
from enclave.core import policy
from enclave.core.catalogue import VariableKind
from enclave.portal import queries
from enclave.portal.application_form import (
    ParsedApplication,
    errors_by_field,
    parse,
    values_of,
)
from enclave.portal.pages_core import KIND_BADGES
from enclave.portal.runtime import Portal, portal_of
from enclave.portal.viewer import Viewer, page_guard

router = APIRouter()
APPLICANT = page_guard(policy.check_apply_for_project)
#: Projects' statuses in which the application form can be edited (the workflow decides).
EDITABLE = {s.value for s in applications.EDITABLE}


def catalogue(portal: Portal) -> list[tuple[queries.DatasetSummary, list[queries.VariableRow]]]:
    """Every dataset with its variables in column order (the form's catalogue)."""
    with portal.enclave.db.sessions() as session:
        return [queries.dataset(session, ds.id) for ds in queries.datasets(session)]


async def read_upload(form: Any, name: str = "protocol") -> bytes | None:
    """The bytes of an uploaded file, or None when no file was chosen (read at most one byte
    past the protocol limit, so that the workflow can say the file is too large)."""
    upload = form.get(name)
    if not isinstance(upload, UploadFile):
        return None
    try:
        return await upload.read(MAX_PROTOCOL_BYTES + 1) if upload.filename else None
    finally:
        await upload.close()


def _form_page(request: Request, viewer: Viewer, parsed: ParsedApplication | None, *,
               project_id: str | None = None, status: int = 200,
               notice: str | None = None) -> HTMLResponse:
    portal = portal_of(request)
    view = None
    changes_asked: list[Any] = []
    if project_id is not None:
        with portal.enclave.db.sessions() as session:
            view = workflow.view_project(session, viewer.actor, project_id)
            changes_asked = [d for d in decisions.decisions_of(session, viewer.actor, project_id)
                             if d.decision == DecisionKind.REQUEST_CHANGES.value]
    values = parsed.values if parsed is not None else (
        values_of(view) if view is not None else {"legal_basis": "gdpr_6_1_e_art_89",
                                                  "levels": [], "chosen": [], "why": {}})
    errors = parsed.errors if parsed is not None else {}
    return portal.renderer.page(
        request, viewer, "application_form.html",
        "apply.edit_title" if view is not None else "apply.title", status,
        view=view, values=values, errors=errors, catalogue=catalogue(portal),
        badges=KIND_BADGES, levels=LEVELS, direct=VariableKind.DIRECT_IDENTIFIER.value,
        sensitive=VariableKind.SENSITIVE.value, changes_asked=changes_asked[-1:],
        form_key=secrets.token_urlsafe(24), notice=notice,
        editable=view is None or view.project.status in EDITABLE,
        max_protocol_mib=MAX_PROTOCOL_BYTES // (1024 * 1024))


@router.get("/apply", response_class=HTMLResponse, include_in_schema=False)
def new_application(request: Request, viewer: Annotated[Viewer, APPLICANT]) -> HTMLResponse:
    """The empty application form, with the catalogue and each variable's kind."""
    return _form_page(request, viewer, None)


@router.post("/apply", include_in_schema=False)
async def create(request: Request, viewer: Annotated[Viewer, APPLICANT]) -> Response:
    """Save a new application as a draft, or save and submit it."""
    form = await request.form()
    parsed = parse(form, protocol=await read_upload(form))
    key = form.get("form_key")
    return await run_in_threadpool(_save, request, viewer, parsed, None,
                                   key if isinstance(key, str) else None)


@router.get("/projects/{project_id}/edit", response_class=HTMLResponse, include_in_schema=False)
def edit_application(request: Request, project_id: str,
                     viewer: Annotated[Viewer, APPLICANT]) -> HTMLResponse:
    """A draft, or an application returned for changes, in the form with what was asked."""
    return _form_page(request, viewer, None, project_id=project_id)


@router.post("/projects/{project_id}/edit", include_in_schema=False)
async def update(request: Request, project_id: str,
                 viewer: Annotated[Viewer, APPLICANT]) -> Response:
    """Save the edited application (on the version the researcher saw), and submit it if asked
    (a returned application is then resubmitted)."""
    form = await request.form()
    parsed = parse(form, protocol=await read_upload(form))
    if parsed.version is None and "version" not in parsed.errors:
        parsed.errors["version"] = "the application's version is missing: reload the page"
    return await run_in_threadpool(_save, request, viewer, parsed, project_id, None)


def _with_content_errors(portal: Portal, viewer: Viewer, parsed: ParsedApplication,
                         project_id: str | None) -> None:
    """A form with errors of shape is also checked by the workflow (nothing written), so that
    the content's refusals of the other fields are shown in the same round trip."""
    if parsed.form is None:
        return
    try:
        with portal.enclave.db.sessions() as session:
            applications.check_application(session, viewer.actor, parsed.form,
                                           project_id=project_id, protocol=parsed.protocol,
                                           today=viewer.actor.today)
    except FieldError as exc:
        parsed.errors = errors_by_field(exc, already=parsed.errors)


def _save(request: Request, viewer: Viewer, parsed: ParsedApplication,
          project_id: str | None, form_key: str | None) -> Response:
    portal = portal_of(request)
    if parsed.errors or parsed.form is None:
        _with_content_errors(portal, viewer, parsed, project_id)
        return _form_page(request, viewer, parsed, project_id=project_id, status=400)
    settings = portal.enclave.settings
    try:
        with portal.enclave.db.transaction() as session:
            if project_id is None:
                project = applications.create_application(
                    session, viewer.actor, parsed.form, protocol=parsed.protocol,
                    projects_dir=settings.projects_dir, form_key=form_key,
                    today=viewer.actor.today)
            else:
                project = applications.update_application(
                    session, viewer.actor, project_id, parsed.form,
                    version=parsed.version or 0, protocol=parsed.protocol,
                    projects_dir=settings.projects_dir, today=viewer.actor.today)
            if parsed.action == "submit":
                applications.submit(session, viewer.actor, project.id,
                                    version=project.version, today=viewer.actor.today)
            saved = project.id
    except AlreadySubmitted as exc:
        if exc.project_id:
            return RedirectResponse(portal.url(f"projects/{exc.project_id}") + "?notice=twice",
                                    status_code=303)
        return _form_page(request, viewer, parsed, project_id=project_id, status=409,
                          notice="apply.already_submitted")
    except StaleVersion:
        return _form_page(request, viewer, parsed, project_id=project_id, status=409,
                          notice="apply.stale")
    except FieldError as exc:
        parsed.errors = errors_by_field(exc, already=parsed.errors)
        return _form_page(request, viewer, parsed, project_id=project_id, status=400)
    notice = "submitted" if parsed.action == "submit" else "saved"
    return RedirectResponse(portal.url(f"projects/{saved}") + f"?notice={notice}",
                            status_code=303)


@router.post("/projects/{project_id}/submit", include_in_schema=False)
async def submit(request: Request, project_id: str,
                 viewer: Annotated[Viewer, APPLICANT]) -> Response:
    """Submit a saved draft (or resubmit an answered change request) as it was shown."""
    form = await request.form()
    version = str(form.get("version") or "")
    return await run_in_threadpool(_submit, request, viewer, project_id,
                                   int(version) if version.isdigit() and len(version) < 10
                                   else -1)


def _submit(request: Request, viewer: Viewer, project_id: str, version: int) -> Response:
    portal = portal_of(request)
    try:
        with portal.enclave.db.transaction() as session:
            applications.submit(session, viewer.actor, project_id, version=version,
                                today=viewer.actor.today)
    except AlreadySubmitted:
        return RedirectResponse(portal.url(f"projects/{project_id}") + "?notice=twice",
                                status_code=303)
    except StaleVersion:
        return RedirectResponse(portal.url(f"projects/{project_id}") + "?notice=stale",
                                status_code=303)
    except FieldError as exc:
        return portal.renderer.error(request, 400, "apply.refused_title", "apply.refused",
                                     str(exc), viewer=viewer)
    return RedirectResponse(portal.url(f"projects/{project_id}") + "?notice=submitted",
                            status_code=303)


# -- changes to a running project ----------------------------------------------------------------

def _changes_page(request: Request, viewer: Viewer, project_id: str, *, status: int = 200,
                  values: dict[str, str] | None = None, errors: dict[str, str] | None = None
                  ) -> HTMLResponse:
    portal = portal_of(request)
    with portal.enclave.db.sessions() as session:
        view = workflow.view_project(session, viewer.actor, project_id)
        policy.check_request_project_change(viewer.actor, view.project.principal_investigator)
    return portal.renderer.page(request, viewer, "project_changes.html", "changes.title", status,
                                view=view, values=values or {}, errors=errors or {})


@router.get("/projects/{project_id}/changes", response_class=HTMLResponse,
            include_in_schema=False)
def changes(request: Request, project_id: str,
            viewer: Annotated[Viewer, APPLICANT]) -> HTMLResponse:
    """The principal investigator's forms: change a member, extend the end date."""
    return _changes_page(request, viewer, project_id)


def _clip(form: Any, *names: str) -> dict[str, str]:
    return {n: str(form.get(n) or "")[:10_000] for n in names}


@router.post("/projects/{project_id}/changes/membership", include_in_schema=False)
async def request_membership(request: Request, project_id: str,
                             viewer: Annotated[Viewer, APPLICANT]) -> Response:
    """Ask DEPP staff to add or remove a member (with a reason)."""
    values = _clip(await request.form(), "change", "username", "institution", "reason")
    return await run_in_threadpool(_request_change, request, viewer, project_id, "membership",
                                   values)


@router.post("/projects/{project_id}/changes/extension", include_in_schema=False)
async def request_extension(request: Request, project_id: str,
                            viewer: Annotated[Viewer, APPLICANT]) -> Response:
    """Ask DEPP staff to move the project's end date later (with a reason)."""
    values = _clip(await request.form(), "new_end_date", "reason_extension")
    return await run_in_threadpool(_request_change, request, viewer, project_id, "extension",
                                   values)


def _request_change(request: Request, viewer: Viewer, project_id: str, kind: str,
                    values: dict[str, str]) -> Response:
    portal = portal_of(request)
    shape: dict[str, str] = {}
    try:
        with portal.enclave.db.transaction() as session:
            if kind == "membership":
                membership.request_membership_change(
                    session, viewer.actor, project_id, change=values["change"],
                    username=values["username"].strip(), institution=values["institution"],
                    reason=values["reason"], today=viewer.actor.today)
            else:
                new_end: date | None = None
                try:
                    new_end = date.fromisoformat(values["new_end_date"].strip())
                except ValueError:  # shown, and the other fields still checked
                    shape["new_end_date"] = "enter a date as YYYY-MM-DD"
                membership.request_extension(session, viewer.actor, project_id,
                                             new_end_date=new_end,
                                             reason=values["reason_extension"],
                                             today=viewer.actor.today)
    except FieldError as exc:
        def shown_at(field: str) -> str:
            return "reason_extension" if (kind, field) == ("extension", "reason") else field

        return _changes_page(request, viewer, project_id, status=400, values=values,
                             errors=errors_by_field(exc, shown_at=shown_at, already=shape))
    return RedirectResponse(portal.url(f"projects/{project_id}") + f"?notice={kind}_requested",
                            status_code=303)
