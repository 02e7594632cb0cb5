"""The engine fails closed (a rule that cannot run, an unknown rule or no rule gives FAIL) and
stays a pure library that imports no database, web or enclave code."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

from output_control.rules import RULES, check_table
from output_control.verdicts import Outcome
from tests.output_control.factories import make_policy, make_table


def test_every_registered_rule_documents_itself_and_its_parameters() -> None:
    assert "minimum_count" in RULES
    for name, spec in RULES.items():
        assert spec.name == name
        assert spec.description
        assert all(p.description for p in spec.parameters)


def test_rule_that_cannot_run_fails_closed() -> None:
    policy = replace(
        make_policy(),
        rules=MappingProxyType({"minimum_count": {"threshold": "ten", "unit": "distinct_pupils"}}),
    )
    result = check_table(make_table({("F", "CP"): 50}), policy)
    assert result.outcome is Outcome.FAIL
    assert "could not run" in result.verdicts[0].message


def test_unknown_rule_in_a_hand_built_policy_fails_closed() -> None:
    policy = replace(make_policy(), rules=MappingProxyType({"no_such_rule": {}}))
    result = check_table(make_table({("F", "CP"): 50}), policy)
    assert result.outcome is Outcome.FAIL


def test_policy_without_rules_fails_closed() -> None:
    policy = replace(make_policy(), rules=MappingProxyType({}))
    result = check_table(make_table({("F", "CP"): 50}), policy)
    assert result.outcome is Outcome.FAIL
    assert result.verdicts[0].message == "the policy has no rules"


def test_output_control_library_imports_no_database_web_or_enclave_code() -> None:
    code = (
        "import sys, output_control, output_control.checked, output_control.rules\n"
        "import output_control.suppression\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('enclave', 'sqlalchemy', 'access_requests', 'fastapi', 'jupyterhub', 'httpx', "
        "'requests', 'psycopg') or m.startswith('output_control.review')]\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
