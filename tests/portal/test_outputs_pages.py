"""The output review pages: the controllers' queue, a request's page, the blind vote, the
return loop, the release and the requester's download, with the policy, CSRF and escaping.

Requests are made by the review workflow itself (``tests.workflows.factories.Factory`` over the
portal's enclave); the pages are driven through the real application with a hub double.
Members of each project: alice (requester), bruno, dora (staff), oscar (controller and
researcher); emma, farid and hugo are controllers outside it.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from enclave.core.audit import AuditEvent
from enclave.core.context import Enclave
from enclave.core.settings import load_settings
from enclave.portal.pages_outputs import OUTPUT_MESSAGES
from enclave.portal.sessions import LANG_COOKIE
from output_control.review import workflow as outputs
from output_control.review.models import OutputRequest, Review
from output_control.review.workflow import Decision, RequestStatus
from tests.portal.factories import XSS, Portal
from tests.workflows.factories import OUTPUT_NAME, Factory
from tests.workflows.factories import PEOPLE as WORKFLOW_PEOPLE

EXTRA = ("bruno", "dora", "oscar", "farid", "hugo")


@pytest.fixture(scope="module")
def setup(golden_home: Path, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[Portal, Factory]]:
    """One portal for the module, with the people the review needs; each test makes its own
    project and request, so tests do not see each other's."""
    import shutil

    home = tmp_path_factory.mktemp("portal-outputs") / "var"
    shutil.copytree(golden_home, home)
    enclave = Enclave.open(load_settings(env={}, home=home), env={})
    factory = Factory(enclave)
    factory.create_people(p for p in WORKFLOW_PEOPLE if p.username in EXTRA)
    yield Portal(enclave), factory
    enclave.close()


def _request(factory: Factory, request_id: str) -> OutputRequest:
    with factory.enclave.db.sessions() as session:
        request = session.get(OutputRequest, request_id)
        assert request is not None
        return request


def _votes(factory: Factory, request_id: str) -> int:
    with factory.enclave.db.sessions() as session:
        return int(session.execute(select(func.count()).select_from(Review)
                                   .where(Review.request_id == request_id)).scalar_one())


def _actions(factory: Factory, request_id: str) -> list[str]:
    with factory.enclave.db.sessions() as session:
        return list(session.execute(select(AuditEvent.action).where(
            AuditEvent.object_id == request_id).order_by(AuditEvent.seq)).scalars())


def _vote_form(decision: str, comment: str = "", visibility: str = "private") -> dict[str, str]:
    return {"decision-0": decision, "comment-0": comment, "visibility-0": visibility}


# -- who sees what ----------------------------------------------------------------------------

#: who opens the queue: (status, sees the request of alice's project).
QUEUE = {"controller": ("emma", 200, True), "other-controller": ("farid", 200, True),
         "ethics-committee": ("gaelle", 200, True),
         "controller-member-of-the-project": ("oscar", 200, False),
         "researcher": ("alice", 403, False), "staff": ("claire", 403, False),
         "platform-admin": ("admin", 403, False)}


@pytest.mark.parametrize(("who", "status", "sees"), QUEUE.values(), ids=QUEUE.keys())
def test_the_queue_is_for_controllers_outside_the_project(
        setup: tuple[Portal, Factory], who: str, status: int, sees: bool) -> None:
    portal, factory = setup
    request_id = factory.output_request()
    response = portal.client(who).get("outputs/queue")
    assert response.status_code == status, response.text[:300]
    assert (request_id in response.text) is sees
    if sees:
        assert ("À voter" in response.text) is (who != "gaelle")


@pytest.mark.parametrize(("who", "status"), [
    ("emma", 200), ("gaelle", 200), ("alice", 200), ("bruno", 200), ("oscar", 200),
    ("rita", 403), ("claire", 403), ("admin", 403), ("norole", 403)])
def test_the_request_page_follows_the_policy(setup: tuple[Portal, Factory], who: str,
                                             status: int) -> None:
    portal, factory = setup
    request_id = factory.output_request()
    response = portal.client(who).get(f"outputs/{request_id}")
    assert response.status_code == status, response.text[:300]
    if status == 200:
        assert OUTPUT_NAME in response.text
        controller = who in ("emma", "gaelle")
        assert ("Résumé du CSV" in response.text) is controller
        assert ('id="formulaire-vote"' in response.text) is (who == "emma")


