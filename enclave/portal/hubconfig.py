"""The portal's entry in JupyterHub's configuration: a managed service and the role to use it.

Imported by ``enclave/hub/jupyterhub_config.py``; it loads no web framework. The hub grants
``access:services!service=portal`` to the enclave's people (a coarse gate: the hub answers 403
to anyone else before the portal is reached); the enclave's policy then decides every page.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

from enclave.core import policy
from enclave.core.policy import Role
from enclave.core.settings import Settings

SERVICE_NAME = "portal"
#: Secrets in the hub's environment that the portal service must not inherit.
HUB_ONLY_SECRETS = frozenset({"ENCLAVE_OIDC_CLIENT_SECRET"})
ACCESS_SCOPE = f"access:services!service={SERVICE_NAME}"
#: What the portal's OAuth tokens may read about their owner (PLATFORM-NOTES).
OAUTH_SCOPES = ("read:users:groups!user", "read:roles:users!user")
#: Groups whose members may open the portal. Data providers are service accounts that deposit
#: through the ingest and read nothing back (DESIGN.md), so they have no pages here.
PORTAL_GROUPS = tuple(group for group, role in policy.GROUP_ROLES.items()
                      if role is not Role.DATA_PROVIDER)


def free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 now (the hub proxies to it; nothing else should)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service(settings: Settings, port: int | None = None) -> dict[str, Any]:
    """The ``c.JupyterHub.services`` entry: uvicorn on a loopback port, started by the hub."""
    port = port or free_loopback_port()
    # The portal gets the enclave's settings and keys (it signs releases) but not the hub's
    # OpenID Connect client secret, which only the hub's authenticator uses.
    environment = {k: v for k, v in os.environ.items()
                   if k.startswith("ENCLAVE_") and k not in HUB_ONLY_SECRETS}
    environment["ENCLAVE_HOME"] = str(settings.home)
    return {
        "name": SERVICE_NAME,
        "url": f"http://127.0.0.1:{port}",
        "command": [sys.executable, "-m", "uvicorn", "--factory",
                    "enclave.portal.service:from_environment", "--host", "127.0.0.1",
                    "--port", str(port), "--proxy-headers", "--forwarded-allow-ips",
                    "127.0.0.1", "--no-server-header", "--timeout-graceful-shutdown", "5"],
        "cwd": str(settings.run_dir),
        "environment": environment,
        "oauth_no_confirm": True,
        "oauth_client_allowed_scopes": list(OAUTH_SCOPES),
        "display": True,
        "info": {"description": "Portail de l'enclave / enclave portal"},
    }


def access_role() -> dict[str, Any]:
    """The role letting the enclave's people reach the portal through the hub.

    It also lets them read their own role assignments, so that the portal's tokens really carry
    the ``read:roles:users!user`` scope they ask for (a token never gets more than its owner).
    """
    return {"name": "enclave-portal-user",
            "description": "Open the enclave's portal (each page is then decided by the "
                           "enclave's policy)",
            "scopes": [ACCESS_SCOPE, "read:roles:users!user"], "groups": list(PORTAL_GROUPS)}
