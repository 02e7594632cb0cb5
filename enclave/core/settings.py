"""The enclave's one settings object: variables ``ENCLAVE_*`` over an optional TOML file.

Precedence: explicit keyword arguments > environment > TOML file > safe defaults. Unknown keys in
either source are an error, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from enclave.core.exceptions import SettingsError

ENV_PREFIX = "ENCLAVE_"
#: Environment variables that are secrets or locations, never settings fields.
RESERVED_ENV = frozenset({"ENCLAVE_MASTER_KEY", "ENCLAVE_SMTP_PASSWORD", "ENCLAVE_CONFIG",
                          "ENCLAVE_OIDC_CLIENT_SECRET",
                          "ENCLAVE_TEST_POSTGRES_URL",
                          "ENCLAVE_REQUIRE_POSTGRES", "ENCLAVE_REQUIRE_SANDBOX",
                          "ENCLAVE_REQUIRE_BROWSER", "ENCLAVE_OUTPUTS_DIR", "ENCLAVE_NOTEBOOK"})


class Mode(StrEnum):
    """Demo generates its own keys at first start; production refuses to run without them."""

    DEMO = "demo"
    PRODUCTION = "production"


def _default_home() -> Path:
    return Path.cwd() / "var"


@dataclass(frozen=True)
class Settings:
    """Where the enclave keeps its state and how it runs; see the README for production values."""

    home: Path = field(default_factory=_default_home)
    mode: Mode = Mode.DEMO
    database_url: str = ""
    audit_checkpoint_every: int = 1000
    hub_bind_url: str = "http://127.0.0.1:8000"
    #: Empty: the hub API listens on the Unix socket ``run/hub/hub.sock`` (sandboxed workspaces
    #: have no network and reach it there); an ``http+unix://`` URL names another socket.
    hub_api_url: str = ""
    proxy_api_url: str = "http://127.0.0.1:8001"
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_sender: str = "enclave@localhost"
    smtp_username: str = ""
    accreditation_warning_days: int = 90
    #: Workspaces: seconds between policy re-checks of a running server (stops within a
    #: minute), memory limit per workspace in MiB, idle minutes before the culler stops one.
    workspace_poll_seconds: int = 20
    workspace_memory_mib: int = 2048
    workspace_idle_minutes: int = 60
    #: Tests only: an idle limit in seconds replacing the minutes when not 0, and how often the
    #: culler looks (seconds). Disk: most MiB a project's /work folders and /outputs may hold.
    workspace_idle_seconds: int = 0
    workspace_cull_every_seconds: int = 120
    workspace_disk_mib: int = 10240
    # OpenID Connect login (production): the provider's issuer, the hub's client, where the
    # client secret is read from (a file, e.g. a mounted Kubernetes secret; otherwise the
    # variable ENCLAVE_OIDC_CLIENT_SECRET, never a setting), and the public callback address.
    oidc_issuer_url: str = ""
    oidc_client_id: str = "enclave-hub"
    oidc_client_secret_file: str = ""
    oidc_callback_url: str = ""
    demo_seed: int = 20261128
    demo_pupils: int = 2000
    log_level: str = "INFO"

    # -- derived locations under ``home`` ----------------------------------------------------
    @property
    def raw_dir(self) -> Path:
        """The raw zone: deposited source data with identifiers in clear (restricted)."""
        return self.home / "raw"

    @property
    def projects_dir(self) -> Path:
        """Per-project extracts, work folders and outputs."""
        return self.home / "projects"

    @property
    def releases_dir(self) -> Path:
        """Signed release packages, downloadable by their requester only."""
        return self.home / "releases"

    @property
    def keys_dir(self) -> Path:
        """Key files kept outside the database (demo master key, signing keys)."""
        return self.home / "keys"

    @property
    def checkpoints_dir(self) -> Path:
        """Signed audit checkpoints, outside the database so truncation is detectable."""
        return self.home / "audit-checkpoints"

    @property
    def run_dir(self) -> Path:
        """Runtime state of the hub and proxy (sockets, pid files, cookie secret)."""
        return self.home / "run"

    @property
    def effective_database_url(self) -> str:
        """The configured URL, or the embedded SQLite file under ``home``."""
        return self.database_url or f"sqlite:///{self.home / 'enclave.sqlite'}"

    def all_dirs(self) -> list[Path]:
        """Every directory ``enclave init`` creates."""
        return [self.home, self.raw_dir, self.projects_dir, self.releases_dir, self.keys_dir,
                self.checkpoints_dir, self.run_dir]


_FIELDS = {f.name: f for f in fields(Settings)}


def _coerce(name: str, raw: Any, source: str) -> Any:
    kind = _FIELDS[name].type
    try:
        if kind == "int":
            if isinstance(raw, bool) or not isinstance(raw, int | str):
                raise ValueError(raw)  # a TOML float, array or table is not an integer
            value = int(raw)
            if value < 0:
                raise ValueError(raw)
            return value
        if kind == "Path" and isinstance(raw, os.PathLike):
            return Path(raw).expanduser().resolve()
        if not isinstance(raw, str):
            raise ValueError(raw)  # a TOML number, boolean, array or table is not text
        if kind == "Path":
            return Path(raw).expanduser().resolve()
        if kind == "Mode":
            return Mode(raw.lower())
        return raw
    except ValueError:
        allowed = f" (one of {', '.join(m.value for m in Mode)})" if kind == "Mode" else ""
        raise SettingsError(
            f"setting '{name}' from {source} has an invalid value {raw!r}{allowed}"
        ) from None


def load_settings(config_file: Path | None = None, env: dict[str, str] | None = None,
                  **overrides: Any) -> Settings:
    """Build the settings from defaults, the TOML file (``ENCLAVE_CONFIG``), env and overrides."""
    env = dict(os.environ if env is None else env)
    values: dict[str, Any] = {}
    path = config_file or (Path(env["ENCLAVE_CONFIG"]) if env.get("ENCLAVE_CONFIG") else None)
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SettingsError(f"configuration file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"configuration file {path} is not valid TOML: {exc}") from None
        section = data.get("enclave", data)
        if section is not data and (not isinstance(section, dict) or len(data) != 1):
            raise SettingsError(f"configuration file {path}: when an [enclave] table is used "
                                "it must hold every setting; found besides it: "
                                + (", ".join(sorted(k for k in data if k != "enclave"))
                                   or "'enclave' is not a table"))
        for key, raw in section.items():
            if key not in _FIELDS:
                raise SettingsError(f"unknown setting '{key}' in {path}; known: "
                                    + ", ".join(sorted(_FIELDS)))
            values[key] = _coerce(key, raw, str(path))
    for key, raw in env.items():
        if not key.startswith(ENV_PREFIX) or key in RESERVED_ENV:
            continue
        name = key[len(ENV_PREFIX):].lower()
        if name not in _FIELDS:
            raise SettingsError(f"unknown environment variable {key}; known: "
                                + ", ".join(ENV_PREFIX + n.upper() for n in sorted(_FIELDS)))
        values[name] = _coerce(name, raw, f"environment variable {key}")
    for key, raw in overrides.items():
        if key not in _FIELDS:
            raise SettingsError(f"unknown setting '{key}'")
        values[key] = _coerce(key, raw, "arguments")
    settings = replace(Settings(), **values)
    if settings.mode is Mode.PRODUCTION and not settings.database_url.startswith("postgresql"):
        raise SettingsError("production mode needs ENCLAVE_DATABASE_URL (PostgreSQL); the embedded "
                            "SQLite database is for the demo only")
    return settings
