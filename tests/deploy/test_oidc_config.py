"""``configure_oidc`` against a real traitlets ``Config`` and JupyterHub's own application class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

from enclave.core.exceptions import SettingsError
from enclave.core.settings import RESERVED_ENV, Settings, load_settings
from enclave.hub.oidc import (
    CLIENT_SECRET_ENV,
    GROUPS_CLAIM,
    EnclaveOIDCAuthenticator,
    configure_oidc,
)

ISSUER = "https://auth.depp.example.fr/realms/enclave"
SECRET = "a-client-secret-that-must-never-show"


def _settings(tmp_path: Path, **overrides: str) -> Settings:
    values: dict[str, Any] = {"home": str(tmp_path / "var"), "oidc_issuer_url": ISSUER,
                              "hub_bind_url": "https://enclave.depp.example.fr", **overrides}
    return load_settings(None, {}, **values)


def _configured(tmp_path: Path, **overrides: str) -> Config:
    c = Config()
    configure_oidc(c, _settings(tmp_path, **overrides),
                   env={CLIENT_SECRET_ENV: SECRET})
    return c


def test_configuration_names_the_enclave_authenticator_and_only_its_traits(
        tmp_path: Path) -> None:
    c = _configured(tmp_path)
    assert c.JupyterHub.authenticator_class is EnclaveOIDCAuthenticator
    traits = EnclaveOIDCAuthenticator.class_traits(config=True)
    unknown = set(c.EnclaveOIDCAuthenticator) - set(traits)
    assert unknown == set(), f"not options of the authenticator: {unknown}"
    section = c.EnclaveOIDCAuthenticator
    assert section.oauth_callback_url == "https://enclave.depp.example.fr/hub/oauth_callback"
    assert section.auth_state_groups_key == f"oauth_user.{GROUPS_CLAIM}"
    assert section.manage_groups is True and section.enable_pkce is True
    assert section.allow_all is False and section.admin_users == set()
    assert section.enable_auth_state is False


def test_every_value_passes_the_authenticators_own_validation(tmp_path: Path) -> None:
    """Instantiating the authenticator validates each trait (the issuer is left out: it would
    be fetched; tests/login does that against a real provider)."""
    c = _configured(tmp_path)
    c.EnclaveOIDCAuthenticator.issuer_url = ""
    authenticator = EnclaveOIDCAuthenticator(config=c)
    assert authenticator.client_id == "enclave-hub"
    assert authenticator.scope == ["openid", "profile", "email"]
    assert authenticator.username_claim == "preferred_username"
    assert authenticator.basic_auth is True
    assert authenticator.admin_users == set()


def test_jupyterhub_loads_the_configuration(tmp_path: Path) -> None:
    from jupyterhub.app import JupyterHub

    app = JupyterHub(config=_configured(tmp_path))
    assert app.authenticator_class is EnclaveOIDCAuthenticator


def test_the_client_secret_never_enters_the_configuration(tmp_path: Path) -> None:
    c = _configured(tmp_path)
    assert SECRET not in repr(c)
    assert "client_secret" not in c.EnclaveOIDCAuthenticator


def test_the_secret_is_read_from_the_file_named_by_the_settings(tmp_path: Path) -> None:
    secret_file = tmp_path / "client-secret"
    secret_file.write_text(SECRET + "\n")
    c = Config()
    configure_oidc(c, _settings(tmp_path, oidc_client_secret_file=str(secret_file)),
                   env={})
    c.EnclaveOIDCAuthenticator.issuer_url = ""
    assert EnclaveOIDCAuthenticator(config=c).client_secret == SECRET
    assert SECRET not in repr(c)


def test_the_secret_variable_is_not_a_setting() -> None:
    assert CLIENT_SECRET_ENV in RESERVED_ENV
    load_settings(env={CLIENT_SECRET_ENV: SECRET})  # not refused as an unknown setting


@pytest.mark.parametrize(("overrides", "env", "message"), [
    ({"oidc_issuer_url": ""}, {CLIENT_SECRET_ENV: SECRET}, "ENCLAVE_OIDC_ISSUER_URL"),
    ({"oidc_issuer_url": "http://auth.example.fr/realms/enclave"}, {CLIENT_SECRET_ENV: SECRET},
     "https"),
    ({"oidc_issuer_url": "auth.example.fr"}, {CLIENT_SECRET_ENV: SECRET}, "absolute"),
    ({"hub_bind_url": "http://enclave.example.fr"}, {CLIENT_SECRET_ENV: SECRET}, "https"),
    ({"oidc_client_id": ""}, {CLIENT_SECRET_ENV: SECRET}, "CLIENT_ID"),
    ({}, {}, CLIENT_SECRET_ENV),
    ({"oidc_client_secret_file": "/nonexistent/secret"}, {}, "cannot be read"),
])
def test_incomplete_or_unsafe_settings_are_refused(
        tmp_path: Path, overrides: dict[str, str], env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        configure_oidc(Config(), _settings(tmp_path, **overrides), env=env)


def test_an_empty_secret_file_is_refused_without_showing_it(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(SettingsError, match="is empty"):
        configure_oidc(Config(), _settings(tmp_path, oidc_client_secret_file=str(empty)),
                       env={})


def test_loopback_providers_may_use_plain_http(tmp_path: Path) -> None:
    c = _configured(tmp_path, oidc_issuer_url="http://localhost:8080/realms/enclave",
                    hub_bind_url="http://127.0.0.1:8000")
    assert c.EnclaveOIDCAuthenticator.issuer_url == "http://localhost:8080/realms/enclave"


def test_without_managed_groups_the_authenticator_refuses_to_start(tmp_path: Path) -> None:
    c = _configured(tmp_path)
    c.EnclaveOIDCAuthenticator.issuer_url = ""
    c.EnclaveOIDCAuthenticator.manage_groups = False
    with pytest.raises((SettingsError, ValueError), match="manage_groups"):
        EnclaveOIDCAuthenticator(config=c)
