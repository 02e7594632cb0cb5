"""The Zero to JupyterHub values and the egress policy: what can be checked without a cluster.

The chart's JSON schema is not in this repository: set ``Z2JH_CHART_DIR`` to a checkout of the
chart folder (``zero-to-jupyterhub-k8s/jupyterhub``, holding ``values.yaml`` and
``values.schema.yaml``) to validate the values as helm would; without it that one test skips.
The structural tests below run everywhere.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from traitlets.config import Config

from enclave.core import people, policy
from enclave.core.context import Enclave, initialise
from enclave.core.exceptions import PermissionDenied
from enclave.core.policy import Role
from enclave.core.settings import RESERVED_ENV, Settings, load_settings
from enclave.hub.oidc import CLIENT_SECRET_ENV, EnclaveOIDCAuthenticator

KUBERNETES = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
SETTING_NAMES = {f"ENCLAVE_{name.upper()}" for name in Settings.__dataclass_fields__}


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return yaml.safe_load((KUBERNETES / "values.yaml").read_text(encoding="utf-8"))


def _merge(base: Any, override: Any) -> Any:
    """Helm's merge of values: mappings merge key by key, anything else replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base.get(key), value) if key in base else value
        return merged
    return override


def test_values_validate_against_the_charts_schema(values: dict[str, Any]) -> None:
    chart = os.environ.get("Z2JH_CHART_DIR")
    if not chart or not (Path(chart) / "values.schema.yaml").exists():
        pytest.skip("set Z2JH_CHART_DIR to the zero-to-jupyterhub-k8s chart folder")
    import jsonschema

    schema = yaml.safe_load((Path(chart) / "values.schema.yaml").read_text())
    defaults = yaml.safe_load((Path(chart) / "values.yaml").read_text())
    jsonschema.validate(_merge(defaults, values), schema)


def test_user_pods_send_nothing_beyond_the_charts_hub_rule(values: dict[str, Any]) -> None:
    policy_ = values["singleuser"]["networkPolicy"]
    assert policy_["enabled"] is True
    assert policy_["egress"] == []
    assert set(policy_["egressAllowRules"].values()) == {False}
    assert set(policy_["egressAllowRules"]) == {
        "cloudMetadataServer", "dnsPortsCloudMetadataServer", "dnsPortsKubeSystemNamespace",
        "dnsPortsPrivateIPs", "nonPrivateIPs", "privateIPs"}


def test_the_explicit_policy_denies_every_egress_of_user_pods() -> None:
    (manifest,) = list(yaml.safe_load_all(
        (KUBERNETES / "networkpolicy-deny-egress.yaml").read_text(encoding="utf-8")))
    assert manifest["apiVersion"] == "networking.k8s.io/v1"
    assert manifest["kind"] == "NetworkPolicy"
    spec = manifest["spec"]
    # KubeSpawner labels the user pods of the chart with component=singleuser-server.
    assert spec["podSelector"] == {"matchLabels": {"component": "singleuser-server"}}
    assert "Egress" in spec["policyTypes"]
    assert spec.get("egress", []) == []  # no rule: nothing allowed


def test_hub_and_enclave_databases_are_postgresql_with_passwords_from_secrets(
        values: dict[str, Any]) -> None:
    hub = values["hub"]
    assert hub["db"]["type"] == "postgres"
    assert hub["db"]["url"].startswith("postgresql")
    assert not re.search(r"//[^/@]*:[^/@]*@", hub["db"]["url"]), "no password in the URL"
    assert "password" not in hub["db"]
    env = hub["extraEnv"]
    for name in ("PGPASSWORD", "ENCLAVE_DATABASE_URL", "ENCLAVE_MASTER_KEY"):
        assert set(env[name]) == {"valueFrom"} and "secretKeyRef" in env[name]["valueFrom"]
    assert env["ENCLAVE_MODE"] == "production"
    assert CLIENT_SECRET_ENV not in env  # the client secret is a mounted file
    secret_dir = str(Path(env["ENCLAVE_OIDC_CLIENT_SECRET_FILE"]).parent)
    mounts = {m["mountPath"]: m for m in hub["extraVolumeMounts"]}
    assert mounts[secret_dir]["readOnly"] is True
    volume = next(v for v in hub["extraVolumes"] if v["name"] == mounts[secret_dir]["name"])
    assert "secret" in volume


def test_every_enclave_variable_of_the_hub_is_a_setting_the_enclave_knows(
        values: dict[str, Any]) -> None:
    names = {n for n in values["hub"]["extraEnv"] if n.startswith("ENCLAVE_")}
    assert names <= SETTING_NAMES | RESERVED_ENV, names - SETTING_NAMES - RESERVED_ENV


def test_workspaces_are_named_servers_with_limits_culling_and_no_terminal(
        values: dict[str, Any]) -> None:
    assert values["hub"]["allowNamedServers"] is True
    config = values["hub"]["config"]
    assert config["JupyterHub"]["admin_access"] is False
    assert config["JupyterHub"]["authenticator_class"] == \
        f"{EnclaveOIDCAuthenticator.__module__}.{EnclaveOIDCAuthenticator.__name__}"
    assert "--ServerApp.terminals_enabled=False" in config["KubeSpawner"]["args"]
    assert config["KubeSpawner"]["automount_service_account_token"] is False
    single = values["singleuser"]
    assert single["cpu"]["limit"] and single["memory"]["limit"]
    assert single["allowPrivilegeEscalation"] is False
    assert single["storage"]["type"] == "none"  # /work comes from the project's volume
    assert values["cull"]["enabled"] is True and values["cull"]["timeout"] > 0
    assert values["cull"]["users"] is False


