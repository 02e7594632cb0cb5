"""Checked analysis functions for notebooks: compute as pandas does, and write the output with a
sidecar recording unit counts, population, provenance and the checks already run.

Researchers call these instead of raw pandas for the tables they want released, so the
disclosure checks see distinct pupils per cell and controllers see where a number came from.
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
    validate_output_name,
)
from output_control.table import SidecarTable, Unit
from output_control.verdicts import CheckResult, summarise

OUTPUTS_ENV = "ENCLAVE_OUTPUTS_DIR"
NOTEBOOK_ENV = "ENCLAVE_NOTEBOOK"
MAX_JUSTIFICATION = 10_000
MAX_CODE = 100_000


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
) -> pd.DataFrame:
    """Frequency table of rows (like ``pd.crosstab``), written as ``<name>.csv`` plus a sidecar.

    Rows with a missing value in a table variable are left out, as ``pd.crosstab`` does. Each
    cell also records its distinct ``pupil_id`` count, which the disclosure rules use.
    """
    validate_output_name(name)
    rows_vars, col_vars = _names(index, "index"), _names(columns, "columns")
    counts, table = _tabulate(df, rows_vars, col_vars, pupil_id)
    policy = policy if isinstance(policy, Policy) else load_policy(policy)
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
        provenance=_provenance(),
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
    return counts


def _tabulate(
    df: pd.DataFrame, index: list[str], columns: list[str], pupil_id: str
) -> tuple[pd.DataFrame, SidecarTable]:
    """Row counts (the returned frame) and the checked table with distinct-pupil counts."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    keys = [*index, *columns]
    if len(set(keys)) != len(keys):
        raise ValueError(f"a variable appears twice in the table: {keys}")
    missing = [k for k in keys if k not in df.columns]
    if missing:
        raise KeyError(f"variables {missing} are not columns of the data frame")
    if pupil_id not in df.columns:
        raise MissingUnitsError(
            f"column {pupil_id!r} is missing: every released table counts distinct pupils per "
            "cell; pass pupil_id=<the column identifying pupils>"
        )
    if pupil_id in keys:
        raise MissingUnitsError(f"the pupil column {pupil_id!r} cannot be a table variable")
    data = df[[*keys, pupil_id]].dropna(subset=keys)
    if data[pupil_id].isna().any():
        raise MissingUnitsError(
            f"column {pupil_id!r} has missing values in rows of the table: every row must "
            "belong to a pupil so that pupils can be counted"
        )
    if data.empty:
        raise ValueError("no rows left to tabulate (every row has a missing table variable)")
    grouped = data.groupby(keys, observed=True, sort=True)[pupil_id]
    sizes, distinct = grouped.size(), grouped.nunique()
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


def _provenance() -> dict[str, Any]:
    """Which notebook and code produced the output, as far as the kernel can tell."""
    return {
        "function": f"{__name__}.crosstab",
        "notebook": os.environ.get(NOTEBOOK_ENV),
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
