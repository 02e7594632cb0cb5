"""Disclosure-control policies: versioned TOML files naming the rules to run and their settings.

A policy is data, not code: the same file checks outputs in the notebook and in review, and each
result records the policy's name, version and the SHA-256 of its bytes.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from output_control.exceptions import PolicyError
from output_control.rules import RULES
from output_control.rules.registry import cell_patterns, to_cell_patterns

_TOP_LEVEL = {"name", "version", "description", "rules", "structural_zeros"}
CellPattern = tuple[tuple[str, str], ...]
_BUNDLED_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


@dataclass(frozen=True)
class Policy:
    """A validated policy: rule name -> parameters, in file order, plus the file's identity.

    ``structural_zeros`` are patterns ``((variable, label), ...)``: an empty cell whose labels
    match every pair of a pattern is empty by construction, not a disclosive zero.
    """

    name: str
    version: str
    sha256: str
    rules: Mapping[str, Mapping[str, Any]] = field(hash=False)
    description: str = ""
    source: str = ""
    structural_zeros: tuple[CellPattern, ...] = ()


def bundled_policies() -> list[str]:
    """Names of the policy files shipped with the package."""
    folder = resources.files("output_control.policies")
    names = (p.name for p in folder.iterdir())
    return sorted(n.removesuffix(".toml") for n in names if n.endswith(".toml"))


def load_policy(path_or_name: str | Path) -> Policy:
    """Load a policy from a TOML path, or a bundled one by name (e.g. ``"default"``)."""
    if isinstance(path_or_name, Path) or "/" in path_or_name or path_or_name.endswith(".toml"):
        path = Path(path_or_name)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise PolicyError(f"cannot read policy file {str(path)!r}: {exc.strerror}") from None
        return parse_policy(data, source=str(path))
    if not _BUNDLED_NAME.fullmatch(path_or_name) or path_or_name not in bundled_policies():
        raise PolicyError(
            f"no bundled policy named {path_or_name!r} (available: {bundled_policies()})"
        )
    resource = resources.files("output_control.policies").joinpath(f"{path_or_name}.toml")
    return parse_policy(resource.read_bytes(), source=f"bundled:{path_or_name}")


def parse_policy(data: bytes, *, source: str = "<memory>") -> Policy:
    """Validate policy bytes; unknown keys, unknown rules and bad values raise PolicyError."""
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"policy {source} is not valid UTF-8 TOML: {exc}") from None
    unknown = sorted(set(doc) - _TOP_LEVEL)
    if unknown:
        raise PolicyError(
            f"unknown key {unknown[0]!r} in policy {source} (allowed: {sorted(_TOP_LEVEL)})"
        )
    name = _text(doc, "name", source)
    version = _text(doc, "version", source)
    description = _text(doc, "description", source) if "description" in doc else ""
    rules = doc.get("rules")
    if not isinstance(rules, dict) or not rules:
        raise PolicyError(f"policy {source} must have a non-empty [rules] table")
    checked = {rule: _rule_parameters(rule, params, source) for rule, params in rules.items()}
    patterns = doc.get("structural_zeros", [])
    problem = cell_patterns(patterns)
    if problem is not None:
        raise PolicyError(f"'structural_zeros' in policy {source} {problem}")
    return Policy(
        name=name,
        version=version,
        sha256=hashlib.sha256(data).hexdigest(),
        rules=MappingProxyType(checked),
        description=description,
        source=source,
        structural_zeros=to_cell_patterns(patterns),
    )


def _text(doc: Mapping[str, Any], key: str, source: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value.strip():
        raise PolicyError(f"{key!r} in policy {source} must be a non-empty string, got {value!r}")
    return value


def _rule_parameters(rule: str, params: object, source: str) -> Mapping[str, Any]:
    spec = RULES.get(rule)
    if spec is None:
        raise PolicyError(
            f"unknown rule 'rules.{rule}' in policy {source} (known rules: {sorted(RULES)})"
        )
    if not isinstance(params, dict):
        raise PolicyError(f"'rules.{rule}' in policy {source} must be a table")
    allowed = {p.name: p for p in spec.parameters}
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise PolicyError(
            f"unknown key 'rules.{rule}.{unknown[0]}' in policy {source} "
            f"(allowed: {sorted(allowed)})"
        )
    result: dict[str, Any] = {}
    for parameter in spec.parameters:
        key = f"rules.{rule}.{parameter.name}"
        if parameter.name not in params:
            if parameter.required:
                raise PolicyError(f"{key!r} is required in policy {source}")
            result[parameter.name] = parameter.default
            continue
        value = params[parameter.name]
        problem = parameter.problem(value)
        if problem is not None:
            raise PolicyError(f"{key!r} in policy {source} {problem}")
        result[parameter.name] = parameter.convert(value) if parameter.convert else value
    return MappingProxyType(result)
