"""Every page and API call x every kind of person: allowed or denied, as a truth table.

The expectations are written out here (not recomputed from the policy), so a change of rule
shows up as a failing row. A second table proves each route consults the rule it should.
"""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import iter_route_contexts

from enclave.core import policy
from enclave.portal.app import create_app
from enclave.portal.extensions import Extension
from enclave.portal.viewer import Viewer, check_routes, page_guard
from tests.portal.factories import PREFIX, SECRET, FakeHub, Portal

PEOPLE = ("alice", "newbie", "claire", "emma", "gaelle", "admin", "depot", "norole", "ghost")
Y, N = 200, 403

#: page -> expected status for each person of PEOPLE, in order.
PAGES = {
    "":                  (Y, N, Y, Y, Y, Y, Y, N, N),
    "catalogue":         (Y, Y, Y, Y, Y, Y, Y, N, N),
    "catalogue/eleves":  (Y, Y, Y, Y, Y, Y, Y, N, N),
    "account":           (Y, N, Y, Y, Y, Y, Y, N, N),
    "audit":             (N, N, N, N, Y, Y, N, N, N),
    "audit/export.csv":  (N, N, N, N, Y, Y, N, N, N),
    "audit/verify":      (N, N, N, N, Y, Y, N, N, N),
    "activity":          (N, N, N, N, Y, Y, N, N, N),
    "projects":          (Y, N, Y, Y, Y, Y, Y, N, N),
    "review":            (N, N, Y, N, N, N, N, N, N),
    "apply":             (Y, N, N, N, N, N, N, N, N),
    "requests":          (N, N, Y, N, N, N, N, N, N),
    "register":          (N, N, Y, N, Y, N, N, N, N),
    "privacy":           (N, N, Y, N, Y, N, N, N, N),
}
API = {
    "me":                (Y, N, Y, Y, Y, Y, Y, N, N),
    "catalogue":         (Y, Y, Y, Y, Y, Y, Y, N, N),
    "catalogue/eleves":  (Y, Y, Y, Y, Y, Y, Y, N, N),
    "audit/events":      (N, N, N, N, Y, Y, N, N, N),
    "projects":          (Y, N, Y, Y, Y, Y, Y, N, N),
    "review-queue":      (N, N, Y, N, N, N, N, N, N),
    "change-requests":   (N, N, Y, N, N, N, N, N, N),
    "register":          (N, N, Y, N, Y, N, N, N, N),
    "privacy-budgets":   (N, N, Y, N, Y, N, N, N, N),
}
#: route -> the policy rule its guard must call.
RULES = {
    "GET ": policy.check_log_in,
    "GET catalogue": policy.check_view_catalogue,
    "GET catalogue/{dataset_id}": policy.check_view_catalogue,
    "GET account": policy.check_log_in,
    "GET audit": policy.check_read_audit,
    "GET audit/export.csv": policy.check_read_audit,
    "GET audit/verify": policy.check_verify_audit,
    "POST audit/verify": policy.check_verify_audit,
    "GET activity": policy.check_read_audit,
    "POST lang": policy.check_log_in,
    "GET projects": policy.check_log_in,
    "GET projects/{project_id}": policy.check_log_in,
    "POST projects/{project_id}/agreement": policy.check_log_in,
    "GET review": policy.check_open_review_queue,
    "GET review/{project_id}": policy.check_open_review_queue,
    "POST review/{project_id}": policy.check_open_review_queue,
    "GET apply": policy.check_apply_for_project,
    "POST apply": policy.check_apply_for_project,
    "GET projects/{project_id}/edit": policy.check_apply_for_project,
    "POST projects/{project_id}/edit": policy.check_apply_for_project,
    "POST projects/{project_id}/submit": policy.check_apply_for_project,
    "GET projects/{project_id}/changes": policy.check_apply_for_project,
    "POST projects/{project_id}/changes/membership": policy.check_apply_for_project,
    "POST projects/{project_id}/changes/extension": policy.check_apply_for_project,
    "GET manage/{project_id}": policy.check_open_review_queue,
    "POST manage/{project_id}/{action}": policy.check_open_review_queue,
    "GET requests": policy.check_open_review_queue,
    "POST requests/{kind}/{request_id}": policy.check_open_review_queue,
    "GET register": policy.check_log_in,
    "GET ethics/{project_id}/opinion": policy.check_read_audit,
    "POST ethics/{project_id}/opinion": policy.check_read_audit,
    "GET privacy": policy.check_log_in,
    "GET privacy/{project_id}/{dataset_id}": policy.check_log_in,
    "GET api/v1/projects": policy.check_log_in,
    "GET api/v1/projects/{project_id}": policy.check_log_in,
    "POST api/v1/projects": policy.check_apply_for_project,
    "PUT api/v1/projects/{project_id}": policy.check_apply_for_project,
    "POST api/v1/projects/{project_id}/submission": policy.check_apply_for_project,
    "PUT api/v1/projects/{project_id}/protocol": policy.check_apply_for_project,
    "POST api/v1/projects/{project_id}/agreement": policy.check_log_in,
    "POST api/v1/projects/{project_id}/membership-requests": policy.check_apply_for_project,
    "POST api/v1/projects/{project_id}/extension-requests": policy.check_apply_for_project,
    "GET api/v1/review-queue": policy.check_open_review_queue,
    "POST api/v1/projects/{project_id}/decisions": policy.check_open_review_queue,
    "POST api/v1/projects/{project_id}/lifecycle": policy.check_open_review_queue,
    "GET api/v1/change-requests": policy.check_open_review_queue,
    "POST api/v1/change-requests/{kind}/{request_id}/decision": policy.check_open_review_queue,
    "POST api/v1/projects/{project_id}/opinions": policy.check_read_audit,
    "GET api/v1/register": policy.check_log_in,
    "GET api/v1/privacy-budgets": policy.check_log_in,
    "GET api/v1/me": policy.check_log_in,
    "GET api/v1/catalogue": policy.check_view_catalogue,
    "GET api/v1/catalogue/{dataset_id}": policy.check_view_catalogue,
    "GET api/v1/audit/events": policy.check_read_audit,
    "POST api/v1/audit/verification": policy.check_verify_audit,
    "GET api/v1/openapi.json": policy.check_log_in,
}
PUBLIC = {"GET oauth_callback", "POST logout", "GET healthz"}
#: Route prefixes whose truth tables live in another test module (output review pages).
OWNED_ELSEWHERE = ("outputs", "api/v1/outputs")


