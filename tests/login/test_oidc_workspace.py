"""The whole login test of the issue: OpenID Connect login, then the researcher's workspace.

A researcher logs in through the provider, sees their project's workspace, starts it (the
sandboxed named server), runs a cell that reads ``/data`` and cannot open the network; the
hub's client secret (here in its environment) is not in the kernel's.
Needs node, root and bubblewrap; skips otherwise (fails under ``ENCLAVE_REQUIRE_SANDBOX=1``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urljoin

import pytest
import requests

from access_requests.workflow import ProjectStatus
from enclave.core.context import Enclave, initialise
from enclave.core.settings import load_settings
from enclave.hub.oidc import CLIENT_SECRET_ENV
from enclave.sandbox import run as sandbox_run
from tests.hub.workspace_hub import HubClient
from tests.login.conftest import Idp, require_node, running_idp, running_oidc_hub
from tests.workflows.factories import PI, Factory

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
REQUIRE_SANDBOX = os.environ.get("ENCLAVE_REQUIRE_SANDBOX") == "1"
OUTSIDER = "rita"  # an accredited researcher of the factories, member of no project here

CELL = r"""
import os, socket
print("DATA", sorted(os.listdir("/data")))
try:
    socket.create_connection(("1.1.1.1", 443), timeout=3).close()
    print("NETWORK open")
except OSError as exc:
    print("NETWORK closed", type(exc).__name__)
print("ENV", sorted(k for k in os.environ if "SECRET" in k or k.startswith(("ENCLAVE", "OAUTH"))))
"""


@dataclass
class Workspaces:
    """A hub with OpenID Connect login over an enclave holding one active project of the PI."""

    idp: Idp
    project: str
    enclave: Enclave


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspaces]:
    require_node()
    reason = sandbox_run.unavailable_reason()
    if reason is not None:
        if REQUIRE_SANDBOX:
            pytest.fail(f"ENCLAVE_REQUIRE_SANDBOX=1 but workspaces cannot run: {reason}")
        pytest.skip(f"workspaces unavailable: {reason}")
    home = tmp_path_factory.mktemp("oidc-ws") / "var"
    settings = load_settings(env={}, home=home)
    initialise(settings, env={})
    enclave = Enclave.open(settings, env={})
    factory = Factory(enclave).setup()
    project = factory.project(ProjectStatus.ACTIVE, pi=PI, members=[])
    groups = {PI: ["researchers"], OUTSIDER: ["researchers"]}
    try:
        with running_idp(tmp_path_factory.mktemp("oidc-ws-idp"), groups) as idp, \
                running_oidc_hub(home, idp, {CLIENT_SECRET_ENV: idp.client_secret}):
            yield Workspaces(idp, project, enclave)
    finally:
        enclave.close()


def oidc_hub_client(idp: Idp, username: str) -> HubClient:
    """A :class:`HubClient` whose session logged in through the provider, not the hub's form.

    The code flow runs as a browser does it (requests follows the redirects and keeps each
    site's cookies); the hub client then drives workspaces exactly as for the demo login.
    """
    session = requests.Session()
    form_page = session.get(f"{idp.hub_url}/hub/oauth_login?next=/hub/home", timeout=30)
    action = re.search(r'<form method="post" action="([^"]+)"', form_page.text)
    assert action, form_page.text[:500]
    landed = session.post(urljoin(form_page.url, action.group(1)), timeout=60, data={
        "username": username, "password": idp.passwords[username]})
    if landed.url != f"{idp.hub_url}/hub/home":
        raise PermissionError(f"login of {username} refused: {landed.status_code}")
    client = HubClient.__new__(HubClient)  # the demo-login constructor is not used here
    client.hub_url, client.username, client.session = idp.hub_url, username, session
    return client


def test_researcher_logs_in_sees_their_project_runs_a_cell_on_data_and_has_no_network(
        workspaces: Workspaces) -> None:
    client = oidc_hub_client(workspaces.idp, PI)
    try:
        home = client.session.get(f"{workspaces.idp.hub_url}/hub/home", timeout=30)
        assert workspaces.project in home.text  # the home page lists her project's workspace
        client.start(workspaces.project)
        kernel = client.start_kernel(workspaces.project)
        out = client.execute(workspaces.project, kernel, CELL)
        data_line = next(line for line in out.splitlines() if line.startswith("DATA"))
        assert data_line != "DATA []", out
        assert "NETWORK closed" in out, out
        assert "ENV []" in out, out  # the hub's client secret never reaches a kernel
        client.stop(workspaces.project)
    finally:
        client.close()


def test_researcher_outside_the_project_cannot_open_its_workspace(
        workspaces: Workspaces) -> None:
    client = oidc_hub_client(workspaces.idp, OUTSIDER)
    try:
        home = client.session.get(f"{workspaces.idp.hub_url}/hub/home", timeout=30)
        assert workspaces.project not in home.text
        response = client.hub_api("POST", f"/users/{OUTSIDER}/servers/{workspaces.project}")
        assert response.status_code >= 400
    finally:
        client.close()
