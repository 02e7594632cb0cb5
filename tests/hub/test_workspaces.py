"""Sandboxed workspaces through a real hub, node proxy and bubblewrap: who opens what, and what
the server refuses to hand out.

Needs root, bubblewrap and the node proxy; skips otherwise (fails under
``ENCLAVE_REQUIRE_SANDBOX=1``). One hub serves the whole module (bounded: every wait has a
deadline); the policy polls every :data:`POLL_SECONDS` seconds.
"""

from __future__ import annotations

import base64
import glob
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from access_requests.workflow import ProjectStatus
from enclave import demo
from enclave.core import audit, people, policy
from enclave.core.context import Enclave, initialise
from enclave.core.policy import Role
from enclave.core.settings import load_settings
from enclave.hub.launcher import REPO_ROOT
from enclave.hub.sockets import socket_base
from enclave.hub.spawner import run_area
from enclave.provisioning.extracts import current_extract
from enclave.sandbox import run as sandbox_run
from enclave.workspaces import sessions
from tests.hub.workspace_hub import HubClient, RunningHub, SpawnRefused, start_hub
from tests.workflows.factories import Factory

REQUIRE_SANDBOX = os.environ.get("ENCLAVE_REQUIRE_SANDBOX") == "1"
PASSWORD = "ws-pass-2026-x"
PI, MEMBER, OUTSIDER, STAFF = "wsalice", "wsbruno", "wsrita", "claire"
POLL_SECONDS = 4
#: The module's hub: a small per-project disk limit and server log, to test both.
DISK_MIB = 32
LOG_MAX_BYTES = 1024 * 1024
#: A policy stop happens within poll interval + jitter + the server's grace period.
STOP_WITHIN = POLL_SECONDS * 1.1 + 8 + 6

pytestmark = pytest.mark.timeout(600)


@dataclass
class World:
    """The hub and the enclave behind it, with three projects of the PI's."""

    hub: RunningHub
    enclave: Enclave
    factory: Factory
    active: str
    second: str
    suspended: str
    third: str

    def client(self, username: str) -> HubClient:
        """A logged-in browser session."""
        return HubClient(self.hub.url, username, PASSWORD)

    def events(self, action: str, username: str | None = None) -> list[audit.AuditEvent]:
        """Audit events of ``action`` (by ``username``), oldest first."""
        query = select(audit.AuditEvent).where(audit.AuditEvent.action == action)
        if username is not None:
            query = query.where(audit.AuditEvent.actor == username)
        with self.enclave.db.sessions() as session:
            return list(session.execute(query.order_by(audit.AuditEvent.seq)).scalars())


def _skip_reason() -> str | None:
    if not (REPO_ROOT / "node_modules" / ".bin" / "configurable-http-proxy").exists():
        return "node proxy not installed (make test runs npm ci)"
    return sandbox_run.unavailable_reason()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    reason = _skip_reason()
    if reason is not None:
        if REQUIRE_SANDBOX:
            pytest.fail(f"ENCLAVE_REQUIRE_SANDBOX=1 but workspaces cannot run: {reason}")
        pytest.skip(f"workspaces unavailable: {reason}")
    home = tmp_path_factory.mktemp("ws") / "var"
    settings = load_settings(env={}, home=home)
    initialise(settings, env={})
    enclave = Enclave.open(settings, env={})
    with enclave.db.transaction() as session:
        for username, role, trained in ((PI, Role.RESEARCHER, True),
                                        (MEMBER, Role.RESEARCHER, True),
                                        (OUTSIDER, Role.RESEARCHER, True),
                                        (STAFF, Role.DEPP_STAFF, False)):
            people.create_user(session, policy.SYSTEM, username, username.title(),
                               roles=[role], password=PASSWORD)
            if trained:
                people.record_accreditation(session, policy.SYSTEM, username,
                                            date.today() - timedelta(days=10))
    demo.generate_demo_data(enclave, pupils=120, traces_per_pupil=1.0)
    factory = Factory(enclave)
    active = factory.project(ProjectStatus.ACTIVE, pi=PI, members=[MEMBER])
    second = factory.project(ProjectStatus.ACTIVE, pi=PI, members=[])
    suspended = factory.project(ProjectStatus.ACTIVE, pi=PI, members=[])
    third = factory.project(ProjectStatus.ACTIVE, pi=PI, members=[])
    factory.move(suspended, STAFF, ProjectStatus.SUSPENDED)
    # A new agreement: the PI accepts it on both active projects, the member does not.
    factory.publish_agreement("DUA-2026.9")
    factory.agree(active, PI)
    factory.agree(second, PI)
    factory.agree(third, PI)
    hub = start_hub(settings, extra_env={"ENCLAVE_WORKSPACE_POLL_SECONDS": str(POLL_SECONDS),
                                         "ENCLAVE_WORKSPACE_DISK_MIB": str(DISK_MIB)},
                    extra_args=[f"--SandboxSpawner.log_max_bytes={LOG_MAX_BYTES}"])
    try:
        yield World(hub, enclave, factory, active, second, suspended, third)
    finally:
        hub.stop()
        enclave.close()


