"""Production login: OpenID Connect against Keycloak, then the enclave database decides.

The provider only says who the person is and which groups it puts them in. The enclave then
decides exactly as the demo login does (:func:`enclave.core.policy.check_log_in`, audited as
``login.succeeded`` / ``login.denied``): the groups become the person's roles in the enclave
database, a person with no enclave role is refused, a researcher needs a valid accreditation,
a deactivated account is refused. Anything unexpected (no username, a groups claim that is not
a list, an unreachable database) refuses the login: fail closed.

Tokens are not kept (``enable_auth_state`` stays off) and nobody is a JupyterHub admin: a hub
admin could open researchers' servers, which no enclave role allows. While a session lasts the
hub asks the enclave again every ``auth_refresh_age`` seconds and before every spawn, so an
accreditation that expires or an account that is deactivated ends the session.

The client secret comes from ``ENCLAVE_OIDC_CLIENT_SECRET`` or from the file named by the
setting ``oidc_client_secret_file``; it is read by the authenticator itself and never placed
in the configuration object, a setting or a log line.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from oauthenticator.generic import GenericOAuthenticator
from tornado import web
from traitlets import Unicode
from traitlets.config import Config

from enclave.core import audit, people, policy
from enclave.core.context import Enclave
from enclave.core.exceptions import NotFound, PermissionDenied, SettingsError, ValidationError
from enclave.core.settings import Settings

#: The claim carrying the person's groups (Keycloak's group-membership mapper, full path off).
GROUPS_CLAIM = "groups"
#: The claim naming the person (Keycloak's ``preferred_username``, its login name).
USERNAME_CLAIM = "preferred_username"
#: Scopes the hub asks for; the groups claim comes with the client's default scopes.
SCOPES = ("openid", "profile", "email")
#: Environment variable holding the client secret when no secret file is configured.
CLIENT_SECRET_ENV = "ENCLAVE_OIDC_CLIENT_SECRET"  # noqa: S105 - a variable's name
#: Enclave usernames: what :mod:`enclave.core.people` accepts, anchored.
USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,99}$"
DISCOVERY_TIMEOUT = 10.0


# -- the groups claim -------------------------------------------------------------------------

def enclave_group(name: object) -> str | None:
    """The enclave group a claim entry names, or None.

    Keycloak sends ``name`` (full path off) or ``/name`` (full path on); both are accepted for
    top-level groups. A nested path such as ``/other/researchers`` is another group and grants
    nothing, as does anything that is not text.
    """
    if not isinstance(name, str):
        return None
    bare = name[1:] if name.startswith("/") else name
    return bare if bare in policy.GROUP_ROLES else None


def groups_from_claim(value: object) -> set[str]:
    """The enclave groups in a groups claim; an absent or malformed claim grants none."""
    if not isinstance(value, list | tuple):
        return set()
    return {g for g in map(enclave_group, value) if g is not None}


# -- the decision after the provider authenticated the person ------------------------------------

@dataclass(frozen=True)
class Identity:
    """What the provider asserted about the person, already reduced to enclave groups."""

    username: str
    groups: frozenset[str]
    display_name: str = ""
    email: str = ""


def _denied(session: Any, username: str, reason: str, remote_ip: str) -> dict[str, Any]:
    audit.record(session, actor=username[:100] or "?", action="login.denied",
                 object_type="user", object_id=username[:100] or "?",
                 details={"reason": reason, "remote_ip": remote_ip, "provider": "oidc"})
    return {"denied": reason}


def decide_oidc_login(enclave: Enclave, identity: Identity, remote_ip: str = "",
                      create_unknown: bool = True) -> dict[str, Any]:
    """Sync the person's roles from their groups, then ask the policy; audit the outcome.

    Returns ``{"name", "groups"}`` (the enclave groups of the roles now held) or
    ``{"denied": reason}``. A person the enclave does not know yet gets an account (audited
    ``user.created``) only if a group grants them a role, so a researcher can then have their
    training recorded; a person with no enclave group leaves no account behind.
    """
    username = identity.username
    groups = {g for g in map(enclave_group, identity.groups) if g is not None}
    with enclave.db.transaction() as session:
        if not re.fullmatch(USERNAME_PATTERN, username):
            return _denied(session, username, f"{username[:100]!r} is not a valid enclave "
                           "username (a-z 0-9 . - _, starting with a letter or digit)",
                           remote_ip)
        try:
            people.get_user(session, username)
        except NotFound:
            if not groups:
                return _denied(session, username, f"{username} holds no enclave role",
                               remote_ip)
            if not create_unknown:
                return _denied(session, username, f"{username} has no account in the enclave",
                               remote_ip)
            try:
                people.create_user(session, policy.SYSTEM, username,
                                   identity.display_name or username, email=identity.email,
                                   roles=[policy.GROUP_ROLES[g] for g in groups])
            except ValidationError as exc:
                return _denied(session, username, str(exc), remote_ip)
        else:
            people.sync_roles_from_groups(session, policy.SYSTEM, username, groups)
        actor = people.actor_for(session, username)
        try:
            policy.check_log_in(actor)
        except PermissionDenied as exc:
            return _denied(session, username, str(exc), remote_ip)
        audit.record(session, actor=username, action="login.succeeded", object_type="user",
                     object_id=username, details={"remote_ip": remote_ip, "provider": "oidc",
                                                  "roles": sorted(r.value for r in actor.roles)})
    return {"name": username, "groups": _groups_of(actor.roles)}


def _groups_of(roles: Iterable[policy.Role]) -> list[str]:
    held = set(roles)
    return sorted(g for g, role in policy.GROUP_ROLES.items() if role in held)


def session_still_allowed(enclave: Enclave, username: str) -> list[str] | None:
    """The enclave groups of a logged-in person who may still be in, or None (audited)."""
    with enclave.db.transaction() as session:
        try:
            actor = people.actor_for(session, username)
        except NotFound:
            return None
        try:
            policy.check_log_in(actor)
        except PermissionDenied as exc:
            audit.record(session, actor=username, action="login.session_ended",
                         object_type="user", object_id=username,
                         details={"reason": str(exc), "provider": "oidc"})
            return None
    return _groups_of(actor.roles)


# -- the authenticator ----------------------------------------------------------------------------

def discover(issuer_url: str, timeout: float = DISCOVERY_TIMEOUT) -> dict[str, Any]:
    """The provider's OpenID configuration, checked to be the one of ``issuer_url``."""
    url = issuer_url.rstrip("/") + "/.well-known/openid-configuration"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - checked
            document = json.loads(response.read(1_000_000))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise SettingsError(f"the OpenID provider's configuration {url} cannot be read: "
                            f"{exc}") from None
    if not isinstance(document, dict) or document.get("issuer") != issuer_url:
        raise SettingsError(f"{url} does not describe the issuer {issuer_url} (OpenID "
                            "Connect Discovery requires the same issuer)")
    for key in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint"):
        if not isinstance(document.get(key), str):
            raise SettingsError(f"{url} has no {key}")
        _check_url(f"{key} of {url}", document[key])  # https, as the issuer itself
    return document


