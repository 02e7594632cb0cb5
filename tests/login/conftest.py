"""A real OpenID provider (node ``oidc-provider``, standing in for Keycloak) and a real hub.

The provider runs at ``http://localhost:<port>`` and the hub at ``http://127.0.0.1:<port>``:
distinct host names, so their cookies never mix (PLATFORM-NOTES). The hub runs the enclave's
own configuration with :func:`enclave.hub.oidc.configure_oidc` on top
(``tests/login/jupyterhub_config.py``). Skipped when node or its packages are missing, unless
``ENCLAVE_REQUIRE_BROWSER=1`` makes that a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest
from sqlalchemy import select

from enclave.core import audit, catalogue, people, policy
from enclave.core.context import Enclave, initialise
from enclave.core.policy import Role
from enclave.core.settings import load_settings
from enclave.demo_data import generate
from enclave.hub.launcher import REPO_ROOT

HERE = Path(__file__).resolve().parent
IDP_SCRIPT = HERE / "idp.mjs"
HUB_CONFIG = HERE / "jupyterhub_config.py"
REQUIRED = os.environ.get("ENCLAVE_REQUIRE_BROWSER") == "1"
CLIENT_ID = "enclave-hub"
#: Seconds between the hub's re-checks of a session (``auth_refresh_age``), short for tests.
REFRESH_AGE = 2

@dataclass(frozen=True)
class Person:
    """Someone at the provider: their groups claim, and what the enclave database knows of
    them (None: unknown to the enclave; else their role and accreditation age in days)."""

    groups: tuple[str, ...]
    in_db: tuple[Role, int | None] | None


PEOPLE: dict[str, Person] = {
    "alice": Person(("/researchers",), (Role.RESEARCHER, 30)),  # Keycloak's full path
    "claire": Person(("depp-staff",), None),  # her first login creates her account
    "gaelle": Person(("ethics-committee",), (Role.ETHICS_COMMITTEE, None)),
    "norole": Person((), None),
    "expired": Person(("researchers",), (Role.RESEARCHER, 5 * 365)),
    "bruno": Person((), (Role.RESEARCHER, 30)),  # removed from the group at the provider
    "mallory": Person(("/partner/researchers",), None),  # a nested group grants nothing
    "henri": Person(("enclave-admins",), (Role.PLATFORM_ADMIN, None)),
}


def _unavailable() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed (deploy/bootstrap.sh installs nodejs)"
    for package in ("oidc-provider", "configurable-http-proxy"):
        if not (REPO_ROOT / "node_modules" / package / "package.json").exists():
            return f"the npm package {package} is not installed (npm ci)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@dataclass
class Idp:
    """The running provider: its issuer, the hub client's secret and the people's passwords."""

    issuer: str
    client_secret: str
    passwords: dict[str, str]
    hub_url: str


@dataclass
class OidcHub:
    """The running hub with OpenID Connect login, and the enclave it decides with."""

    url: str
    idp: Idp
    enclave: Enclave
    log: Path

    def last_login_event(self, username: str) -> audit.AuditEvent | None:
        """The latest ``login.*`` event about ``username``."""
        with self.enclave.db.sessions() as session:
            return session.execute(select(audit.AuditEvent).where(
                audit.AuditEvent.object_id == username,
                audit.AuditEvent.action.like("login.%"))
                .order_by(audit.AuditEvent.seq.desc()).limit(1)).scalar()


def require_node() -> None:
    """Skip (or fail under ENCLAVE_REQUIRE_BROWSER=1) when node or its packages are missing."""
    reason = _unavailable()
    if reason:
        if REQUIRED:
            pytest.fail(f"ENCLAVE_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)


@contextlib.contextmanager
def running_idp(folder: Path, groups: dict[str, list[str]]) -> Iterator[Idp]:
    """oidc-provider with the hub's client and one person per entry of ``groups``."""
    port, hub_port = _free_port(), _free_port()
    issuer, hub_url = f"http://localhost:{port}", f"http://127.0.0.1:{hub_port}"
    passwords = {name: secrets.token_urlsafe(12) for name in groups}
    client_secret = secrets.token_urlsafe(32)
    config = {
        "port": port, "issuer": issuer,
        "client": {"client_id": CLIENT_ID, "client_secret": client_secret,
                   "redirect_uris": [f"{hub_url}/hub/oauth_callback"]},
        "users": {name: {"password": passwords[name], "name": name.title(),
                         "email": f"{name}@example.fr", "groups": claim}
                  for name, claim in groups.items()},
    }
    config_file = folder / "idp.json"
    config_file.write_text(json.dumps(config))
    config_file.chmod(0o600)
    log_path = folder / "idp.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(["node", str(IDP_SCRIPT), str(config_file)], cwd=REPO_ROOT,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while f"ready {issuer}" not in log_path.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the OpenID provider did not start:\n"
                                   + log_path.read_text(errors="replace")[-4000:])
            time.sleep(0.1)
        yield Idp(issuer, client_secret, passwords, hub_url)
    finally:
        _stop(proc)


