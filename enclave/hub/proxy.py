"""The node proxy, routing to workspace servers that listen on Unix sockets.

JupyterHub 6.1 rebuilds a server's ``http+unix://<quoted socket path>`` URL with the default
port (``...sock:80``), which ``configurable-http-proxy`` cannot dial (PLATFORM-NOTES). This
subclass sends the proxy the target without ``:80`` and puts it back when reading the routes,
so the hub's periodic route check sees the targets it expects and does not re-add them.
"""

from __future__ import annotations

from typing import Any

from jupyterhub.proxy import ConfigurableHTTPProxy


def proxy_target(target: str) -> str:
    """``http+unix://<socket>:80/...`` as the proxy needs it: ``http+unix://<socket>/...``."""
    scheme, sep, rest = target.partition("://")
    if scheme != "http+unix" or not sep:
        return target
    host, slash, path = rest.partition("/")
    return f"{scheme}://{host.removesuffix(':80')}{slash}{path}"


def hub_target(target: str) -> str:
    """The inverse of :func:`proxy_target`: the form the hub computes for its routes."""
    scheme, sep, rest = target.partition("://")
    if scheme != "http+unix" or not sep:
        return target
    host, slash, path = rest.partition("/")
    if host.endswith(":80"):
        return target
    return f"{scheme}://{host}:80{slash}{path}"


class UnixSocketProxy(ConfigurableHTTPProxy):
    """``ConfigurableHTTPProxy`` whose routes may point at Unix sockets."""

    async def add_route(self, routespec: str, target: str, data: dict[str, Any]) -> None:
        """Add the route with a target the node proxy can dial."""
        await super().add_route(routespec, proxy_target(target), data)

    def _reformat_routespec(self, routespec: str, chp_data: dict[str, Any]) -> dict[str, Any]:
        """Report Unix-socket targets as the hub computes them."""
        route: dict[str, Any] = super()._reformat_routespec(routespec, chp_data)
        route["target"] = hub_target(str(route["target"]))
        return route
