"""JupyterHub configuration of the enclave, read by ``enclave hub`` (``jupyterhub -f`` this file).

Everything comes from the enclave's settings; nothing here decides who may do what: the
authenticator asks the enclave's policy at login, the spawner at every spawn and poll.

- Login: OpenID Connect (:mod:`enclave.hub.oidc`) when ``ENCLAVE_OIDC_ISSUER_URL`` is set
  (required in production), otherwise the demo accounts.
- Workspaces: :class:`enclave.hub.spawner.SandboxSpawner`, named servers only (a server is
  named after its project; the home page lists the person's projects), each in bubblewrap
  without network, reached through the node proxy on a Unix socket.
- The hub API listens on a Unix socket only (``run/hub/hub.sock``): the sandboxed servers,
  the portal and the idle culler reach it there; nothing listens on a TCP port for it.
- Hub restarts leave workspaces running (``cleanup_servers = False``); see the spawner.
"""

# ruff: noqa: F821 - ``c`` is injected by JupyterHub's config loader
from __future__ import annotations

import logging
import sys
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

from enclave.core.exceptions import SettingsError
from enclave.core.settings import Mode, load_settings
from enclave.hub import home
from enclave.hub.authenticator import EnclaveDemoAuthenticator
from enclave.hub.launcher import proxy_command
from enclave.hub.proxy import UnixSocketProxy
from enclave.hub.sockets import socket_base
from enclave.hub.spawner import SandboxSpawner

settings = load_settings()
c = get_config()  # type: ignore[name-defined]

# -- login ---------------------------------------------------------------------------------------
if settings.oidc_issuer_url:
    from enclave.hub.oidc import configure_oidc

    configure_oidc(c, settings)
elif settings.mode is Mode.PRODUCTION:
    raise SettingsError("production login is OpenID Connect against Keycloak: set "
                        "ENCLAVE_OIDC_ISSUER_URL; the demo authenticator is refused in "
                        "production mode")
else:
    c.JupyterHub.authenticator_class = EnclaveDemoAuthenticator
    # The enclave's policy decides inside authenticate() (fail closed: no role, no
    # accreditation, no entry); JupyterHub's own allow-list would only duplicate it.
    c.Authenticator.allow_all = True
    c.Authenticator.manage_groups = True

# -- hub, its API socket and the proxy -------------------------------------------------------------
run_dir = settings.run_dir
c.JupyterHub.bind_url = settings.hub_bind_url
if settings.hub_api_url.startswith("http+unix://"):
    hub_socket = Path(unquote(urlparse(settings.hub_api_url).netloc))
else:
    if settings.hub_api_url:
        logging.getLogger("enclave.hub").warning(
            "ENCLAVE_HUB_API_URL=%s is a TCP address; the sandboxed workspaces have no network "
            "and reach the hub only through its Unix socket, which is used instead",
            settings.hub_api_url)
    hub_socket = socket_base(run_dir) / "hub" / "hub.sock"
hub_socket.parent.mkdir(mode=0o711, parents=True, exist_ok=True)
hub_socket.parent.chmod(0o711)
c.JupyterHub.hub_bind_url = c.JupyterHub.hub_connect_url = \
    "http+unix://" + quote(str(hub_socket), safe="")
# Connecting needs write permission on the socket: the sandbox accounts (which see only this
# folder, read-only) must reach it; a token is still required for every API call.
c.JupyterHub.hub_socket_mode = 0o666
c.JupyterHub.db_url = f"sqlite:///{run_dir / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(run_dir / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(run_dir / "jupyterhub.pid")
c.JupyterHub.proxy_class = UnixSocketProxy
c.ConfigurableHTTPProxy.command = proxy_command()
c.ConfigurableHTTPProxy.pid_file = str(run_dir / "proxy.pid")
c.ConfigurableHTTPProxy.api_url = settings.proxy_api_url

# -- workspaces ------------------------------------------------------------------------------------
c.JupyterHub.spawner_class = SandboxSpawner
c.SandboxSpawner.hub_socket = str(hub_socket)
c.SandboxSpawner.poll_interval = settings.workspace_poll_seconds
c.SandboxSpawner.poll_jitter = 0.1
c.SandboxSpawner.memory_mib = settings.workspace_memory_mib
c.SandboxSpawner.cpu_cores = 1.0
c.SandboxSpawner.disk_limit_mib = settings.workspace_disk_mib
idle_seconds = settings.workspace_idle_seconds or settings.workspace_idle_minutes * 60
c.SandboxSpawner.idle_timeout_seconds = idle_seconds
c.JupyterHub.allow_named_servers = True
c.JupyterHub.named_server_limit_per_user = 0
c.JupyterHub.implicit_spawn_seconds = 0
c.JupyterHub.cleanup_servers = False
# After login people land on the list of their projects' workspaces, never on an implicit spawn
# of the default server (which the enclave refuses: one named server per project).
c.JupyterHub.default_url = "/hub/home"
c.JupyterHub.template_paths = [str(home.TEMPLATES)]
c.JupyterHub.template_vars = {"announcement_login": "Enclave sécurisée de la DEPP",
                              "enclave_workspaces": home.workspace_rows}

# The idle culler: stops workspaces without activity (a hub service with the role it needs).
c.JupyterHub.services.append({
    "name": "idle-culler",
    "command": [sys.executable, "-m", "enclave.hub.culler", f"--hub-socket={hub_socket}",
                f"--timeout={idle_seconds}",
                f"--cull-every={max(1, settings.workspace_cull_every_seconds)}",
                "--remove-named-servers=False"],
})
c.JupyterHub.load_roles.append({
    "name": "idle-culler",
    "description": "Stop workspaces that have been idle (jupyterhub-idle-culler)",
    "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    "services": ["idle-culler"],
})

# The web portal: a managed service people reach through the hub's login (enclave.portal).
from enclave.portal import hubconfig as portal  # noqa: E402

c.JupyterHub.services.append(portal.service(settings))
c.JupyterHub.load_roles.append(portal.access_role())
