"""Fixtures of the sandbox suite: a real enclave home with canaries, accounts, sandbox runs.

The suite needs root and bubblewrap; without them its tests skip with the reason, and
``ENCLAVE_REQUIRE_SANDBOX=1`` (CI) turns those skips into failures.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from enclave.core.context import initialise
from enclave.core.settings import Settings, load_settings
from enclave.sandbox import accounts
from enclave.sandbox import run as sandbox_run
from enclave.sandbox.bwrap import MiB, SandboxSpec

REQUIRE_SANDBOX = os.environ.get("ENCLAVE_REQUIRE_SANDBOX") == "1"
#: Fixed test names: the accounts and groups are reused from run to run (idempotent).
ALICE, BRUNO = "sbxtest-alice", "sbxtest-bruno"
PROJECT_A, PROJECT_B = "sbxtest-a", "sbxtest-b"
#: Host environment variables that must never reach a sandbox.
HOST_SECRETS = ("ENCLAVE_MASTER_KEY", "JUPYTERHUB_API_TOKEN", "ENCLAVE_ESCAPE_CANARY")


@pytest.fixture(scope="session")
def sandbox_ready() -> None:
    """Skip (or fail under ENCLAVE_REQUIRE_SANDBOX=1) when the sandbox cannot run here."""
    reason = sandbox_run.unavailable_reason()
    if reason is not None:
        if REQUIRE_SANDBOX:
            pytest.fail(f"ENCLAVE_REQUIRE_SANDBOX=1 but the sandbox cannot run: {reason}")
        pytest.skip(f"sandbox unavailable: {reason}")


@dataclass(frozen=True)
class Layout:
    """An enclave home with a canary in every place a sandbox must not reach."""

    settings: Settings
    canary: str
    alice: accounts.Account
    bruno: accounts.Account
    group_a: accounts.ProjectGroup
    group_b: accounts.ProjectGroup
    extract_a: Path
    extract_b: Path
    outputs_a: Path
    work_alice: Path
    work_bruno: Path
    forbidden: dict[str, Path]

    def spec(self, **changes: Any) -> SandboxSpec:
        """Alice's sandbox on project A, with small limits and no nested user namespaces."""
        base = SandboxSpec(self.alice.name, self.alice.uid, self.alice.gid,
                           ((self.group_a.name, self.group_a.gid),), self.extract_a,
                           self.work_alice, self.outputs_a, memory_bytes=512 * MiB, nproc=64,
                           cpu_seconds=60, allow_nested_userns=False)
        return replace(base, **changes)


@pytest.fixture(scope="module")
def layout(sandbox_ready: None, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[Layout]:
    """A real, initialised enclave home (0700 ancestors, as pytest makes them)."""
    home = tmp_path_factory.mktemp("sandbox") / "var"
    settings = load_settings(env={}, home=home)
    initialise(settings, env={})
    canary = "CANARY-" + secrets.token_hex(8)
    (settings.raw_dir / "eleves").mkdir(exist_ok=True)
    (settings.raw_dir / "eleves" / "ine.csv").write_text(f"ine\n{canary}-raw\n")
    (settings.keys_dir / "canary.key").write_text(f"{canary}-key\n")
    projects = settings.projects_dir
    extract_a = projects / PROJECT_A / "extract" / "v1"
    extract_b = projects / PROJECT_B / "extract" / "v1"
    for extract, project in ((extract_a, PROJECT_A), (extract_b, PROJECT_B)):
        extract.mkdir(parents=True)
        (extract / "manifest.json").write_text(json.dumps({"project": project, "version": 1}))
    (extract_a / "eleves.csv").write_text("eleve,niveau\np1,6e\n")
    (extract_b / "eleves.csv").write_text(f"eleve,niveau\n{canary}-other-project,6e\n")
    alice, bruno = accounts.ensure_account(ALICE), accounts.ensure_account(BRUNO)
    group_a = accounts.ensure_project_group(PROJECT_A)
    group_b = accounts.ensure_project_group(PROJECT_B)
    accounts.grant_extract(group_a, extract_a)
    accounts.grant_extract(group_b, extract_b)
    outputs_a = projects / PROJECT_A / "outputs"
    accounts.prepare_outputs(group_a, outputs_a)
    work_alice = projects / PROJECT_A / "work" / ALICE
    work_bruno = projects / PROJECT_A / "work" / BRUNO
    accounts.prepare_work_dir(alice, work_alice)
    accounts.prepare_work_dir(bruno, work_bruno)
    (work_bruno / "notes.txt").write_text(f"{canary}-bruno\n")
    database = Path(settings.effective_database_url.removeprefix("sqlite:///"))
    with database.open("ab") as handle:  # a canary at the end of the SQLite file
        handle.write(f"{canary}-database".encode())
    forbidden = {
        "raw zone": settings.raw_dir / "eleves" / "ine.csv",
        "key store": settings.keys_dir / "canary.key",
        "database": database,
        "other project's extract": extract_b / "eleves.csv",
        "other user's work": work_bruno / "notes.txt",
    }
    yield Layout(settings, canary, alice, bruno, group_a, group_b, extract_a, extract_b,
                 outputs_a, work_alice, work_bruno, forbidden)


@contextlib.contextmanager
def host_secrets(canary: str) -> Iterator[None]:
    """Secrets in the host's (this process's) environment, as the hub would hold them."""
    saved = {name: os.environ.get(name) for name in HOST_SECRETS}
    os.environ.update({name: f"{canary}-env" for name in HOST_SECRETS})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_python(spec: SandboxSpec, code: str, timeout: float = 30) -> dict[str, Any]:
    """Run ``code`` in the sandbox; it must print one JSON object as its last line."""
    result = sandbox_run.run_in_sandbox(spec, ["python", "-c", textwrap.dedent(code)],
                                        timeout=timeout)
    lines = [line for line in result.log.splitlines() if line.startswith("{")]
    assert result.returncode == 0 and lines, f"sandboxed process failed:\n{result.log}"
    return json.loads(lines[-1])
