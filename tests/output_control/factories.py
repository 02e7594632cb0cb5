"""Builders for output-control tests: tables, policies and event-level data at any shape."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from output_control.policy import Policy, parse_policy
from output_control.table import Magnitude, ModelFit, SidecarTable, Statistic, TableKind, Unit


def make_policy(
    threshold: int = 10, unit: str = "distinct_pupils", version: str = "test.1"
) -> Policy:
    """A policy with only the minimum-count rule."""
    text = (
        f'name = "test"\nversion = "{version}"\n'
        f'[rules.minimum_count]\nthreshold = {threshold}\nunit = "{unit}"\n'
    )
    return parse_policy(text.encode(), source="test")


def make_table(cells: Mapping[tuple[str, str], tuple[int, int] | int]) -> SidecarTable:
    """A two-way table (sexe x niveau) from ``{(row, column): (rows, units) or units}``;
    cells not given are empty."""
    row_keys = sorted({r for r, _ in cells})
    col_keys = sorted({c for _, c in cells})

    def pair(r: str, c: str) -> tuple[int, int]:
        value = cells.get((r, c), 0)
        return (value, value) if isinstance(value, int) else value

    return SidecarTable(
        index=("sexe",),
        columns=("niveau",),
        row_labels=tuple((r,) for r in row_keys),
        column_labels=tuple((c,) for c in col_keys),
        rows=tuple(tuple(pair(r, c)[0] for c in col_keys) for r in row_keys),
        units=tuple(tuple(pair(r, c)[1] for c in col_keys) for r in row_keys),
        unit=Unit.DISTINCT_PUPILS,
        unit_column="eleve",
    )


def events(spec: Mapping[tuple[str, str], tuple[int, int]]) -> pd.DataFrame:
    """Event-level data: for each ``(sexe, niveau)``, ``rows`` events spread over ``pupils``
    distinct pupils (pupil ids are unique to their cell)."""
    records = []
    for (sexe, niveau), (n_rows, n_pupils) in spec.items():
        for i in range(n_rows):
            records.append(
                {"sexe": sexe, "niveau": niveau, "eleve": f"{sexe}-{niveau}-{i % n_pupils}"}
            )
    return pd.DataFrame.from_records(records, columns=["sexe", "niveau", "eleve"])


def rules_policy(rules: Mapping[str, Mapping[str, object]], **top: object) -> Policy:
    """A policy with exactly ``rules`` (name -> parameters), written as TOML then parsed."""
    lines = ['name = "test"', 'version = "test.1"']
    lines += [f"{key} = {_toml(value)}" for key, value in top.items()]
    for name, params in rules.items():
        lines.append(f"[rules.{name}]")
        lines += [f"{key} = {_toml(value)}" for key, value in params.items()]
    return parse_policy("\n".join(lines).encode(), source="test")


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


def make_magnitude_table(
    cells: Mapping[tuple[str, str], list[float]],
    *,
    statistic: str = "sum",
    negative: frozenset[tuple[str, str]] = frozenset(),
    missing: frozenset[tuple[str, str]] = frozenset(),
    top_n: int = 3,
) -> SidecarTable:
    """A two-way magnitude table (sexe x niveau) from ``{(row, column): per-pupil
    contributions}``; each contribution is one pupil with one row. Cells not given are empty."""
    row_keys = sorted({r for r, _ in cells})
    col_keys = sorted({c for _, c in cells})
    stat = Statistic(statistic)
    aggregate = {
        Statistic.SUM: sum,
        Statistic.MEAN: lambda xs: sum(xs) / len(xs),
        Statistic.MIN: min,
        Statistic.MAX: max,
        Statistic.MEDIAN: lambda xs: float(pd.Series(xs).median()),
        Statistic.STD: lambda xs: float(pd.Series(xs).std()) if len(xs) > 1 else None,
    }[stat]

    def grid(fn):  # type: ignore[no-untyped-def]
        return tuple(tuple(fn(cells.get((r, c), []), (r, c)) for c in col_keys) for r in row_keys)

    return SidecarTable(
        index=("sexe",),
        columns=("niveau",),
        row_labels=tuple((r,) for r in row_keys),
        column_labels=tuple((c,) for c in col_keys),
        rows=grid(lambda xs, k: len(xs)),
        units=grid(lambda xs, k: len(xs)),
        kind=TableKind.MAGNITUDE_TABLE,
        values=grid(lambda xs, k: None if not xs else _float(aggregate(xs))),
        magnitude=Magnitude(
            variable="score",
            statistic=stat,
            top_n=top_n,
            totals=grid(lambda xs, k: float(sum(xs))),
            top=grid(lambda xs, k: tuple(float(x) for x in sorted(xs, reverse=True)[:top_n])),
            negative=grid(lambda xs, k: k in negative or any(x < 0 for x in xs)),
            missing=grid(lambda xs, k: k in missing),
        ),
    )


def _float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def make_model_output(dof: int, n_obs: int = 100, estimator: str = "ols") -> SidecarTable:
    """A regression output: two terms x (coef, std_err), fitted on ``n_obs`` pupils."""
    return SidecarTable(
        index=("term",),
        columns=("statistic",),
        row_labels=(("const",), ("ips",)),
        column_labels=(("coef",), ("std_err",)),
        rows=((n_obs, n_obs), (n_obs, n_obs)),
        units=((n_obs, n_obs), (n_obs, n_obs)),
        kind=TableKind.MODEL_OUTPUT,
        values=((1.5, 0.25), (-0.75, 0.125)),
        model=ModelFit(estimator=estimator, n_obs=n_obs, dof=dof),
    )
