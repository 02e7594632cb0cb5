"""Checked analysis functions for notebooks: compute as pandas does, and write the output with a
sidecar recording unit counts, population, provenance and the checks already run.

Researchers call these instead of raw pandas for the tables they want released, so the
disclosure checks see distinct pupils per cell (and, for magnitude tables, each pupil's
contribution) and controllers see where a number came from.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from output_control.exceptions import InvalidTable, MissingUnitsError
from output_control.files import write_atomic
from output_control.policy import Policy, load_policy
from output_control.rules import check_table
from output_control.sidecar import (
    CSV_SUFFIX,
    DEFAULT_MAX_BYTES,
    encode_sidecar,
    render_csv,
    sidecar_document,
    sidecar_path,
    table_frame,
    validate_output_name,
)
from output_control.table import Magnitude, Rounding, SidecarTable, Statistic, TableKind, Unit
from output_control.verdicts import CheckResult, summarise

OUTPUTS_ENV = "ENCLAVE_OUTPUTS_DIR"
NOTEBOOK_ENV = "ENCLAVE_NOTEBOOK"
SESSION_ENV = "JPY_SESSION_NAME"
MAX_JUSTIFICATION = 10_000
MAX_CODE = 100_000
MITIGATIONS = ("round",)
MIN_TOP_N = 3

CellKeys = Sequence[Sequence[str] | str]


def crosstab(
    df: pd.DataFrame,
    index: str | list[str],
    columns: str | list[str] | None = None,
    *,
    pupil_id: str = "eleve",
    name: str,
    outputs_dir: Path | str | None = None,
    population: dict | None = None,
    policy: Policy | str = "default",
    justification: str | None = None,
    mitigation: str | None = None,
    structural_zeros: CellKeys | None = None,
) -> pd.DataFrame:
    """Frequency table of rows (like ``pd.crosstab``), written as ``<name>.csv`` plus a sidecar.

    Rows with a missing value in a table variable are left out, as ``pd.crosstab`` does. Each
    cell also records its distinct ``pupil_id`` count, which the disclosure rules use.
    ``mitigation="round"`` publishes counts rounded as the policy's ``rounding`` rule says
    (cells of few pupils redacted, i.e. left empty) and returns that published table (nullable
    integers). ``structural_zeros`` lists empty cells that are empty by construction, each as
    its row labels then column labels (text).
    """
    validate_output_name(name)
    rows_vars, col_vars = _names(index, "index"), _names(columns, "columns")
    policy = policy if isinstance(policy, Policy) else load_policy(policy)
    rounding = _rounding(policy, mitigation)
    counts, table = _tabulate(df, rows_vars, col_vars, pupil_id)
    table = _declare(table, rounding=rounding, structural_zeros=structural_zeros)
    _write_output(
        table,
        name=name,
        policy=policy,
        population=population,
        justification=justification,
        outputs_dir=outputs_dir,
        function="crosstab",
    )
    return counts if rounding is None else table_frame(table)


def pivot_table(
    df: pd.DataFrame,
    values: str,
    index: str | list[str],
    columns: str | list[str] | None = None,
    aggfunc: str = "mean",
    *,
    pupil_id: str = "eleve",
    name: str,
    outputs_dir: Path | str | None = None,
    population: dict | None = None,
    policy: Policy | str = "default",
    justification: str | None = None,
    structural_zeros: CellKeys | None = None,
) -> pd.DataFrame:
    """Magnitude table: ``aggfunc`` (sum, mean, median, std, min or max) of the numeric column
    ``values`` per cell, like ``pd.pivot_table``, written as ``<name>.csv`` plus a sidecar.

    Missing values are left out of the statistic, as pandas does; a cell with no value is empty
    (NaN). The sidecar, never released, also records per cell the rows and distinct pupils with
    a value, the sum of the values added up per pupil, the largest per-pupil sums (as many as
    the policy's dominance rules need, at least 3) and whether any value is negative or missing,
    so that dominance and single-unit rules can be checked. Unlike pandas, a row or column whose
    cells are all empty is kept (empty), so the empty cells can be judged too.
    """
    validate_output_name(name)
    aggregations = [s.value for s in Statistic if s is not Statistic.QUANTILE]
    if not isinstance(aggfunc, str) or aggfunc not in aggregations:
        raise ValueError(
            f"aggfunc must be one of {aggregations}, got {aggfunc!r} (for counts use "
            "checked.crosstab, for quantiles output_control.analysis.quantiles)"
        )
    if not isinstance(values, str):
        raise TypeError("values must name one column")
    rows_vars, col_vars = _names(index, "index"), _names(columns, "columns")
    policy = policy if isinstance(policy, Policy) else load_policy(policy)
    table = _magnitude_table(
        df, rows_vars, col_vars, pupil_id, values, Statistic(aggfunc), _top_n(policy)
    )
    table = _declare(table, rounding=None, structural_zeros=structural_zeros)
    _write_output(
        table,
        name=name,
        policy=policy,
        population=population,
        justification=justification,
        outputs_dir=outputs_dir,
        function="pivot_table",
    )
    return table_frame(table)


def _write_output(
    table: SidecarTable,
    *,
    name: str,
    policy: Policy,
    population: Mapping[str, Any] | None,
    justification: str | None,
    outputs_dir: Path | str | None,
    function: str,
) -> CheckResult:
    """Check ``table``, then write its CSV and sidecar atomically; validates everything first."""
    population = _json_object(population, "population")
    if justification is not None and (
        not isinstance(justification, str) or len(justification) > MAX_JUSTIFICATION
    ):
        raise ValueError(f"justification must be text of at most {MAX_JUSTIFICATION} characters")
    csv_bytes = render_csv(table)
    if len(csv_bytes) > DEFAULT_MAX_BYTES:
        raise ValueError(f"the table would take {len(csv_bytes)} bytes, over the release limit")
    file_name = name + CSV_SUFFIX
    table = replace(table, file_name=file_name, sha256=hashlib.sha256(csv_bytes).hexdigest())
    checks = check_table(table, policy)
    document = sidecar_document(
        table,
        checks=checks,
        policy=policy,
        population=population,
        provenance=_provenance(function),
        justification=justification,
    )
    sidecar_bytes = encode_sidecar(document)

    folder = Path(outputs_dir or os.environ.get(OUTPUTS_ENV) or "outputs")
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / file_name
    # CSV first: a crash in between leaves a CSV whose sidecar is missing or stale, which
    # read_output rejects (fail closed).
    write_atomic(csv_path, csv_bytes)
    write_atomic(sidecar_path(csv_path), sidecar_bytes)
    print(_report(csv_path, checks))
    return checks


def _rounding(policy: Policy, mitigation: str | None) -> Rounding | None:
    """The rounding the policy prescribes when ``mitigation="round"``; None without mitigation."""
    if mitigation is None:
        return None
    if mitigation not in MITIGATIONS:
        raise ValueError(
            f"mitigation must be one of {list(MITIGATIONS)} or None, got {mitigation!r}"
        )
    params = policy.rules.get("rounding")
    if params is None:
        raise ValueError(
            f"policy {policy.name} {policy.version} has no 'rounding' rule, so it defines no "
            "rounding to apply"
        )
    return Rounding(base=int(params["base"]), redact_at_most=int(params["redact_at_most"]))


def _top_n(policy: Policy) -> int:
    """How many largest contributions the sidecar keeps: what the policy's rules need, >= 3."""
    needed = [MIN_TOP_N]
    if "p_percent" in policy.rules:
        needed.append(2)
    nk = policy.rules.get("nk_dominance")
    if nk is not None:
        needed.extend(int(n) for n, _ in nk["pairs"])
    return max(needed)


def _declare(
    table: SidecarTable, *, rounding: Rounding | None, structural_zeros: CellKeys | None
) -> SidecarTable:
    """``table`` with the researcher's declarations, refused with a clear error if wrong."""
    zeros: tuple[tuple[str, ...], ...] = ()
    if structural_zeros is not None:
        if isinstance(structural_zeros, (str, bytes)) or not isinstance(structural_zeros, Sequence):
            raise TypeError("structural_zeros must be a list of cells (row labels, column labels)")
        zeros = tuple(
            (key,) if isinstance(key, str) else tuple(str(part) for part in key)
            for key in structural_zeros
        )
    if rounding is None and not zeros:
        return table
    try:
        return replace(table, rounding=rounding, structural_zeros=zeros)
    except InvalidTable as exc:
        raise InvalidTable(f"the table cannot be written: {exc}") from None


def _prepare(
    df: pd.DataFrame, index: list[str], columns: list[str], pupil_id: str, extra: list[str]
) -> pd.DataFrame:
    """The rows of ``df`` to tabulate: table variables present, pupils identified."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    keys = [*index, *columns]
    if len(set(keys)) != len(keys):
        raise ValueError(f"a variable appears twice in the table: {keys}")
    missing = [k for k in (*keys, *extra) if k not in df.columns]
    if missing:
        raise KeyError(f"variables {missing} are not columns of the data frame")
    if pupil_id not in df.columns:
        raise MissingUnitsError(
            f"column {pupil_id!r} is missing: every released table counts distinct pupils per "
            "cell; pass pupil_id=<the column identifying pupils>"
        )
    if pupil_id in keys or pupil_id in extra:
        raise MissingUnitsError(f"the pupil column {pupil_id!r} cannot be a table variable")
    if set(extra) & set(keys):
        raise ValueError(f"the value column {extra} cannot also be a table variable")
    data = df[[*keys, pupil_id, *extra]].dropna(subset=keys)
    if data[pupil_id].isna().any():
        raise MissingUnitsError(
            f"column {pupil_id!r} has missing values in rows of the table: every row must "
            "belong to a pupil so that pupils can be counted"
        )
    if data.empty:
        raise ValueError("no rows left to tabulate (every row has a missing table variable)")
    return data


def _tabulate(
    df: pd.DataFrame, index: list[str], columns: list[str], pupil_id: str
) -> tuple[pd.DataFrame, SidecarTable]:
    """Row counts (the returned frame) and the checked table with distinct-pupil counts."""
    data = _prepare(df, index, columns, pupil_id, [])
    keys = [*index, *columns]
    grouper = data.groupby(keys, observed=True, sort=True)
    sizes = grouper.size()
    codes = grouper.ngroup().to_numpy()
    pupils, _ = pd.factorize(data[pupil_id], sort=False)
    units = _distinct_per_group(codes, pupils, len(sizes))
    distinct = pd.Series(units, index=sizes.index)
    if columns:
        rows_frame = sizes.unstack(level=columns, fill_value=0)
        units_frame = distinct.unstack(level=columns, fill_value=0).reindex(
            index=rows_frame.index, columns=rows_frame.columns, fill_value=0
        )
    else:
        rows_frame, units_frame = sizes.to_frame("count"), distinct.to_frame("count")
    rows_frame = rows_frame.astype("int64")
    try:
        table = SidecarTable(
            index=tuple(str(v) for v in index),
            columns=tuple(str(v) for v in columns),
            row_labels=_labels(rows_frame.index),
            column_labels=_labels(rows_frame.columns) if columns else ((),),
            rows=_matrix(rows_frame),
            units=_matrix(units_frame),
            unit=Unit.DISTINCT_PUPILS,
            unit_column=str(pupil_id),
        )
    except InvalidTable as exc:
        raise InvalidTable(f"the table cannot be written: {exc}") from None
    return rows_frame, table


def _distinct_per_group(codes: np.ndarray, pupils: np.ndarray, n_groups: int) -> np.ndarray:
    """Number of distinct pupils per group code (a sort of (group, pupil) pairs)."""
    if len(codes) == 0:
        return np.zeros(n_groups, dtype=np.int64)
    width = np.int64(pupils.max()) + 1
    pairs = np.sort(codes.astype(np.int64) * width + pupils)  # a sort: np.unique may hash, slower
    first = np.empty(len(pairs), dtype=bool)
    first[0] = True
    np.not_equal(pairs[1:], pairs[:-1], out=first[1:])
    return np.bincount(pairs[first] // width, minlength=n_groups)


def _magnitude_table(
    df: pd.DataFrame,
    index: list[str],
    columns: list[str],
    pupil_id: str,
    values: str,
    statistic: Statistic,
    top_n: int,
) -> SidecarTable:
    """The magnitude table of ``statistic`` of ``values`` with per-pupil contribution data."""
    data = _prepare(df, index, columns, pupil_id, [values])
    raw = data[values]
    if not pd.api.types.is_numeric_dtype(raw) or pd.api.types.is_bool_dtype(raw):
        raise TypeError(f"column {values!r} must be numeric to be aggregated, not {raw.dtype}")
    keys = [*index, *columns]
    grouper = data.groupby(keys, observed=True, sort=True)
    group_index = grouper.size().index
    n_groups = len(group_index)
    codes = grouper.ngroup().to_numpy().astype(np.int64)
    v = raw.to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isinf(v).any():
        raise ValueError(f"column {values!r} has infinite values; they cannot be published")
    absent = np.isnan(v)
    missing = np.bincount(codes, weights=absent, minlength=n_groups) > 0
    negative = np.bincount(codes, weights=v < 0, minlength=n_groups) > 0
    present = ~absent
    codes_p, v_p = codes[present], v[present]
    pupils_p, _ = pd.factorize(data[pupil_id].to_numpy()[present], sort=False)
    rows = np.bincount(codes_p, minlength=n_groups)
    # Per-pupil contributions: one sum per (cell, pupil) pair.
    width = np.int64(pupils_p.max()) + 1 if len(pupils_p) else np.int64(1)
    pair_keys, pair_of_row = np.unique(codes_p * width + pupils_p, return_inverse=True)
    pair_sums = np.bincount(pair_of_row, weights=v_p, minlength=len(pair_keys))
    pair_cell = pair_keys // width
    units = np.bincount(pair_cell, minlength=n_groups)
    totals = np.bincount(pair_cell, weights=pair_sums, minlength=n_groups)
    order = np.lexsort((-pair_sums, pair_cell))
    ranked_cell, ranked_sums = pair_cell[order], pair_sums[order]
    starts = np.searchsorted(ranked_cell, np.arange(n_groups))
    rank = np.arange(len(ranked_cell)) - starts[ranked_cell]
    keep = rank < top_n
    tops: list[list[float]] = [[] for _ in range(n_groups)]
    for cell, value in zip(ranked_cell[keep].tolist(), ranked_sums[keep].tolist(), strict=True):
        tops[cell].append(value)
    stat = pd.Series(v_p).groupby(codes_p).agg(statistic.value)
    shown = np.full(n_groups, np.nan)
    shown[stat.index.to_numpy()] = stat.to_numpy(dtype=np.float64)

    per_group = pd.DataFrame(
        {
            "rows": rows,
            "units": units,
            "value": shown,
            "total": totals,
            "negative": negative,
            "missing": missing,
            "top": pd.Series([tuple(t) for t in tops], dtype=object),
        }
    )
    per_group.index = group_index
    grids = _grids(per_group, columns)
    try:
        return SidecarTable(
            index=tuple(str(v) for v in index),
            columns=tuple(str(v) for v in columns),
            row_labels=_labels(grids["rows"].index),
            column_labels=_labels(grids["rows"].columns) if columns else ((),),
            rows=_matrix(grids["rows"]),
            units=_matrix(grids["units"]),
            unit=Unit.DISTINCT_PUPILS,
            unit_column=str(pupil_id),
            kind=TableKind.MAGNITUDE_TABLE,
            values=_grid(grids["value"], _float_or_none),
            magnitude=Magnitude(
                variable=str(values),
                statistic=statistic,
                top_n=top_n,
                totals=_grid(grids["total"], float),
                top=_grid(grids["top"], lambda t: tuple(float(x) for x in t)),
                negative=_grid(grids["negative"], bool),
                missing=_grid(grids["missing"], bool),
            ),
        )
    except InvalidTable as exc:
        raise InvalidTable(f"the table cannot be written: {exc}") from None


_FILL = {"rows": 0, "units": 0, "value": np.nan, "total": 0.0, "negative": False,
         "missing": False, "top": ()}  # fmt: skip


def _grids(per_group: pd.DataFrame, columns: list[str]) -> dict[str, pd.DataFrame]:
    """One row-by-column frame per measure, all on the same axes (empty cells filled)."""
    if not columns:
        return {name: per_group[[name]] for name in per_group.columns}
    axes = per_group["rows"].unstack(level=columns, fill_value=0)
    result = {}
    for name in per_group.columns:
        series = per_group[name]
        if name == "top":
            frame = series.unstack(level=columns)
            frame = frame.reindex(index=axes.index, columns=axes.columns)
            frame = frame.map(lambda t: t if isinstance(t, tuple) else ())
        else:
            frame = series.unstack(level=columns).reindex(index=axes.index, columns=axes.columns)
            frame = frame.fillna(_FILL[name]) if name != "value" else frame
        result[name] = frame
    return result


def _grid(frame: pd.DataFrame, convert: Any) -> tuple[tuple[Any, ...], ...]:
    return tuple(tuple(convert(v) for v in line) for line in frame.to_numpy().tolist())


def _float_or_none(value: object) -> float | None:
    number = float(value)  # type: ignore[arg-type]
    return None if np.isnan(number) else number


def _labels(axis: pd.Index) -> tuple[tuple[str, ...], ...]:
    keys = [key if isinstance(key, tuple) else (key,) for key in axis]
    labels = tuple(tuple(str(part) for part in key) for key in keys)
    if len(set(labels)) != len(labels):
        raise InvalidTable(f"distinct values print as the same label in {list(axis.names)}")
    return labels


def _matrix(frame: pd.DataFrame) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(int(v) for v in line) for line in frame.to_numpy().tolist())


def _names(value: str | Sequence[str] | None, what: str) -> list[str]:
    if value is None:
        return []
    names = [value] if isinstance(value, str) else list(value)
    if what == "index" and not names:
        raise ValueError("index must name at least one variable")
    return names


def _json_object(value: Mapping[str, Any] | None, what: str) -> dict[str, Any]:
    """A JSON-serialisable dict with text keys, else ValueError."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"{what} must be a dict with text keys")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be JSON-serialisable: {exc}") from None
    return dict(value)


def _provenance(function: str = "crosstab") -> dict[str, Any]:
    """Which notebook and code produced the output, as far as the kernel can tell."""
    return {
        "function": f"{__name__}.{function}",
        # Set by the enclave's batch runs; Jupyter (and the sandboxed papermill runs) name
        # the session's notebook in JPY_SESSION_NAME.
        "notebook": os.environ.get(NOTEBOOK_ENV) or os.environ.get(SESSION_ENV),
        "cell_source": _current_cell_source(),
    }


def _current_cell_source() -> str | None:
    """The source of the running IPython cell, or None outside IPython or on any doubt."""
    ipython = sys.modules.get("IPython")  # not imported means not running under IPython
    if ipython is None:
        return None
    try:
        shell = ipython.get_ipython()
        history = shell.user_ns.get("In") if shell is not None else None
        if not history:
            return None
        return str(history[-1])[:MAX_CODE]
    except Exception:  # provenance is best effort; its absence is visible to reviewers
        return None


def _report(csv_path: Path, checks: CheckResult) -> str:
    head = f"Wrote {csv_path} and its sidecar; automatic checks: {checks.outcome.value.upper()}."
    return f"{head}\n{summarise(checks)}"
