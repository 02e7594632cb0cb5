"""JupyterHub with the node proxy and the enclave's demo login: the enclave's policy decides."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
import requests
from sqlalchemy import select

from enclave import demo
from enclave.core import audit, people, policy
from enclave.core.context import Enclave, initialise
from enclave.core.policy import Role
from enclave.core.settings import load_settings
from enclave.hub.launcher import REPO_ROOT

pytestmark = pytest.mark.skipif(
    not (REPO_ROOT / "node_modules" / ".bin" / "configurable-http-proxy").exists(),
    reason="node proxy not installed (make test runs npm ci)")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Hub:
    """A running hub and its enclave."""

    def __init__(self, url: str, enclave: Enclave, passwords: dict[str, str]) -> None:
        self.url = url
        self.enclave = enclave
        self.passwords = passwords

    def login(self, username: str, password: str) -> requests.Response:
        """Post the login form as a browser would (with the XSRF token)."""
        session = requests.Session()
        page = session.get(f"{self.url}/hub/login", timeout=30)
        token = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
        assert token, "the login page has an XSRF token"
        return session.post(f"{self.url}/hub/login", data={
            "_xsrf": token.group(1), "username": username, "password": password},
            allow_redirects=False, timeout=30)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    home = tmp_path_factory.mktemp("hub") / "var"
    settings = load_settings(env={}, home=home)
    initialise(settings, env={})
    enclave = Enclave.open(settings, env={})
    demo.ensure_demo_accounts(enclave)
    with enclave.db.transaction() as session:
        people.create_user(session, policy.SYSTEM, "norole", "Sans rôle", password="norole-pass1")
        people.create_user(session, policy.SYSTEM, "newbie", "Sans formation",
                           roles=[Role.RESEARCHER], password="newbie-pass1")
        people.create_user(session, policy.SYSTEM, "expired", "Formation expirée",
                           roles=[Role.RESEARCHER], password="expired-pass1")
        people.record_accreditation(session, policy.SYSTEM, "expired",
                                    date.today() - timedelta(days=5 * 365))
    bind, proxy_api = _port(), _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    env.update({"ENCLAVE_HOME": str(home), "ENCLAVE_HUB_BIND_URL": f"http://127.0.0.1:{bind}",
                "ENCLAVE_PROXY_API_URL": f"http://127.0.0.1:{proxy_api}"})
    log = open(home / "hub.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "enclave.cli", "hub"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{bind}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(f"{url}/hub/login", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the hub did not start:\n"
                                   + (home / "hub.log").read_text(errors="replace")[-4000:])
            time.sleep(0.3)
        passwords = json.loads((home / "keys" / "demo-accounts.json").read_text())
        yield Hub(url, enclave, passwords)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        enclave.close()


def _last_event(hub: Hub, username: str) -> audit.AuditEvent:
    with hub.enclave.db.sessions() as session:
        event = session.execute(select(audit.AuditEvent).where(
            audit.AuditEvent.object_id == username, audit.AuditEvent.action.like("login.%"))
            .order_by(audit.AuditEvent.seq.desc()).limit(1)).scalar()
    assert event is not None
    return event


@pytest.mark.parametrize("username", ["alice", "claire", "emma", "gaelle", "admin"])
def test_demo_accounts_log_in_through_the_proxy(hub: Hub, username: str) -> None:
    response = hub.login(username, hub.passwords[username])
    assert response.status_code == 302
    assert "/hub/" in response.headers["Location"]
    assert _last_event(hub, username).action == "login.succeeded"


def test_wrong_password_is_refused_and_audited(hub: Hub) -> None:
    response = hub.login("alice", "not-the-password")
    assert response.status_code == 403
    assert _last_event(hub, "alice").action == "login.failed"


def test_unknown_user_is_refused(hub: Hub) -> None:
    assert hub.login("nobody", "whatever-pass").status_code == 403


@pytest.mark.parametrize(("username", "reason"), [
    ("norole", "holds no enclave role"),
    ("newbie", "no valid accreditation"),
    ("expired", "no valid accreditation"),
])
def test_people_the_policy_refuses_cannot_enter(hub: Hub, username: str, reason: str) -> None:
    response = hub.login(username, f"{username}-pass1")
    assert response.status_code == 403
    assert reason in response.text
    event = _last_event(hub, username)
    assert event.action == "login.denied"
    assert reason in event.details


def test_the_default_server_is_refused_workspaces_are_named_after_projects(hub: Hub) -> None:
    session = requests.Session()
    page = session.get(f"{hub.url}/hub/login", timeout=30)
    token = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    assert token
    session.post(f"{hub.url}/hub/login", data={"_xsrf": token.group(1), "username": "alice",
                                               "password": hub.passwords["alice"]}, timeout=60)
    response = session.get(f"{hub.url}/hub/spawn", timeout=60)
    assert response.status_code == 400, re.sub(r"\s+", " ", response.text)[-1500:]
    assert "a workspace is opened for a project" in response.text, \
        re.sub(r"\s+", " ", response.text)[-1500:]
