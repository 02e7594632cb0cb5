"""Policies load from versioned TOML; any unknown key, unknown rule or bad value is refused."""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import pytest

from output_control.exceptions import PolicyError
from output_control.policy import load_policy, parse_policy

VALID = """
name = "p"
version = "1"
[rules.minimum_count]
threshold = 10
unit = "distinct_pupils"
"""


def test_default_policy_counts_ten_distinct_pupils_and_records_its_file_hash() -> None:
    policy = load_policy("default")
    data = resources.files("output_control.policies").joinpath("default.toml").read_bytes()
    assert (policy.name, policy.version) == ("default", "2026.1")
    assert dict(policy.rules["minimum_count"]) == {"threshold": 10, "unit": "distinct_pupils"}
    assert policy.sha256 == hashlib.sha256(data).hexdigest()


def test_policy_loads_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(VALID.replace("threshold = 10", "threshold = 5"))
    policy = load_policy(path)
    assert policy.rules["minimum_count"]["threshold"] == 5
    assert policy.source == str(path)
    assert load_policy(str(path)) == policy


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("colour = 'red'\n" + VALID, "'colour'"),
        (VALID + "[rules.p_percent]\np = 10\n", "'rules.p_percent'"),
        (VALID.replace("unit =", "minimum = 3\nunit ="), "'rules.minimum_count.minimum'"),
        (VALID.replace("threshold = 10", 'threshold = "10"'), "'rules.minimum_count.threshold'"),
        (VALID.replace("threshold = 10", "threshold = true"), "'rules.minimum_count.threshold'"),
        (VALID.replace("threshold = 10", "threshold = 0"), "'rules.minimum_count.threshold'"),
        (VALID.replace("threshold = 10", "threshold = 9.5"), "'rules.minimum_count.threshold'"),
        (VALID.replace("threshold = 10\n", ""), "'rules.minimum_count.threshold'"),
        (VALID.replace('"distinct_pupils"', '"schools"'), "'rules.minimum_count.unit'"),
        (VALID.replace('name = "p"', ""), "'name'"),
        (VALID.replace('version = "1"', "version = 1"), "'version'"),
        ('name = "p"\nversion = "1"\n', "[rules]"),
        ('name = "p"\nversion = "1"\nrules = 3\n', "[rules]"),
        (VALID.replace("[rules.minimum_count]", "[rules]\nminimum_count = 3\n[x]"), "'x'"),
        ("name = ", "TOML"),
    ],
)
def test_policy_error_names_the_offending_key(text: str, names: str) -> None:
    with pytest.raises(PolicyError) as raised:
        parse_policy(text.encode())
    assert names in str(raised.value)


def test_policy_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(PolicyError, match="UTF-8"):
        parse_policy(b"\xff\xfe")


@pytest.mark.parametrize("name", ["nope", "../default", "Default"])
def test_unknown_bundled_policy_name_is_refused(name: str) -> None:
    with pytest.raises(PolicyError):
        load_policy(name)


def test_missing_policy_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "absent.toml")


def test_policy_is_immutable() -> None:
    policy = load_policy("default")
    with pytest.raises(TypeError):
        policy.rules["minimum_count"]["threshold"] = 1  # type: ignore[index]