@contextlib.contextmanager
def running_oidc_hub(home: Path, idp: Idp, extra_env: dict[str, str] | None = None
                     ) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    """The hub of ``tests/login/jupyterhub_config.py`` over the enclave in ``home``."""
    secret_file = home / "oidc-client-secret"
    secret_file.write_text(idp.client_secret + "\n")
    secret_file.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    env.update({"ENCLAVE_HOME": str(home), "ENCLAVE_HUB_BIND_URL": idp.hub_url,
                "ENCLAVE_PROXY_API_URL": f"http://127.0.0.1:{_free_port()}",
                "ENCLAVE_OIDC_ISSUER_URL": idp.issuer, "ENCLAVE_OIDC_CLIENT_ID": CLIENT_ID,
                "ENCLAVE_OIDC_CLIENT_SECRET_FILE": str(secret_file),
                "LOGIN_TESTS_AUTH_REFRESH_AGE": str(REFRESH_AGE), **(extra_env or {})})
    run_dir = home / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = home / "hub.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(HUB_CONFIG)],
                                env=env, cwd=run_dir, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        for path in ("/hub/login", "/services/portal/healthz"):
            _wait(idp.hub_url + path, proc, log_path)
        yield log_path, proc
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Idp]:
    """oidc-provider with the hub's client and the people above."""
    require_node()
    with running_idp(tmp_path_factory.mktemp("idp"),
                     {name: list(person.groups) for name, person in PEOPLE.items()}) as found:
        yield found


def _prepare_enclave(home: Path) -> Enclave:
    settings = load_settings(env={}, home=home)
    initialise(settings, env={})
    generate(settings.raw_dir, pupils=60, seed=5, traces_per_pupil=1.0)
    enclave = Enclave.open(settings, env={})
    with enclave.db.transaction() as session:
        catalogue.load_catalogue(session, policy.SYSTEM, settings.raw_dir)
        for username, person in PEOPLE.items():
            if person.in_db is None:
                continue
            role, trained_days_ago = person.in_db
            people.create_user(session, policy.SYSTEM, username, username.title(),
                               roles=[role])
            if trained_days_ago is not None:
                people.record_accreditation(session, policy.SYSTEM, username,
                                            date.today() - timedelta(days=trained_days_ago))
    return enclave


@pytest.fixture(scope="session")
def oidc_hub(idp: Idp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcHub]:
    """JupyterHub (node proxy, the portal service) logging in through the provider."""
    home = tmp_path_factory.mktemp("oidc-hub") / "var"
    enclave = _prepare_enclave(home)
    try:
        with running_oidc_hub(home, idp) as (log_path, _proc):
            yield OidcHub(idp.hub_url, idp, enclave, log_path)
    finally:
        enclave.close()


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer:\n"
                               + log.read_text(errors="replace")[-4000:])
        time.sleep(0.3)


def login_with_httpx(hub: OidcHub, username: str, password: str | None = None,
                     next_path: str = "") -> tuple[httpx.Client, httpx.Response]:
    """The authorization-code round trip as a browser makes it, without a browser.

    Returns the client (holding both sites' cookies; the caller closes it) and the last
    response: the hub's page after login, its refusal, or the provider's form again.
    """
    client = httpx.Client(follow_redirects=True, timeout=30)
    start = f"{hub.url}/hub/oauth_login" + (f"?next={next_path}" if next_path else "")
    form_page = client.get(start)
    assert form_page.url.host == "localhost", "the hub sent us to the provider"
    action = re.search(r'<form method="post" action="([^"]+)"', form_page.text)
    assert action, form_page.text[:500]
    response = client.post(urljoin(str(form_page.url), action.group(1)), data={
        "username": username,
        "password": hub.idp.passwords[username] if password is None else password})
    return client, response
