"""Checked histograms and bar charts: the figure is drawn from a checked frequency table.

``histogram`` and ``bar_chart`` count rows and **distinct pupils** per bin (or category), per
group of ``by``, write those counts as a frequency table (``<name>.csv`` with its
``enclave-output-sidecar/2`` sidecar, so the policy's ``minimum_count``, ``zeros`` and
``class_disclosure`` rules judge each bin at once), then draw the PNG figure from the
*published* counts of that table, never from the data (``<name>.png`` with a small
``enclave-figure-sidecar/1`` record naming the table and the drawing parameters). A figure
therefore shows nothing the checked table does not, and :func:`check_figure` proves it by
drawing it again from the table and comparing the bytes.

Bin edges are public parameters: an integer number of bins needs an explicit ``range`` (edges
taken from the data's minimum and maximum would publish two single-pupil values, which ACRO
leaves to the checker: "please also check bin ends"). Values outside the edges are not
counted (numpy's convention; the last bin includes its right edge).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from output_control.checked import OUTPUTS_ENV, _distinct_per_group, _write_output
from output_control.exceptions import InvalidTable, MissingUnitsError, OutputRejected
from output_control.files import read_limited, write_atomic
from output_control.labels import label_problem
from output_control.policy import Policy, load_policy
from output_control.sidecar import (
    CSV_SUFFIX,
    SIDECAR_SUFFIX,
    format_value,
    read_output,
    table_frame,
    validate_output_name,
)
from output_control.table import SidecarTable, TableKind, Unit
from output_control.verdicts import CheckResult

FIGURE_FORMAT = "enclave-figure-sidecar/1"
FIGURE_SUFFIX = ".png"
CHART_TYPES = ("histogram", "bar")
MAX_BINS = 500
MAX_TITLE = 200
MAX_FIGURE_BYTES = 5 * 1024 * 1024
_FIGURE_KEYS = {"format", "figure", "data", "chart"}
_CHART_KEYS = {"type", "edges", "title", "xlabel", "ylabel"}


@dataclass(frozen=True)
class Chart:
    """A checked chart: the counts it shows (rows per bin, as numpy/pandas count them), the bin
    edges of a histogram, where the table and the figure were written and the checks run."""

    counts: pd.DataFrame
    edges: tuple[float, ...] | None
    table: Path
    figure: Path
    checks: CheckResult

    def _repr_html_(self) -> str:  # shown by Jupyter as the counts table
        return str(self.counts._repr_html_())  # type: ignore[operator]


def histogram(
    df: pd.DataFrame,
    column: str,
    bins: int | Sequence[float] = 10,
    *,
    range: tuple[float, float] | None = None,
    by: str | None = None,
    pupil_id: str = "eleve",
    name: str,
    outputs_dir: Path | str | None = None,
    population: dict | None = None,
    policy: Policy | str = "default",
    justification: str | None = None,
    title: str | None = None,
) -> Chart:
    """Histogram of the numeric ``column`` (per group of ``by``), as ``np.histogram`` counts it.

    ``bins`` is a number of equal bins over ``range = (low, high)`` (required then) or the
    increasing bin edges. Rows with a missing value (in ``column`` or ``by``) are left out.
    Writes ``<name>.csv`` (rows per bin, the sidecar adding distinct pupils) and ``<name>.png``.
    """
    validate_output_name(name)
    edges = _edges(bins, range)
    data = _rows(df, column, by, pupil_id)
    raw = data[column]
    if not pd.api.types.is_numeric_dtype(raw) or pd.api.types.is_bool_dtype(raw):
        raise TypeError(f"column {column!r} must be numeric for a histogram, not {raw.dtype}")
    values = raw.to_numpy(dtype=np.float64)
    if np.isinf(values).any():
        raise ValueError(f"column {column!r} has infinite values; they cannot be binned")
    codes = np.searchsorted(edges, values, side="right") - 1
    codes[values == edges[-1]] = len(edges) - 2  # the last bin is closed on the right
    inside = (values >= edges[0]) & (values <= edges[-1])
    labels = bin_labels(edges)
    index_name = f"{column}_bin"
    table = _count_table(data[inside], codes[inside], labels, index_name, by, pupil_id)
    spec = {"type": "histogram", "edges": [float(e) for e in edges], "title": _title(title),
            "xlabel": column, "ylabel": "rows"}
    return _publish(table, spec, name, policy, population, justification, outputs_dir,
                    "histogram", tuple(float(e) for e in edges))


def bar_chart(
    df: pd.DataFrame,
    column: str,
    *,
    by: str | None = None,
    pupil_id: str = "eleve",
    name: str,
    outputs_dir: Path | str | None = None,
    population: dict | None = None,
    policy: Policy | str = "default",
    justification: str | None = None,
    title: str | None = None,
) -> Chart:
    """Bar chart of the number of rows per category of ``column`` (per group of ``by``).

    Categories are the column's values as text, sorted; a pandas categorical column keeps its
    declared order and its empty categories (shown as empty bars, which the ``zeros`` rule
    judges). Rows with a missing value are left out. Writes ``<name>.csv`` and ``<name>.png``.
    """
    validate_output_name(name)
    data = _rows(df, column, by, pupil_id)
    series = data[column]
    if isinstance(series.dtype, pd.CategoricalDtype):
        labels = [str(c) for c in series.cat.categories]
        codes = series.cat.codes.to_numpy().astype(np.int64)
    else:
        text = series.astype(str)
        labels = sorted(set(text))
        codes = pd.Index(labels).get_indexer(text).astype(np.int64)
    if len(set(labels)) != len(labels):
        raise InvalidTable(f"distinct categories of {column!r} print as the same label")
    spec = {"type": "bar", "edges": None, "title": _title(title), "xlabel": column,
            "ylabel": "rows"}
    table = _count_table(data, codes, labels, column, by, pupil_id)
    return _publish(table, spec, name, policy, population, justification, outputs_dir,
                    "bar_chart", None)


def bin_labels(edges: np.ndarray) -> list[str]:
    """``[a, b)`` for each bin, ``[a, b]`` for the last one (numbers in positional notation)."""
    text = [format_value(float(e)) for e in edges]
    last = len(edges) - 2
    return [f"[{text[i]}, {text[i + 1]}{']' if i == last else ')'}" for i in range(last + 1)]


def render_chart(table: SidecarTable, spec: dict[str, Any]) -> bytes:
    """The PNG of ``table``'s published counts drawn as ``spec`` says (deterministic bytes).

    Drawn with matplotlib's Agg canvas on a private ``Figure`` (no pyplot state), without the
    PNG's software/date metadata, so the same table and spec give the same bytes.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    frame = table_frame(table)
    counts = frame.to_numpy(dtype=float)
    groups = [" / ".join(key) for key in table.column_labels] if table.columns else [""]
    figure = Figure(figsize=(7.0, 4.0), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    if spec["type"] == "histogram":
        edges = np.asarray(spec["edges"], dtype=float)
        for j, group in enumerate(groups):
            axes.stairs(counts[:, j], edges, label=group or None, fill=len(groups) == 1)
    else:
        positions = np.arange(counts.shape[0], dtype=float)
        width = 0.8 / len(groups)
        for j, group in enumerate(groups):
            axes.bar(positions + (j - (len(groups) - 1) / 2) * width, counts[:, j], width,
                     label=group or None)
        axes.set_xticks(positions, [" / ".join(key) for key in table.row_labels],
                        rotation=45 if counts.shape[0] > 6 else 0, ha="right")
    if table.columns:
        axes.legend(title=" / ".join(table.columns))
    axes.set_xlabel(spec["xlabel"])
    axes.set_ylabel(spec["ylabel"])
    if spec["title"]:
        axes.set_title(spec["title"])
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def figure_sidecar_path(png_path: Path) -> Path:
    """Where the record of a figure lives: ``<name>.png.sidecar.json`` beside it."""
    return png_path.with_name(png_path.name + SIDECAR_SUFFIX)


def check_figure(png_path: Path | str) -> tuple[SidecarTable, dict[str, Any]]:
    """Verify a figure: its record, its table (read as ``read_output`` does, failing closed) and
    that drawing the table again gives exactly its bytes; raise OutputRejected otherwise.

    Returns the table (to be checked by the policy like any table) and the chart parameters.
    """
    png_path = Path(png_path)
    stem = png_path.name.removesuffix(FIGURE_SUFFIX)
    if stem == png_path.name:
        raise OutputRejected(f"{png_path.name!r} is not a figure name (<safe-name>.png)")
    png = read_limited(png_path, MAX_FIGURE_BYTES, "figure")
    record = read_limited(figure_sidecar_path(png_path), 1 << 20, "figure record")
    try:
        doc = json.loads(record.decode("utf-8"))
        spec = _figure_document(doc, png_path.name)
    except (UnicodeDecodeError, ValueError, TypeError, KeyError) as exc:
        raise OutputRejected(f"the record of {png_path.name!r} is invalid: {exc}") from None
    if hashlib.sha256(png).hexdigest() != doc["figure"]["sha256"]:
        raise OutputRejected(f"the figure {png_path.name!r} was changed after it was drawn")
    _, table = read_output(png_path.with_name(doc["data"]["name"]))
    if table.sha256 != doc["data"]["sha256"]:
        raise OutputRejected(f"the figure {png_path.name!r} was drawn from another version "
                             "of its table")
    if render_chart(table, spec) != png:
        raise OutputRejected(f"the figure {png_path.name!r} is not the drawing of its checked "
                             "table (drawn again, the bytes differ)")
    return table, spec


def _figure_document(doc: object, png_name: str) -> dict[str, Any]:
    if not isinstance(doc, dict) or set(doc) != _FIGURE_KEYS:
        raise ValueError(f"expected exactly the keys {sorted(_FIGURE_KEYS)}")
    if doc["format"] != FIGURE_FORMAT:
        raise ValueError(f"unknown format {str(doc['format'])[:40]!r}")
    figure, data, spec = doc["figure"], doc["data"], doc["chart"]
    if not isinstance(figure, dict) or figure.get("name") != png_name:
        raise ValueError(f"the record does not describe {png_name!r}")
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ValueError("'data' must name the figure's table")
    validate_output_name(data["name"].removesuffix(CSV_SUFFIX))
    if not data["name"].endswith(CSV_SUFFIX) or "/" in data["name"]:
        raise ValueError("'data.name' must be a CSV beside the figure")
    if not isinstance(spec, dict) or set(spec) != _CHART_KEYS or spec["type"] not in CHART_TYPES:
        raise ValueError(f"'chart' must have the keys {sorted(_CHART_KEYS)} and a known type")
    for key in ("title", "xlabel", "ylabel"):
        if not isinstance(spec[key], str) or label_problem(spec[key]) is not None:
            raise ValueError(f"'chart.{key}' must be safe text")
    if spec["type"] == "histogram":
        _edges(list(spec["edges"]), None)
    return spec


def _edges(bins: int | Sequence[float], range_: tuple[float, float] | None) -> np.ndarray:
    """Validated, public bin edges (never read from the data)."""
    if isinstance(bins, bool) or bins is None or isinstance(bins, (str, bytes)):
        raise ValueError("bins must be a number of bins or the list of bin edges")
    if isinstance(bins, (int, np.integer)):
        if not 1 <= int(bins) <= MAX_BINS:
            raise ValueError(f"bins must be between 1 and {MAX_BINS}, got {bins}")
        if range_ is None:
            raise ValueError(
                "give range=(low, high) with a number of bins: edges read from the data's "
                "minimum and maximum would publish two pupils' own values"
            )
        low, high = (float(x) for x in range_)
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"range must be two finite numbers low < high, got {range_!r}")
        return np.linspace(low, high, int(bins) + 1)
    if range_ is not None:
        raise ValueError("give either bin edges or a number of bins with a range, not both")
    edges = np.asarray(list(bins), dtype=np.float64)
    if edges.ndim != 1 or not 2 <= edges.size <= MAX_BINS + 1:
        raise ValueError(f"bin edges must be a list of 2 to {MAX_BINS + 1} numbers")
    if not np.isfinite(edges).all() or (np.diff(edges) <= 0).any():
        raise ValueError("bin edges must be finite and strictly increasing")
    return edges


