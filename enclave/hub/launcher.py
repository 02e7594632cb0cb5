"""Start JupyterHub with the enclave's configuration and the node proxy."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from enclave.core.exceptions import SettingsError
from enclave.core.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_FILE = Path(__file__).resolve().parent / "jupyterhub_config.py"


def proxy_command() -> list[str]:
    """The node ``configurable-http-proxy`` (the Python one cannot route to Unix sockets)."""
    local = REPO_ROOT / "node_modules" / ".bin" / "configurable-http-proxy"
    if local.exists():
        return [str(local)]
    found = shutil.which("configurable-http-proxy")
    if found:
        return [found]
    raise SettingsError("the node configurable-http-proxy is not installed: run 'npm ci' in "
                        f"{REPO_ROOT} (make run does it)")


def hub_argv(settings: Settings) -> list[str]:
    """The command line that starts the hub."""
    return [sys.executable, "-m", "jupyterhub", "-f", str(CONFIG_FILE)]


def run_hub(settings: Settings) -> int:
    """Replace this process by JupyterHub (foreground, Ctrl-C stops it and the proxy)."""
    proxy_command()  # fail early with the instructions
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    os.chdir(settings.run_dir)
    env = dict(os.environ, ENCLAVE_HOME=str(settings.home))
    os.execve(sys.executable, hub_argv(settings), env)  # noqa: S606
    return 0  # pragma: no cover - execve does not return


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own hub
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def serve_hub(settings: Settings, on_ready: Callable[[], None], log_file: Path,
              start_timeout: float = 120) -> int:
    """Run the hub as a child logging to ``log_file``; call ``on_ready`` once it answers.

    This is ``enclave up`` (``make run``): stopping it (Ctrl-C) stops the demo's workspaces
    too (``cleanup_servers``). ``enclave hub``, the production entry point, leaves them
    running across hub restarts (see :mod:`enclave.hub.spawner`).
    """
    proxy_command()
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, ENCLAVE_HOME=str(settings.home))
    argv = [*hub_argv(settings), "--JupyterHub.cleanup_servers=True"]
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(argv, env=env, cwd=settings.run_dir,  # noqa: S603
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(signum: int, _frame: object) -> None:
        os.killpg(proc.pid, signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    deadline = time.monotonic() + start_timeout
    login = settings.hub_bind_url.rstrip("/") + "/hub/login"
    while proc.poll() is None:
        if _ready(login):
            on_ready()
            break
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGTERM)
            break
        time.sleep(0.3)
    code = proc.wait()
    return 0 if code in (0, -signal.SIGTERM, 128 + signal.SIGTERM) else code