class EnclaveOIDCAuthenticator(GenericOAuthenticator):
    """OpenID Connect (Keycloak) for who the person is; the enclave for whether they enter."""

    login_service = Unicode("Keycloak", config=True,
                            help="Name shown on the login button.")
    issuer_url = Unicode("", config=True, help="""The OpenID provider's issuer; its discovery
        document gives the authorization, token and userinfo endpoints at start-up.""")
    client_secret_file = Unicode("", config=True, help=f"""A file holding the client secret
        (a mounted secret). Without it the secret comes from {CLIENT_SECRET_ENV}.""")
    client_secret_env = CLIENT_SECRET_ENV

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._enclave: Enclave | None = None
        if not self.manage_groups:
            # Without it the groups claim never reaches authenticate() and every login would
            # strip the person's roles; refuse to start rather than behave surprisingly.
            raise SettingsError("EnclaveOIDCAuthenticator needs manage_groups = True")
        if self.issuer_url:
            document = discover(self.issuer_url)
            for trait, key in (("authorize_url", "authorization_endpoint"),
                               ("token_url", "token_endpoint"),
                               ("userdata_url", "userinfo_endpoint")):
                if not getattr(self, trait):  # an explicit setting wins over discovery
                    setattr(self, trait, document[key])
        if self.client_secret_file and not getattr(self, "client_secret"):  # noqa: B009
            setattr(self, "client_secret",  # noqa: B010
                    read_secret_file(Path(self.client_secret_file)))

    def _get_enclave(self) -> Enclave:
        if self._enclave is None:
            self._enclave = Enclave.open()
        return self._enclave

    async def get_user_groups(self, auth_state: dict[str, Any]) -> set[str]:
        """The enclave groups in the groups claim; a malformed claim yields none (refusal)."""
        key = self.auth_state_groups_key
        raw: object = auth_state
        if callable(key):
            raw = key(auth_state)
        else:
            for part in str(key).split("."):
                raw = raw.get(part) if isinstance(raw, Mapping) else None
        return groups_from_claim(raw)

    async def authenticate(self, handler: Any, data: Any = None, **kwargs: Any
                           ) -> dict[str, Any] | None:
        """The provider's code flow (oauthenticator), then the enclave's decision."""
        model = await super().authenticate(handler, data, **kwargs)
        if not model:
            return None
        user_info = (model.get("auth_state") or {}).get(self.user_auth_state_key) or {}
        identity = Identity(username=str(model["name"]),
                            groups=frozenset(model.get("groups") or ()),
                            display_name=str(user_info.get("name") or "")[:200],
                            email=str(user_info.get("email") or "")[:254])
        remote_ip = getattr(getattr(handler, "request", None), "remote_ip", "") or ""
        result = await asyncio.get_running_loop().run_in_executor(
            None, decide_oidc_login, self._get_enclave(), identity, remote_ip)
        if "denied" in result:
            raise web.HTTPError(403, result["denied"])
        model["groups"] = result["groups"]
        model["admin"] = False
        return model

    async def check_allowed(self, username: str, auth_model: dict[str, Any] | None) -> bool:
        """Only a login the enclave decided carries enclave groups; anything else is out."""
        if auth_model is None:
            return False
        groups = set(auth_model.get("groups") or ())
        return bool(groups) and groups <= set(policy.GROUP_ROLES)

    async def refresh_user(self, user: Any, handler: Any = None, **kwargs: Any
                           ) -> bool | dict[str, Any]:
        """Ask the enclave again: a person it now refuses must log in again (and is refused)."""
        refreshed = await super().refresh_user(user, handler, **kwargs)
        if refreshed is False:
            return False
        groups = await asyncio.get_running_loop().run_in_executor(
            None, session_still_allowed, self._get_enclave(), user.name)
        if groups is None:
            return False
        model = refreshed if isinstance(refreshed, dict) else {"name": user.name}
        model["groups"] = groups
        model["admin"] = False
        return model