def _rows(df: pd.DataFrame, column: str, by: str | None, pupil_id: str) -> pd.DataFrame:
    """The rows to count: the variable (and group) present, every row a pupil's."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    keys = [column] if by is None else [column, by]
    if by is not None and (not isinstance(by, str) or by == column):
        raise ValueError("by must name one other column")
    missing = [k for k in keys if k not in df.columns]
    if missing:
        raise KeyError(f"variables {missing} are not columns of the data frame")
    if pupil_id not in df.columns:
        raise MissingUnitsError(
            f"column {pupil_id!r} is missing: a chart's counts are checked in distinct pupils; "
            "pass pupil_id=<the column identifying pupils>"
        )
    if pupil_id in keys:
        raise MissingUnitsError(f"the pupil column {pupil_id!r} cannot be charted")
    data = df[[*keys, pupil_id]].dropna(subset=keys)
    if data[pupil_id].isna().any():
        raise MissingUnitsError(f"column {pupil_id!r} has missing values in the charted rows")
    if data.empty:
        raise ValueError("no rows left to count (every row has a missing value)")
    return data


def _count_table(data: pd.DataFrame, codes: np.ndarray, labels: list[str], index_name: str,
                 by: str | None, pupil_id: str) -> SidecarTable:
    """The frequency table of rows and distinct pupils per (category code, group)."""
    if by is None:
        groups, group_codes = [""], np.zeros(len(codes), dtype=np.int64)
    else:
        text = data[by].astype(str).to_numpy()
        groups = sorted(set(text.tolist()))
        group_codes = pd.Index(groups).get_indexer(text).astype(np.int64)
    n_bins, n_groups = len(labels), len(groups)
    cell = codes.astype(np.int64) * n_groups + group_codes
    rows = np.bincount(cell, minlength=n_bins * n_groups).reshape(n_bins, n_groups)
    pupils, _ = pd.factorize(data[pupil_id], sort=False)
    units = _distinct_per_group(cell, pupils, n_bins * n_groups).reshape(n_bins, n_groups)
    try:
        return SidecarTable(
            index=(index_name,),
            columns=() if by is None else (by,),
            row_labels=tuple((label,) for label in labels),
            column_labels=((),) if by is None else tuple((g,) for g in groups),
            rows=tuple(tuple(int(v) for v in line) for line in rows.tolist()),
            units=tuple(tuple(int(v) for v in line) for line in units.tolist()),
            unit=Unit.DISTINCT_PUPILS,
            unit_column=str(pupil_id),
            kind=TableKind.FREQUENCY_TABLE,
        )
    except InvalidTable as exc:
        raise InvalidTable(f"the chart's table cannot be written: {exc}") from None


def _title(title: str | None) -> str:
    if title is None:
        return ""
    if not isinstance(title, str) or len(title) > MAX_TITLE or label_problem(title):
        raise ValueError(f"title must be safe text of at most {MAX_TITLE} characters")
    return title


def _publish(table: SidecarTable, spec: dict[str, Any], name: str, policy: Policy | str,
             population: dict | None, justification: str | None,
             outputs_dir: Path | str | None, function: str,
             edges: tuple[float, ...] | None) -> Chart:
    """Write and check the table, then draw the figure from what was written."""
    policy = policy if isinstance(policy, Policy) else load_policy(policy)
    folder = Path(outputs_dir or os.environ.get(OUTPUTS_ENV) or "outputs")
    checks = _write_output(table, name=name, policy=policy, population=population,
                           justification=justification, outputs_dir=folder, function=function)
    csv_path = folder / (name + CSV_SUFFIX)
    counts, written = read_output(csv_path)  # draw what the sidecar vouches for
    png = render_chart(written, spec)
    png_path = folder / (name + FIGURE_SUFFIX)
    record = {
        "format": FIGURE_FORMAT,
        "figure": {"name": png_path.name, "sha256": hashlib.sha256(png).hexdigest(),
                   "bytes": len(png)},
        "data": {"name": csv_path.name, "sha256": written.sha256},
        "chart": spec,
    }
    write_atomic(png_path, png)
    write_atomic(figure_sidecar_path(png_path),
                 (json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n").encode())
    print(f"Drew {png_path} from the checked counts of {csv_path.name}.")
    return Chart(counts=counts, edges=edges, table=csv_path, figure=png_path, checks=checks)
