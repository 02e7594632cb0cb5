"""The enclave's hub configuration with OpenID Connect login, as production mode runs it.

Loads ``enclave/hub/jupyterhub_config.py`` whole (proxy, spawner, portal service, roles; it
turns OpenID Connect on when ``ENCLAVE_OIDC_ISSUER_URL`` is set) and applies
:func:`enclave.hub.oidc.configure_oidc` again, so these tests fail if the main configuration
ever stops using it; only the session re-check interval is shortened for the tests.
"""

# ruff: noqa: F821 - ``c`` and ``load_subconfig`` are injected by JupyterHub's config loader
from __future__ import annotations

import os

from enclave.core.settings import load_settings
from enclave.hub.launcher import CONFIG_FILE
from enclave.hub.oidc import EnclaveOIDCAuthenticator, configure_oidc

load_subconfig(str(CONFIG_FILE))  # type: ignore[name-defined]
c = get_config()  # type: ignore[name-defined]
if c.JupyterHub.authenticator_class is not EnclaveOIDCAuthenticator:
    raise RuntimeError("enclave/hub/jupyterhub_config.py did not turn OpenID Connect on "
                       "although ENCLAVE_OIDC_ISSUER_URL is set")
configure_oidc(c, load_settings())
# The tests watch a session end soon after the enclave stops admitting its holder.
c.EnclaveOIDCAuthenticator.auth_refresh_age = int(
    os.environ.get("LOGIN_TESTS_AUTH_REFRESH_AGE", "300"))
