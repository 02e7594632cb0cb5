"""Builders for output-control tests: tables, policies and event-level data at any shape."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from output_control.policy import Policy, parse_policy
from output_control.table import SidecarTable, Unit


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
