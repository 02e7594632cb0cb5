"""Who is asking, according to the hub: JupyterHub's ``HubOAuth`` behind a small interface.

The hub authenticates people (OAuth for browsers, API tokens for programs) and says whether a
token may use this service (its ``access:services!service=portal`` scope). It never decides
what the person may see: that is the enclave database and the one policy module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jupyterhub.services.auth import HubOAuth, check_scopes
from jupyterhub.utils import url_path_join
from tornado.httputil import url_concat
from tornado.web import HTTPError

from enclave.portal.exceptions import HubUnavailable


@dataclass(frozen=True)
class HubUser:
    """A person (or service) as the hub describes the owner of a token."""

    name: str
    kind: str = "user"
    scopes: frozenset[str] = frozenset()
    groups: tuple[str, ...] = ()

    @classmethod
    def from_model(cls, model: Mapping[str, Any]) -> HubUser:
        """Build from the hub's ``/api/user`` reply."""
        return cls(str(model.get("name", "")), str(model.get("kind", "user")),
                   frozenset(str(s) for s in model.get("scopes") or ()),
                   tuple(str(g) for g in model.get("groups") or ()))


class HubIdentity:
    """The portal's OAuth client of the hub (wraps :class:`HubOAuth`)."""

    def __init__(self, hub_auth: HubOAuth) -> None:
        self.hub_auth = hub_auth

    @property
    def prefix(self) -> str:
        """The service's URL prefix, e.g. ``/services/portal/`` (ends with a slash)."""
        return str(self.hub_auth.base_url)

    @property
    def hub_logout_url(self) -> str:
        """Where logging out of the portal sends people: the hub's own logout."""
        return str(url_path_join(self.hub_auth.hub_prefix, "logout"))

    @property
    def hub_home_url(self) -> str:
        """The hub's home page (links back from error pages)."""
        return str(url_path_join(self.hub_auth.hub_prefix, "home"))

    def new_pkce(self) -> tuple[str, str]:
        """A PKCE (RFC 7636, S256) verifier and its challenge."""
        verifier, challenge, _method = self.hub_auth.generate_pkce_code_challenge()
        return verifier, challenge

    def authorization_url(self, state: str, code_challenge: str) -> str:
        """The hub's authorize URL for this service, with the state and the PKCE challenge."""
        return str(url_concat(self.hub_auth.login_url, {
            "state": state, "code_challenge": code_challenge,
            "code_challenge_method": "S256"}))

    async def token_for_code(self, code: str, code_verifier: str) -> str:
        """Exchange an authorization code for the person's OAuth token."""
        try:
            return str(await self.hub_auth.token_for_code(code, code_verifier=code_verifier,
                                                          sync=False))
        except HTTPError as exc:
            raise HubUnavailable(f"the hub refused the login code: {exc.log_message}") from None

    async def user_for_token(self, token: str) -> HubUser | None:
        """The token's owner with the token's scopes, or None for an unknown or expired token."""
        try:
            model = await self.hub_auth.user_for_token(token, sync=False)
        except HTTPError as exc:
            raise HubUnavailable(f"the hub could not identify the token: {exc.log_message}") \
                from None
        return None if model is None else HubUser.from_model(model)

    def may_use_portal(self, user: HubUser) -> bool:
        """True if the token carries this service's access scope (fail closed when unset)."""
        required = set(self.hub_auth.access_scopes)
        return bool(required) and bool(check_scopes(required, set(user.scopes)))
