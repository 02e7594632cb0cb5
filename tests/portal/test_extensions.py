"""Workflow pages plug in as extensions: menu, tiles, templates, messages, CSRF, policy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from enclave.core import policy
from enclave.core.exceptions import SettingsError
from enclave.portal.app import create_app
from enclave.portal.extensions import Entry, Extension
from enclave.portal.runtime import portal_of
from enclave.portal.service import load_extensions
from enclave.portal.viewer import Viewer, page_guard
from tests.portal.factories import PREFIX, SECRET, FakeHub, Portal

router = APIRouter()
DECISIONS: list[str] = []


@router.get("/applications", response_class=HTMLResponse)
def applications(request: Request,
                 viewer: Annotated[Viewer, page_guard(policy.check_log_in)]) -> HTMLResponse:
    """A page of the extension, rendered with its own template inside the portal's layout."""
    return portal_of(request).renderer.page(request, viewer, "applications.html",
                                            "applications.title")


@router.post("/applications/{project}/decide")
def decide(project: str, viewer: Annotated[Viewer, page_guard(policy.check_log_in)]) -> str:
    """An object-level rule checked inside the route, as workflow pages will do."""
    policy.check_decide_on_project(viewer.actor, members=["alice"])
    DECISIONS.append(project)
    return "decided"


def _extension(tmp_path: Path) -> Extension:
    (tmp_path / "applications.html").write_text(
        '{% extends "base.html" %}{% block content %}<h1>{{ t("applications.title") }}</h1>'
        "{% endblock %}", encoding="utf-8")
    return Extension("applications", pages=router, menu=(
        Entry("applications.title", "applications", policy.can_apply_for_project, order=20),),
        messages={"fr": {"applications.title": "Demandes d'accès"},
                  "en": {"applications.title": "Access applications"}},
        templates=tmp_path)


@pytest.fixture
def plugged(portal: Portal, tmp_path: Path) -> Portal:
    portal.app = create_app(portal.enclave, portal.hub, secret=SECRET,
                            extensions=[_extension(tmp_path)])
    return portal


def test_an_extension_adds_a_page_to_the_menu_of_whom_the_policy_lets_in(
        plugged: Portal) -> None:
    page = plugged.client("alice").get("applications")
    assert page.status_code == 200 and "<h1>Demandes d&#39;accès</h1>" in page.text
    assert f'href="{PREFIX}applications" aria-current="page"' in page.text
    staff = plugged.client("claire").get("").text
    assert f'href="{PREFIX}applications"' not in staff  # claire may not apply


def test_an_extensions_forms_get_the_csrf_check_and_its_routes_the_policy(
        plugged: Portal) -> None:
    DECISIONS.clear()
    claire = plugged.client("claire")
    assert claire.post("applications/prj-1/decide", token=False).status_code == 403
    assert claire.post("applications/prj-1/decide").status_code == 200
    alice = plugged.client("alice")
    refused = alice.post("applications/prj-1/decide")
    assert refused.status_code == 403 and "needs the role depp_staff" in refused.text
    assert DECISIONS == ["prj-1"]


def test_the_service_loads_extensions_by_name() -> None:
    assert load_extensions(("enclave.portal.pages_audit:AUDIT",))[0].name == "audit"
    with pytest.raises(SettingsError, match="not a portal Extension"):
        load_extensions(("enclave.portal.pages_audit:router",))


def test_an_extension_without_its_rules_cannot_start(portal: Portal) -> None:
    bare = APIRouter()

    @bare.post("/open")
    def open_door() -> str:
        return "open"

    with pytest.raises(RuntimeError, match="declares no policy rule"):
        create_app(portal.enclave, FakeHub(), secret=SECRET,
                   extensions=[Extension("bare", pages=bare)])

