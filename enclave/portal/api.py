"""The REST API (``<prefix>api/v1``): the same read model and the same policy rules as the pages.

Callers authenticate with a hub token (``Authorization: Bearer <token>``) that carries the
portal's access scope; cookies are ignored, so no API call can be forged from another site.
Errors are JSON: ``{"error": {"code", "message", "fields"}}``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from enclave.core import policy
from enclave.portal import actions, queries
from enclave.portal.forms import parse_audit_filter
from enclave.portal.runtime import portal_of
from enclave.portal.viewer import Viewer, api_guard

router = APIRouter()


class FieldError(BaseModel):
    """What is wrong with one input."""

    field: str
    message: str


class ErrorBody(BaseModel):
    """An error: a stable code, a message stating the rule, and field errors if any."""

    code: str
    message: str
    fields: list[FieldError] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    """Every API error has this shape."""

    error: ErrorBody


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {401: "No valid hub token", 403: "Refused by the hub or the enclave's policy",
            404: "No such object", 422: "Invalid parameters",
            502: "The hub could not be reached"}
    return {code: {"model": ErrorResponse, "description": text[code]} for code in codes}


COMMON = _errors(401, 403, 422, 502)
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"  # control characters are refused, as in the pages' form


class Me(BaseModel):
    """The caller as the enclave knows them."""

    username: str
    display_name: str
    roles: list[str]
    accredited_until: date | None
    accredited: bool


class VariableOut(BaseModel):
    """A catalogued variable."""

    name: str
    label: str
    type: str
    kind: Literal["direct_identifier", "quasi_identifier", "sensitive", "other"]
    description: str


class DatasetOut(BaseModel):
    """A catalogued dataset."""

    id: str
    label: str
    description: str
    unit: str
    provider: str
    synthetic: bool
    rows: int
    loaded_at: datetime
    variables_by_kind: dict[str, int]


class DatasetDetail(DatasetOut):
    """A dataset with its variables in column order."""

    variables: list[VariableOut]


class Catalogue(BaseModel):
    """The whole catalogue."""

    datasets: list[DatasetOut]


class AuditEventOut(BaseModel):
    """An event of the audit chain as stored."""

    seq: int
    at: str
    actor: str
    action: str
    object_type: str
    object_id: str
    project_id: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditEvents(BaseModel):
    """A page of events, newest first; pass ``next_before`` as ``before`` for the next one."""

    events: list[AuditEventOut]
    total: int
    next_before: int | None
    filter: dict[str, str]


class Verification(BaseModel):
    """The result of verifying the chain."""

    ok: bool
    events: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None
    reason: str
    checkpoint_seq: int | None
    description: str


def _dataset(summary: queries.DatasetSummary) -> dict[str, Any]:
    return {"id": summary.id, "label": summary.label, "description": summary.description,
            "unit": summary.unit, "provider": summary.provider, "synthetic": summary.synthetic,
            "rows": summary.rows, "loaded_at": summary.loaded_at,
            "variables_by_kind": summary.kinds}


@router.get("/me", response_model=Me, responses=COMMON, operation_id="get_me")
def me(request: Request, viewer: Annotated[Viewer, api_guard(policy.check_log_in)]) -> Me:
    """Who the token belongs to, their roles and accreditation."""
    actor = viewer.actor
    return Me(username=actor.username, display_name=viewer.display_name,
              roles=sorted(r.value for r in actor.roles), accredited_until=actor.accredited_until,
              accredited=actor.accredited)


@router.get("/catalogue", response_model=Catalogue, responses=COMMON,
            operation_id="list_datasets")
def catalogue(request: Request,
              viewer: Annotated[Viewer, api_guard(policy.check_view_catalogue)]) -> Catalogue:
    """Every catalogued dataset (metadata only, never data)."""
    with portal_of(request).enclave.db.sessions() as session:
        rows = queries.datasets(session)
    return Catalogue.model_validate({"datasets": [_dataset(r) for r in rows]})


@router.get("/catalogue/{dataset_id}", response_model=DatasetDetail,
            responses={**COMMON, **_errors(404)}, operation_id="get_dataset")
def dataset(request: Request, dataset_id: Annotated[str, Path(max_length=100)],
            viewer: Annotated[Viewer, api_guard(policy.check_view_catalogue)]) -> DatasetDetail:
    """One dataset with its variables and their kinds."""
    with portal_of(request).enclave.db.sessions() as session:
        summary, variables = queries.dataset(session, dataset_id)
    return DatasetDetail.model_validate({**_dataset(summary), "variables": [
        v.__dict__ for v in variables]})


@router.get("/audit/events", response_model=AuditEvents, responses=COMMON,
            operation_id="list_audit_events")
def audit_events(request: Request,
                 viewer: Annotated[Viewer, api_guard(policy.check_read_audit)],
                 actor: Annotated[str | None, Query(max_length=200, pattern=PRINTABLE)] = None,
                 project: Annotated[str | None, Query(max_length=100, pattern=PRINTABLE)] = None,
                 action: Annotated[str | None, Query(max_length=100, pattern=PRINTABLE,
                                                     description="exact, or 'family.*'")] = None,
                 date_from: Annotated[date | None, Query(description="UTC day, included")] = None,
                 date_to: Annotated[date | None, Query(
                     description="UTC day, included; not before date_from (else 422)")] = None,
                 before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
                 limit: Annotated[int, Query(ge=1, le=500)] = 50) -> AuditEvents:
    """Events of the trail matching the filter, newest first (ethics committee, admins)."""
    form = parse_audit_filter({
        "actor": actor or "", "project": project or "", "action": action or "",
        "date_from": date_from.isoformat() if date_from else "",
        "date_to": date_to.isoformat() if date_to else ""})
    if form.errors:
        raise RequestValidationError([{"loc": ("query", name), "msg": key, "type": "value_error"}
                                      for name, key in form.errors.items()])
    portal = portal_of(request)
    within = portal.activity.seq_range(form.filter.date_from, form.filter.date_to)
    with portal.enclave.db.sessions() as session:
        page = queries.audit_page(session, form.filter, before=before, size=limit,
                                  counter=portal.counter, seq_range=within)
    return AuditEvents.model_validate({
        "events": [{**{k: v for k, v in row.__dict__.items() if k != "details"},
                    "details": row.details_dict()} for row in page.events],
        "total": page.total, "next_before": page.older_before,
        "filter": form.filter.params()})


@router.post("/audit/verification", response_model=Verification, responses=_errors(401, 403, 502),
             operation_id="verify_audit_chain")
def verify(request: Request,
           viewer: Annotated[Viewer, api_guard(policy.check_verify_audit)]) -> Verification:
    """Verify every link of the chain and its last signed checkpoint (recorded in the chain)."""
    result = actions.verify_chain(portal_of(request).enclave, viewer.actor, via="api")
    return Verification(ok=result.ok, events=result.events, head_seq=result.head_seq,
                        head_hash=result.head_hash, first_bad_seq=result.first_bad_seq,
                        reason=result.reason, checkpoint_seq=result.checkpoint_seq,
                        description=result.describe())
