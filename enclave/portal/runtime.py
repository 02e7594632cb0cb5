"""The portal's handles for one application instance, reachable from every request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

from enclave.core.context import Enclave
from enclave.portal.activity import ActivityModel
from enclave.portal.extensions import Extension
from enclave.portal.identity import HubIdentity
from enclave.portal.queries import TrailCounter
from enclave.portal.sessions import CookieSealer

if TYPE_CHECKING:  # pragma: no cover
    from enclave.portal.rendering import Renderer


@dataclass
class Portal:
    """What routes need: the enclave, the hub client, the cookie sealer, the renderer."""

    enclave: Enclave
    identity: HubIdentity
    sealer: CookieSealer
    prefix: str  # e.g. /services/portal/
    secure_cookies: bool
    renderer: Renderer
    activity: ActivityModel
    extensions: tuple[Extension, ...]
    counter: TrailCounter
    @property
    def api_prefix(self) -> str:
        """Where the REST API lives."""
        return self.prefix + "api/v1"

    def url(self, path: str = "") -> str:
        """An absolute path inside the portal."""
        return self.prefix + path.lstrip("/")

    def is_api(self, path: str) -> bool:
        """True for a request to the REST API (JSON errors, bearer tokens only)."""
        return path == self.api_prefix or path.startswith(self.api_prefix + "/")


def portal_of(conn: HTTPConnection) -> Portal:
    """The portal serving this request."""
    portal: Portal = conn.app.state.portal
    return portal
