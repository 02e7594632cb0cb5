"""Run the portal as a JupyterHub-managed service: ``uvicorn --factory ...:from_environment``.

The hub starts this process with ``JUPYTERHUB_*`` variables (API token, OAuth client id,
service prefix, access scopes) and the enclave's own ``ENCLAVE_*`` settings; nothing else is
configured here.
"""

from __future__ import annotations

import importlib
import logging
import os

from fastapi import FastAPI
from jupyterhub.services.auth import HubOAuth

from enclave.core.context import Enclave
from enclave.core.exceptions import SettingsError
from enclave.core.settings import Mode, load_settings
from enclave.portal.app import create_app
from enclave.portal.extensions import Extension
from enclave.portal.identity import HubIdentity
from enclave.portal.sessions import load_or_create_secret

#: Pages mounted besides the built-in ones, as "module:attribute" naming an Extension; the
#: access workflow's pages (applications, decisions) are to be listed here.
EXTENSIONS: tuple[str, ...] = ()
SECRET_FILE = "portal_cookie_secret"  # noqa: S105 - a file name, not a secret
HUB_CACHE_SECONDS = 60  # a token revoked at the hub stops working here within a minute


def load_extensions(names: tuple[str, ...]) -> list[Extension]:
    """Import each ``module:attribute`` and check it is an :class:`Extension`."""
    found = []
    for name in names:
        module, _, attribute = name.partition(":")
        value = getattr(importlib.import_module(module), attribute)
        if not isinstance(value, Extension):
            raise SettingsError(f"{name} is not a portal Extension")
        found.append(value)
    return found


def from_environment() -> FastAPI:
    """The portal for the enclave of ``ENCLAVE_*`` behind the hub of ``JUPYTERHUB_*``.

    Missing DSFR assets only degrade the pages' looks (a warning names the fix): the hub
    restarts a managed service that exits, so refusing to start would loop.
    """
    logging.basicConfig(level=logging.INFO, format="[portal %(levelname)s] %(message)s")
    missing = [name for name in ("JUPYTERHUB_API_TOKEN", "JUPYTERHUB_CLIENT_ID",
                                 "JUPYTERHUB_SERVICE_PREFIX") if not os.environ.get(name)]
    if missing:
        raise SettingsError("the portal runs as a JupyterHub service; missing "
                            + ", ".join(missing))
    settings = load_settings()
    enclave = Enclave.open(settings)
    identity = HubIdentity(HubOAuth(cache_max_age=HUB_CACHE_SECONDS))
    secret = load_or_create_secret(settings.run_dir / SECRET_FILE)
    return create_app(enclave, identity, secret=secret, extensions=load_extensions(EXTENSIONS),
                      secure_cookies=settings.mode is Mode.PRODUCTION, prime_activity=True,
                      on_close=enclave.close)