# -- the hub's extra configuration, executed as the chart's jupyterhub_config.py does ---------

@pytest.fixture
def enclave_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """An embedded enclave and the variables the snippets read (demo mode: no cluster here)."""
    for name in [n for n in os.environ if n.startswith("ENCLAVE_")]:
        monkeypatch.delenv(name)
    home = tmp_path / "var"
    monkeypatch.setenv("ENCLAVE_HOME", str(home))
    monkeypatch.setenv("ENCLAVE_OIDC_ISSUER_URL", "https://auth.depp.example.fr/realms/enclave")
    monkeypatch.setenv("ENCLAVE_HUB_BIND_URL", "https://enclave.depp.example.fr")
    monkeypatch.setenv(CLIENT_SECRET_ENV, "not-shown")
    settings = load_settings()
    initialise(settings, env={})
    return settings


def _run_extra_config(values: dict[str, Any]) -> Config:
    c = Config()
    c.JupyterHub.services = []
    c.JupyterHub.load_roles = []
    namespace: dict[str, Any] = {"c": c}
    for key, source in sorted(values["hub"]["extraConfig"].items()):
        exec(compile(source, f"extraConfig/{key}", "exec"), namespace)  # noqa: S102
    return c


def test_extra_config_wires_login_portal_and_spawn_check(values: dict[str, Any],
                                                        enclave_env: Settings) -> None:
    c = _run_extra_config(values)
    assert c.JupyterHub.authenticator_class is EnclaveOIDCAuthenticator
    assert [s["name"] for s in c.JupyterHub.services] == ["portal"]
    assert callable(c.KubeSpawner.pre_spawn_hook)


def test_spawn_hook_refuses_the_default_server_and_projects_the_enclave_does_not_allow(
        values: dict[str, Any], enclave_env: Settings) -> None:
    hook = _run_extra_config(values).KubeSpawner.pre_spawn_hook
    enclave = Enclave.open(enclave_env, env={})
    try:
        with enclave.db.transaction() as session:
            people.create_user(session, policy.SYSTEM, "rita", "Rita", roles=[Role.RESEARCHER])
    finally:
        enclave.close()
    spawner = SimpleNamespace(name="", user=SimpleNamespace(name="rita"), volumes={},
                              volume_mounts={}, environment={"X": "1"})
    with pytest.raises(PermissionError, match="default server"):
        asyncio.run(hook(spawner))
    spawner.name = "someone-elses-project"
    with pytest.raises(PermissionDenied):
        asyncio.run(hook(spawner))
    assert spawner.volume_mounts == {} and spawner.volumes == {}  # nothing mounted


def test_user_pods_run_the_download_controls_of_the_local_sandbox(
        values: dict[str, Any]) -> None:
    """The Kubernetes server flags are the local sandbox's, minus what only bubblewrap needs
    (the Unix socket and the nested kernel sandbox)."""
    from enclave.sandbox.server import server_flags

    args = values["hub"]["config"]["KubeSpawner"]["args"]
    local = set(server_flags())
    assert set(args) - {"--ServerApp.root_dir=/work"} <= local
    for flag in local:
        name = flag.split("=", 1)[0]
        if name.startswith(("--ServerApp.sock", "--Kernel", "--MappingKernelManager")):
            continue  # bubblewrap-only: the socket, and kernels in their nested sandbox
        assert flag in args or name == "--ServerApp.root_dir", f"missing in Kubernetes: {flag}"


def test_spawn_hook_mounts_only_the_allowed_projects_volume(values: dict[str, Any],
                                                            enclave_env: Settings) -> None:
    from access_requests.workflow import ProjectStatus
    from tests.workflows.factories import PI, Factory

    hook = _run_extra_config(values).KubeSpawner.pre_spawn_hook
    enclave = Enclave.open(enclave_env, env={})
    try:
        project = Factory(enclave).setup().project(ProjectStatus.ACTIVE, pi=PI, members=[])
    finally:
        enclave.close()
    spawner = SimpleNamespace(name=project, user=SimpleNamespace(name=PI), volumes={},
                              volume_mounts={}, environment={"ENCLAVE_MASTER_KEY": "x"})
    asyncio.run(hook(spawner))
    claim = spawner.volumes["enclave-project"]["persistentVolumeClaim"]["claimName"]
    assert claim == f"enclave-project-{project}"
    mounts = {m["mountPath"]: m for m in spawner.volume_mounts.values()}
    assert mounts["/data"]["readOnly"] is True
    assert mounts["/data"]["subPath"] == "extract/v1"
    assert mounts["/work"]["subPath"] == f"work/{PI}"
    assert mounts["/outputs"]["subPath"] == "outputs"
    assert all(m["name"] in spawner.volumes for m in mounts.values())
    assert spawner.environment == {}
