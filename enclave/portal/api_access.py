"""REST API v1 for access projects: the same operations as the pages, through the same
workflow functions, under the same policy rules (bearer hub tokens with the portal's scope).

Refusals are JSON errors: 403 (policy), 404 (unknown object), 409 (stale version, already
submitted or approved, a move the state does not allow), 422 (every refused field of the
body, each named in ``fields``, so that a client fixes them all at once). Nothing is stored
when a call is refused. The protocol PDF is uploaded through
the form or, base64-encoded, through ``PUT /projects/{id}/protocol``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from access_requests import (
    applications,
    decisions,
    membership,
    register,
    workflow,
)
from access_requests.exceptions import (
    AlreadyApproved,
    AlreadySubmitted,
    FieldError,
    OpinionClosed,
    StaleVersion,
)
from access_requests.validation import MAX_PROTOCOL_BYTES
from enclave.core import policy
from enclave.core.exceptions import InvalidTransition
from enclave.portal.api import ErrorResponse
from enclave.portal.application_form import ECHO_LIMIT
from enclave.portal.pages_staff import decide_change_request, lifecycle_action
from enclave.portal.runtime import portal_of
from enclave.portal.viewer import Viewer, api_guard
from enclave.privacy_budget.ledger import ledgers as budget_ledgers
from enclave.provisioning.extracts import accept_agreement_and_activate

router = APIRouter()
T = TypeVar("T")
ID = Annotated[str, Path(max_length=60)]
TEXT = Field(default="", max_length=ECHO_LIMIT)
#: Base64 of the largest protocol the workflow accepts, and a little more (it says "too large").
PROTOCOL_B64_MAX = (MAX_PROTOCOL_BYTES + 1024) * 4 // 3 + 4


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {400: "The request's body is not JSON", 401: "No valid hub token",
            403: "Refused by the hub or the enclave's policy",
            404: "No such object", 409: "Stale version, already done, or not allowed in the "
            "object's current state", 422: "A field was refused; nothing was stored",
            502: "The hub could not be reached"}
    return {code: {"model": ErrorResponse, "description": text[code]} for code in codes}


READ = _errors(401, 403, 404, 422, 502)
WRITE = _errors(400, 401, 403, 404, 409, 422, 502)


def _error(status: int, code: str, message: str,
           fields: list[dict[str, str]] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "fields": fields or []}},
                        status_code=status)


def _then_project(request: Request, viewer: Viewer, project_id: str,
                  action: Callable[[Session], None]) -> Any:
    """Run a workflow ``action`` in one transaction, then answer with the project as it is
    now, or with the refusal."""
    db = portal_of(request).enclave.db

    def call() -> None:
        with db.transaction() as session:
            action(session)

    done = _run(call)
    return done if isinstance(done, JSONResponse) else _project_out(request, viewer, project_id)


def _run(call: Callable[[], T]) -> T | JSONResponse:
    """Run a workflow call; its refusals become the API's JSON errors (policy refusals and
    unknown objects are answered by the application's handlers: 403, 404)."""
    try:
        return call()
    except AlreadySubmitted as exc:
        return _error(409, "already_submitted", str(exc))
    except AlreadyApproved as exc:
        return _error(409, "already_approved", str(exc))
    except OpinionClosed as exc:
        return _error(409, "decided", str(exc))
    except StaleVersion as exc:
        return _error(409, "stale_version", str(exc))
    except InvalidTransition as exc:
        return _error(409, "invalid_transition", str(exc))
    except FieldError as exc:  # every refused field of the body, each named
        return _error(422, "invalid", str(exc), [{"field": one.field, "message": one.reason}
                                                 for one in exc.errors])


# -- models ---------------------------------------------------------------------------------------

class MemberIn(BaseModel):
    """A member named in an application."""

    username: str = Field(max_length=200)
    institution: str = Field(default="", max_length=400)


class VariableIn(BaseModel):
    """A requested variable with its justification (data minimisation)."""

    dataset: str = Field(max_length=100)
    variable: str = Field(max_length=100)
    justification: str = Field(max_length=ECHO_LIMIT)


