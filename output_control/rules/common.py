"""What every rule does the same way: turning the cells it flagged into one plain-words verdict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from output_control.verdicts import CellFinding, Outcome, RuleVerdict


def cells_word(n: int) -> str:
    """``"1 cell"`` or ``"n cells"``."""
    return f"{n} cell" if n == 1 else f"{n} cells"


def verdict(
    rule: str,
    findings: Sequence[CellFinding],
    *,
    outcome: Outcome,
    flagged: str,
    passed: str,
    parameters: Mapping[str, Any],
) -> RuleVerdict:
    """``outcome`` listing ``findings`` with the message ``flagged`` if any, else PASS."""
    if findings:
        return RuleVerdict(
            rule=rule,
            outcome=outcome,
            message=flagged,
            cells=tuple(findings),
            parameters=dict(parameters),
        )
    return RuleVerdict(rule=rule, outcome=Outcome.PASS, message=passed, parameters=dict(parameters))


def not_applicable(rule: str, why: str, parameters: Mapping[str, Any]) -> RuleVerdict:
    """PASS stating why the rule has nothing to check in this output."""
    return RuleVerdict(
        rule=rule,
        outcome=Outcome.PASS,
        message=f"not applicable: {why}",
        parameters=dict(parameters),
    )


def percent(value: float) -> float:
    """A share as a percentage rounded for messages."""
    return round(100.0 * value, 2)
