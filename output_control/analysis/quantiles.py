"""Checked quantiles (percentiles) of a numeric column per group, beyond the median.

A quantile is computed by linear interpolation between the two order statistics around it
(pandas' and numpy's default, Hyndman & Fan 1996 definition 7): ``Q(q) = x_(k) + (h - k)
(x_(k+1) - x_(k))`` with ``h = (n - 1) q`` and ``k = floor(h)``, ``x_(1) <= ... <= x_(n)`` the
sorted values. It is therefore one row's own value, or a weighted average of two neighbours,
whatever the number of pupils: the policy's ``single_unit_values`` rule flags every non-empty
cell with its ``percentiles`` outcome (REVIEW in the default policy, FAIL in the French one), as
GSS/Eurostat output-checking guidance asks for percentiles (Brandt et al. 2010, "Guidelines for
the checking of output based on microdata research", section on maxima, minima and
percentiles). ACRO 1.0.2 classes quartiles and percentiles as "Position" statistics and
checks only their group count (threshold) and class disclosure.

The output is one magnitude table: rows are the groups, columns the quantile levels (a column
variable ``quantile`` labelled ``p10``, ``p25``, ...), every cell carrying its group's
distinct-pupil count and contributions so that ``minimum_count`` and ``negative_or_missing``
also apply. The statistic is ``quantile`` with the level of each column recorded in the
sidecar (``magnitude.levels``), so the rule names it ("the 10th percentile of 40 pupils"). The
levels 0 and 1 (minimum and maximum, single-unit "extremes") are refused here: ask
``describe`` for them so that the policy's ``extremes`` outcome applies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from output_control.checked import _magnitude_table, _top_n, _write_output
from output_control.exceptions import InvalidTable
from output_control.policy import Policy, load_policy
from output_control.sidecar import format_value, table_frame, validate_output_name
from output_control.table import Magnitude, SidecarTable, Statistic

QUANTILE_COLUMN = "quantile"
DEFAULT_LEVELS = (0.1, 0.25, 0.5, 0.75, 0.9)
ALL_GROUP = "all"
MAX_LEVELS = 99


def quantiles(
    df: pd.DataFrame,
    column: str,
    q: Sequence[float] = DEFAULT_LEVELS,
    *,
    by: str | Sequence[str] | None = None,
    pupil_id: str = "eleve",
    name: str,
    outputs_dir: Path | str | None = None,
    population: dict | None = None,
    policy: Policy | str = "default",
    justification: str | None = None,
) -> pd.DataFrame:
    """Quantiles ``q`` (each strictly between 0 and 1) of ``column`` per group of ``by``.

    Returns a frame indexed by the groups (``all`` when ``by`` is None) with one column per
    level (``p10``, ``p25``, ...), equal to ``df.groupby(by)[column].quantile(q)`` unstacked;
    missing values are left out. Writes ``<name>.csv`` and its sidecar, checked at once.
    """
    validate_output_name(name)
    levels = _levels(q)
    labels = [level_label(level) for level in levels]
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    if by is None:
        if ALL_GROUP in df.columns:
            raise ValueError(f"df has a column {ALL_GROUP!r}; pass by= explicitly")
        df = df.assign(**{ALL_GROUP: ALL_GROUP})
        groups = [ALL_GROUP]
    else:
        groups = [by] if isinstance(by, str) else list(by)
    if QUANTILE_COLUMN in groups:
        raise ValueError(f"{QUANTILE_COLUMN!r} names the quantile levels; rename that column")
    policy = policy if isinstance(policy, Policy) else load_policy(policy)
    base = _magnitude_table(df, groups, [], pupil_id, column, Statistic.MEDIAN, _top_n(policy))
    data = df.dropna(subset=[*groups, column])
    by_group = data.groupby(groups, observed=True, sort=True)[column].quantile(list(levels))
    grid = by_group.unstack(level=-1) if len(by_group) else pd.DataFrame(columns=list(levels))
    found = {_key(key): line for key, line in zip(grid.index, grid.to_numpy().tolist(),
                                                 strict=True)}
    values = tuple(
        tuple(_finite_or_none(v) for v in found.get(key, [math.nan] * len(levels)))
        for key in base.row_labels
    )
    table = _widen(base, labels, values, levels)
    _write_output(table, name=name, policy=policy, population=population,
                  justification=justification, outputs_dir=outputs_dir, function="quantiles")
    return table_frame(table)


def level_label(level: float) -> str:
    """``p25`` for 0.25, ``p2.5`` for 0.025: the level as a percentage."""
    return "p" + format_value(round(level * 100, 10))


def _levels(q: Sequence[float] | float) -> tuple[float, ...]:
    if isinstance(q, (int, float)) and not isinstance(q, bool):
        q = [q]
    if isinstance(q, (str, bytes)) or not isinstance(q, Sequence):
        raise TypeError("q must be a list of levels strictly between 0 and 1")
    levels = []
    for level in q:
        if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)):
            raise TypeError(f"quantile level {level!r} is not a number")
        value = float(level)
        if value in (0.0, 1.0):
            raise ValueError(
                "levels 0 and 1 are the minimum and maximum: ask describe(statistics=['min', "
                "'max']) so that the policy's rule for extremes applies"
            )
        if not 0.0 < value < 1.0:
            raise ValueError(f"quantile level {level!r} is not strictly between 0 and 1")
        levels.append(value)
    if not levels or len(levels) > MAX_LEVELS:
        raise ValueError(f"give 1 to {MAX_LEVELS} quantile levels")
    labels = [level_label(v) for v in levels]
    if len(set(labels)) != len(labels):
        raise ValueError("quantile levels repeat")
    return tuple(levels)


def _key(key: object) -> tuple[str, ...]:
    parts = key if isinstance(key, tuple) else (key,)
    return tuple(str(p) for p in parts)


def _finite_or_none(value: object) -> float | None:
    number = float(value)  # type: ignore[arg-type]
    return number if math.isfinite(number) else None


def _widen(base: SidecarTable, labels: list[str],
           values: tuple[tuple[float | None, ...], ...],
           levels: tuple[float, ...]) -> SidecarTable:
    """The one-way per-group table ``base`` repeated across one column per quantile level."""
    mag = base.magnitude
    assert mag is not None  # noqa: S101 (a magnitude table by construction)
    width = len(labels)

    def spread(grid: tuple[tuple[object, ...], ...]) -> tuple[tuple[object, ...], ...]:
        return tuple(line * width for line in grid)

    try:
        return replace(
            base,
            columns=(QUANTILE_COLUMN,),
            column_labels=tuple((label,) for label in labels),
            rows=spread(base.rows),  # type: ignore[arg-type]
            units=spread(base.units),  # type: ignore[arg-type]
            values=values,
            magnitude=Magnitude(
                variable=mag.variable, statistic=Statistic.QUANTILE, levels=levels,
                top_n=mag.top_n,
                totals=spread(mag.totals), top=spread(mag.top),  # type: ignore[arg-type]
                negative=spread(mag.negative), missing=spread(mag.missing),  # type: ignore[arg-type]
            ),
        )
    except InvalidTable as exc:
        raise InvalidTable(f"the quantile table cannot be written: {exc}") from None
