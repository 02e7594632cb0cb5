"""How a disclosure rule is described: its name, its check, the parameters a policy must give.

Each rule module exposes one ``RuleSpec``; ``output_control.rules`` lists them. Policies are
validated against these specs, so a typo in a policy is an error, never a silently skipped rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from output_control.table import TABLE_KINDS, SidecarTable, TableKind
from output_control.verdicts import RuleVerdict

RuleCheck = Callable[[SidecarTable, Mapping[str, Any]], RuleVerdict]
_REQUIRED = object()


@dataclass(frozen=True)
class Parameter:
    """One policy parameter of a rule; ``problem(value)`` says what is wrong, or None."""

    name: str
    description: str
    problem: Callable[[object], str | None]
    default: object = _REQUIRED
    convert: Callable[[Any], Any] | None = None

    @property
    def required(self) -> bool:
        """Whether a policy must set it."""
        return self.default is _REQUIRED


@dataclass(frozen=True)
class RuleSpec:
    """A named rule, its check function, its parameters, and the table kinds it understands."""

    name: str
    description: str
    check: RuleCheck
    parameters: tuple[Parameter, ...] = ()
    kinds: frozenset[TableKind] = field(default_factory=lambda: TABLE_KINDS)


def positive_int(value: object) -> str | None:
    """Accept an integer >= 1 (booleans are not integers here)."""
    if type(value) is not int or value < 1:
        return f"must be an integer >= 1, got {value!r} ({type(value).__name__})"
    return None


def one_of(*allowed: str) -> Callable[[object], str | None]:
    """Accept one of the given strings."""

    def problem(value: object) -> str | None:
        if not isinstance(value, str) or value not in allowed:
            return f"must be one of {list(allowed)}, got {value!r}"
        return None

    return problem


def non_negative_int(value: object) -> str | None:
    """Accept an integer >= 0 (booleans are not integers here)."""
    if type(value) is not int or value < 0:
        return f"must be an integer >= 0, got {value!r} ({type(value).__name__})"
    return None


def boolean(value: object) -> str | None:
    """Accept true or false."""
    if type(value) is not bool:
        return f"must be true or false, got {value!r}"
    return None


def percentage(value: object) -> str | None:
    """Accept a number strictly between 0 and 100 (a percentage, not a fraction)."""
    if type(value) not in (int, float) or not 0 < value < 100:  # type: ignore[operator]
        return f"must be a percentage strictly between 0 and 100, got {value!r}"
    return None


def outcome_choice(value: object) -> str | None:
    """Accept the outcome a rule gives when it fires: ``"fail"`` or ``"review"``."""
    return one_of("fail", "review")(value)


def nk_pairs(value: object) -> str | None:
    """Accept a non-empty list of ``{n = <int >= 1>, k = <percentage>}`` tables."""
    if not isinstance(value, list) or not value:
        return f"must be a non-empty list of {{n = ..., k = ...}} tables, got {value!r}"
    for pair in value:
        if not isinstance(pair, dict) or set(pair) != {"n", "k"}:
            return f"must hold tables with exactly the keys n and k, got {pair!r}"
        problem = positive_int(pair["n"]) or percentage(pair["k"])
        if problem is not None:
            return f"has pair {pair!r} that {problem}"
    return None


def to_nk_pairs(value: list[dict[str, Any]]) -> tuple[tuple[int, float], ...]:
    """Policy pairs as immutable ``(n, k)`` tuples."""
    return tuple((int(p["n"]), float(p["k"])) for p in value)


def cell_patterns(value: object) -> str | None:
    """Accept a list of ``{variable = "label", ...}`` tables (each naming at least one)."""
    if not isinstance(value, list):
        return f"must be a list of {{variable = \"label\"}} tables, got {value!r}"
    for pattern in value:
        if (
            not isinstance(pattern, dict)
            or not pattern
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in pattern.items())
        ):
            return f"must hold non-empty tables of text labels, got {pattern!r}"
    return None


def to_cell_patterns(value: list[dict[str, str]]) -> tuple[tuple[tuple[str, str], ...], ...]:
    """Policy patterns as immutable sorted ``((variable, label), ...)`` tuples."""
    return tuple(tuple(sorted(p.items())) for p in value)
