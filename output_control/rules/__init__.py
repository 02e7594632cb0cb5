"""The disclosure rule engine: a registry of named rules and ``check_table`` to run a policy.

Pure library: no database, no web, no global mutable state. A new rule is a module exposing a
``RuleSpec`` and one line in ``RULES``. Each rule states the output kinds it checks; a rule that
does not concern an output's kind is not run on it, and an output no rule of the policy
concerns is sent for REVIEW, never passed unchecked.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from output_control.rules import (
    class_disclosure,
    negative_missing,
    nk_dominance,
    p_percent,
    residual_dof,
    rounding,
    single_unit,
    threshold,
    zeros,
)
from output_control.rules.registry import Parameter, RuleSpec
from output_control.verdicts import CheckResult, Outcome, RuleVerdict

if TYPE_CHECKING:
    from output_control.policy import Policy
    from output_control.table import SidecarTable

RULES: Mapping[str, RuleSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            threshold.RULE,
            p_percent.RULE,
            nk_dominance.RULE,
            zeros.RULE,
            class_disclosure.RULE,
            negative_missing.RULE,
            single_unit.RULE,
            residual_dof.RULE,
            rounding.RULE,
        )
    }
)

__all__ = [
    "RULES",
    "Parameter",
    "RuleSpec",
    "check_output",
    "check_table",
    "load_policy",
    "with_policy_structural_zeros",
]

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
    """Run every rule of ``policy`` that concerns ``table``'s kind; a rule that cannot run
    yields FAIL, an output that no rule concerns yields REVIEW: nothing is skipped silently."""
    if not policy.rules:
        verdicts = [
            RuleVerdict(rule="policy", outcome=Outcome.FAIL, message="the policy has no rules")
        ]
        return CheckResult.from_verdicts(verdicts, policy.name, policy.version, policy.sha256)
    table = with_policy_structural_zeros(table, policy)
    verdicts = []
    for name, params in policy.rules.items():
        verdict = _run(name, params, table)
        if verdict is not None:
            verdicts.append(verdict)
    if not verdicts:
        verdicts.append(
            RuleVerdict(
                rule="policy",
                outcome=Outcome.REVIEW,
                message=(
                    f"no rule of policy {policy.name} {policy.version} checks a "
                    f"{table.kind.words}; a controller must check it"
                ),
            )
        )
    return CheckResult.from_verdicts(verdicts, policy.name, policy.version, policy.sha256)


def with_policy_structural_zeros(table: SidecarTable, policy: Policy) -> SidecarTable:
    """``table`` with its empty cells matching a policy pattern added to its structural zeros."""
    if not policy.structural_zeros:
        return table
    names = (*table.index, *table.columns)
    known = set(table.structural_zeros)
    added = []
    for cell in table.cells:
        if cell.units or cell.labels in known:
            continue
        labels = dict(zip(names, cell.labels, strict=True))
        if any(
            all(labels.get(var) == label for var, label in pattern)
            for pattern in policy.structural_zeros
        ):
            added.append(cell.labels)
    if not added:
        return table
    return replace(table, structural_zeros=(*table.structural_zeros, *added))


def _run(name: str, params: Mapping[str, object], table: SidecarTable) -> RuleVerdict | None:
    spec = RULES.get(name)
    if spec is None:
        return RuleVerdict(
            rule=name, outcome=Outcome.FAIL, message=f"the policy names an unknown rule {name!r}"
        )
    if table.kind not in spec.kinds:
        return None
    try:
        return spec.check(table, params)
    except Exception as exc:  # fail closed: a broken rule blocks the output, with its reason
        return RuleVerdict(
            rule=name,
            outcome=Outcome.FAIL,
            message=f"the rule could not run ({type(exc).__name__}: {exc})",
            parameters=dict(params),
        )
