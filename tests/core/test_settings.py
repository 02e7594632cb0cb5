"""Settings: safe defaults, precedence of sources, and clear refusals of anything unknown."""

from __future__ import annotations

from pathlib import Path

import pytest

from enclave.core.exceptions import SettingsError
from enclave.core.settings import RESERVED_ENV, Mode, Settings, load_settings


def _toml(tmp_path: Path, text: str, name: str = "enclave.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_the_demo_with_embedded_sqlite_under_var(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={})
    assert settings.mode is Mode.DEMO
    assert settings.home == tmp_path / "var"
    assert settings.database_url == ""
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'var' / 'enclave.sqlite'}"
    assert settings.audit_checkpoint_every == 1000
    assert settings.hub_bind_url == "http://127.0.0.1:8000"
    assert settings.log_level == "INFO"


def test_derived_folders_all_live_under_home(tmp_path: Path) -> None:
    settings = load_settings(env={}, home=tmp_path / "h")
    home = (tmp_path / "h").resolve()
    assert settings.raw_dir == home / "raw"
    assert settings.projects_dir == home / "projects"
    assert settings.releases_dir == home / "releases"
    assert settings.keys_dir == home / "keys"
    assert settings.checkpoints_dir == home / "audit-checkpoints"
    assert settings.run_dir == home / "run"
    dirs = settings.all_dirs()
    assert dirs[0] == home
    assert len(set(dirs)) == 7
    assert all(d == home or d.parent == home for d in dirs)


def test_toml_overrides_defaults(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'demo_pupils = 50\nlog_level = "DEBUG"\n'
                           f'home = "{tmp_path / "home"}"\n')
    settings = load_settings(path, env={})
    assert settings.demo_pupils == 50
    assert settings.log_level == "DEBUG"
    assert settings.home == tmp_path / "home"
    assert settings.audit_checkpoint_every == Settings().audit_checkpoint_every


def test_toml_settings_may_sit_in_an_enclave_table(tmp_path: Path) -> None:
    path = _toml(tmp_path, "[enclave]\ndemo_pupils = 51\n")
    assert load_settings(path, env={}).demo_pupils == 51


def test_environment_overrides_toml(tmp_path: Path) -> None:
    path = _toml(tmp_path, "demo_pupils = 50\naudit_checkpoint_every = 7\n")
    settings = load_settings(path, env={"ENCLAVE_DEMO_PUPILS": "60"})
    assert settings.demo_pupils == 60
    assert settings.audit_checkpoint_every == 7


def test_explicit_overrides_win_over_environment_and_toml(tmp_path: Path) -> None:
    path = _toml(tmp_path, "demo_pupils = 50\n")
    settings = load_settings(path, env={"ENCLAVE_DEMO_PUPILS": "60"}, demo_pupils=70)
    assert settings.demo_pupils == 70


def test_config_file_is_found_through_enclave_config(tmp_path: Path) -> None:
    path = _toml(tmp_path, "demo_pupils = 42\n")
    assert load_settings(env={"ENCLAVE_CONFIG": str(path)}).demo_pupils == 42


def test_mode_is_case_insensitive(tmp_path: Path) -> None:
    assert load_settings(env={"ENCLAVE_MODE": "DEMO"}).mode is Mode.DEMO


def test_unknown_environment_variable_is_refused_by_name() -> None:
    with pytest.raises(SettingsError, match=r"ENCLAVE_DEMO_PUPIL\b"):
        load_settings(env={"ENCLAVE_DEMO_PUPIL": "5"})


def test_unknown_toml_key_is_refused_by_name(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'databse_url = "postgresql://x"\n')
    with pytest.raises(SettingsError, match="unknown setting 'databse_url'"):
        load_settings(path, env={})


def test_unknown_key_in_enclave_table_is_refused(tmp_path: Path) -> None:
    path = _toml(tmp_path, "[enclave]\ndemo_pupil = 5\n")
    with pytest.raises(SettingsError, match="'demo_pupil'"):
        load_settings(path, env={})