def test_the_request_page_shows_checks_provenance_and_summary_and_escapes_everything(
        setup: tuple[Portal, Factory]) -> None:
    portal, factory = setup
    project_id = factory.active_project()
    factory.output_file(project_id)
    hostile = factory.outputs_dir(project_id) / "brut.csv"
    hostile.write_text(f"{XSS},n\n<svg onload=alert(1)>,3\n")
    request_id = outputs.submit_request(
        factory.enclave.db, factory.enclave.settings, factory.actor("alice"), project_id,
        {OUTPUT_NAME: "Tableau " + XSS, "brut.csv": "Sans sidecar"})
    html = portal.client("emma").get(f"outputs/{request_id}").text
    assert XSS not in html and "<svg onload" not in html
    assert "&lt;script&gt;" in html and "&lt;svg onload=alert(1)&gt;" not in html  # a label
    # the unverifiable file fails closed, with the reason in plain words
    assert "file_integrity" in html and "Non conforme" in html
    assert "output_control.checked.crosstab" in html  # provenance
    assert "Multiples de 5" in html and "Minimum non nul" in html  # CSV summary
    assert "Aucun tableau publié auparavant" in html


def test_pages_speak_english_too(setup: tuple[Portal, Factory]) -> None:
    portal, factory = setup
    request_id = factory.output_request()
    browser = portal.client("emma")
    browser.http.cookies.set(LANG_COOKIE, "en")
    assert "Output checking" in browser.get("outputs/queue").text
    page = browser.get(f"outputs/{request_id}").text
    assert "Record my vote" in page and "CSV summary" in page
    assert set(OUTPUT_MESSAGES["fr"]) == set(OUTPUT_MESSAGES["en"])


# -- the blind vote, the release, the download ----------------------------------------------------

def test_two_controllers_approve_then_one_releases_and_the_requester_downloads(
        setup: tuple[Portal, Factory]) -> None:
    portal, factory = setup
    request_id = factory.output_request()
    emma, farid = portal.client("emma"), portal.client("farid")
    done = emma.post(f"outputs/{request_id}/vote", _vote_form("approve"))
    assert done.status_code == 303 and done.headers["location"].endswith("?done=voted")
    # blind: farid does not see emma's vote before voting
    page = farid.get(f"outputs/{request_id}").text
    assert "Emma" not in page and "emma" not in page.split('id="formulaire-vote"')[0]
    assert 'id="publier"' not in page
    assert farid.post(f"outputs/{request_id}/vote", _vote_form("approve")).status_code == 303
    assert _request(factory, request_id).status == RequestStatus.APPROVED
    page = emma.get(f"outputs/{request_id}").text
    assert 'id="publier"' in page and "farid" in page
    assert portal.client("oscar").post(f"outputs/{request_id}/release").status_code == 403
    assert emma.post(f"outputs/{request_id}/release").status_code == 303
    assert _request(factory, request_id).status == RequestStatus.RELEASED
    assert portal.client("bruno").get(f"outputs/{request_id}/download").status_code == 403
    alice = portal.client("alice")
    assert 'id="telecharger"' in alice.get(f"outputs/{request_id}").text
    response = alice.get(f"outputs/{request_id}/download")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert f"{request_id}/files/{OUTPUT_NAME}" in archive.namelist()
    assert _actions(factory, request_id)[-2:] == ["output.released", "output.downloaded"]


def test_a_controller_votes_once_and_a_member_cannot_vote(setup: tuple[Portal, Factory]) -> None:
    portal, factory = setup
    request_id = factory.output_request()
    emma = portal.client("emma")
    assert emma.post(f"outputs/{request_id}/vote", _vote_form("approve")).status_code == 303
    assert emma.post(f"outputs/{request_id}/vote", _vote_form("reject", "x")).status_code == 403
    for who in ("oscar", "alice", "gaelle"):
        assert portal.client(who).post(f"outputs/{request_id}/vote",
                                       _vote_form("approve")).status_code == 403
    assert _votes(factory, request_id) == 1


