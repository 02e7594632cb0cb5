"""The Keycloak realm export gives the hub exactly what ``enclave/hub/oidc.py`` expects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from enclave.core import policy
from enclave.core.policy import Role
from enclave.core.settings import Settings
from enclave.hub.oidc import GROUPS_CLAIM, SCOPES, USERNAME_CLAIM, enclave_group

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
REALM = DEPLOY / "keycloak" / "realm-enclave.json"


@pytest.fixture(scope="module")
def realm() -> dict[str, Any]:
    return json.loads(REALM.read_text(encoding="utf-8"))


def _hub_client(realm: dict[str, Any]) -> dict[str, Any]:
    (client,) = [c for c in realm["clients"] if c["clientId"] == Settings().oidc_client_id]
    return client


def test_hub_client_is_the_one_the_settings_name_by_default(realm: dict[str, Any]) -> None:
    assert _hub_client(realm)["clientId"] == "enclave-hub"


def test_hub_client_is_confidential_with_pkce_and_the_code_flow_only(
        realm: dict[str, Any]) -> None:
    client = _hub_client(realm)
    assert client["publicClient"] is False and client["bearerOnly"] is False
    assert client["clientAuthenticatorType"] == "client-secret"
    assert client["attributes"]["pkce.code.challenge.method"] == "S256"
    assert client["standardFlowEnabled"] is True
    assert client["implicitFlowEnabled"] is False
    assert client["directAccessGrantsEnabled"] is False  # no password grant
    assert client["serviceAccountsEnabled"] is False
    assert client["redirectUris"] and all(
        uri.startswith("https://") and uri.endswith("/hub/oauth_callback")
        for uri in client["redirectUris"])


def test_the_group_mapper_sends_bare_group_names_in_the_claim_the_hub_reads(
        realm: dict[str, Any]) -> None:
    mappers = [m for m in _hub_client(realm)["protocolMappers"]
               if m["protocolMapper"] == "oidc-group-membership-mapper"]
    assert len(mappers) == 1
    config = mappers[0]["config"]
    assert config["claim.name"] == GROUPS_CLAIM
    assert config["full.path"] == "false"
    assert config["userinfo.token.claim"] == "true"  # the hub reads the userinfo endpoint


def test_the_realm_groups_are_the_enclave_groups_of_people(realm: dict[str, Any]) -> None:
    names = {g["name"] for g in realm["groups"]}
    people_groups = {g for g, role in policy.GROUP_ROLES.items() if role is not Role.DATA_PROVIDER}
    assert names == people_groups == {"researchers", "depp-staff", "output-checkers",
                                      "ethics-committee", "enclave-admins"}
    for group in realm["groups"]:
        assert enclave_group(group["path"]) == group["name"]  # also read with full path on
        assert group["subGroups"] == []
    assert realm["defaultGroups"] == []  # nobody gets a role by merely having an account


def test_the_realm_holds_no_user_no_password_and_no_client_secret(realm: dict[str, Any]) -> None:
    assert realm.get("users", []) == []
    text = REALM.read_text(encoding="utf-8")
    assert '"credentials"' not in text and '"secret"' not in text
    assert "password\"" not in text.replace("resetPasswordAllowed", "")


def test_usernames_cannot_change_and_nobody_registers(realm: dict[str, Any]) -> None:
    """The hub keys people by ``preferred_username``; it must stay theirs."""
    assert USERNAME_CLAIM == "preferred_username"
    assert realm["editUsernameAllowed"] is False
    assert realm["registrationAllowed"] is False
    assert realm["sslRequired"] == "all"
    assert realm["bruteForceProtected"] is True
    assert "profile" in SCOPES  # Keycloak's profile scope carries preferred_username


def test_the_kubernetes_values_point_at_this_realm_and_client(realm: dict[str, Any]) -> None:
    values = yaml.safe_load((DEPLOY / "kubernetes" / "values.yaml").read_text())
    env = values["hub"]["extraEnv"]
    assert env["ENCLAVE_OIDC_ISSUER_URL"].endswith(f"/realms/{realm['realm']}")
    assert env["ENCLAVE_OIDC_CLIENT_ID"] == _hub_client(realm)["clientId"]
    public = env["ENCLAVE_HUB_BIND_URL"]
    assert f"{public}/hub/oauth_callback" in _hub_client(realm)["redirectUris"]
