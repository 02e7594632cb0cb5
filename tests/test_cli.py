"""The ``enclave`` command line: its commands, exit codes and clear errors."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from enclave.cli import main


def _run(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    environ.update({"ENCLAVE_HOME": str(home), **env})
    return subprocess.run([sys.executable, "-m", "enclave.cli", *args], capture_output=True,
                          text=True, env=environ, check=False, timeout=300)


def test_help_lists_the_foundation_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("init", "demo-data", "demo", "audit", "hub"):
        assert command in out
    with pytest.raises(SystemExit):
        main(["audit", "--help"])
    assert "verify" in capsys.readouterr().out


def test_audit_verify_passes_then_fails_after_a_row_is_edited(tmp_path: Path) -> None:
    home = tmp_path / "var"
    assert _run(home, "init", "--with-demo-accounts").returncode == 0
    ok = _run(home, "audit", "verify")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK:")
    with sqlite3.connect(home / "enclave.sqlite") as conn:
        conn.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2")
    bad = _run(home, "audit", "verify")
    assert bad.returncode == 2
    assert "FAILED at #2" in bad.stdout


def test_production_mode_refuses_the_embedded_sqlite_database(tmp_path: Path) -> None:
    result = _run(tmp_path / "var", "init", ENCLAVE_MODE="production",
                  ENCLAVE_DATABASE_URL=f"sqlite:///{tmp_path / 'x.sqlite'}")
    assert result.returncode == 2
    assert "PostgreSQL" in result.stderr


def test_unknown_setting_is_a_clear_error(tmp_path: Path) -> None:
    result = _run(tmp_path / "var", "init", ENCLAVE_DATABSE_URL="sqlite://")
    assert result.returncode == 2
    assert "unknown environment variable ENCLAVE_DATABSE_URL" in result.stderr


def test_production_mode_without_master_key_is_refused(tmp_path: Path) -> None:
    result = _run(tmp_path / "var", "init", ENCLAVE_MODE="production",
                  ENCLAVE_DATABASE_URL="postgresql+psycopg://enclave@/enclave?host=/nonexistent")
    assert result.returncode == 2
    assert "ENCLAVE_MASTER_KEY" in result.stderr
    assert not (tmp_path / "var" / "keys" / "master.key").exists()


def test_commands_refuse_a_database_at_an_unknown_migration(tmp_path: Path) -> None:
    home = tmp_path / "var"
    assert _run(home, "init").returncode == 0
    with sqlite3.connect(home / "enclave.sqlite") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0000old'")
    result = _run(home, "audit", "verify")
    assert result.returncode == 2
    assert "0000old, which this code does not know" in result.stderr


def test_commands_refuse_an_uninitialised_enclave(tmp_path: Path) -> None:
    result = _run(tmp_path / "var", "audit", "verify")
    assert result.returncode == 2
    assert "enclave init" in result.stderr


def test_tick_runs_the_periodic_work_without_smtp(tmp_path: Path) -> None:
    home = tmp_path / "var"
    assert _run(home, "init", "--with-demo-accounts").returncode == 0
    result = _run(home, "tick")
    assert result.returncode == 0, result.stderr
    assert "expired projects: 0" in result.stdout
    assert "no SMTP server configured" in result.stdout
