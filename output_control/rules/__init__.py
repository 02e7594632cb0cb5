"""The disclosure rule engine: a registry of named rules and ``check_table`` to run a policy.

Pure library: no database, no web, no global mutable state. A new rule is a module exposing a
``RuleSpec`` and one line in ``RULES``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from output_control.rules import threshold
from output_control.rules.registry import Parameter, RuleSpec
from output_control.verdicts import CheckResult, Outcome, RuleVerdict

if TYPE_CHECKING:
    from output_control.policy import Policy
    from output_control.table import SidecarTable

RULES: Mapping[str, RuleSpec] = MappingProxyType({spec.name: spec for spec in (threshold.RULE,)})

__all__ = ["RULES", "Parameter", "RuleSpec", "check_output", "check_table", "load_policy"]

# Convenience re-exports for callers of the engine; resolved lazily because ``policy`` and
# ``sidecar`` themselves import this package.
_LAZY = {
    "load_policy": "output_control.policy",
    "Policy": "output_control.policy",
    "check_output": "output_control.sidecar",
    "read_output": "output_control.sidecar",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def check_table(table: SidecarTable, policy: Policy) -> CheckResult:
    """Run every rule of ``policy`` on ``table``; a rule that cannot run yields FAIL, not a skip."""
    verdicts = [_run(name, params, table) for name, params in policy.rules.items()]
    if not verdicts:
        verdicts.append(
            RuleVerdict(rule="policy", outcome=Outcome.FAIL, message="the policy has no rules")
        )
    return CheckResult.from_verdicts(verdicts, policy.name, policy.version, policy.sha256)


def _run(name: str, params: Mapping[str, object], table: SidecarTable) -> RuleVerdict:
    spec = RULES.get(name)
    if spec is None:
        return RuleVerdict(
            rule=name, outcome=Outcome.FAIL, message=f"the policy names an unknown rule {name!r}"
        )
    if table.kind not in spec.kinds:
        return RuleVerdict(
            rule=name,
            outcome=Outcome.REVIEW,
            message=f"this rule cannot check a {table.kind.value}; a controller must check it",
            parameters=dict(params),
        )
    try:
        return spec.check(table, params)
    except Exception as exc:  # fail closed: a broken rule blocks the output, with its reason
        return RuleVerdict(
            rule=name,
            outcome=Outcome.FAIL,
            message=f"the rule could not run ({type(exc).__name__}: {exc})",
            parameters=dict(params),
        )