def test_a_vote_without_the_csrf_token_changes_nothing(setup: tuple[Portal, Factory]) -> None:
    portal, factory = setup
    request_id = factory.output_request()
    response = portal.client("emma").post(f"outputs/{request_id}/vote", _vote_form("approve"),
                                          token=False)
    assert response.status_code == 403
    assert _votes(factory, request_id) == 0


# -- the return loop ----------------------------------------------------------------------------

def test_return_needs_a_comment_then_the_researcher_reads_it_and_resubmits(
        setup: tuple[Portal, Factory]) -> None:
    portal, factory = setup
    request_id = factory.output_request()
    emma = portal.client("emma")
    refused = emma.post(f"outputs/{request_id}/vote", _vote_form("return"))
    assert refused.status_code == 400 and "needs a comment" in refused.text
    assert _votes(factory, request_id) == 0
    comment = "Regroupez les niveaux " + XSS
    assert emma.post(f"outputs/{request_id}/vote",
                     _vote_form("return", comment, "shared")).status_code == 303
    assert portal.client("farid").post(f"outputs/{request_id}/vote",
                                       _vote_form("approve", "interne", "private")
                                       ).status_code == 303
    assert _request(factory, request_id).status == RequestStatus.RETURNED
    alice = portal.client("alice")
    page = alice.get(f"outputs/{request_id}").text
    assert "Regroupez les niveaux &lt;script&gt;" in page
    assert "interne" not in page and "emma" not in page.lower().split("<main")[-1]
    assert 'id="formulaire-redepot"' in page and 'id="retirer"' in page
    factory.output_file(_request(factory, request_id).project_id, per_cell=15)
    done = alice.post(f"outputs/{request_id}/resubmit", {
        "action-0": "replace", "justification-0": "Niveaux regroupés", "exception-0": ""})
    assert done.status_code == 303, done.text[:500]
    request = _request(factory, request_id)
    assert (request.status, request.review_round) == ("submitted", 2)
    assert _actions(factory, request_id)[-1] == "output.resubmitted"
    # a new blind round: emma may vote again
    assert 'id="formulaire-vote"' in emma.get(f"outputs/{request_id}").text


def test_a_non_member_cannot_resubmit_or_withdraw(setup: tuple[Portal, Factory]) -> None:
    portal, factory = setup
    request_id = factory.output_request()
    factory.vote(request_id, "emma", Decision.RETURN)
    factory.vote(request_id, "farid", Decision.APPROVE)
    for who in ("rita", "emma", "claire"):
        browser = portal.client(who)
        assert browser.post(f"outputs/{request_id}/resubmit", {}).status_code == 403
        assert browser.post(f"outputs/{request_id}/withdraw", {}).status_code == 403
    assert _request(factory, request_id).status == RequestStatus.RETURNED


def test_a_member_withdraws_a_request(setup: tuple[Portal, Factory]) -> None:
    portal, factory = setup
    request_id = factory.output_request()
    done = portal.client("bruno").post(f"outputs/{request_id}/withdraw", {"reason": "Doublon"})
    assert done.status_code == 303
    assert _request(factory, request_id).status == RequestStatus.WITHDRAWN
    page = portal.client("bruno").get(f"outputs/{request_id}?done=withdrawn").text
    assert "La demande est retirée." in page and 'id="retirer"' not in page


def test_my_requests_lists_the_requests_of_my_projects_only(
        setup: tuple[Portal, Factory]) -> None:
    portal, factory = setup
    request_id = factory.output_request()
    assert request_id in portal.client("bruno").get("outputs").text
    assert request_id not in portal.client("rita").get("outputs").text


# -- every route is bound to a policy rule ------------------------------------------------------

#: The output pages' routes and the rule their guard calls; the rules about the person *and the
#: request* (member, controller outside the project, requester) are the workflow's, tested above.
ROUTES = {
    "GET outputs": "check_log_in",
    "GET outputs/queue": "check_log_in",
    "GET outputs/{request_id}": "check_log_in",
    "POST outputs/{request_id}/vote": "check_log_in",
    "POST outputs/{request_id}/release": "check_log_in",
    "POST outputs/{request_id}/withdraw": "check_log_in",
    "POST outputs/{request_id}/resubmit": "check_log_in",
    "GET outputs/{request_id}/download": "check_log_in",
    "POST outputs/submit-request-file": "check_log_in",
    "POST outputs/{request_id}/rerun": "check_log_in",
}


