"""JupyterHub configuration of the enclave, read by ``enclave hub`` (``jupyterhub -f`` this file).

Everything comes from the enclave's settings; nothing here decides who may do what: the
authenticator asks the enclave's policy, and the spawner refuses until the sandbox exists.
"""

# ruff: noqa: F821 - ``c`` is injected by JupyterHub's config loader
from __future__ import annotations

from enclave.core.exceptions import SettingsError
from enclave.core.settings import Mode, load_settings
from enclave.hub.authenticator import EnclaveDemoAuthenticator
from enclave.hub.launcher import proxy_command
from enclave.hub.spawner import SandboxNotAvailableSpawner

settings = load_settings()
if settings.mode is Mode.PRODUCTION:
    raise SettingsError("production login is OpenID Connect against Keycloak; the demo "
                        "authenticator is refused in production mode")

c = get_config()  # type: ignore[name-defined]
c.JupyterHub.bind_url = settings.hub_bind_url
c.JupyterHub.hub_bind_url = settings.hub_api_url
c.JupyterHub.db_url = f"sqlite:///{settings.run_dir / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(settings.run_dir / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(settings.run_dir / "jupyterhub.pid")
c.JupyterHub.proxy_class = "configurable-http-proxy"
c.ConfigurableHTTPProxy.command = proxy_command()
c.ConfigurableHTTPProxy.pid_file = str(settings.run_dir / "proxy.pid")
c.ConfigurableHTTPProxy.api_url = settings.proxy_api_url
c.JupyterHub.authenticator_class = EnclaveDemoAuthenticator
# The enclave's policy decides inside authenticate() (fail closed: no role, no accreditation,
# no entry); JupyterHub's own allow-list would only duplicate it.
c.Authenticator.allow_all = True
c.Authenticator.manage_groups = True
c.JupyterHub.spawner_class = SandboxNotAvailableSpawner
c.JupyterHub.allow_named_servers = True
c.JupyterHub.implicit_spawn_seconds = 0
c.JupyterHub.template_vars = {"announcement_login": "Enclave sécurisée de la DEPP (démo)"}

# The web portal: a managed service people reach through the hub's login (enclave.portal).
from enclave.portal import hubconfig as portal  # noqa: E402

c.JupyterHub.services.append(portal.service(settings))
c.JupyterHub.load_roles.append(portal.access_role())
