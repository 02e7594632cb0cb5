"""Outcomes of disclosure checks: per-rule verdicts, failing cells, and the combined result.

Everything here is plain data with a JSON round trip, so a result computed in a notebook can be
stored beside the output and read back by the review workflow unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    """What a check concluded; ordered FAIL > REVIEW > PASS when combining."""

    PASS = "pass"  # noqa: S105 (an outcome, not a password)
    FAIL = "fail"
    REVIEW = "review"


_SEVERITY = {Outcome.PASS: 0, Outcome.REVIEW: 1, Outcome.FAIL: 2}


def worst(outcomes: Iterable[Outcome]) -> Outcome:
    """Most severe outcome; nothing checked counts as FAIL, so an empty check never passes."""
    found = list(outcomes)
    if not found:
        return Outcome.FAIL
    return max(found, key=_SEVERITY.__getitem__)


def _json_value(value: Any) -> Any:
    """JSON-safe data: numpy scalars become Python ones, tuples lists; anything else refused."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    raise TypeError(f"{value!r} is not JSON data")


@dataclass(frozen=True)
class CellFinding:
    """One cell a rule flagged: its labels (row labels then column labels) and the value seen."""

    rule: str
    cell: tuple[str, ...]
    value: Any
    message: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "rule": self.rule,
            "cell": list(self.cell),
            "value": _json_value(self.value),
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CellFinding:
        """Inverse of ``to_dict``; raises ValueError on any malformed field."""
        _expect_keys(data, {"rule", "cell", "value", "message"}, "cell finding")
        cell = data["cell"]
        if not isinstance(cell, list) or not all(isinstance(x, str) for x in cell):
            raise ValueError("cell finding 'cell' must be a list of strings")
        value = data["value"]
        if value is not None and not isinstance(value, (bool, int, float, str)):
            raise ValueError("cell finding 'value' must be a JSON scalar")
        return cls(
            rule=_str(data, "rule"), cell=tuple(cell), value=value, message=_str(data, "message")
        )


@dataclass(frozen=True)
class RuleVerdict:
    """What one rule concluded about one output, in plain words, with every cell it flagged."""

    rule: str
    outcome: Outcome
    message: str
    cells: tuple[CellFinding, ...] = ()
    parameters: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "rule": self.rule,
            "outcome": self.outcome.value,
            "message": self.message,
            "cells": [c.to_dict() for c in self.cells],
            "parameters": {str(k): _json_value(v) for k, v in self.parameters.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuleVerdict:
        """Inverse of ``to_dict``; raises ValueError on any malformed field."""
        _expect_keys(data, {"rule", "outcome", "message", "cells", "parameters"}, "verdict")
        cells, parameters = data["cells"], data["parameters"]
        if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
            raise ValueError("verdict 'cells' must be a list of objects")
        if not isinstance(parameters, dict):
            raise ValueError("verdict 'parameters' must be an object")
        return cls(
            rule=_str(data, "rule"),
            outcome=_outcome(data["outcome"]),
            message=_str(data, "message"),
            cells=tuple(CellFinding.from_dict(c) for c in cells),
            parameters=dict(parameters),
        )


@dataclass(frozen=True)
class CheckResult:
    """All verdicts on one output under one policy; ``outcome`` is the worst of them."""

    outcome: Outcome
    verdicts: tuple[RuleVerdict, ...]
    policy_name: str
    policy_version: str
    policy_sha256: str = ""

    @classmethod
    def from_verdicts(
        cls,
        verdicts: Iterable[RuleVerdict],
        policy_name: str,
        policy_version: str,
        policy_sha256: str = "",
    ) -> CheckResult:
        """Combine verdicts, deriving the outcome so it can never disagree with them."""
        found = tuple(verdicts)
        return cls(
            outcome=worst(v.outcome for v in found),
            verdicts=found,
            policy_name=policy_name,
            policy_version=policy_version,
            policy_sha256=policy_sha256,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "outcome": self.outcome.value,
            "verdicts": [v.to_dict() for v in self.verdicts],
            "policy_name": self.policy_name,
            "policy_version": self.policy_version,
            "policy_sha256": self.policy_sha256,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        """Inverse of ``to_dict``; refuses a stored outcome that is not the worst verdict."""
        _expect_keys(
            data,
            {"outcome", "verdicts", "policy_name", "policy_version", "policy_sha256"},
            "check result",
        )
        verdicts = data["verdicts"]
        if not isinstance(verdicts, list) or not all(isinstance(v, dict) for v in verdicts):
            raise ValueError("check result 'verdicts' must be a list of objects")
        result = cls.from_verdicts(
            (RuleVerdict.from_dict(v) for v in verdicts),
            policy_name=_str(data, "policy_name"),
            policy_version=_str(data, "policy_version"),
            policy_sha256=_str(data, "policy_sha256"),
        )
        if _outcome(data["outcome"]) is not result.outcome:
            raise ValueError(
                f"check result says {data['outcome']!r} but its verdicts give "
                f"{result.outcome.value!r}"
            )
        return result


def summarise(result: CheckResult, *, max_cells: int = 10) -> str:
    """Plain-words lines for every rule that did not pass, naming up to ``max_cells`` cells."""
    lines = []
    for verdict in result.verdicts:
        if verdict.outcome is Outcome.PASS:
            continue
        line = f"{verdict.outcome.value.upper()} {verdict.rule}: {verdict.message}"
        if verdict.cells:
            shown = ", ".join(f"({', '.join(c.cell)})" for c in verdict.cells[:max_cells])
            extra = len(verdict.cells) - max_cells
            line += f": {shown}" + (f", and {extra} more" if extra > 0 else "")
        lines.append(line)
    if not lines:
        return (
            f"PASS: every automatic check passed (policy {result.policy_name} "
            f"{result.policy_version})"
        )
    return "\n".join(lines)


def _expect_keys(data: Mapping[str, Any], keys: set[str], what: str) -> None:
    if not isinstance(data, Mapping):
        raise ValueError(f"{what} must be an object")
    missing, unknown = keys - set(data), set(data) - keys
    if missing or unknown:
        raise ValueError(
            f"{what} has missing keys {sorted(missing)} or unknown keys {sorted(unknown)}"
        )


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise ValueError(f"{key!r} must be a string")
    return value


def _outcome(value: Any) -> Outcome:
    try:
        return Outcome(value)
    except ValueError:
        raise ValueError(f"unknown outcome {value!r}") from None
