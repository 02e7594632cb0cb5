"""Portal fixtures: a prepared enclave (built once, copied per test) and a portal over it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
import requests

from enclave.core import catalogue, people, policy
from enclave.core.context import Enclave, initialise
from enclave.core.policy import Role
from enclave.core.settings import load_settings
from enclave.demo_data import generate
from enclave.hub.launcher import REPO_ROOT, hub_argv
from enclave.portal.app import DSFR_DIST
from tests.portal.factories import Portal, add_history, add_people


@pytest.fixture(scope="session")
def golden_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised enclave home with synthetic data, every kind of person and a history."""
    home = tmp_path_factory.mktemp("portal-golden") / "var"
    settings = load_settings(env={}, home=home)
    initialise(settings, env={})
    generate(settings.raw_dir, pupils=120, seed=7, traces_per_pupil=1.0)
    enclave = Enclave.open(settings, env={})
    try:
        with enclave.db.transaction() as session:
            catalogue.load_catalogue(session, policy.SYSTEM, settings.raw_dir)
            add_people(session)
            add_history(session)
        enclave.chain.checkpoint()
    finally:
        enclave.close()
    return home


@pytest.fixture
def enclave(golden_home: Path, tmp_path: Path) -> Iterator[Enclave]:
    """A private copy of the prepared enclave (tests may write and tamper)."""
    home = tmp_path / "var"
    shutil.copytree(golden_home, home)
    opened = Enclave.open(load_settings(env={}, home=home), env={})
    yield opened
    opened.close()


@pytest.fixture
def portal(enclave: Enclave) -> Portal:
    """The portal over the private enclave, with a hub double."""
    return Portal(enclave)


@pytest.fixture(scope="module")
def shared_portal(golden_home: Path, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[Portal]:
    """One portal for a whole module of tests whose outcome does not depend on what others
    wrote (status codes of the matrix, fuzzing)."""
    home = tmp_path_factory.mktemp("portal-shared") / "var"
    shutil.copytree(golden_home, home)
    opened = Enclave.open(load_settings(env={}, home=home), env={})
    yield Portal(opened)
    opened.close()


# -- a real hub with the portal as a managed service ---------------------------------------------

PASSWORDS = {"gaelle": "gaelle-pass-1", "alice": "alice-pass-1", "bruno": "bruno-pass-1",
             "depot": "depot-pass-1", "claire": "claire-pass-1", "david": "david-pass-1"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveHub:
    """A running hub (node proxy, demo login) whose portal service the hub started itself."""

    url: str
    enclave: Enclave
    log: Path

    def login(self, username: str) -> requests.Session:
        """Log in at the hub's form as a browser would; the session holds the hub cookies."""
        session = requests.Session()
        page = session.get(f"{self.url}/hub/login", timeout=30)
        token = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
        assert token, "the hub's login page has an XSRF token"
        done = session.post(f"{self.url}/hub/login", data={
            "_xsrf": token.group(1), "username": username, "password": PASSWORDS[username]},
            allow_redirects=False, timeout=30)
        assert done.status_code == 302, done.text[:500]
        return session


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(url, timeout=2, allow_redirects=False).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer:\n"
                               + log.read_text(errors="replace")[-4000:])
        time.sleep(0.3)


@pytest.fixture(scope="session")
def live_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveHub]:
    """JupyterHub started as ``enclave hub`` does, with the portal it registers."""
    if not (REPO_ROOT / "node_modules" / ".bin" / "configurable-http-proxy").exists():
        pytest.skip("node proxy not installed (make test runs npm ci)")
    if not (DSFR_DIST / "dsfr.min.css").exists():
        pytest.skip("the DSFR npm package is not installed (npm ci)")
    home = tmp_path_factory.mktemp("portal-hub") / "var"
    settings = load_settings(env={}, home=home)
    initialise(settings, env={})
    generate(settings.raw_dir, pupils=60, seed=3, traces_per_pupil=1.0)
    enclave = Enclave.open(settings, env={})
    with enclave.db.transaction() as session:
        catalogue.load_catalogue(session, policy.SYSTEM, settings.raw_dir)
        for username, role, trained in (("gaelle", Role.ETHICS_COMMITTEE, False),
                                        ("alice", Role.RESEARCHER, True),
                                        ("bruno", Role.RESEARCHER, True),
                                        ("depot", Role.DATA_PROVIDER, False),
                                        ("claire", Role.DEPP_STAFF, False),
                                        ("david", Role.DEPP_STAFF, False)):
            people.create_user(session, policy.SYSTEM, username, username.title(),
                               roles=[role], password=PASSWORDS[username])
            if trained:
                people.record_accreditation(session, policy.SYSTEM, username,
                                            date.today() - timedelta(days=10))
    bind, proxy_api = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    env.update({"ENCLAVE_HOME": str(home), "ENCLAVE_HUB_BIND_URL": f"http://127.0.0.1:{bind}"})
    log_path = home / "hub.log"
    # The command of ``enclave hub`` plus a private proxy API port: the configuration leaves
    # the proxy's API on its default 127.0.0.1:8001, shared by every hub on the machine.
    argv = [*hub_argv(settings), f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{proxy_api}"]
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, env=env, cwd=settings.run_dir, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{bind}"
    try:
        _wait(f"{url}/hub/login", proc, log_path)
        _wait(f"{url}/services/portal/healthz", proc, log_path)
        yield LiveHub(url, enclave, log_path)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        enclave.close()