class ApplicationIn(BaseModel):
    """Every field of the application form; the workflow checks the content."""

    title: str = Field(max_length=ECHO_LIMIT)
    summary: str = TEXT
    scientific_purpose: str = TEXT
    public_interest: str = TEXT
    legal_basis: Literal["gdpr_6_1_e_art_89", "other"] = "gdpr_6_1_e_art_89"
    legal_basis_other: str = TEXT
    pi_institution: str = Field(default="", max_length=400)
    members: list[MemberIn] = Field(default_factory=list, max_length=100)
    variables: list[VariableIn] = Field(max_length=1000)
    years: list[int] = Field(default_factory=list, max_length=100)
    levels: list[str] = Field(default_factory=list, max_length=50)
    territories: list[str] = Field(default_factory=list, max_length=300)
    end_date: date
    ethics_reference: str = Field(default="", max_length=400)
    planned_outputs: str = TEXT
    submit: bool = Field(default=False, description="submit it now (else a draft)")

    def form(self) -> applications.ApplicationForm:
        """The workflow's form."""
        grouped: dict[str, list[tuple[str, str]]] = {}
        for var in self.variables:
            grouped.setdefault(var.dataset, []).append((var.variable, var.justification))
        return applications.ApplicationForm(
            title=self.title, summary=self.summary, end_date=self.end_date, variables=grouped,
            members=[applications.MemberEntry(m.username, m.institution) for m in self.members],
            pi_institution=self.pi_institution, scientific_purpose=self.scientific_purpose,
            public_interest=self.public_interest, legal_basis=self.legal_basis,
            legal_basis_other=self.legal_basis_other, years=self.years, levels=self.levels,
            territories=self.territories, ethics_reference=self.ethics_reference,
            planned_outputs=self.planned_outputs)


class NewApplication(ApplicationIn):
    """A new application; ``form_key`` (16-100 characters) makes a resend a 409."""

    form_key: str | None = Field(default=None, min_length=16, max_length=100)


class EditedApplication(ApplicationIn):
    """An edited application, on the version the caller read."""

    version: int = Field(ge=0, le=10**9)


class VersionIn(BaseModel):
    """The version of the object the caller read."""

    version: int = Field(ge=0, le=10**9)


class DecisionIn(BaseModel):
    """A DEPP staff decision on an application (reason required)."""

    decision: Literal["approve", "request_changes", "reject"]
    reason: str = Field(max_length=ECHO_LIMIT)
    version: int = Field(ge=0, le=10**9)


class LifecycleIn(BaseModel):
    """A move in a project's life by DEPP staff (reason required)."""

    action: Literal["suspend", "reinstate", "revoke", "close"]
    reason: str = Field(max_length=ECHO_LIMIT)
    version: int = Field(ge=0, le=10**9)


class OpinionIn(BaseModel):
    """An ethics committee opinion."""

    verdict: Literal["favourable", "reserved", "unfavourable"]
    reference: str = Field(default="", max_length=400)
    comment: str = TEXT


class MembershipRequestIn(BaseModel):
    """Add or remove a member (the principal investigator asks, with a reason)."""

    change: Literal["add", "remove"]
    username: str = Field(max_length=200)
    institution: str = Field(default="", max_length=400)
    reason: str = Field(max_length=ECHO_LIMIT)


class ExtensionRequestIn(BaseModel):
    """Move the end date later (the principal investigator asks, with a reason)."""

    new_end_date: date
    reason: str = Field(max_length=ECHO_LIMIT)


class RequestDecisionIn(BaseModel):
    """DEPP staff decide a membership or extension request (reason required)."""

    decision: Literal["approve", "reject"]
    reason: str = Field(max_length=ECHO_LIMIT)
    version: int = Field(ge=0, le=10**9)


class AgreementIn(BaseModel):
    """The agreement version the member read and accepts."""

    version: str = Field(max_length=40)


class ProjectSummary(BaseModel):
    """A project in a list."""

    id: str
    title: str
    status: str
    principal_investigator: str
    end_date: date
    version: int
    submitted_at: datetime | None


class VariableOut(BaseModel):
    """A requested variable."""

    dataset: str
    variable: str
    justification: str


class MemberOut(BaseModel):
    """A member, with the agreement version they accepted."""

    username: str
    role_in_project: str
    institution: str
    agreement_version: str | None


