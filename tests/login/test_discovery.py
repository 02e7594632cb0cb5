"""The authenticator finds its endpoints from the real provider's discovery document."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path

import pytest
from traitlets.config import Config

from enclave.core.exceptions import SettingsError
from enclave.core.settings import load_settings
from enclave.hub.oidc import EnclaveOIDCAuthenticator, configure_oidc, discover
from tests.login.conftest import Idp


def test_endpoints_and_secret_come_from_the_provider_and_the_secret_file(
        idp: Idp, tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(idp.client_secret)
    c = Config()
    configure_oidc(c, load_settings(env={}, home=tmp_path / "var", hub_bind_url=idp.hub_url,
                                    oidc_issuer_url=idp.issuer,
                                    oidc_client_secret_file=str(secret_file)), env={})
    authenticator = EnclaveOIDCAuthenticator(config=c)
    assert authenticator.authorize_url == f"{idp.issuer}/auth"
    assert authenticator.token_url == f"{idp.issuer}/token"
    assert authenticator.userdata_url == f"{idp.issuer}/me"
    assert authenticator.client_secret == idp.client_secret


def test_a_provider_answering_for_another_issuer_is_refused(idp: Idp) -> None:
    # Same server, other name: OpenID Connect Discovery requires the issuer to match exactly.
    other_name = idp.issuer.replace("localhost", "127.0.0.1")
    with pytest.raises(SettingsError, match="does not describe the issuer"):
        discover(other_name)


def test_an_unreachable_provider_stops_the_hub_from_starting(idp: Idp) -> None:
    with pytest.raises(SettingsError, match="cannot be read"):
        discover("http://127.0.0.1:9/realms/none", timeout=2)



def test_plain_http_endpoints_off_loopback_are_refused(tmp_path: Path) -> None:
    """A provider (here a plain file server on loopback) advertising http endpoints elsewhere."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        issuer = f"http://127.0.0.1:{server.server_address[1]}"
        (tmp_path / ".well-known").mkdir()
        (tmp_path / ".well-known" / "openid-configuration").write_text(json.dumps({
            "issuer": issuer, "authorization_endpoint": "http://idp.example.fr/auth",
            "token_endpoint": f"{issuer}/token", "userinfo_endpoint": f"{issuer}/me"}))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            with pytest.raises(SettingsError, match="must use https"):
                discover(issuer, timeout=5)
        finally:
            server.shutdown()
            thread.join()
