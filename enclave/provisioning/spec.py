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
        "local_suppression": true,
        "sensitive": ["ips"],
        "weight": null}}}

or from the same structure in TOML (:meth:`ExtractSpec.from_file` reads ``.toml`` and
``.json``; ``enclave/provisioning/examples/`` holds a commented example). ``sensitive`` names
the variables whose l-diversity the risk report gives per key class; ``weight`` a sampling
weight variable for the population-frequency (``Fk``) measures (absent: the table is the
population, ``Fk = fk``).

Every error is a :class:`~enclave.core.exceptions.ValidationError` naming the faulty field
(``datasets.eleves.transforms[2].top``). :meth:`ExtractSpec.check_against` checks the variables
against the project's approved ones.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
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
    sensitive: tuple[str, ...] = ()
    weight: str | None = None

    @property
    def dropped(self) -> frozenset[str]:
        return frozenset(t.variable for t in self.transforms if t.op == "drop")

    def to_dict(self) -> dict[str, Any]:
        return {"filters": [f.to_dict() for f in self.filters],
                "transforms": [t.to_dict() for t in self.transforms],
                "quasi_identifiers": list(self.quasi_identifiers), "k": self.k,
                "local_suppression": self.local_suppression,
                "sensitive": list(self.sensitive), "weight": self.weight}


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
    def from_toml(cls, text: str) -> ExtractSpec:
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValidationError(f"extract spec: invalid TOML ({exc})") from None
        return cls.from_dict(doc)

    @classmethod
    def from_file(cls, path: Path) -> ExtractSpec:
        """Read a ``.toml`` or ``.json`` specification file (UTF-8)."""
        suffix = path.suffix.lower()
        if suffix not in (".toml", ".json"):
            raise ValidationError(f"extract spec {path}: the file must end in .toml or .json")
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ValidationError(f"extract spec {path}: no such file") from None
        except UnicodeDecodeError:
            raise ValidationError(f"extract spec {path}: not UTF-8 text") from None
        except OSError as exc:
            raise ValidationError(f"extract spec {path}: cannot be read ({exc.strerror})") \
                from None
        return cls.from_toml(text) if suffix == ".toml" else cls.from_json(text)

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
                      pupil_level: Mapping[str, bool],
                      variables: Mapping[str, Mapping[str, str]] | None = None,
                      known_datasets: frozenset[str] | None = None) -> None:
        """Refuse rules on datasets or variables the project is not approved for.

        ``variables`` maps each approved dataset's variables to their catalogue kind and
        ``known_datasets`` lists the catalogue: with them the error says whether a name is
        unknown, a direct identifier, or known but not approved for this project.
        """
        for dataset_id, rules in self.datasets:
            where = f"datasets.{dataset_id}"
            if dataset_id not in approved:
                if known_datasets is not None and dataset_id not in known_datasets:
                    raise ValidationError(f"{where}: unknown dataset {dataset_id!r}; the "
                                          f"catalogue has: {', '.join(sorted(known_datasets))}")
                raise ValidationError(f"{where}: dataset not approved for this project; "
                                      f"approved: {', '.join(sorted(approved))}")
            pupil = pupil_ids[dataset_id]
            allowed = set(approved[dataset_id]) - {pupil}
            kinds = dict(variables.get(dataset_id, {})) if variables is not None else None

            def check(name: str, allowed: set[str], at: str, dataset_id: str = dataset_id,
                      pupil: str = pupil, kinds: dict[str, str] | None = kinds) -> None:
                if name == pupil or (kinds is not None and kinds.get(name) == "direct_identifier"):
                    raise ValidationError(
                        f"{at}: {name!r} is a direct identifier: it never enters an extract "
                        "(the pupil identifier is replaced by the pseudonym 'eleve')")
                if kinds is not None and name not in kinds:
                    raise ValidationError(f"{at}: unknown variable {name!r} in dataset "
                                          f"{dataset_id!r}; it has: {', '.join(sorted(kinds))}")
                _approved_var(name, allowed, at)

            for i, f in enumerate(rules.filters):
                check(f.variable, allowed, f"{where}.filters[{i}].variable")
            for i, t in enumerate(rules.transforms):
                check(t.variable, allowed, f"{where}.transforms[{i}].variable")
            for i, q in enumerate(rules.quasi_identifiers):
                check(q, allowed - rules.dropped, f"{where}.quasi_identifiers[{i}]")
            for i, v in enumerate(rules.sensitive):
                check(v, allowed - rules.dropped, f"{where}.sensitive[{i}]")
            if rules.weight is not None:
                check(rules.weight, allowed - rules.dropped, f"{where}.weight")
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
    _no_extra(doc, {"filters", "transforms", "quasi_identifiers", "k", "local_suppression",
                    "sensitive", "weight"}, where)
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
    sensitive = tuple(_name(v, f"{where}.sensitive[{i}]") for i, v in
                      enumerate(_list(doc.get("sensitive", []), f"{where}.sensitive")))
    if set(sensitive) & set(qis):
        raise ValidationError(f"{where}.sensitive: a variable cannot be both sensitive and a "
                              "quasi-identifier")
    if sensitive and not qis:
        raise ValidationError(f"{where}.sensitive: l-diversity needs quasi-identifiers")
    weight = doc.get("weight")
    if weight is not None:
        weight = _name(weight, f"{where}.weight")
        if not qis:
            raise ValidationError(f"{where}.weight: weighted risk needs quasi-identifiers")
        if weight in qis or weight in sensitive:
            raise ValidationError(f"{where}.weight: {weight!r} is already a quasi-identifier "
                                  "or sensitive variable")
    return DatasetRules(tuple(filters), tuple(transforms), qis, k, suppression, sensitive,
                        weight)


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValidationError(f"{where}: must be a list")
    return value