def test_top_level_key_beside_an_enclave_table_is_refused(tmp_path: Path) -> None:
    # Before the fix, the top-level database_url was silently ignored.
    path = _toml(tmp_path, 'database_url = "postgresql://x"\n[enclave]\ndemo_pupils = 5\n')
    with pytest.raises(SettingsError, match="database_url"):
        load_settings(path, env={})


def test_enclave_key_that_is_not_a_table_is_refused(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'enclave = "yes"\n')
    with pytest.raises(SettingsError, match="not a table"):
        load_settings(path, env={})


def test_unknown_override_is_refused_by_name() -> None:
    with pytest.raises(SettingsError, match="'colour'"):
        load_settings(env={}, colour="blue")


@pytest.mark.parametrize("value", ["many", "-1", "1.5", ""])
def test_bad_integer_in_environment_is_refused_naming_the_key(value: str) -> None:
    with pytest.raises(SettingsError, match=r"'demo_pupils'.*ENCLAVE_DEMO_PUPILS"):
        load_settings(env={"ENCLAVE_DEMO_PUPILS": value})


@pytest.mark.parametrize("value", ["2.5", "true", "[1]", '"ten"', "{a = 1}", "-3"])
def test_bad_integer_in_toml_is_refused_naming_the_key(tmp_path: Path, value: str) -> None:
    path = _toml(tmp_path, f"audit_checkpoint_every = {value}\n")
    with pytest.raises(SettingsError, match="'audit_checkpoint_every'"):
        load_settings(path, env={})


@pytest.mark.parametrize("value", ["10", "true", "[1]", "{a = 1}"])
def test_non_text_value_for_a_text_setting_in_toml_is_refused(tmp_path: Path,
                                                               value: str) -> None:
    path = _toml(tmp_path, f"database_url = {value}\n")
    with pytest.raises(SettingsError, match="'database_url'"):
        load_settings(path, env={})


def test_bad_mode_is_refused_naming_the_key_and_the_choices() -> None:
    with pytest.raises(SettingsError, match=r"'mode'.*'prod'.*demo, production"):
        load_settings(env={"ENCLAVE_MODE": "prod"})


def test_invalid_toml_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = _toml(tmp_path, "demo_pupils = = 3\n")
    with pytest.raises(SettingsError, match="not valid TOML") as info:
        load_settings(path, env={})
    assert str(path) in str(info.value)


def test_missing_config_file_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(SettingsError, match="does not exist") as info:
        load_settings(env={"ENCLAVE_CONFIG": str(missing)})
    assert str(missing) in str(info.value)


def test_production_mode_without_database_url_is_refused() -> None:
    with pytest.raises(SettingsError, match="ENCLAVE_DATABASE_URL"):
        load_settings(env={"ENCLAVE_MODE": "production"})


def test_production_mode_with_a_database_url_is_accepted() -> None:
    url = "postgresql+psycopg://enclave@db/enclave"
    settings = load_settings(env={"ENCLAVE_MODE": "production", "ENCLAVE_DATABASE_URL": url})
    assert settings.mode is Mode.PRODUCTION
    assert settings.effective_database_url == url


def test_reserved_environment_names_are_not_settings(tmp_path: Path) -> None:
    config = _toml(tmp_path, "demo_pupils = 9\n")
    env = {name: "x" for name in RESERVED_ENV}
    env["ENCLAVE_CONFIG"] = str(config)
    settings = load_settings(env=env)
    assert settings.demo_pupils == 9
    assert {"ENCLAVE_MASTER_KEY", "ENCLAVE_CONFIG"} <= RESERVED_ENV


def test_variables_without_the_prefix_are_ignored() -> None:
    assert load_settings(env={"HOME": "/nowhere", "MODE": "production"}).mode is Mode.DEMO