@pytest.fixture(scope="module")
def running(world: World) -> Iterator[tuple[HubClient, str]]:
    """The PI's workspace on the active project, started once, with one kernel."""
    client = world.client(PI)
    try:
        client.start(world.active)
    except Exception as exc:
        raise AssertionError(f"{exc}\n{world.hub.log_tail()}") from exc
    kernel = client.start_kernel(world.active)
    yield client, kernel
    client.stop(world.active)


CELL = r"""
import json, os, socket
found = {"data": sorted(os.listdir("/data"))}
for name, address in (("hub", ("127.0.0.1", HUB_PORT)), ("outside", ("1.1.1.1", 53))):
    try:
        socket.create_connection(address, timeout=3).close()
        found[name] = "connected"
    except OSError as exc:
        found[name] = type(exc).__name__
found["env"] = sorted(k for k in os.environ if "TOKEN" in k or k.startswith("JUPYTERHUB"))
found["hidden"] = [p for p in ("/run/enclave", "/run/secrets", "/var", "/srv") if os.path.exists(p)]
found["homes"] = os.listdir("/home")
try:
    open("/data/written-from-kernel", "w")
    found["write_data"] = "written"
except OSError as exc:
    found["write_data"] = exc.strerror
print(json.dumps(found))
"""


def test_member_opens_the_project_workspace_reads_data_and_has_no_network(
        world: World, running: tuple[HubClient, str]) -> None:
    client, kernel = running
    hub_port = int(world.hub.url.rsplit(":", 1)[1])
    out = json.loads(client.execute(world.active, kernel,
                                    CELL.replace("HUB_PORT", str(hub_port))).strip())
    extract = current_extract(world.enclave.db, world.active)
    assert extract is not None
    assert out["data"] == sorted(os.listdir(extract.path)), out
    assert out["data"], out
    assert out["hub"] != "connected" and out["outside"] != "connected", out
    assert out["env"] == [], out
    assert out["hidden"] == [], out
    assert len(out["homes"]) <= 1, out  # the kernel's own empty tmpfs HOME, nobody else's
    assert out["write_data"] != "written", out
    spawned = world.events(sessions.SPAWNED, PI)
    assert spawned and spawned[-1].project_id == world.active


PREPARE = r"""
import json, os, shutil
data = sorted(f for f in os.listdir("/data") if f.endswith(".parquet"))[0]
if not os.path.exists("/work/copy.parquet"):
    shutil.copyfile(os.path.join("/data", data), "/work/copy.parquet")
with open("/work/notes.txt", "w") as f:
    f.write("notes")
with open("/work/analyse.ipynb", "w") as f:
    json.dump({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, f)
for link, target in (("/work/link.parquet", os.path.join("/data", data)),
                     ("/work/datadir", "/data"), ("/work/up.txt", "/work/../data/" + data)):
    if not os.path.lexists(link):
        os.symlink(target, link)
print(data)
"""


