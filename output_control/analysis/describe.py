"""``describe``: count, mean, std, min, median and max of numeric columns per group.

The sidecar format has one statistic per magnitude table, so each (column, statistic) pair is
written as its own output, ``<name>_<column>_<statistic>.csv``: the count as a frequency table
(distinct pupils with a value, so the threshold rule flags small groups) and the others as
magnitude tables (so min and max are flagged as single-unit values, the median as a
percentile, and means checked for dominance). Percentiles other than the median have no
statistic in the sidecar format yet and are not produced.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from output_control.checked import CellKeys, crosstab, pivot_table
from output_control.policy import Policy, load_policy
from output_control.sidecar import validate_output_name

DESCRIBE_STATISTICS = ("count", "mean", "std", "min", "median", "max")
ALL_GROUP = "all"


def describe(
    df: pd.DataFrame,
    columns: str | Sequence[str],
    *,
    by: str | Sequence[str] | None = None,
    pupil_id: str = "eleve",
    name: str,
    outputs_dir: Path | str | None = None,
    population: dict | None = None,
    policy: Policy | str = "default",
    justification: str | None = None,
    statistics: Sequence[str] = DESCRIBE_STATISTICS,
    structural_zeros: CellKeys | None = None,
) -> pd.DataFrame:
    """Statistics of each of ``columns`` per group of ``by`` (the whole frame when None).

    Returns a frame indexed by the groups (labels as text; ``all`` when ``by`` is None) with
    columns ``(column, statistic)``, as ``df.groupby(by)[columns].describe()`` arranges them;
    ``count`` is the number of rows with a value. Writes one output per column and statistic,
    each checked against ``policy``.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    values = [columns] if isinstance(columns, str) else list(columns)
    if not values:
        raise ValueError("columns must name at least one column")
    unknown = [s for s in statistics if s not in DESCRIBE_STATISTICS]
    if unknown or not statistics:
        raise ValueError(f"statistics must be among {list(DESCRIBE_STATISTICS)}, got {unknown}")
    if by is None:
        if ALL_GROUP in df.columns:
            raise ValueError(f"df has a column {ALL_GROUP!r}; pass by= explicitly")
        df = df.assign(**{ALL_GROUP: ALL_GROUP})
        groups = [ALL_GROUP]
    else:
        groups = [by] if isinstance(by, str) else list(by)
    for column in values:
        if column not in df.columns:
            raise KeyError(f"column {column!r} is not a column of the data frame")
        if column in groups or column == pupil_id:
            raise ValueError(f"column {column!r} cannot be described and also group or identify")
        for statistic in statistics:
            validate_output_name(f"{name}_{column}_{statistic}")
    policy = policy if isinstance(policy, Policy) else load_policy(policy)
    parts: dict[tuple[str, str], pd.Series] = {}
    for column in values:
        for statistic in statistics:
            output = f"{name}_{column}_{statistic}"
            if statistic == "count":
                counts = crosstab(
                    df[df[column].notna()],
                    groups,
                    pupil_id=pupil_id,
                    name=output,
                    outputs_dir=outputs_dir,
                    population=population,
                    policy=policy,
                    justification=justification,
                    structural_zeros=structural_zeros,
                )
                series = counts["count"]
                series.index = _text_index(series.index)
            else:
                frame = pivot_table(
                    df,
                    column,
                    groups,
                    aggfunc=statistic,
                    pupil_id=pupil_id,
                    name=output,
                    outputs_dir=outputs_dir,
                    population=population,
                    policy=policy,
                    justification=justification,
                    structural_zeros=structural_zeros,
                )
                series = frame.iloc[:, 0]
            parts[(column, statistic)] = series
    result = pd.concat(parts, axis=1)
    for column in values:
        if (column, "count") in result.columns:
            result[(column, "count")] = result[(column, "count")].fillna(0).astype("int64")
    result.columns = pd.MultiIndex.from_tuples(list(parts), names=[None, None])
    return result


def _text_index(index: pd.Index) -> pd.Index:
    """``index`` with its labels as text, as the tables print them."""
    if isinstance(index, pd.MultiIndex):
        return pd.MultiIndex.from_tuples(
            [tuple(str(p) for p in key) for key in index], names=index.names
        )
    return pd.Index([str(v) for v in index], name=index.name)
