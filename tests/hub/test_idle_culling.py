"""The idle culler really stops an idle workspace, through a real hub, and the stop is audited.

A hub of its own (node proxy, bubblewrap, jupyterhub-idle-culler as a hub service on the hub's
Unix socket) with an idle limit of a few seconds, set by the test-only settings
``ENCLAVE_WORKSPACE_IDLE_SECONDS`` and ``ENCLAVE_WORKSPACE_CULL_EVERY_SECONDS`` (the defaults
stay 60 minutes and 120 s). Needs root, bubblewrap and the node proxy; skips otherwise (fails
under ``ENCLAVE_REQUIRE_SANDBOX=1``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from enclave import demo
from enclave.core import audit, people, policy
from enclave.core.context import Enclave, initialise
from enclave.core.policy import Role
from enclave.core.settings import load_settings
from enclave.hub.launcher import REPO_ROOT
from enclave.sandbox import run as sandbox_run
from enclave.workspaces import sessions
from enclave.workspaces.demo_project import create_active_project
from tests.hub.workspace_hub import HubClient, RunningHub, start_hub

PASSWORD = "cull-pass-2026-x"
PI, STAFF = "cullpi", "cullstaff"
IDLE_SECONDS = 5
CULL_EVERY = 2
#: Culled within the idle limit + one culler round + the stop's grace period, with a margin.
CULLED_WITHIN = IDLE_SECONDS + CULL_EVERY + 8 + 15

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def culling_hub(tmp_path_factory: pytest.TempPathFactory,
                ) -> Iterator[tuple[RunningHub, Enclave, str]]:
    reason = None
    if not (REPO_ROOT / "node_modules" / ".bin" / "configurable-http-proxy").exists():
        reason = "node proxy not installed (make test runs npm ci)"
    reason = reason or sandbox_run.unavailable_reason()
    if reason is not None:
        if os.environ.get("ENCLAVE_REQUIRE_SANDBOX") == "1":
            pytest.fail(f"ENCLAVE_REQUIRE_SANDBOX=1 but workspaces cannot run: {reason}")
        pytest.skip(f"workspaces unavailable: {reason}")
    settings = load_settings(env={}, home=tmp_path_factory.mktemp("cull") / "var")
    initialise(settings, env={})
    enclave = Enclave.open(settings, env={})
    with enclave.db.transaction() as session:
        people.create_user(session, policy.SYSTEM, PI, "Pi", roles=[Role.RESEARCHER],
                           password=PASSWORD)
        people.record_accreditation(session, policy.SYSTEM, PI,
                                    date.today() - timedelta(days=10))
        people.create_user(session, policy.SYSTEM, STAFF, "Staff", roles=[Role.DEPP_STAFF])
    demo.generate_demo_data(enclave, pupils=120, traces_per_pupil=1.0)
    project = create_active_project(enclave, PI, [], STAFF)
    hub = start_hub(settings, extra_env={
        "ENCLAVE_WORKSPACE_IDLE_SECONDS": str(IDLE_SECONDS),
        "ENCLAVE_WORKSPACE_CULL_EVERY_SECONDS": str(CULL_EVERY)})
    try:
        yield hub, enclave, project
    finally:
        hub.stop()
        enclave.close()


def test_an_idle_workspace_is_stopped_by_the_culler_and_the_stop_is_audited_as_idle(
        culling_hub: tuple[RunningHub, Enclave, str]) -> None:
    hub, enclave, project = culling_hub
    client = HubClient(hub.url, PI, PASSWORD)
    try:
        client.start(project)
    except Exception as exc:
        raise AssertionError(f"{exc}\n{hub.log_tail()}") from exc
    started = time.monotonic()
    servers: dict[str, object] = {project: {}}
    while time.monotonic() - started < CULLED_WITHIN:
        servers = client.hub_api("GET", f"/users/{PI}").json().get("servers") or {}
        if project not in servers:
            break
        time.sleep(0.5)
    assert project not in servers, f"not culled after {CULLED_WITHIN} s:\n{hub.log_tail()}"
    # The culler (a hub service) asked for the stop, through the hub's API on its socket.
    log = hub.log.read_text(errors="replace")
    assert f"DELETE /hub/api/users/{PI}/servers/{project}" in log
    assert "(idle-culler@" in log
    with enclave.db.sessions() as session:
        stopped = list(session.execute(
            select(audit.AuditEvent).where(audit.AuditEvent.action == sessions.STOPPED,
                                           audit.AuditEvent.project_id == project)
            .order_by(audit.AuditEvent.seq)).scalars())
    assert len(stopped) == 1, [e.details for e in stopped]
    reason = json.loads(stopped[0].details)["reason"]
    assert reason.startswith("idle: no activity for "), reason
    assert f"over the idle limit of {IDLE_SECONDS} s (idle culler)" in reason, reason
    assert stopped[0].actor == PI


def test_a_stop_asked_for_before_the_idle_limit_is_not_called_idle(
        culling_hub: tuple[RunningHub, Enclave, str]) -> None:
    hub, enclave, project = culling_hub
    client = HubClient(hub.url, PI, PASSWORD)
    client.start(project)
    client.stop(project)
    with enclave.db.sessions() as session:
        last = session.execute(
            select(audit.AuditEvent).where(audit.AuditEvent.action == sessions.STOPPED,
                                           audit.AuditEvent.project_id == project)
            .order_by(audit.AuditEvent.seq.desc()).limit(1)).scalar_one()
    assert json.loads(last.details)["reason"] == "stopped (by the person or an administrator)"