class ApprovalOut(BaseModel):
    """The approval rule's state for the current review round."""

    complete: bool
    enhanced: bool
    required_approvals: int
    approvers: list[str]
    ethics_verdict: str | None
    missing: list[str]


class ProjectOut(ProjectSummary):
    """A project as the caller may see it, with the moves the caller may make now."""

    summary: str
    scientific_purpose: str
    public_interest: str
    legal_basis: str
    legal_basis_other: str
    population: dict[str, list[Any]]
    ethics_reference: str
    planned_outputs: str
    protocol_sha256: str | None
    members: list[MemberOut]
    variables: list[VariableOut]
    approval: ApprovalOut
    enhanced_reasons: list[str]
    allowed_moves: list[str]


class ProjectList(BaseModel):
    """Projects."""

    projects: list[ProjectSummary]


class ChangeRequestOut(BaseModel):
    """A membership or extension request."""

    id: str
    kind: Literal["membership", "extension"]
    project_id: str
    status: str
    version: int
    requested_by: str
    reason: str
    change: str | None = None
    username: str | None = None
    requested_end_date: date | None = None


class ChangeRequests(BaseModel):
    """Requests waiting for DEPP staff."""

    requests: list[ChangeRequestOut]


class OpinionOut(BaseModel):
    """A recorded ethics opinion, and the project's status once it is recorded (``approved``
    when a favourable opinion was the approval rule's last missing condition)."""

    id: int
    project_id: str
    author: str
    verdict: str
    reference: str
    project_status: str


class RegisterRow(BaseModel):
    """An application in the register."""

    id: str
    title: str
    status: str
    principal_investigator: str
    submitted_at: datetime | None
    end_date: date
    ethics_verdict: str | None
    decisions: int


class Register(BaseModel):
    """A page of the register."""

    applications: list[RegisterRow]
    total: int
    next_offset: int | None


class LedgerOut(BaseModel):
    """A privacy budget: total, spent and remaining (ε, δ as decimal strings)."""

    project_id: str
    dataset_id: str
    total_epsilon: str
    total_delta: str
    spent_epsilon: str
    spent_delta: str
    remaining_epsilon: str
    remaining_delta: str


class Ledgers(BaseModel):
    """Every privacy budget."""

    budgets: list[LedgerOut]


def _summary(p: Any) -> dict[str, Any]:
    return {"id": p.id, "title": p.title, "status": p.status,
            "principal_investigator": p.principal_investigator, "end_date": p.end_date,
            "version": p.version, "submitted_at": p.submitted_at}


def _project_out(request: Request, viewer: Viewer, project_id: str) -> ProjectOut:
    with portal_of(request).enclave.db.sessions() as session:
        view = workflow.view_project(session, viewer.actor, project_id)
        p = view.project
        a = view.approval
        return ProjectOut.model_validate({
            **_summary(p), "summary": p.summary, "scientific_purpose": p.scientific_purpose,
            "public_interest": p.public_interest, "legal_basis": p.legal_basis,
            "legal_basis_other": p.legal_basis_other, "population": view.population,
            "ethics_reference": p.ethics_reference, "planned_outputs": p.planned_outputs,
            "protocol_sha256": p.protocol_sha256,
            "members": [{"username": m.username, "role_in_project": m.role_in_project,
                         "institution": m.institution, "agreement_version": m.agreement_version}
                        for m in view.members],
            "variables": [{"dataset": v.dataset_id, "variable": v.variable,
                           "justification": v.justification} for v in view.variables],
            "approval": {"complete": a.complete, "enhanced": a.enhanced,
                         "required_approvals": a.required_approvals,
                         "approvers": list(a.approvers), "ethics_verdict": a.ethics_verdict,
                         "missing": list(a.missing)},
            "enhanced_reasons": view.enhanced_reasons,
            "allowed_moves": [m.value for m in view.allowed_moves]})


def _request_out(row: Any, kind: str) -> ChangeRequestOut:
    return ChangeRequestOut(
        id=row.id, kind=kind, project_id=row.project_id, status=row.status,  # type: ignore[arg-type]
        version=row.version, requested_by=row.requested_by, reason=row.reason,
        change=getattr(row, "change", None), username=getattr(row, "username", None),
        requested_end_date=getattr(row, "requested_end_date", None))