def test_downloads_of_extract_data_are_refused_but_notebooks_open_and_save(
        world: World, running: tuple[HubClient, str]) -> None:
    client, kernel = running
    name = world.active
    client.execute(name, kernel, PREPARE)
    refused = {
        "files": client.server("GET", name, "files/copy.parquet"),
        "files-notebook": client.server("GET", name, "files/analyse.ipynb?download=1"),
        "nbconvert": client.server("GET", name, "nbconvert/html/analyse.ipynb?download=true"),
        "nbconvert-script": client.server("GET", name, "nbconvert/script/analyse.ipynb"),
        "contents-data": client.server("GET", name, "api/contents/copy.parquet?content=1"),
        "contents-base64": client.server(
            "GET", name, "api/contents/copy.parquet?content=1&format=base64&type=file"),
    }
    for what, response in refused.items():
        assert response.status_code == 403, (what, response.status_code, response.text[:300])
    notebook = client.server("GET", name, "api/contents/analyse.ipynb?content=1")
    assert notebook.status_code == 200 and notebook.json()["type"] == "notebook"
    saved = client.server("PUT", name, "api/contents/analyse.ipynb",
                          json={"type": "notebook", "format": "json",
                                "content": notebook.json()["content"]})
    assert saved.status_code == 200, saved.text[:300]
    assert client.server("GET", name, "api/contents/notes.txt?content=1").status_code == 200


def test_symlinks_out_of_work_are_neither_served_nor_listed(
        world: World, running: tuple[HubClient, str]) -> None:
    client, kernel = running
    name = world.active
    data = client.execute(name, kernel, PREPARE).strip()
    for link in ("link.parquet", "datadir", "up.txt", f"datadir/{data}", "datadir/manifest.json"):
        response = client.server("GET", name, f"api/contents/{link}?content=1")
        assert response.status_code == 404, (link, response.status_code, response.text[:300])
    listing = client.server("GET", name, "api/contents/?content=1")
    assert listing.status_code == 200
    names = {entry["name"] for entry in listing.json()["content"]}
    assert "analyse.ipynb" in names
    assert not names & {"link.parquet", "datadir", "up.txt"}


def test_uploads_are_limited_in_size(world: World, running: tuple[HubClient, str]) -> None:
    client, _ = running
    big = base64.b64encode(b"x" * (10 * 1024 * 1024 + 1)).decode()
    response = client.server("PUT", world.active, "api/contents/big.bin",
                             json={"type": "file", "format": "base64", "content": big})
    assert response.status_code == 413, response.text[:300]
    small = client.server("PUT", world.active, "api/contents/small.txt",
                          json={"type": "file", "format": "text", "content": "bonjour"})
    assert small.status_code == 201, small.text[:300]


def test_refused_downloads_reach_the_audit_chain(
        world: World, running: tuple[HubClient, str]) -> None:
    client, _ = running
    client.server("GET", world.active, "files/copy.parquet")
    deadline = time.monotonic() + POLL_SECONDS * 3 + 10
    kinds: set[str] = set()
    while time.monotonic() < deadline:
        events = world.events(sessions.DOWNLOAD_REFUSED, PI)
        kinds = {json.loads(e.details).get("kind") for e in events}
        if {"files", "nbconvert", "contents", "symlink", "upload"} <= kinds:
            break
        time.sleep(0.5)
    assert {"files", "nbconvert", "contents", "symlink", "upload"} <= kinds, kinds
    assert all(e.project_id == world.active
               for e in world.events(sessions.DOWNLOAD_REFUSED, PI))


