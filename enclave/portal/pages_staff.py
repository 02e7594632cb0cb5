"""DEPP staff's pages after the decision: a project's life (suspend, reinstate, revoke, close)
and the requests to change members or end dates (extend), each with a mandatory reason.

The buttons shown are the moves the state machine allows this person now
(:func:`access_requests.workflow.view_project`); each POST calls the workflow operation that
owns the move, which checks the policy again under the project's row lock and writes the move
with its audit event. Closing deletes the extract, destroys the project's keys and records the
certificate of destruction (the workflow does it). A decision on an older view of a request
(or a reinstatement of a project that changed) is refused with a message, never a 500.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from access_requests import lifecycle, membership, workflow
from access_requests.exceptions import FieldError, StaleVersion
from access_requests.machine import ProjectStatus
from enclave.core import policy
from enclave.core.exceptions import InvalidTransition
from enclave.portal import queries
from enclave.portal.pages_projects import REVIEWER, STATE_BADGES
from enclave.portal.runtime import portal_of
from enclave.portal.viewer import Viewer

router = APIRouter()
S = ProjectStatus
#: The lifecycle actions staff take from the project's page, by the status each leads to.
ACTIONS = {"suspend": S.SUSPENDED, "reinstate": S.ACTIVE, "revoke": S.REVOKED,
           "close": S.CLOSED}
TEXT_MAX = 10_000


def lifecycle_action(portal: Any, actor: Any, session: Any, project_id: str, action: str,
                     reason: str, version: int) -> None:
    """Apply ``action`` through the workflow operation that owns it (reason mandatory)."""
    if action == "suspend":
        lifecycle.suspend(session, actor, project_id, reason=reason, version=version)
    elif action == "reinstate":
        lifecycle.reinstate(session, actor, project_id, reason=reason, version=version,
                            require_reason=True)
    elif action == "revoke":
        lifecycle.revoke(session, actor, project_id, reason=reason, version=version)
    elif action == "close":
        lifecycle.close_project(session, portal.enclave.keys, actor, project_id, reason=reason,
                                version=version, require_reason=True)
    else:
        raise InvalidTransition(f"{action!r} is not an action on a project")


def _manage_page(request: Request, viewer: Viewer, project_id: str, *, status: int = 200,
                 values: dict[str, str] | None = None, errors: dict[str, str] | None = None,
                 notice: str | None = None) -> HTMLResponse:
    portal = portal_of(request)
    with portal.enclave.db.sessions() as session:
        view = workflow.view_project(session, viewer.actor, project_id)
        policy.check_decide_on_project(viewer.actor, [m.username for m in view.members])
        pending_members, pending_extensions = membership.pending_requests(session, viewer.actor)
    actions = [name for name, target in ACTIONS.items() if target in view.allowed_moves]
    return portal.renderer.page(
        request, viewer, "manage_project.html", "manage.title", status, view=view,
        actions=actions, values=values or {}, errors=errors or {}, notice=notice,
        badges=STATE_BADGES, history=list(queries.iter_audit(
            portal.enclave.db, queries.AuditFilter(project=project_id))),
        member_requests=[r for r in pending_members if r.project_id == project_id],
        extension_requests=[r for r in pending_extensions if r.project_id == project_id])


@router.get("/manage/{project_id}", response_class=HTMLResponse, include_in_schema=False)
def manage(request: Request, project_id: str,
           viewer: Annotated[Viewer, REVIEWER]) -> HTMLResponse:
    """A project's life for DEPP staff: the moves allowed now, each with its reason."""
    notice = request.query_params.get("done", "")
    return _manage_page(request, viewer, project_id,
                        notice=f"manage.done.{notice}" if notice in ACTIONS else None)


@router.post("/manage/{project_id}/{action}", include_in_schema=False)
async def act(request: Request, project_id: str, action: str,
              viewer: Annotated[Viewer, REVIEWER]) -> Response:
    """Suspend, reinstate, revoke or close, with a reason, on the version the person saw."""
    form = await request.form()
    values = {n: str(form.get(n) or "")[:TEXT_MAX] for n in ("reason", "version")}
    return await run_in_threadpool(_act, request, viewer, project_id, action[:20], values)