SIGNED_IN = api_guard(policy.check_log_in)
APPLICANT = api_guard(policy.check_apply_for_project)
STAFF = api_guard(policy.check_open_review_queue)
COMMITTEE = api_guard(policy.check_read_audit)


# -- researchers ----------------------------------------------------------------------------------

@router.get("/projects", response_model=ProjectList, responses=READ,
            operation_id="list_my_projects")
def my_projects(request: Request, viewer: Annotated[Viewer, SIGNED_IN]) -> ProjectList:
    """The projects the caller is a member of, newest first."""
    with portal_of(request).enclave.db.sessions() as session:
        rows = workflow.projects_of(session, viewer.actor)
        return ProjectList.model_validate({"projects": [_summary(p) for p in rows]})


@router.get("/projects/{project_id}", response_model=ProjectOut, responses=READ,
            operation_id="get_project")
def get_project(request: Request, project_id: ID,
                viewer: Annotated[Viewer, SIGNED_IN]) -> ProjectOut:
    """One project as the caller may see it (members, DEPP staff, ethics committee)."""
    return _project_out(request, viewer, project_id)


@router.post("/projects", response_model=ProjectOut, status_code=201, responses=WRITE,
             operation_id="create_application")
def create_application(request: Request, body: NewApplication,
                       viewer: Annotated[Viewer, APPLICANT]) -> Any:
    """Create an application (a draft, or submitted at once with ``submit``)."""
    portal = portal_of(request)

    def call() -> str:
        with portal.enclave.db.transaction() as session:
            project = applications.create_application(
                session, viewer.actor, body.form(), projects_dir=portal.enclave.settings
                .projects_dir, form_key=body.form_key, today=viewer.actor.today)
            if body.submit:
                applications.submit(session, viewer.actor, project.id, version=project.version,
                                    today=viewer.actor.today)
            return project.id

    done = _run(call)
    if isinstance(done, JSONResponse):
        return done
    return JSONResponse(_project_out(request, viewer, done).model_dump(mode="json"),
                        status_code=201)


@router.put("/projects/{project_id}", response_model=ProjectOut, responses=WRITE,
            operation_id="update_application")
def update_application(request: Request, project_id: ID, body: EditedApplication,
                       viewer: Annotated[Viewer, APPLICANT]) -> Any:
    """Replace a draft's (or a returned application's) content, on the version read."""
    portal = portal_of(request)

    def action(session: Session) -> None:
        project = applications.update_application(
            session, viewer.actor, project_id, body.form(), version=body.version,
            projects_dir=portal.enclave.settings.projects_dir, today=viewer.actor.today)
        if body.submit:
            applications.submit(session, viewer.actor, project_id, version=project.version,
                                today=viewer.actor.today)

    return _then_project(request, viewer, project_id, action)


class ProtocolIn(BaseModel):
    """The PDF protocol, base64-encoded, on the version of the application the caller read."""

    version: int = Field(ge=0, le=10**9)
    pdf_base64: str = Field(max_length=PROTOCOL_B64_MAX)


@router.put("/projects/{project_id}/protocol", response_model=ProjectOut, responses=WRITE,
            operation_id="attach_protocol")
def attach_protocol(request: Request, project_id: ID, body: ProtocolIn,
                    viewer: Annotated[Viewer, APPLICANT]) -> Any:
    """Attach (or replace) the application's PDF protocol (checked, stored with its SHA-256)."""
    portal = portal_of(request)
    try:
        data = base64.b64decode(body.pdf_base64, validate=True)
    except (binascii.Error, ValueError):
        return _error(422, "invalid", "pdf_base64 is not base64",
                      [{"field": "protocol", "message": "is not base64"}])

    def action(session: Session) -> None:
        applications.attach_protocol(session, viewer.actor, project_id, data,
                                     version=body.version,
                                     projects_dir=portal.enclave.settings.projects_dir)

    return _then_project(request, viewer, project_id, action)


@router.post("/projects/{project_id}/submission", response_model=ProjectOut, responses=WRITE,
             operation_id="submit_application")
