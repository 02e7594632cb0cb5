"""A real hub (node proxy, demo login, sandboxed spawner) and a client that drives workspaces.

Used by the workspace tests and by ``benchmarks/bench_workspace.py``: :func:`start_hub` runs
``enclave hub`` in a fresh enclave home, :class:`HubClient` logs in as a browser would, starts
and stops named servers through the hub's REST API, and runs code in a kernel over the kernel
websocket, exactly as JupyterLab does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from enclave.core.context import Enclave
from enclave.core.settings import Settings
from enclave.hub.launcher import hub_argv


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningHub:
    """A hub process started by :func:`start_hub`."""

    url: str
    settings: Settings
    proc: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, size: int = 6000) -> str:
        """The end of the hub's log, for failure messages."""
        return self.log.read_text(errors="replace")[-size:]

    def stop(self) -> None:
        """SIGTERM the hub's process group (the hub, its proxy and services), then SIGKILL."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def start_hub(settings: Settings, *, extra_env: Mapping[str, str] | None = None,
              extra_args: Sequence[str] = (), timeout: float = 120) -> RunningHub:
    """Start the hub as ``enclave hub`` does, on free ports; wait until its login page answers.

    ``extra_args`` are JupyterHub options (e.g. another spawner for a baseline).
    """
    bind, proxy_api = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    env.update({"ENCLAVE_HOME": str(settings.home),
                "ENCLAVE_HUB_BIND_URL": f"http://127.0.0.1:{bind}",
                "ENCLAVE_PROXY_API_URL": f"http://127.0.0.1:{proxy_api}"})
    if settings.database_url:
        env["ENCLAVE_DATABASE_URL"] = settings.database_url
    env.update(extra_env or {})
    log = settings.home / "hub.log"
    with open(log, "wb") as handle:
        settings.run_dir.mkdir(parents=True, exist_ok=True)
        # As ``enclave hub`` starts it, but stopping the hub stops its servers: a failed test
        # leaves no workspace running.
        argv = [*hub_argv(settings), "--JupyterHub.cleanup_servers=True", *extra_args]
        proc = subprocess.Popen(argv, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                cwd=settings.run_dir, start_new_session=True)
    hub = RunningHub(f"http://127.0.0.1:{bind}", settings, proc, log)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(f"{hub.url}/hub/login", timeout=2).status_code == 200:
                return hub
        except requests.ConnectionError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            hub.stop()
            raise RuntimeError(f"the hub did not start:\n{hub.log_tail()}")
        time.sleep(0.3)


class SpawnRefused(Exception):
    """The hub refused to start a server; the message is the hub's."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class HubClient:
    """One person's browser session at the hub."""

    def __init__(self, hub_url: str, username: str, password: str) -> None:
        self.hub_url = hub_url
        self.username = username
        self.session = requests.Session()
        page = self.session.get(f"{hub_url}/hub/login", timeout=30)
        token = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
        assert token, "the login page has an XSRF token"
        done = self.session.post(f"{hub_url}/hub/login", data={
            "_xsrf": token.group(1), "username": username, "password": password},
            allow_redirects=False, timeout=60)
        if done.status_code != 302:
            raise PermissionError(f"login of {username} refused: {done.status_code}")

    def close(self) -> None:
        """Close the session's connections."""
        self.session.close()

    def _xsrf(self, path: str) -> str:
        for cookie in self.session.cookies:
            if cookie.name == "_xsrf" and cookie.path == path:
                return str(cookie.value)
        for cookie in self.session.cookies:
            if cookie.name == "_xsrf":
                return str(cookie.value)
        return ""

    def hub_api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Call the hub's REST API with the session cookie (and its XSRF header)."""
        headers = {"X-XSRFToken": self._xsrf("/hub/")}
        return self.session.request(method, f"{self.hub_url}/hub/api{path}", headers=headers,
                                    timeout=60, **kwargs)

    def server_prefix(self, name: str) -> str:
        """``/user/<me>/<name>/``."""
        return f"/user/{self.username}/{name}/"

    def start(self, name: str, timeout: float = 90) -> float:
        """Start the named server and wait until JupyterLab answers; return the seconds taken."""
        started = time.monotonic()
        response = self.hub_api("POST", f"/users/{self.username}/servers/{name}")
        if response.status_code not in (201, 202, 400):
            raise SpawnRefused(response.status_code, _message(response))
        self.wait_ready(name, timeout=timeout, started=started)
        return time.monotonic() - started

    def wait_ready(self, name: str, *, timeout: float, started: float) -> None:
        """Poll the hub until the server is ready, then load JupyterLab (OAuth round trip)."""
        missing_since = None
        while True:
            model = self.hub_api("GET", f"/users/{self.username}").json()
            server = (model.get("servers") or {}).get(name) or {}
            if server.get("ready"):
                break
            if server:
                missing_since = None
            elif missing_since is None:
                missing_since = time.monotonic()
            elif time.monotonic() - missing_since > 3:
                raise SpawnRefused(500, f"the server {name} stopped while starting")
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"{name} not ready after {timeout} s: {server}")
            time.sleep(0.2)
        lab = self.session.get(f"{self.hub_url}{self.server_prefix(name)}lab", timeout=60)
        if lab.status_code != 200 or "jupyter-config-data" not in lab.text:
            raise RuntimeError(f"JupyterLab did not load: {lab.status_code} {lab.url}")

    def stop(self, name: str, timeout: float = 60) -> None:
        """Stop the named server and wait until the hub says it stopped."""
        self.hub_api("DELETE", f"/users/{self.username}/servers/{name}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = self.hub_api("GET", f"/users/{self.username}").json()
            if name not in (model.get("servers") or {}):
                return
            time.sleep(0.3)
        raise TimeoutError(f"{name} did not stop")

    def server(self, method: str, name: str, path: str, **kwargs: Any) -> requests.Response:
        """A request to the single-user server (cookie auth needs the XSRF header)."""
        prefix = self.server_prefix(name)
        headers = {"X-XSRFToken": self._xsrf(prefix)}
        headers.update(kwargs.pop("headers", {}))
        return self.session.request(method, f"{self.hub_url}{prefix}{path}", headers=headers,
                                    timeout=60, allow_redirects=False, **kwargs)

    def start_kernel(self, name: str) -> str:
        """Start a kernel of the server's only kernelspec; return its id."""
        response = self.server("POST", name, "api/kernels", json={})
        assert response.status_code == 201, (response.status_code, response.text[:500])
        return str(response.json()["id"])

    def execute(self, name: str, kernel_id: str, code: str, timeout: float = 60) -> str:
        """Run ``code`` in the kernel over its websocket; return its stdout (errors raise)."""
        return asyncio.run(self._execute(name, kernel_id, code, timeout))

    async def _execute(self, name: str, kernel_id: str, code: str, timeout: float) -> str:
        ws_url = (self.hub_url.replace("http://", "ws://") + self.server_prefix(name)
                  + f"api/kernels/{kernel_id}/channels")
        cookies = "; ".join(f"{c.name}={c.value}" for c in self.session.cookies)
        request = HTTPRequest(ws_url, headers={"Cookie": cookies,
                                               "X-XSRFToken": self._xsrf(self.server_prefix(name))},
                              connect_timeout=30, request_timeout=timeout)
        conn = await websocket_connect(request)
        msg_id = uuid.uuid4().hex
        conn.write_message(json.dumps({
            "header": {"msg_id": msg_id, "username": self.username, "session": uuid.uuid4().hex,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": False,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}}))
        out: list[str] = []
        error = None
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                raw = await asyncio.wait_for(conn.read_message(), deadline - time.monotonic())
                if raw is None:
                    raise RuntimeError("the kernel websocket closed")
                msg = json.loads(raw)
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind = msg["header"]["msg_type"]
                if kind == "stream":
                    out.append(msg["content"]["text"])
                elif kind == "error":
                    error = f"{msg['content']['ename']}: {msg['content']['evalue']}"
                elif kind == "status" and msg["content"]["execution_state"] == "idle":
                    break
        finally:
            conn.close()
            # Wait for the server's close frame, so that the socket is closed with the loop.
            with contextlib.suppress(Exception):
                while await asyncio.wait_for(conn.read_message(), 5) is not None:
                    pass
        if error is not None:
            raise RuntimeError(f"the cell failed: {error}")
        return "".join(out)


def _message(response: requests.Response) -> str:
    try:
        return str(response.json().get("message", response.text))
    except ValueError:
        return response.text[:500]


def open_enclave(settings: Settings) -> Enclave:
    """The enclave of a hub started by :func:`start_hub` (for the test's own checks)."""
    return Enclave.open(settings, env={})
