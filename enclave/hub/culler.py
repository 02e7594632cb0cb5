"""The idle culler (``jupyterhub-idle-culler``) talking to a hub API bound on a Unix socket.

The culler uses Tornado's HTTP client, which dials TCP only. The hub's API listens on a Unix
socket (so that sandboxed servers, which have no network, reach it), so this wrapper installs a
resolver mapping the reserved host name :data:`HUB_HOST` to that socket, then runs the culler
unchanged with ``--url=http://HUB_HOST/hub/api``. Run as a hub service::

    python -m enclave.hub.culler --hub-socket=/path/hub.sock --timeout=3600 --cull-every=300
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Sequence
from typing import Any

from tornado.netutil import DefaultLoopResolver, Resolver

#: A name that never resolves through DNS (RFC 6761 ``.invalid``): it means "the hub's socket".
HUB_HOST = "hub-api.enclave.invalid"


class HubSocketResolver(Resolver):
    """Resolves :data:`HUB_HOST` to the hub's Unix socket, every other name as usual."""

    def initialize(self, socket_path: str = "") -> None:  # type: ignore[override]
        """``socket_path``: the hub API's socket on this host."""
        self.socket_path = socket_path
        self.fallback = DefaultLoopResolver()

    async def resolve(self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC,
                      ) -> list[tuple[int, Any]]:
        """``[(AF_UNIX, socket path)]`` for the hub, the default resolution otherwise."""
        if host == HUB_HOST:
            return [(socket.AF_UNIX, self.socket_path)]
        return await self.fallback.resolve(host, port, family)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse ``--hub-socket``, install the resolver, and run the culler with the other options."""
    args = list(sys.argv[1:] if argv is None else argv)
    sockets = [a.split("=", 1)[1] for a in args if a.startswith("--hub-socket=")]
    if len(sockets) != 1 or not sockets[0].startswith("/"):
        raise SystemExit("usage: python -m enclave.hub.culler --hub-socket=/abs/path.sock "
                         "[jupyterhub-idle-culler options]")
    rest = [a for a in args if not a.startswith("--hub-socket=")]
    sys.modules["pycurl"] = None  # type: ignore[assignment] # keep Tornado's own client
    Resolver.configure(HubSocketResolver, socket_path=sockets[0])
    from jupyterhub_idle_culler import IdleCuller

    IdleCuller.launch_instance([*rest, f"--url=http://{HUB_HOST}/hub/api"])


if __name__ == "__main__":
    main()