def read_secret_file(path: Path) -> str:
    """The secret in ``path`` (surrounding whitespace removed); its content is never shown."""
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SettingsError(f"the OpenID client secret file {path} cannot be read "
                            f"({exc.strerror})") from None
    if not secret:
        raise SettingsError(f"the OpenID client secret file {path} is empty")
    return secret


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(name: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise SettingsError(f"setting '{name}' must be an absolute http(s) URL, not {url!r}")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise SettingsError(f"setting '{name}' must use https outside the loopback interface "
                            f"({url})")


def configure_oidc(c: Config, settings: Settings, env: Mapping[str, str] | None = None) -> None:
    """Set the hub's login to the enclave's OpenID Connect authenticator from ``settings``.

    Refuses (:class:`SettingsError`) a missing issuer, a plain-http provider or callback off
    the loopback interface, or no client secret at all; the secret itself stays out of ``c``.
    """
    env = os.environ if env is None else env
    if not settings.oidc_issuer_url:
        raise SettingsError("OpenID Connect login needs ENCLAVE_OIDC_ISSUER_URL (e.g. "
                            "https://keycloak.example.fr/realms/enclave)")
    _check_url("oidc_issuer_url", settings.oidc_issuer_url)
    callback = (settings.oidc_callback_url
                or settings.hub_bind_url.rstrip("/") + "/hub/oauth_callback")
    _check_url("oidc_callback_url", callback)
    if not settings.oidc_client_id:
        raise SettingsError("OpenID Connect login needs ENCLAVE_OIDC_CLIENT_ID")
    if settings.oidc_client_secret_file:
        read_secret_file(Path(settings.oidc_client_secret_file))  # fail now, not at login
    elif not env.get(CLIENT_SECRET_ENV):
        raise SettingsError(f"OpenID Connect login needs the client secret in "
                            f"{CLIENT_SECRET_ENV} or a file named by "
                            "ENCLAVE_OIDC_CLIENT_SECRET_FILE")

    c.JupyterHub.authenticator_class = EnclaveOIDCAuthenticator
    auth = c.EnclaveOIDCAuthenticator
    auth.issuer_url = settings.oidc_issuer_url
    auth.client_id = settings.oidc_client_id
    auth.client_secret_file = settings.oidc_client_secret_file
    auth.oauth_callback_url = callback
    auth.scope = list(SCOPES)
    auth.username_claim = USERNAME_CLAIM
    auth.enable_pkce = True
    auth.basic_auth = True  # client_secret_basic: the OpenID Connect default, Keycloak's too
    auth.manage_groups = True
    auth.auth_state_groups_key = f"{EnclaveOIDCAuthenticator.user_auth_state_key}.{GROUPS_CLAIM}"
    auth.enable_auth_state = False  # no provider token is kept in the hub's database
    auth.refresh_pre_spawn = True  # the enclave is asked again before every spawn
    auth.auth_refresh_age = 300
    # Nobody enters by JupyterHub's own lists: the enclave decides inside authenticate().
    auth.allow_all = False
    auth.allow_existing_users = False
    auth.admin_users = set()
    auth.admin_groups = set()
    auth.username_pattern = USERNAME_PATTERN
    auth.validate_server_cert = True
    auth.custom_403_message = ("Accès refusé par l'enclave / access refused by the enclave")
