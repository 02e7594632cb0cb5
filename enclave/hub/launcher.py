"""Start JupyterHub with the enclave's configuration and the node proxy."""

from __future__ import annotations

import os
import shutil
import sys
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
