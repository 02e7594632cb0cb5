"""In headless Chromium, through the real hub: two disclosure controllers approve an output
request blind, one releases it, and the requester downloads the signed package.

Uses Debian's chromium through Playwright, as ``tests/portal/test_browser.py`` does; skipped
with the reason when either is missing, unless ``ENCLAVE_REQUIRE_BROWSER=1``.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from enclave.core import people, policy
from enclave.core.policy import Role
from output_control.review import workflow as outputs
from output_control.review.models import OutputRequest
from tests.portal.conftest import PASSWORDS as HUB_PASSWORDS
from tests.portal.conftest import LiveHub
from tests.workflows.factories import OUTPUT_NAME, Factory, Person

pytestmark = pytest.mark.slow
CONTROLLERS = {"emma": "emma-outputs-pass-1", "farid": "farid-outputs-pass-1"}
PASSWORDS = {**CONTROLLERS, **HUB_PASSWORDS}  # accounts the hub fixture made keep theirs


def _request_in_live_hub(live_hub: LiveHub) -> str:
    """Two controllers with passwords, DEPP staff, an active project of alice and bruno, and
    alice's output request, all made by the workflows in the hub's own enclave."""
    enclave = live_hub.enclave
    with enclave.db.transaction() as session:
        existing = set(session.execute(select(people.User.username)).scalars())
        for username, password in CONTROLLERS.items():
            if username in existing:
                continue
            people.create_user(session, policy.SYSTEM, username, username.title(),
                               roles=[Role.OUTPUT_CHECKER], password=password)
    factory = Factory(enclave)
    if "claire" not in existing:  # DEPP staff approve and build the project's extract
        factory.create_people([Person("claire", (Role.DEPP_STAFF,), accredited=False)])
    project_id = factory.project(factory_active(), members=("bruno",))
    return factory.output_request(project_id=project_id)


def factory_active() -> Any:
    """The project status whose members may ask for outputs."""
    from access_requests.workflow import ProjectStatus

    return ProjectStatus.ACTIVE


def _log_in(browser: Any, live_hub: LiveHub, username: str,
            problems: list[str]) -> tuple[Any, Any]:
    context = browser.new_context(locale="fr-FR", accept_downloads=True)
    page = context.new_page()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.set_default_timeout(20_000)
    page.goto(f"{live_hub.url}/services/portal/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORDS[username])
    page.click("[type=submit]")
    page.wait_for_url("**/services/portal/**")
    return context, page


def _approve(browser: Any, live_hub: LiveHub, who: str, request_id: str,
             problems: list[str]) -> Any:
    context, page = _log_in(browser, live_hub, who, problems)
    page.get_by_role("link", name="Contrôle des sorties").first.click()
    page.wait_for_url("**/services/portal/outputs/queue")
    row = page.locator("#table-controle tbody tr", has_text=request_id)
    assert "À voter" in row.inner_text()
    row.get_by_role("link", name="Ouvrir").click()
    page.wait_for_url(f"**/outputs/{request_id}")
    assert page.get_by_text(OUTPUT_NAME).first.is_visible()
    votes = page.locator("#votes")
    assert votes.count() == 0 or who not in votes.inner_text()  # nothing seen before voting
    page.click("label[for=decision-0-approve]")  # DSFR draws the radio on its label
    page.click("#voter")
    page.wait_for_url(f"**/outputs/{request_id}?done=voted")
    assert "Votre vote est enregistré." in page.locator("#avis-sortie").inner_text()
    return context, page


def test_two_controllers_approve_and_the_requester_downloads_the_release(
        browser: Any, live_hub: LiveHub, tmp_path: Path) -> None:
    request_id = _request_in_live_hub(live_hub)
    problems: list[str] = []

    first, page = _approve(browser, live_hub, "emma", request_id, problems)
    assert page.locator("#publier").count() == 0  # one approval is not enough
    first.close()
    second, page = _approve(browser, live_hub, "farid", request_id, problems)
    assert page.locator("#statut-demande").text_content().strip() == "Approuvée"
    assert "emma" in page.locator("#votes").inner_text()  # both in: votes now visible
    page.click("#publier")
    page.wait_for_url(f"**/outputs/{request_id}?done=released")
    assert page.locator("#statut-demande").text_content().strip() == "Publiée"
    second.close()

    context, page = _log_in(browser, live_hub, "alice", problems)
    page.get_by_role("link", name="Mes demandes de sortie").first.click()
    page.wait_for_url("**/services/portal/outputs")
    page.locator("#table-mes-sorties tbody tr", has_text=request_id) \
        .get_by_role("link", name="Ouvrir").click()
    page.wait_for_url(f"**/outputs/{request_id}")
    with page.expect_download() as info:
        page.click("#telecharger")
    saved = tmp_path / "paquet.zip"
    info.value.save_as(saved)
    with zipfile.ZipFile(io.BytesIO(saved.read_bytes())) as archive:
        names = set(archive.namelist())
        manifest = archive.read(f"{request_id}/manifest.json")
    assert f"{request_id}/files/{OUTPUT_NAME}" in names
    assert b'"released_by":"farid"' in manifest
    context.close()

    with live_hub.enclave.db.sessions() as session:
        request = session.execute(select(OutputRequest).where(OutputRequest.id == request_id)
                                  ).scalar_one()
        assert request.status == outputs.RequestStatus.RELEASED
    assert problems == [], problems  # no CSP violation, no script error
