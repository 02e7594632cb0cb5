"""Policies load from versioned TOML; any unknown key, unknown rule or bad value is refused."""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import pytest

from output_control.exceptions import PolicyError
from output_control.policy import bundled_policies, load_policy, parse_policy

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
    assert (policy.name, policy.version) == ("default", "2026.2")
    assert dict(policy.rules["minimum_count"]) == {"threshold": 10, "unit": "distinct_pupils"}
    assert policy.sha256 == hashlib.sha256(data).hexdigest()


def test_default_policy_sets_every_rule_with_the_documented_values() -> None:
    policy = load_policy("default")
    assert {name: dict(params) for name, params in policy.rules.items()} == {
        "minimum_count": {"threshold": 10, "unit": "distinct_pupils"},
        "p_percent": {"p": 10},
        "nk_dominance": {"pairs": ((2, 90.0), (1, 85.0))},
        "zeros": {"outcome": "review"},
        "class_disclosure": {"outcome": "fail"},
        "negative_or_missing": {"negative": "review", "missing": "review"},
        "single_unit_values": {"extremes": "fail", "percentiles": "review"},
        "residual_degrees_of_freedom": {"threshold": 10},
        "rounding": {"base": 5, "redact_at_most": 9, "required": False},
    }
    assert policy.structural_zeros == ()


def test_french_secrecy_policy_keeps_ten_pupils_and_the_85_percent_dominance() -> None:
    policy = load_policy("depp_secret_statistique")
    assert policy.name == "depp_secret_statistique"
    assert policy.rules["minimum_count"]["threshold"] == 10
    assert (1, 85.0) in policy.rules["nk_dominance"]["pairs"]
    assert policy.rules["zeros"]["outcome"] == "fail"
    assert (("niveau", "CP"), ("type_etablissement", "college")) in policy.structural_zeros


def test_every_bundled_policy_documents_the_source_of_each_rule() -> None:
    folder = resources.files("output_control.policies")
    for name in bundled_policies():
        text = folder.joinpath(f"{name}.toml").read_text()
        blocks = text.split("[rules.")[1:]
        assert blocks, name
        for block in blocks:
            body = block.split("]", 1)[1]
            assert body.lstrip().startswith("#"), f"{name}: rules.{block.split(']')[0]}"


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
        (VALID + "[rules.no_such_rule]\np = 10\n", "'rules.no_such_rule'"),
        (VALID + "[rules.p_percent]\np = 100\n", "'rules.p_percent.p'"),
        (VALID + "[rules.p_percent]\n", "'rules.p_percent.p'"),
        (VALID + "[rules.nk_dominance]\npairs = []\n", "'rules.nk_dominance.pairs'"),
        (VALID + "[rules.nk_dominance]\npairs = [{n = 0, k = 90}]\n", "'rules.nk_dominance.pairs'"),
        (VALID + "[rules.nk_dominance]\npairs = [{n = 2}]\n", "'rules.nk_dominance.pairs'"),
        (VALID + "[rules.zeros]\noutcome = 'pass'\n", "'rules.zeros.outcome'"),
        (VALID + "[rules.rounding]\nbase = 5\nrequired = 1\n", "'rules.rounding.required'"),
        ("structural_zeros = [{}]\n" + VALID, "'structural_zeros'"),
        ("structural_zeros = [{niveau = 1}]\n" + VALID, "'structural_zeros'"),
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