def test_every_output_route_consults_the_login_rule(setup: tuple[Portal, Factory]) -> None:
    from fastapi.routing import iter_route_contexts

    from enclave.core import policy
    from tests.portal.factories import PREFIX

    portal, _ = setup
    found = {}
    for route in iter_route_contexts(portal.app.routes):
        path = str(getattr(route, "path", "")).removeprefix(PREFIX)
        if not path.startswith("outputs") or getattr(route, "dependant", None) is None:
            continue
        stack, rule = list(route.dependant.dependencies), None  # type: ignore[attr-defined]
        while stack and rule is None:
            dep = stack.pop()
            rule = getattr(dep.call, "__policy_check__", None)
            stack.extend(dep.dependencies)
        for method in route.methods or ():  # type: ignore[attr-defined]
            found[f"{method} {path}"] = rule
    assert found == {k: getattr(policy, v) for k, v in ROUTES.items()}


def test_anonymous_visitors_are_sent_to_log_in(setup: tuple[Portal, Factory]) -> None:
    portal, factory = setup
    request_id = factory.output_request()
    for path in ("outputs", "outputs/queue", f"outputs/{request_id}",
                 f"outputs/{request_id}/download"):
        assert portal.client().get(path).status_code in (302, 303, 307), path


def test_every_key_of_the_output_templates_exists_in_both_languages() -> None:
    import re

    from enclave.portal.i18n import MESSAGES
    from enclave.portal.rendering import TEMPLATES

    used = set()
    for path in (TEMPLATES / "outputs").glob("*.html"):
        used |= set(re.findall(r"\bt\('([a-z_]+(?:\.[a-z_0-9]+)+)'[,)]",
                               path.read_text(encoding="utf-8")))
    assert len(used) > 50
    for lang in ("fr", "en"):
        known = set(MESSAGES[lang]) | set(OUTPUT_MESSAGES[lang])
        assert used <= known, sorted(used - known)
    for key, text in OUTPUT_MESSAGES["fr"].items():
        assert sorted(re.findall(r"{(\w+)}", text)) == sorted(
            re.findall(r"{(\w+)}", OUTPUT_MESSAGES["en"][key])), key


def test_the_checked_table_is_shown_as_text_with_flagged_cells_highlighted(
        setup: tuple[Portal, Factory]) -> None:
    portal, factory = setup
    project_id = factory.active_project()
    factory.output_file(project_id, "petit.csv", per_cell=3)  # 3 pupils per cell: below 10
    factory.output_file(project_id, per_cell=13)  # 13 - 3 = 10: no differencing hit either
    request_id = factory.output_request(project_id=project_id,
                                        names=["petit.csv", OUTPUT_NAME])
    html = portal.client("emma").get(f"outputs/{request_id}").text
    normal = html.split('id="tableau-0"')[1].split("</table>")[0]  # files in name order
    small = html.split('id="tableau-1"')[1].split("</table>")[0]
    assert "(4 cellule(s) signalée(s), surlignée(s))" in small
    assert small.count('class="portal-flagged"><mark>6</mark>') == 4  # 2 rows per pupil
    assert "(0 cellule(s) signalée(s)" in normal and "<mark>" not in normal
    assert "minimum_count" in html


def test_a_differencing_hit_is_explained_and_its_cells_highlighted(
        setup: tuple[Portal, Factory]) -> None:
    portal, factory = setup
    project_id = factory.active_project()
    factory.output_file(project_id, "petit.csv", per_cell=3)
    factory.output_file(project_id, per_cell=12)  # 12 - 3 = 9 pupils in each residual cell
    request_id = factory.output_request(project_id=project_id,
                                        names=["petit.csv", OUTPUT_NAME])
    html = portal.client("emma").get(f"outputs/{request_id}").text
    assert html.count("Différenciation : un tableau de cette demande") == 2
    normal = html.split('id="tableau-0"')[1].split("</table>")[0]
    assert normal.count('class="portal-flagged"><mark>24</mark>') == 4
    assert "12 - 3 = 9 units" in html
