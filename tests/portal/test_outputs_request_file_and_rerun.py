"""The portal's button to submit the ``release_request.json`` a notebook wrote (with exception
requests shown to controllers next to the rule they concern), and the controllers' re-run
button with its recorded comparison; each for the roles that may and may not, with CSRF."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from enclave.core.context import Enclave
from enclave.core.settings import load_settings
from output_control.request_manifest import write_request
from output_control.review.models import OutputRequest, Rerun
from tests.portal.factories import XSS, Portal
from tests.sandbox.conftest import sandbox_ready
from tests.workflows.factories import OUTPUT_NAME, Factory
from tests.workflows.factories import PEOPLE as WORKFLOW_PEOPLE
from tests.workflows.test_output_rerun import NOTEBOOK
from tests.workflows.test_output_rerun import _submitted as submitted_by_notebook

EXTRA = ("bruno", "dora", "oscar", "farid", "hugo")
__all__ = ["sandbox_ready"]
REASON = "Les effectifs faibles sont publics dans l'annuaire des écoles, voir l'annexe 2."


@pytest.fixture(scope="module")
def setup(golden_home: Path, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[Portal, Factory]]:
    """One portal for the module; each test makes its own project and files."""
    import shutil

    home = tmp_path_factory.mktemp("portal-request-file") / "var"
    shutil.copytree(golden_home, home)
    enclave = Enclave.open(load_settings(env={}, home=home), env={})
    factory = Factory(enclave)
    factory.create_people(p for p in WORKFLOW_PEOPLE if p.username in EXTRA)
    yield Portal(enclave), factory
    enclave.close()


def _project_with_request_file(factory: Factory) -> str:
    project_id = factory.active_project()
    factory.output_file(project_id, per_cell=3)  # 3 pupils per cell: minimum_count fails
    write_request({OUTPUT_NAME: ("Tableau 1 " + XSS,
                                 {"rules": ["minimum_count"], "reason": REASON})},
                  "Résultats de l'étude", outputs_dir=factory.outputs_dir(project_id))
    return project_id


def _requests(factory: Factory, project_id: str) -> int:
    with factory.enclave.db.sessions() as session:
        return int(session.execute(select(func.count()).select_from(OutputRequest).where(
            OutputRequest.project_id == project_id)).scalar_one())


def _reruns(factory: Factory, request_id: str) -> int:
    with factory.enclave.db.sessions() as session:
        return int(session.execute(select(func.count()).select_from(Rerun).where(
            Rerun.request_id == request_id)).scalar_one())


@pytest.mark.parametrize(("who", "sees"), [("alice", True), ("bruno", True), ("rita", False),
                                           ("emma", False)])
def test_members_see_the_request_file_with_its_button(
        setup: tuple[Portal, Factory], who: str, sees: bool) -> None:
    portal, factory = setup
    project_id = _project_with_request_file(factory)
    page = portal.client(who).get("outputs")
    if page.status_code == 403:
        assert not sees
        return
    assert (f'id="deposer-{project_id}"' in page.text) is sees
    if sees:
        assert REASON.replace("'", "&#39;") in page.text and XSS not in page.text


def test_submitting_the_request_file_shows_the_exception_next_to_its_rule(
        setup: tuple[Portal, Factory]) -> None:
    portal, factory = setup
    project_id = _project_with_request_file(factory)
    done = portal.client("alice").post("outputs/submit-request-file",
                                       {"project_id": project_id})
    assert done.status_code == 303 and done.headers["location"].endswith("?done=submitted")
    request_id = done.headers["location"].rsplit("/", 1)[1].split("?")[0]
    html = portal.client("emma").get(f"outputs/{request_id}").text
    rules = html.split("<caption>Règles non satisfaites</caption>", 1)[1]
    row = rules.split("<td><code>minimum_count</code></td>", 1)[1].split("</tr>", 1)[0]
    assert 'class="portal-pre exception-demandee"' in row
    assert REASON.replace("'", "&#39;") in row
    assert XSS not in html


@pytest.mark.parametrize("who", ["rita", "emma", "dora", "gaelle"])
def test_others_cannot_submit_a_projects_request_file(setup: tuple[Portal, Factory],
                                                      who: str) -> None:
    portal, factory = setup
    project_id = _project_with_request_file(factory)
    response = portal.client(who).post("outputs/submit-request-file", {"project_id": project_id})
    assert response.status_code == 403
    assert _requests(factory, project_id) == 0


def test_submitting_without_the_csrf_token_changes_nothing(
        setup: tuple[Portal, Factory]) -> None:
    portal, factory = setup
    project_id = _project_with_request_file(factory)
    response = portal.client("alice").post("outputs/submit-request-file",
                                           {"project_id": project_id}, token=False)
    assert response.status_code == 403
    assert _requests(factory, project_id) == 0


def test_a_malformed_request_file_is_shown_and_refused(setup: tuple[Portal, Factory]) -> None:
    portal, factory = setup
    project_id = factory.active_project()
    factory.output_file(project_id)
    (factory.outputs_dir(project_id) / "release_request.json").write_text("{cassé")
    alice = portal.client("alice")
    page = alice.get("outputs").text
    assert "ne peut pas être déposé" in page and f'id="deposer-{project_id}"' not in page
    response = alice.post("outputs/submit-request-file", {"project_id": project_id})
    assert response.status_code == 400 and "not valid JSON" in response.text
    assert _requests(factory, project_id) == 0


@pytest.mark.parametrize(("who", "button"), [("emma", True), ("gaelle", False),
                                             ("alice", False), ("oscar", False)])
def test_the_rerun_button_is_for_controllers_outside_the_project(
        setup: tuple[Portal, Factory], who: str, button: bool) -> None:
    portal, factory = setup
    request_id = factory.output_request()
    page = portal.client(who).get(f"outputs/{request_id}").text
    assert ('id="reexecuter"' in page) is button


def test_a_rerun_is_recorded_and_shown_and_refused_to_others(
        setup: tuple[Portal, Factory]) -> None:
    portal, factory = setup
    request_id = factory.output_request()  # a table written outside any notebook
    for who in ("alice", "oscar", "gaelle"):
        assert portal.client(who).post(f"outputs/{request_id}/rerun").status_code == 403
    assert portal.client("emma").post(f"outputs/{request_id}/rerun",
                                      token=False).status_code == 403
    assert _reruns(factory, request_id) == 0
    done = portal.client("emma").post(f"outputs/{request_id}/rerun")
    assert done.status_code == 303 and done.headers["location"].endswith("?done=rerun")
    assert _reruns(factory, request_id) == 1
    page = portal.client("farid").get(f"outputs/{request_id}").text
    table = page.split('id="titre-reexecution"', 1)[1].split('<h2', 1)[0]
    assert "records no notebook" in table and "À examiner" in table


@pytest.mark.usefixtures("sandbox_ready")
def test_a_sandboxed_rerun_shows_its_notebook_and_match(setup: tuple[Portal, Factory]) -> None:
    portal, factory = setup
    _project, request_id = submitted_by_notebook(factory)
    done = portal.client("emma").post(f"outputs/{request_id}/rerun")
    assert done.status_code == 303
    table = portal.client("emma").get(f"outputs/{request_id}").text.split(
        'id="titre-reexecution"', 1)[1].split("<h2", 1)[0]
    assert NOTEBOOK in table and "extraction v1" in table and "code de sortie 0" in table
    assert "Conforme" in table and "regenerated" in table
