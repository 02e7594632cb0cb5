"""The workspace server: JupyterLab inside the sandbox, listening on a Unix socket only.

Host side, :func:`server_argv` builds the sandbox of one named server (the person's account
and project group, ``/data`` read-only, ``/work``, ``/outputs``, no network) with three extra
folders under :data:`bwrap.RUN_BINDS`: ``server`` (where the server creates its socket, which
the node proxy dials), ``hub`` (the hub API's socket, read-only) and ``events`` (the refusal
log of :mod:`enclave.sandbox.server_guard`). The hub's variables, among them the server's API
token, travel as a 0400 file in :data:`bwrap.SECRETS` (never in argv or the sandbox's initial
environment): :func:`hub_env` selects and rewrites them.

Sandbox side, ``python -m enclave.sandbox.server`` (:func:`main`) reads that file and runs
``jupyterhub-singleuser`` in the same process with :func:`server_flags`: socket, root
``/work``, terminals off, download controls (and the disk limit of the contents API), kernels
only through the read-only nested-sandbox kernelspec over ``ipc://``, the extension manager
read-only. The kernels inherit none of the hub's variables (:data:`bwrap.KERNEL_ENV`) and see
neither ``/run/secrets`` nor ``/run/enclave``.

Standard library only at import time: :func:`main` runs inside the sandbox.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote, urlparse

from enclave.sandbox import bwrap
from enclave.sandbox.bwrap import SandboxSpec

#: The server's socket, as the sandbox sees it (the host sees ``<socket_dir>/jupyter.sock``).
SOCKET_NAME = "jupyter.sock"
SERVER_SOCKET = f"{bwrap.RUN_BINDS}/server/{SOCKET_NAME}"
HUB_DIR = f"{bwrap.RUN_BINDS}/hub"
HUB_ENV_NAME = "hub-env.json"
HUB_ENV_FILE = f"{bwrap.SECRETS}/{HUB_ENV_NAME}"
#: JupyterHub 6.1 refuses ``--sock`` with a port taken from JUPYTERHUB_SERVICE_URL unless that
#: port is the default one (PLATFORM-NOTES); nothing listens on it.
DEFAULT_PORT_URL = "http://127.0.0.1:8888"
#: Largest HTTP body the server accepts (uploads are further limited by the contents manager).
MAX_BODY_BYTES = 16 * 1024 * 1024


def server_flags() -> list[str]:
    """The single-user server's options; fixed here, in read-only code, not in the hub's argv."""
    return [
        f"--ServerApp.sock={SERVER_SOCKET}",
        "--ServerApp.sock_mode=0600",
        f"--ServerApp.root_dir={bwrap.WORK}",
        "--ServerApp.terminals_enabled=False",
        "--ServerApp.contents_manager_class="
        "enclave.sandbox.server_guard.GuardedContentsManager",
        "--ServerApp.extra_services=enclave.sandbox.server_guard",
        f"--ServerApp.max_body_size={MAX_BODY_BYTES}",
        f"--ServerApp.max_buffer_size={MAX_BODY_BYTES}",
        "--KernelManager.transport=ipc",
        "--KernelSpecManager.ensure_native_kernel=False",
        f"--KernelSpecManager.allowed_kernelspecs={bwrap.KERNEL_NAME}",
        f"--MappingKernelManager.default_kernel_name={bwrap.KERNEL_NAME}",
        # No language servers and no terminal extension: less to attack, faster start.
        "--ServerApp.jpserver_extensions=jupyter_lsp=False",
        "--ServerApp.jpserver_extensions=jupyter_server_terminals=False",
        "--LabApp.extension_manager=readonly",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]


def hub_env(env: Mapping[str, str], host_hub_socket: Path) -> dict[str, str]:
    """The ``JUPYTERHUB_*`` variables of the hub's spawn, rewritten for inside the sandbox.

    The hub's socket path becomes :data:`HUB_DIR`'s; the service URL gets the default port
    (the server listens on its socket only); user configuration is disabled. Everything else
    the hub would pass (its PATH, PYTHONPATH, the deprecated ``JPY_API_TOKEN``) is dropped.
    """
    outside = quote(str(host_hub_socket), safe="")
    inside = quote(f"{HUB_DIR}/{host_hub_socket.name}", safe="")
    out = {k: v.replace(outside, inside) for k, v in env.items()
           if k.startswith("JUPYTERHUB_") and isinstance(v, str)}
    prefix = out.get("JUPYTERHUB_SERVICE_PREFIX", "/")
    service = urlparse(out.get("JUPYTERHUB_SERVICE_URL", ""))
    out["JUPYTERHUB_SERVICE_URL"] = DEFAULT_PORT_URL + (service.path or prefix)
    out["JUPYTERHUB_DISABLE_USER_CONFIG"] = "1"
    out.pop("JUPYTERHUB_ROOT_DIR", None)
    return out


def server_argv(spec: SandboxSpec, *, socket_dir: Path, hub_socket_dir: Path,
                events_dir: Path, hub_env_fd: int, cgroup_procs: Sequence[str] = (),
                memory_in_cgroup: bool = False, disk_limit_bytes: int = 0) -> list[str]:
    """The full argv (run as root, ``pass_fds=(hub_env_fd,)``) of one workspace server.

    ``disk_limit_bytes`` (0: none) is what the contents API lets ``/work`` and ``/outputs``
    hold together before it refuses a save (the hub stops a project over its limit).
    """
    if spec.die_with_parent:
        raise ValueError("a workspace server must outlive a hub restart: die_with_parent=False")
    if disk_limit_bytes < 0:
        raise ValueError("disk_limit_bytes must be 0 (no limit) or positive")
    return bwrap.sandbox_argv(
        spec, [bwrap.PYTHON, "-m", "enclave.sandbox.server",
               f"--disk-limit-bytes={int(disk_limit_bytes)}"],
        cgroup_procs=cgroup_procs, memory_in_cgroup=memory_in_cgroup,
        secret_fds={HUB_ENV_NAME: hub_env_fd},
        run_binds=[(socket_dir, "server", True), (hub_socket_dir, "hub", False),
                   (events_dir, "events", True)])


#: Modules the server never imports. ``rfc3987_syntax`` compiles some thirty Earley grammars
#: when imported (about 0.8 s of CPU per start, more than half of all imports): jsonschema
#: imports it only to check the ``iri`` formats, which no Jupyter event schema uses
#: (jupyter_server issue 1559), and falls back to not checking them when it is absent.
BLOCKED_MODULES = ("rfc3987_syntax",)


def main() -> None:
    """Inside the sandbox: load the hub's variables and run the single-user server.

    The server runs in this process (no second interpreter start-up) with the hub's variables
    added to the environment, which the kernels do not inherit (:data:`bwrap.KERNEL_ENV`).
    """
    with open(HUB_ENV_FILE, encoding="utf-8") as handle:
        loaded = json.load(handle)
    if not isinstance(loaded, dict):
        raise SystemExit(f"{HUB_ENV_FILE} is not a JSON object")
    os.environ.update({k: v for k, v in loaded.items()
                       if isinstance(k, str) and k.startswith("JUPYTERHUB_")
                       and isinstance(v, str)})
    for name in BLOCKED_MODULES:
        sys.modules[name] = None  # type: ignore[assignment] # import raises ImportError
    flags = server_flags()
    for arg in sys.argv[1:]:
        name, _, value = arg.partition("=")
        if name != "--disk-limit-bytes" or not value.isdigit():
            raise SystemExit(f"enclave.sandbox.server: unknown argument {arg!r}")
        flags.append(f"--GuardedContentsManager.disk_limit_bytes={int(value)}")
    sys.argv = ["jupyterhub-singleuser", *flags]
    from jupyterhub.singleuser import main as singleuser_main

    singleuser_main()


if __name__ == "__main__":
    main()