def _cases(table: dict[str, tuple[int, ...]]) -> list[tuple[str, str, int]]:
    return [(path, who, expected[i]) for path, expected in table.items()
            for i, who in enumerate(PEOPLE)]


@pytest.mark.parametrize(("path", "who", "expected"), _cases(PAGES))
def test_page_matrix(shared_portal: Portal, path: str, who: str, expected: int) -> None:
    response = shared_portal.client(who).get(path)
    assert response.status_code == expected, response.text[:500]
    if expected == N:
        assert "Accès refusé" in response.text
        assert "Motif" in response.text  # the policy's reason is shown


@pytest.mark.parametrize(("path", "who", "expected"), _cases(API))
def test_api_matrix(shared_portal: Portal, path: str, who: str, expected: int) -> None:
    response = shared_portal.client().http.get(PREFIX + "api/v1/" + path,
                                               headers=shared_portal.bearer(who))
    assert response.status_code == expected, response.text
    if expected == N:
        assert response.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("who", PEOPLE)
def test_verify_action_matrix(portal: Portal, who: str) -> None:
    before = portal.head_seq()
    allowed = who in ("gaelle", "admin")
    browser = portal.client(who)
    assert browser.post("audit/verify").status_code == (Y if allowed else N)
    api = portal.client().http.post(PREFIX + "api/v1/audit/verification",
                                    headers=portal.bearer(who))
    assert api.status_code == (Y if allowed else N)
    assert portal.head_seq() == before + (2 if allowed else 0)  # each verification recorded


def test_tiles_and_menu_follow_the_policy(portal: Portal) -> None:
    ethics = portal.client("gaelle").get("").text
    researcher = portal.client("alice").get("").text
    for href in ("audit", "activity", "audit/verify"):
        assert f'href="{PREFIX}{href}"' in ethics
        assert f'href="{PREFIX}{href}"' not in researcher
    assert f'href="{PREFIX}catalogue"' in researcher


def _rule_of(route: object) -> object:
    stack = list(route.dependant.dependencies)  # type: ignore[attr-defined]
    while stack:
        dep = stack.pop()
        rule = getattr(dep.call, "__policy_check__", None)
        if rule is not None:
            return rule
        stack.extend(dep.dependencies)
    return None


def test_every_route_consults_its_rule(portal: Portal) -> None:
    found = {}
    for route in iter_route_contexts(portal.app.routes):
        if getattr(route, "dependant", None) is None:
            continue
        for method in route.methods or ():
            found[f"{method} {str(route.path).removeprefix(PREFIX)}"] = _rule_of(route)
    assert {k for k, v in found.items() if v is None} == PUBLIC
    # the disclosure controllers' pages are tabled by their own tests (tests/portal/test_outputs*)
    elsewhere = {k for k in found if k.split(" ", 1)[1].startswith(OWNED_ELSEWHERE)}
    assert {k: v for k, v in found.items() if v is not None and k not in elsewhere} == RULES
    assert portal.app.state.checked_routes == len(RULES) + len(PUBLIC) + len(elsewhere)


def _extension_app(portal: Portal, router: APIRouter, api: bool = False) -> FastAPI:
    ext = Extension("bad", api=router) if api else Extension("bad", pages=router)
    return create_app(portal.enclave, FakeHub(), secret=SECRET, extensions=[ext])


def test_a_route_without_a_policy_rule_stops_the_app(portal: Portal) -> None:
    router = APIRouter()

    @router.get("/leak")
    def leak() -> str:
        return "everything"

    with pytest.raises(RuntimeError, match="leak declares no policy rule"):
        _extension_app(portal, router)
    with pytest.raises(RuntimeError, match="leak declares no policy rule"):
        _extension_app(portal, router, api=True)


def test_an_api_route_reading_cookies_stops_the_app(portal: Portal) -> None:
    router = APIRouter()

    @router.get("/mixed")
    def mixed(viewer: Annotated[Viewer, page_guard(policy.check_log_in)]) -> str:
        return viewer.actor.username

    with pytest.raises(RuntimeError, match="reads the session cookie"):
        _extension_app(portal, router, api=True)


def test_check_routes_sees_router_level_dependencies(portal: Portal) -> None:
    assert check_routes(portal.app, portal.app.state.portal) == portal.app.state.checked_routes


def test_a_page_form_without_the_csrf_check_stops_the_app(portal: Portal) -> None:
    app = FastAPI()

    @app.post(PREFIX + "unsafe")
    def unsafe(viewer: Annotated[Viewer, page_guard(policy.check_log_in)]) -> str:
        return "changed"

    with pytest.raises(RuntimeError, match="without the CSRF check"):
        check_routes(app, portal.app.state.portal)