def submit_application(request: Request, project_id: ID, body: VersionIn,
                       viewer: Annotated[Viewer, APPLICANT]) -> Any:
    """Submit a draft, or resubmit an application returned for changes."""
    def action(session: Session) -> None:
        applications.submit(session, viewer.actor, project_id, version=body.version,
                            today=viewer.actor.today)

    return _then_project(request, viewer, project_id, action)


@router.post("/projects/{project_id}/agreement", response_model=ProjectOut, responses=WRITE,
             operation_id="accept_agreement")
def accept_agreement(request: Request, project_id: ID, body: AgreementIn,
                     viewer: Annotated[Viewer, SIGNED_IN]) -> Any:
    """A member accepts the current data-use agreement; the project activates if it can."""
    db = portal_of(request).enclave.db
    done = _run(lambda: accept_agreement_and_activate(db, viewer.actor, project_id,
                                                      body.version))
    return done if isinstance(done, JSONResponse) else _project_out(request, viewer, project_id)


@router.post("/projects/{project_id}/membership-requests", response_model=ChangeRequestOut,
             status_code=201, responses=WRITE, operation_id="request_membership_change")
def request_membership(request: Request, project_id: ID, body: MembershipRequestIn,
                       viewer: Annotated[Viewer, APPLICANT]) -> Any:
    """The principal investigator asks to add or remove a member."""
    portal = portal_of(request)

    def call() -> ChangeRequestOut:
        with portal.enclave.db.transaction() as session:
            row = membership.request_membership_change(
                session, viewer.actor, project_id, change=body.change, username=body.username,
                institution=body.institution, reason=body.reason, today=viewer.actor.today)
            return _request_out(row, "membership")

    done = _run(call)
    return done if isinstance(done, JSONResponse) else JSONResponse(
        done.model_dump(mode="json"), status_code=201)


@router.post("/projects/{project_id}/extension-requests", response_model=ChangeRequestOut,
             status_code=201, responses=WRITE, operation_id="request_extension")
def request_extension(request: Request, project_id: ID, body: ExtensionRequestIn,
                      viewer: Annotated[Viewer, APPLICANT]) -> Any:
    """The principal investigator asks to move the end date later."""
    portal = portal_of(request)

    def call() -> ChangeRequestOut:
        with portal.enclave.db.transaction() as session:
            row = membership.request_extension(session, viewer.actor, project_id,
                                               new_end_date=body.new_end_date,
                                               reason=body.reason, today=viewer.actor.today)
            return _request_out(row, "extension")

    done = _run(call)
    return done if isinstance(done, JSONResponse) else JSONResponse(
        done.model_dump(mode="json"), status_code=201)


# -- DEPP staff -----------------------------------------------------------------------------------

@router.get("/review-queue", response_model=ProjectList, responses=READ,
            operation_id="list_review_queue")