@pytest.mark.parametrize(("who", "project", "reason"), [
    (OUTSIDER, "active", "is not a member of this project"),
    (MEMBER, "active", "has not accepted the current data-use agreement"),
    (PI, "suspended", "the project is not active"),
], ids=["non-member", "agreement-not-accepted", "suspended-project"])
def test_spawn_is_refused_by_the_policy_and_audited(world: World, who: str, project: str,
                                                    reason: str) -> None:
    project_id = getattr(world, project)
    client = world.client(who)
    with pytest.raises(SpawnRefused) as refused:
        client.start(project_id, timeout=30)
    assert reason in refused.value.message, refused.value
    denied = world.events(sessions.SPAWN_DENIED, who)
    assert denied and reason in json.loads(denied[-1].details)["reason"]
    assert denied[-1].project_id == project_id
    assert not [e for e in world.events(sessions.SPAWNED, who) if e.project_id == project_id]


def test_the_default_server_is_refused(world: World) -> None:
    client = world.client(PI)
    response = client.hub_api("POST", f"/users/{PI}/server")
    assert response.status_code == 400
    assert "a workspace is opened for a project" in response.json()["message"]
    assert "" not in (client.hub_api("GET", f"/users/{PI}").json().get("servers") or {})


def test_home_page_lists_the_persons_projects_and_why_one_is_closed(world: World) -> None:
    page = world.client(PI).session.get(f"{world.hub.url}/hub/home", timeout=30)
    assert page.status_code == 200
    for project_id in (world.active, world.second, world.suspended):
        assert project_id in page.text
    assert "the project is not active" in page.text
    assert "name-your-server" not in page.text  # no free-form server names


def test_suspending_a_running_project_stops_its_workspace_and_forbids_restart(
        world: World) -> None:
    client = world.client(PI)
    client.start(world.second)
    world.factory.move(world.second, STAFF, ProjectStatus.SUSPENDED)
    suspended_at = time.monotonic()
    while time.monotonic() - suspended_at < STOP_WITHIN:
        servers = client.hub_api("GET", f"/users/{PI}").json().get("servers") or {}
        if world.second not in servers:
            break
        time.sleep(0.5)
    assert world.second not in servers, f"still running after {STOP_WITHIN} s"
    stopped = [e for e in world.events(sessions.STOPPED, PI) if e.project_id == world.second]
    assert stopped and "not active" in json.loads(stopped[-1].details)["reason"]
    with pytest.raises(SpawnRefused) as refused:
        client.start(world.second, timeout=30)
    assert "the project is not active" in refused.value.message



def test_the_getting_started_notebook_is_in_work_and_runs_in_the_workspace(
        world: World, running: tuple[HubClient, str]) -> None:
    client, kernel = running
    name = world.active
    response = client.server("GET", name, "api/contents/getting_started_en.ipynb?content=1")
    assert response.status_code == 200, response.text[:300]
    cells = [c for c in response.json()["content"]["cells"] if c["cell_type"] == "code"]
    assert cells
    for cell in cells:
        client.execute(name, kernel, cell["source"], timeout=120)
    outputs = world.factory.outputs_dir(name)
    assert (outputs / "niveau_par_sexe.csv").is_file()


def test_the_idle_culler_service_reaches_the_hub_api_on_its_socket(world: World) -> None:
    def calls() -> list[str]:
        return [line for line in world.hub.log.read_text(errors="replace").splitlines()
                if "(idle-culler@" in line and "/hub/api/users" in line]

    deadline = time.monotonic() + 30
    while not calls() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert calls() and all(" 200 GET " in line for line in calls()), calls()[:3]


def test_the_workspace_runs_in_its_own_cgroup_with_memory_and_process_limits(
        world: World, running: tuple[HubClient, str]) -> None:
    area = run_area(socket_base(world.hub.settings.run_dir), PI, world.active)
    memory = glob.glob(f"/sys/fs/cgroup/memory/enclave/ws-{area.name}-*")
    unified = glob.glob(f"/sys/fs/cgroup/enclave/ws-{area.name}-*")
    if memory:
        limit = int(Path(memory[0], "memory.limit_in_bytes").read_text())
        procs = Path(memory[0], "cgroup.procs").read_text().split()
    elif unified:
        limit = int(Path(unified[0], "memory.max").read_text())
        procs = Path(unified[0], "cgroup.procs").read_text().split()
    else:
        pytest.skip("no writable memory cgroup on this machine (limits fall back to rlimits)")
    assert limit == 2048 * 1024 * 1024
    users = {Path(f"/proc/{pid}").stat().st_uid for pid in procs if Path(f"/proc/{pid}").exists()}
    assert len(procs) >= 4  # bubblewrap, the server, the kernel's nested sandbox and kernel
    # Every process of the workspace runs as the person's unprivileged account, none as root.
    assert len(users) == 1 and next(iter(users)) in range(61000, 62000), users


