"""Demo login against the enclave's accounts; the enclave database decides who may enter.

In production the login is OpenID Connect (Keycloak) and this class is replaced by the OIDC
authenticator of the workspaces issue; the decision after authentication stays
:func:`enclave.core.policy.check_log_in`, so both paths fail closed the same way.
"""

from __future__ import annotations

import asyncio
from typing import Any

from jupyterhub.auth import Authenticator
from tornado import web

from enclave.core import audit, people, policy
from enclave.core.context import Enclave
from enclave.core.exceptions import NotFound, PermissionDenied


def decide_login(enclave: Enclave, username: str, password: str,
                 remote_ip: str = "") -> dict[str, Any] | None:
    """Check the password, then the policy; audit the outcome. None if the password is wrong."""
    with enclave.db.transaction() as session:
        user = people.authenticate(session, username, password)
        if user is None:
            audit.record(session, actor=username[:100] or "?", action="login.failed",
                         object_type="user", object_id=username[:100] or "?",
                         details={"reason": "unknown user or wrong password",
                                  "remote_ip": remote_ip})
            return None
        actor = people.actor_for(session, username)
        try:
            policy.check_log_in(actor)
        except PermissionDenied as exc:
            audit.record(session, actor=username, action="login.denied", object_type="user",
                         object_id=username, details={"reason": str(exc),
                                                      "remote_ip": remote_ip})
            return {"denied": str(exc)}
        audit.record(session, actor=username, action="login.succeeded", object_type="user",
                     object_id=username, details={"remote_ip": remote_ip,
                                                  "roles": sorted(r.value for r in actor.roles)})
    groups = [g for g, role in policy.GROUP_ROLES.items() if role in actor.roles]
    return {"name": username, "groups": groups}


class EnclaveDemoAuthenticator(Authenticator):
    """Username and password of the demo accounts (scrypt hashes in the enclave database)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._enclave: Enclave | None = None

    def _get_enclave(self) -> Enclave:
        if self._enclave is None:
            self._enclave = Enclave.open()
        return self._enclave

    async def authenticate(self, handler: Any, data: dict[str, str]) -> dict[str, Any] | None:
        """Verify the password and the enclave's policy, off the event loop."""
        username = self.normalize_username(str(data.get("username", "")))[:100]
        password = str(data.get("password", ""))
        remote_ip = getattr(getattr(handler, "request", None), "remote_ip", "") or ""
        try:
            result = await asyncio.get_running_loop().run_in_executor(
                None, decide_login, self._get_enclave(), username, password, remote_ip)
        except NotFound:
            return None
        if result is not None and "denied" in result:
            raise web.HTTPError(403, result["denied"])
        return result