def review_queue(request: Request, viewer: Annotated[Viewer, STAFF],
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> ProjectList:
    """The oldest applications waiting for DEPP staff (never the caller's own projects)."""
    with portal_of(request).enclave.db.sessions() as session:
        rows = decisions.review_queue(session, viewer.actor, limit=limit)
        return ProjectList.model_validate({"projects": [_summary(p) for p in rows]})


@router.post("/projects/{project_id}/decisions", response_model=ProjectOut, responses=WRITE,
             operation_id="decide_application")
def decide(request: Request, project_id: ID, body: DecisionIn,
           viewer: Annotated[Viewer, STAFF]) -> Any:
    """Approve, request changes or reject, with a reason, on the version read."""
    def action(session: Session) -> None:
        decisions.decide_from_queue(session, viewer.actor, project_id, body.decision,
                                    version=body.version, reason=body.reason)

    return _then_project(request, viewer, project_id, action)


@router.post("/projects/{project_id}/lifecycle", response_model=ProjectOut, responses=WRITE,
             operation_id="move_project")
def move(request: Request, project_id: ID, body: LifecycleIn,
         viewer: Annotated[Viewer, STAFF]) -> Any:
    """Suspend, reinstate, revoke or close (extract deleted, key destroyed, certificate)."""
    portal = portal_of(request)

    def action(session: Session) -> None:
        lifecycle_action(portal, viewer.actor, session, project_id, body.action,
                         body.reason, body.version)

    return _then_project(request, viewer, project_id, action)


@router.get("/change-requests", response_model=ChangeRequests, responses=READ,
            operation_id="list_change_requests")
def change_requests(request: Request, viewer: Annotated[Viewer, STAFF]) -> ChangeRequests:
    """Membership and extension requests waiting for DEPP staff."""
    with portal_of(request).enclave.db.sessions() as session:
        members, extensions = membership.pending_requests(session, viewer.actor)
        return ChangeRequests(requests=[_request_out(r, "membership") for r in members]
                              + [_request_out(r, "extension") for r in extensions])


@router.post("/change-requests/{kind}/{request_id}/decision", response_model=ChangeRequestOut,
             responses=WRITE, operation_id="decide_change_request")
def decide_request(request: Request, kind: Literal["membership", "extension"],
                   request_id: ID, body: RequestDecisionIn,
                   viewer: Annotated[Viewer, STAFF]) -> Any:
    """Approve (apply the change, e.g. extend the end date) or reject, with a reason."""
    portal = portal_of(request)

    def call() -> ChangeRequestOut:
        with portal.enclave.db.transaction() as session:
            row = decide_change_request(session, viewer.actor, kind, request_id,
                                        body.decision, body.reason, body.version)
            return _request_out(row, kind)

    return _run(call)


# -- ethics committee and oversight ---------------------------------------------------------------

@router.post("/projects/{project_id}/opinions", response_model=OpinionOut, status_code=201,
             responses=WRITE, operation_id="give_ethics_opinion")
def give_opinion(request: Request, project_id: ID, body: OpinionIn,
                 viewer: Annotated[Viewer, COMMITTEE]) -> Any:
    """Record the ethics committee's opinion on an application awaiting a decision; a
    favourable one that completes the approval rule approves it in the same transaction."""
    portal = portal_of(request)

    def call() -> OpinionOut:
        with portal.enclave.db.transaction() as session:
            row = decisions.record_ethics_opinion(session, viewer.actor, project_id,
                                                  verdict=body.verdict,
                                                  reference=body.reference,
                                                  comment=body.comment)
            session.flush()
            status = workflow.get_project(session, project_id).status
            return OpinionOut(id=row.id, project_id=project_id, author=row.author,
                              verdict=row.verdict, reference=row.reference,
                              project_status=status)

    done = _run(call)
    return done if isinstance(done, JSONResponse) else JSONResponse(
        done.model_dump(mode="json"), status_code=201)


@router.get("/register", response_model=Register, responses=READ,
            operation_id="list_applications")
def applications_register(
        request: Request, viewer: Annotated[Viewer, SIGNED_IN],
        status: Annotated[Literal["draft", "submitted", "in_review", "changes_requested",
                                  "resubmitted", "approved", "active", "suspended", "rejected",
                                  "revoked", "expired", "closed"] | None, Query()] = None,
        offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
        limit: Annotated[int, Query(ge=1, le=register.MAX_PAGE)] = 50) -> Register:
    """Every application, newest first (DEPP staff and the ethics committee)."""
    with portal_of(request).enclave.db.sessions() as session:
        page = register.applications(session, viewer.actor, status=status, limit=limit,
                                     offset=offset)
    return Register.model_validate({"applications": [r.__dict__ for r in page.rows],
                                    "total": page.total, "next_offset": page.next_offset})


@router.get("/privacy-budgets", response_model=Ledgers, responses=READ,
            operation_id="list_privacy_budgets")
def privacy_budgets(request: Request, viewer: Annotated[Viewer, SIGNED_IN]) -> Ledgers:
    """Every project's privacy budget per dataset (DEPP staff and the ethics committee)."""
    rows = budget_ledgers(portal_of(request).enclave.db, viewer.actor)
    return Ledgers(budgets=[LedgerOut(
        project_id=r.project_id, dataset_id=r.dataset_id, total_epsilon=str(r.total_epsilon),
        total_delta=str(r.total_delta), spent_epsilon=str(r.spent_epsilon),
        spent_delta=str(r.spent_delta), remaining_epsilon=str(r.remaining_epsilon),
        remaining_delta=str(r.remaining_delta)) for r in rows])