def _version(text: str) -> int:
    return int(text) if text.isdigit() and len(text) < 10 else -1


def _act(request: Request, viewer: Viewer, project_id: str, action: str,
         values: dict[str, str]) -> Response:
    portal = portal_of(request)
    try:
        with portal.enclave.db.transaction() as session:
            lifecycle_action(portal, viewer.actor, session, project_id, action,
                             values["reason"], _version(values["version"]))
    except StaleVersion:
        return _manage_page(request, viewer, project_id, status=409, values=values,
                            notice="manage.stale")
    except FieldError as exc:
        return _manage_page(request, viewer, project_id, status=400, values=values,
                            errors={f"{action}-{exc.field}": exc.reason})
    except InvalidTransition as exc:
        return _manage_page(request, viewer, project_id, status=409, values=values,
                            errors={f"{action}-reason": str(exc)})
    return RedirectResponse(portal.url(f"manage/{project_id}") + f"?done={action}",
                            status_code=303)


# -- membership and extension requests ------------------------------------------------------------

def _requests_page(request: Request, viewer: Viewer, *, status: int = 200,
                   errors: dict[str, str] | None = None, notice: str | None = None
                   ) -> HTMLResponse:
    portal = portal_of(request)
    with portal.enclave.db.sessions() as session:
        members, extensions = membership.pending_requests(session, viewer.actor)
    return portal.renderer.page(request, viewer, "requests.html", "requests.title", status,
                                member_requests=members, extension_requests=extensions,
                                errors=errors or {}, notice=notice)


@router.get("/requests", response_class=HTMLResponse, include_in_schema=False)
def pending(request: Request, viewer: Annotated[Viewer, REVIEWER]) -> HTMLResponse:
    """Membership and extension requests waiting for DEPP staff (never their own projects')."""
    done = request.query_params.get("done", "")
    return _requests_page(request, viewer,
                          notice="requests.done" if done in ("approved", "rejected") else None)


@router.post("/requests/{kind}/{request_id}", include_in_schema=False)
async def decide_request(request: Request, kind: str, request_id: str,
                         viewer: Annotated[Viewer, REVIEWER]) -> Response:
    """Approve (apply the change) or reject a membership or extension request, with a reason."""
    form = await request.form()
    values = {n: str(form.get(n) or "")[:TEXT_MAX] for n in ("decision", "reason", "version")}
    return await run_in_threadpool(_decide_request, request, viewer, kind[:20],
                                   request_id[:60], values)


def decide_change_request(session: Any, actor: Any, kind: str, request_id: str,
                          decision: str, reason: str, version: int) -> Any:
    """Route a request decision to the workflow operation of its kind (reason mandatory)."""
    if decision not in ("approve", "reject"):
        raise FieldError("decision", "must be approve or reject")
    decide = {"membership": membership.decide_membership_request,
              "extension": membership.decide_extension_request}.get(kind)
    if decide is None:
        raise InvalidTransition(f"{kind!r} is not a kind of request")
    return decide(session, actor, request_id, approve=decision == "approve", version=version,
                  reason=reason, today=actor.today, require_reason=True)


def _decide_request(request: Request, viewer: Viewer, kind: str, request_id: str,
                    values: dict[str, str]) -> Response:
    portal = portal_of(request)
    try:
        with portal.enclave.db.transaction() as session:
            row = decide_change_request(session, viewer.actor, kind, request_id,
                                        values["decision"], values["reason"],
                                        _version(values["version"]))
            done = row.status
    except StaleVersion:
        return _requests_page(request, viewer, status=409, notice="manage.stale")
    except (FieldError, InvalidTransition) as exc:
        reason = exc.reason if isinstance(exc, FieldError) else str(exc)
        return _requests_page(request, viewer, status=400, errors={request_id: reason})
    return RedirectResponse(portal.url("requests") + f"?done={done}", status_code=303)