FLOOD_LOG = r"""
import fcntl, os, stat
capture = {(os.fstat(fd).st_dev, os.fstat(fd).st_ino) for fd in (1, 2)}
written = 0
for fd in range(3, 256):
    try:
        info = os.fstat(fd)
        mode = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
    except OSError:
        continue
    if stat.S_ISFIFO(info.st_mode) and mode == os.O_WRONLY and \
            (info.st_dev, info.st_ino) not in capture:
        for _ in range(48):
            written += os.write(fd, b"flood " * 10000)
print("WRITTEN", written)
"""


def test_a_kernel_flooding_the_server_log_cannot_make_it_grow_past_its_cap(
        world: World, running: tuple[HubClient, str]) -> None:
    client, kernel = running
    # ipykernel keeps a copy of the descriptor it inherited (the server's output) and echoes
    # all fd-level output there; the kernel writes to it directly, three times the cap.
    out = client.execute(world.active, kernel, FLOOD_LOG)
    written = int(out.rsplit("WRITTEN", 1)[1].split()[0])
    assert written >= 2 * LOG_MAX_BYTES, written
    area = run_area(socket_base(world.hub.settings.run_dir), PI, world.active)
    log, old = area / "server.log", area / "server.log.1"
    deadline = time.monotonic() + 20
    while b"flood" not in (log.read_bytes() if log.exists() else b"") and \
            time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)
    sizes = sum(p.stat().st_size for p in (log, old) if p.exists())
    assert old.exists() and sizes <= LOG_MAX_BYTES, sizes
    assert b"flood" in log.read_bytes()
    # The server still runs and answers.
    assert client.server("GET", world.active, "api/status").status_code == 200


FILL = r"""
import os
with open("/work/filler-SIZE.bin", "wb") as f:
    for _ in range(SIZE):
        f.write(os.urandom(1024 * 1024))
print(sum(e.stat().st_size for e in os.scandir("/work")))
"""


def test_the_disk_limit_refuses_saves_then_stops_the_workspace_with_an_audited_reason(
        world: World) -> None:
    client = world.client(PI)
    client.start(world.third)
    kernel = client.start_kernel(world.third)
    client.execute(world.third, kernel, FILL.replace("SIZE", str(DISK_MIB - 6)))
    text = "x" * (8 * 1024 * 1024)
    refused = client.server("PUT", world.third, "api/contents/big.txt",
                            json={"type": "file", "format": "text", "content": text})
    assert refused.status_code == 507, refused.text[:300]
    small = client.server("PUT", world.third, "api/contents/small.txt",
                          json={"type": "file", "format": "text", "content": "bonjour"})
    assert small.status_code == 201, small.text[:300]
    # Files written by a kernel go over the limit: the next poll stops the workspace.
    client.execute(world.third, kernel, FILL.replace("SIZE", "10"))
    over_at = time.monotonic()
    servers: dict[str, object] = {}
    while time.monotonic() - over_at < STOP_WITHIN:
        servers = client.hub_api("GET", f"/users/{PI}").json().get("servers") or {}
        if world.third not in servers:
            break
        time.sleep(0.5)
    assert world.third not in servers, f"still running after {STOP_WITHIN} s"
    stopped = [e for e in world.events(sessions.STOPPED, PI) if e.project_id == world.third]
    assert stopped, "no workspace.stopped event"
    reason = json.loads(stopped[-1].details)["reason"]
    assert "disk limit" in reason and f"over its limit of {DISK_MIB} MiB" in reason, reason

