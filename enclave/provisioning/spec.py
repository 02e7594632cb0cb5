"""Extract specification: per dataset, row filters, transformations, quasi-identifiers and k.

A specification is read from a dict (or JSON text) such as::

    {"datasets": {"eleves": {
        "filters": [{"variable": "niveau", "in": ["CM2", "6E"]},
                    {"variable": "secteur", "equals": "public"}],
        "transforms": [{"variable": "date_naissance", "op": "year"},
                       {"variable": "code_commune", "op": "departement"},
                       {"variable": "ips", "op": "top_bottom", "bottom": 80, "top": 130},
                       {"variable": "ips", "op": "round", "base": 5},
                       {"variable": "handicap", "op": "drop"}],
        "quasi_identifiers": ["sexe", "date_naissance", "code_commune"],
        "k": 5,
        "local_suppression": true}}}

Every error is a :class:`~enclave.core.exceptions.ValidationError` naming the faulty field
(``datasets.eleves.transforms[2].top``). :meth:`ExtractSpec.check_against` checks the variables
against the project's approved ones.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from enclave.core.exceptions import ValidationError

#: Transformation operations and the parameters each takes.
OPS: dict[str, tuple[str, ...]] = {
    "year": (),
    "year_month": (),
    "departement": (),
    "top_bottom": ("top", "bottom"),
    "round": ("base",),
    "drop": (),
}


@dataclass(frozen=True)
class RowFilter:
    """Keep rows whose ``variable`` equals one of ``values`` (``equals`` is one value)."""

    variable: str
    values: tuple[Any, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"variable": self.variable, "in": list(self.values)}


@dataclass(frozen=True)
class Transform:
    """One transformation of one variable; ``params`` holds ``top``/``bottom`` or ``base``."""

    variable: str
    op: str
    params: tuple[tuple[str, float], ...] = ()

    def param(self, name: str) -> float | None:
        return dict(self.params).get(name)

    def to_dict(self) -> dict[str, Any]:
        return {"variable": self.variable, "op": self.op, **dict(self.params)}


@dataclass(frozen=True)
class DatasetRules:
    """What the build does to one dataset."""

    filters: tuple[RowFilter, ...] = ()
    transforms: tuple[Transform, ...] = ()
    quasi_identifiers: tuple[str, ...] = ()
    k: int | None = None
    local_suppression: bool = True

    @property
    def dropped(self) -> frozenset[str]:
        return frozenset(t.variable for t in self.transforms if t.op == "drop")

    def to_dict(self) -> dict[str, Any]:
        return {"filters": [f.to_dict() for f in self.filters],
                "transforms": [t.to_dict() for t in self.transforms],
                "quasi_identifiers": list(self.quasi_identifiers), "k": self.k,
                "local_suppression": self.local_suppression}


@dataclass(frozen=True)
class ExtractSpec:
    """The rules of an extract, per dataset id (datasets not named are copied as approved)."""

    datasets: tuple[tuple[str, DatasetRules], ...] = field(default_factory=tuple)

    def rules(self, dataset_id: str) -> DatasetRules:
        return dict(self.datasets).get(dataset_id, DatasetRules())

    def to_dict(self) -> dict[str, Any]:
        return {"datasets": {d: r.to_dict() for d, r in self.datasets}}

    @classmethod
    def from_json(cls, text: str) -> ExtractSpec:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"extract spec: invalid JSON ({exc})") from None
        return cls.from_dict(doc)

    @classmethod
    def from_dict(cls, doc: Any) -> ExtractSpec:
        if not isinstance(doc, Mapping):
            raise ValidationError("extract spec: must be an object")
        _no_extra(doc, {"datasets"}, "extract spec")
        datasets = doc.get("datasets")
        if not isinstance(datasets, Mapping) or not datasets:
            raise ValidationError("extract spec: 'datasets' must be a non-empty object")
        out = []
        for name, rules in datasets.items():
            out.append((str(name), _rules(rules, f"datasets.{name}")))
        return cls(tuple(out))

    def check_against(self, approved: Mapping[str, list[str]], pupil_ids: Mapping[str, str],
                      pupil_level: Mapping[str, bool]) -> None:
        """Refuse rules on datasets or variables the project is not approved for."""
        for dataset_id, rules in self.datasets:
            where = f"datasets.{dataset_id}"
            if dataset_id not in approved:
                raise ValidationError(f"{where}: dataset not approved for this project; "
                                      f"approved: {', '.join(sorted(approved))}")
            allowed = set(approved[dataset_id]) - {pupil_ids[dataset_id]}
            for i, f in enumerate(rules.filters):
                _approved_var(f.variable, allowed, f"{where}.filters[{i}].variable")
            for i, t in enumerate(rules.transforms):
                _approved_var(t.variable, allowed, f"{where}.transforms[{i}].variable")
            for i, q in enumerate(rules.quasi_identifiers):
                _approved_var(q, allowed - rules.dropped, f"{where}.quasi_identifiers[{i}]")
            if rules.quasi_identifiers and not pupil_level[dataset_id]:
                raise ValidationError(f"{where}.quasi_identifiers: only pupil-level datasets "
                                      "take quasi-identifiers")


def _approved_var(name: str, allowed: set[str], where: str) -> None:
    if name not in allowed:
        raise ValidationError(f"{where}: {name!r} is not an approved (kept) variable; "
                              f"allowed: {', '.join(sorted(allowed))}")


def _no_extra(doc: Mapping[str, Any], known: set[str], where: str) -> None:
    extra = sorted(set(doc) - known)
    if extra:
        raise ValidationError(f"{where}: unknown field(s) {', '.join(map(repr, extra))}; "
                              f"known: {', '.join(sorted(known))}")


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{where}: must be a non-empty string")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(f"{where}: must be a finite number")
    return value


def _rules(doc: Any, where: str) -> DatasetRules:
    if not isinstance(doc, Mapping):
        raise ValidationError(f"{where}: must be an object")
    _no_extra(doc, {"filters", "transforms", "quasi_identifiers", "k", "local_suppression"},
              where)
    filters = []
    for i, f in enumerate(_list(doc.get("filters", []), f"{where}.filters")):
        at = f"{where}.filters[{i}]"
        if not isinstance(f, Mapping):
            raise ValidationError(f"{at}: must be an object")
        _no_extra(f, {"variable", "equals", "in"}, at)
        variable = _name(f.get("variable"), f"{at}.variable")
        if ("equals" in f) == ("in" in f):
            raise ValidationError(f"{at}: give exactly one of 'equals' or 'in'")
        if "equals" in f:
            values: tuple[Any, ...] = (f["equals"],)
        else:
            values = tuple(_list(f["in"], f"{at}.in"))
            if not values:
                raise ValidationError(f"{at}.in: must not be empty")
        for value in values:
            if not isinstance(value, str | int | float | bool):
                raise ValidationError(f"{at}: values must be strings, numbers or booleans")
        filters.append(RowFilter(variable, values))
    transforms = []
    seen: dict[str, list[str]] = {}
    for i, t in enumerate(_list(doc.get("transforms", []), f"{where}.transforms")):
        at = f"{where}.transforms[{i}]"
        if not isinstance(t, Mapping):
            raise ValidationError(f"{at}: must be an object")
        op = t.get("op")
        if op not in OPS:
            raise ValidationError(f"{at}.op: must be one of {', '.join(OPS)}; got {op!r}")
        _no_extra(t, {"variable", "op", *OPS[op]}, at)
        variable = _name(t.get("variable"), f"{at}.variable")
        if "drop" in seen.get(variable, []):
            raise ValidationError(f"{at}: {variable!r} is already dropped")
        seen.setdefault(variable, []).append(op)
        params: list[tuple[str, float]] = []
        if op == "top_bottom":
            if "top" not in t and "bottom" not in t:
                raise ValidationError(f"{at}: give 'top', 'bottom' or both")
            for p in ("bottom", "top"):
                if p in t:
                    params.append((p, _number(t[p], f"{at}.{p}")))
            limits = dict(params)
            if "top" in limits and "bottom" in limits and limits["bottom"] > limits["top"]:
                raise ValidationError(f"{at}.bottom: must not exceed top")
        elif op == "round":
            if "base" not in t:
                raise ValidationError(f"{at}.base: missing")
            base = _number(t["base"], f"{at}.base")
            if base <= 0:
                raise ValidationError(f"{at}.base: must be > 0")
            params.append(("base", base))
        transforms.append(Transform(variable, op, tuple(params)))
    qis = tuple(_name(q, f"{where}.quasi_identifiers[{i}]") for i, q in
                enumerate(_list(doc.get("quasi_identifiers", []), f"{where}.quasi_identifiers")))
    if len(set(qis)) != len(qis):
        raise ValidationError(f"{where}.quasi_identifiers: duplicates")
    k = doc.get("k")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise ValidationError(f"{where}.k: must be an integer >= 1")
    if (k is None) != (not qis):
        raise ValidationError(f"{where}: 'k' and 'quasi_identifiers' go together")
    suppression = doc.get("local_suppression", True)
    if not isinstance(suppression, bool):
        raise ValidationError(f"{where}.local_suppression: must be true or false")
    return DatasetRules(tuple(filters), tuple(transforms), qis, k, suppression)


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValidationError(f"{where}: must be a list")
    return value
