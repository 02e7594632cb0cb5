"""Pages backed by the core: the role-aware home, the dataset catalogue and "my account"."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from enclave.core import policy
from enclave.core.catalogue import VariableKind
from enclave.portal import queries
from enclave.portal.extensions import Entry, Extension
from enclave.portal.runtime import portal_of
from enclave.portal.viewer import Viewer, page_guard

router = APIRouter()

#: DSFR badge modifier of each variable kind: the closer to a person, the stronger the colour.
KIND_BADGES = {VariableKind.DIRECT_IDENTIFIER.value: "fr-badge--error",
               VariableKind.QUASI_IDENTIFIER.value: "fr-badge--warning",
               VariableKind.SENSITIVE.value: "fr-badge--purple-glycine",
               VariableKind.OTHER.value: ""}


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def home(request: Request, viewer: Annotated[Viewer, page_guard(policy.check_log_in)]
         ) -> HTMLResponse:
    """The dashboard: what this person may do here, and what needs their attention."""
    portal = portal_of(request)
    activity = portal.activity.snapshot() if policy.can_read_audit(viewer.actor) else None
    with portal.enclave.db.sessions() as session:
        account = queries.account(session, viewer.actor.username, viewer.actor.today)
    return portal.renderer.page(request, viewer, "home.html", "home.title",
                                tiles=portal.renderer.visible_tiles(viewer), account=account,
                                activity=activity)


@router.get("/catalogue", response_class=HTMLResponse, include_in_schema=False)
def catalogue(request: Request,
              viewer: Annotated[Viewer, page_guard(policy.check_view_catalogue)]
              ) -> HTMLResponse:
    """Every dataset of the catalogue with its variables' kinds."""
    portal = portal_of(request)
    with portal.enclave.db.sessions() as session:
        rows = queries.datasets(session)
    return portal.renderer.page(request, viewer, "catalogue.html", "catalogue.title",
                                datasets=rows, badges=KIND_BADGES)


@router.get("/catalogue/{dataset_id}", response_class=HTMLResponse, include_in_schema=False)
def dataset(request: Request, dataset_id: str,
            viewer: Annotated[Viewer, page_guard(policy.check_view_catalogue)]
            ) -> HTMLResponse:
    """One dataset: its description and every variable with its kind and French label."""
    portal = portal_of(request)
    with portal.enclave.db.sessions() as session:
        summary, variables = queries.dataset(session, dataset_id)
    return portal.renderer.page(request, viewer, "dataset.html", "dataset.title",
                                dataset=summary, variables=variables, badges=KIND_BADGES,
                                kinds=[k.value for k in VariableKind])


@router.get("/account", response_class=HTMLResponse, include_in_schema=False)
def account(request: Request, viewer: Annotated[Viewer, page_guard(policy.check_log_in)]
            ) -> HTMLResponse:
    """My account: roles and accreditation with its expiry."""
    portal = portal_of(request)
    with portal.enclave.db.sessions() as session:
        mine = queries.account(session, viewer.actor.username, viewer.actor.today)
    return portal.renderer.page(request, viewer, "account.html", "account.title",
                                account=mine, warning_days=queries.EXPIRY_WARNING_DAYS)


HOME = Extension("home", pages=router, menu=(
    Entry("nav.home", "", policy.can_log_in, order=0),
    Entry("nav.catalogue", "catalogue", policy.can_view_catalogue, order=10),
    Entry("nav.account", "account", policy.can_log_in, order=90),
), tiles=(
    Entry("nav.catalogue", "catalogue", policy.can_view_catalogue, "tile.catalogue", order=10),
    Entry("nav.account", "account", policy.can_log_in, "tile.account", order=90),
))
