"""How a disclosure rule is described: its name, its check, the parameters a policy must give.

Each rule module exposes one ``RuleSpec``; ``output_control.rules`` lists them. Policies are
validated against these specs, so a typo in a policy is an error, never a silently skipped rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from output_control.table import SidecarTable, TableKind
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
    kinds: frozenset[TableKind] = field(default_factory=lambda: frozenset(TableKind))


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
