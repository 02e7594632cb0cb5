"""The sidecar file format: a JSON description written beside every output CSV, read back
before any check, failing closed on anything missing, altered, malformed or unsafe.

Layout of ``<name>.csv`` for row variables r1..rk and column variables c1..cm (as pandas writes
a table with named axes): one header line per column variable ``c_j, "", ..., labels of level
j``, then ``r1..rk, "", ...``, then one line per row ``row labels..., values...``. A one-way table
(m = 0) has a single header ``r1..rk, count`` (a magnitude table: ``r1..rk, <variable>``).
Values are what the table publishes: row counts like ``pd.crosstab`` (rounded when the table
declares rounding), or the statistic of a magnitude table / the estimates of a model, written
in plain positional notation; an empty field is a value not published (redacted, or undefined
like the mean of an empty cell).

Format ``enclave-output-sidecar/2`` adds to ``table``: ``values`` (published numbers of a
magnitude table or model output, else null), ``structural_zeros`` (cells declared empty by
construction), ``rounding`` (``{base, redact_at_most}`` or null), ``magnitude`` (variable,
statistic, top_n and per cell: totals, top per-pupil contributions, negative and missing flags;
never released) and ``model`` (``{estimator, n_obs, dof}``). A magnitude table of statistic
``quantile`` also has ``magnitude.levels``, the level of each column (and only it has that
key, so the other tables' sidecars are unchanged). Format ``/1`` (frequency tables without
those keys) is still read.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from output_control.exceptions import InvalidOutputName, InvalidTable, OutputRejected
from output_control.files import read_limited, strict_json
from output_control.labels import label_problem
from output_control.policy import Policy
from output_control.rules import check_table
from output_control.table import (
    Cell,
    Magnitude,
    ModelFit,
    Published,
    Rounding,
    SidecarTable,
    Statistic,
    TableKind,
    Unit,
)
from output_control.verdicts import CheckResult, Outcome, RuleVerdict

__all__ = [
    "DEFAULT_MAX_BYTES",
    "SIDECAR_FORMAT",
    "Cell",
    "SidecarTable",
    "check_output",
    "read_output",
    "render_csv",
    "sidecar_document",
    "sidecar_path",
]

SIDECAR_FORMAT = "enclave-output-sidecar/2"
SIDECAR_FORMAT_V1 = "enclave-output-sidecar/1"
READABLE_FORMATS = (SIDECAR_FORMAT_V1, SIDECAR_FORMAT)
SIDECAR_SUFFIX = ".sidecar.json"
CSV_SUFFIX = ".csv"
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
INTEGRITY_RULE = "file_integrity"
ONE_WAY_HEADER = "count"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TOP_KEYS = {
    "format", "kind", "file", "table", "population", "provenance", "checks", "policy",
    "created_at", "justification",
}  # fmt: skip
_FILE_KEYS = {"name", "sha256", "bytes"}
_TABLE_KEYS = {
    "index", "columns", "unit", "unit_column", "row_labels", "column_labels", "rows", "units",
}  # fmt: skip
_TABLE_KEYS_V2 = _TABLE_KEYS | {"values", "structural_zeros", "rounding", "magnitude", "model"}
_ROUNDING_KEYS = {"base", "redact_at_most"}
_MAGNITUDE_KEYS = {"variable", "statistic", "top_n", "totals", "top", "negative", "missing"}
_QUANTILE_KEYS = _MAGNITUDE_KEYS | {"levels"}
_MODEL_KEYS = {"estimator", "n_obs", "dof"}
_POLICY_KEYS = {"name", "version", "sha256"}


def validate_output_name(name: str) -> str:
    """Return ``name`` if it is a safe file stem, else raise InvalidOutputName (a ValueError)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise InvalidOutputName(
            f"output name {name!r} is not allowed: use 1-100 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit, without '..'"
        )
    return name


def sidecar_path(csv_path: Path) -> Path:
    """Where the sidecar of ``csv_path`` lives: ``<name>.csv.sidecar.json`` beside it."""
    return csv_path.with_name(csv_path.name + SIDECAR_SUFFIX)


def format_value(value: Published) -> str:
    """A published value as CSV text: integers as digits, floats in positional notation (never
    an exponent, so a negative number is never read as a formula), nothing as ``""``."""
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    return str(np.format_float_positional(value + 0.0, trim="-"))  # + 0.0: no "-0"


def one_way_header(table: SidecarTable) -> str:
    """The header of the value column of a one-way table."""
    if table.magnitude is not None:
        return table.magnitude.variable
    return ONE_WAY_HEADER


def csv_grid(table: SidecarTable) -> list[list[str]]:
    """The CSV's fields, line by line; the single source of the layout for writing and checking."""
    k, n_cols = len(table.index), len(table.column_labels)
    grid: list[list[str]] = []
    if not table.columns:
        grid.append([*table.index, one_way_header(table)])
    else:
        for level, variable in enumerate(table.columns):
            grid.append([variable, *[""] * (k - 1), *(key[level] for key in table.column_labels)])
        grid.append([*table.index, *[""] * n_cols])
    for key, values in zip(table.row_labels, table.published, strict=True):
        grid.append([*key, *(format_value(v) for v in values)])
    return grid


def render_csv(table: SidecarTable) -> bytes:
    """The CSV bytes of ``table`` (UTF-8, ``\\n`` line ends, minimal quoting)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(csv_grid(table))
    return buffer.getvalue().encode("utf-8")


def table_frame(table: SidecarTable) -> pd.DataFrame:
    """The published values of ``table`` as a DataFrame with named axes (labels as text): int64
    row counts for a plain frequency table, nullable Int64 for a rounded one, else floats."""
    if len(table.index) == 1:
        index = pd.Index([key[0] for key in table.row_labels], name=table.index[0])
    else:
        index = pd.MultiIndex.from_tuples(table.row_labels, names=list(table.index))
    if not table.columns:
        columns = pd.Index([one_way_header(table)])
    elif len(table.columns) == 1:
        columns = pd.Index([key[0] for key in table.column_labels], name=table.columns[0])
    else:
        columns = pd.MultiIndex.from_tuples(table.column_labels, names=list(table.columns))
    if table.kind is TableKind.FREQUENCY_TABLE and table.rounding is None:
        return pd.DataFrame(np.array(table.rows, dtype=np.int64), index=index, columns=columns)
    if table.kind is TableKind.FREQUENCY_TABLE:
        data = [[pd.NA if v is None else v for v in line] for line in table.published]
        return pd.DataFrame(data, index=index, columns=columns, dtype="Int64")
    grid = [[np.nan if v is None else float(v) for v in line] for line in table.published]
    return pd.DataFrame(np.array(grid, dtype=np.float64), index=index, columns=columns)


def sidecar_document(
    table: SidecarTable,
    *,
    checks: CheckResult,
    policy: Policy,
    population: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
    justification: str | None = None,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """The sidecar of ``table`` (whose ``file_name``/``sha256`` name the CSV) as a JSON object."""
    when = (created_at or datetime.now(UTC)).astimezone(UTC)
    return {
        "format": SIDECAR_FORMAT,
        "kind": table.kind.value,
        "file": {"name": table.file_name, "sha256": table.sha256, "bytes": _csv_size(table)},
        "table": {
            "index": list(table.index),
            "columns": list(table.columns),
            "unit": table.unit.value,
            "unit_column": table.unit_column,
            "row_labels": [list(key) for key in table.row_labels],
            "column_labels": [list(key) for key in table.column_labels],
            "rows": [list(line) for line in table.rows],
            "units": [list(line) for line in table.units],
            "values": _grid_json(table.values),
            "structural_zeros": [list(key) for key in table.structural_zeros],
            "rounding": _rounding_json(table.rounding),
            "magnitude": _magnitude_json(table.magnitude),
            "model": _model_json(table.model),
        },
        "population": dict(population or {}),
        "provenance": dict(provenance or {}),
        "checks": checks.to_dict(),
        "policy": {"name": policy.name, "version": policy.version, "sha256": policy.sha256},
        "created_at": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "justification": justification,
    }


def _grid_json(grid: tuple[tuple[Any, ...], ...] | None) -> list[list[Any]] | None:
    return None if grid is None else [list(line) for line in grid]


def _rounding_json(rounding: Rounding | None) -> dict[str, int] | None:
    if rounding is None:
        return None
    return {"base": rounding.base, "redact_at_most": rounding.redact_at_most}


def _magnitude_json(mag: Magnitude | None) -> dict[str, Any] | None:
    if mag is None:
        return None
    return {
        "variable": mag.variable,
        "statistic": mag.statistic.value,
        "top_n": mag.top_n,
        "totals": _grid_json(mag.totals),
        "top": [[list(top) for top in line] for line in mag.top],
        "negative": _grid_json(mag.negative),
        "missing": _grid_json(mag.missing),
        **({} if mag.levels is None else {"levels": list(mag.levels)}),
    }


def _model_json(model: ModelFit | None) -> dict[str, Any] | None:
    if model is None:
        return None
    return {"estimator": model.estimator, "n_obs": model.n_obs, "dof": model.dof}


def encode_sidecar(document: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON; NaN and infinities are refused, as JSON has none."""
    text = json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (text + "\n").encode("utf-8")


def read_output(
    csv_path: Path | str, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[pd.DataFrame, SidecarTable]:
    """Read a CSV and its sidecar, failing closed: any doubt raises OutputRejected with a reason.

    The sidecar may be up to ``8 * max_bytes + 1 MiB`` (it holds count grids, contribution data
    and the code).
    """
    csv_path = Path(csv_path)
    name = csv_path.name
    stem = name.removesuffix(CSV_SUFFIX)
    if stem == name or not _NAME.fullmatch(stem) or ".." in stem:
        raise OutputRejected(f"{name!r} is not a checkable output name (<safe-name>.csv)")
    csv_bytes = read_limited(csv_path, max_bytes, "CSV file")
    side_path = sidecar_path(csv_path)
    side_bytes = read_limited(side_path, 8 * max_bytes + (1 << 20), "sidecar")
    table = parse_sidecar(side_bytes, name)
    digest = hashlib.sha256(csv_bytes).hexdigest()
    if digest != table.sha256:
        raise OutputRejected(
            f"the CSV {name!r} does not match its sidecar (SHA-256 {digest[:12]}... instead of "
            f"{table.sha256[:12]}...): it was changed after it was written"
        )
    _compare_csv(csv_bytes, table)
    cross_check(table)
    return table_frame(table), table


#: Relative tolerance when a published sum or mean is compared with the sidecar's totals
#: (the two are added up in different orders).
CROSS_CHECK_TOLERANCE = 1e-9


def cross_check(table: SidecarTable) -> None:
    """Refuse a sidecar whose numbers contradict each other; raise OutputRejected with the cell.

    A sidecar is written by researcher code in the sandbox, so it can lie; what the rules read
    must at least agree with what is published. The CSV's fields are already compared with
    the sidecar (:func:`_compare_csv`: a frequency table publishes exactly its cells' row
    counts, or their rounding). For a magnitude table the published statistic must follow
    from the contributions the dominance rules judge: a sum equals the cell's total, a mean its
    total divided by its rows with a value (within :data:`CROSS_CHECK_TOLERANCE`), and a min,
    max or quantile of a cell of non-negative values is at most its largest contribution.
    """
    mag = table.magnitude
    if mag is None or table.values is None:
        return
    for i, row in enumerate(table.row_labels):
        for j, column in enumerate(table.column_labels):
            value = table.values[i][j]
            if value is None:
                continue
            total, rows = mag.totals[i][j], table.rows[i][j]
            expected = {Statistic.SUM: total,
                        Statistic.MEAN: total / rows if rows else None}.get(mag.statistic)
            where = ", ".join((*row, *column))
            if expected is not None and not _close(value, expected):
                raise OutputRejected(
                    f"the {mag.statistic.value} published in cell ({where}) of "
                    f"{table.file_name!r} is {format_value(value)} but the sidecar's "
                    f"contributions give {format_value(expected)}: the sidecar does not "
                    "describe the published table")
            top = mag.top[i][j]
            single = mag.statistic in (Statistic.MIN, Statistic.MAX, Statistic.MEDIAN,
                                       Statistic.QUANTILE)
            if (single and top and not mag.negative[i][j]
                    and value > top[0] * (1 + CROSS_CHECK_TOLERANCE)):
                raise OutputRejected(
                    f"the {mag.statistic.value} published in cell ({where}) of "
                    f"{table.file_name!r} is {format_value(value)}, above the largest "
                    f"contribution the sidecar records ({format_value(top[0])}): the sidecar "
                    "does not describe the published table")


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= CROSS_CHECK_TOLERANCE * max(1.0, abs(a), abs(b))


def check_output(
    csv_path: Path | str, policy: Policy, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> CheckResult:
    """Read then check an output; a file that cannot be trusted yields FAIL ``file_integrity``."""
    try:
        _, table = read_output(csv_path, max_bytes=max_bytes)
    except OutputRejected as exc:
        reason = exc.reason
    except Exception as exc:  # fail closed on the unforeseen too: never skip a file
        reason = f"the output could not be read ({type(exc).__name__}: {exc})"
    else:
        integrity = RuleVerdict(
            rule=INTEGRITY_RULE,
            outcome=Outcome.PASS,
            message=f"the CSV matches its sidecar (SHA-256 {table.sha256})",
        )
        result = check_table(table, policy)
        return CheckResult.from_verdicts(
            (integrity, *result.verdicts), policy.name, policy.version, policy.sha256
        )
    failure = RuleVerdict(rule=INTEGRITY_RULE, outcome=Outcome.FAIL, message=reason)
    return CheckResult.from_verdicts((failure,), policy.name, policy.version, policy.sha256)


def parse_sidecar(data: bytes, csv_name: str) -> SidecarTable:
    """Validate sidecar bytes written for the CSV called ``csv_name``; raise OutputRejected."""
    try:
        doc = strict_json(data)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise OutputRejected(f"the sidecar of {csv_name!r} is not valid JSON: {exc}") from None
    try:
        return _table_from_document(doc, csv_name)
    except (InvalidTable, ValueError, TypeError) as exc:
        raise OutputRejected(f"the sidecar of {csv_name!r} is invalid: {exc}") from None


def _table_from_document(doc: object, csv_name: str) -> SidecarTable:
    top = _object(doc, _TOP_KEYS, "the sidecar")
    if top["format"] not in READABLE_FORMATS:
        raise OutputRejected(
            f"the sidecar of {csv_name!r} has unknown format {_short(top['format'])} "
            f"(expected one of {list(READABLE_FORMATS)})"
        )
    version_1 = top["format"] == SIDECAR_FORMAT_V1
    try:
        kind = TableKind(top["kind"])
    except ValueError:
        known = [k.value for k in TableKind]
        raise OutputRejected(
            f"the sidecar of {csv_name!r} has unknown kind {_short(top['kind'])} (known: {known})"
        ) from None
    file = _object(top["file"], _FILE_KEYS, "'file'")
    if file["name"] != csv_name:
        raise OutputRejected(
            f"the sidecar describes {_short(file['name'])}, not {csv_name!r}: it belongs to "
            "another file"
        )
    if not isinstance(file["sha256"], str) or not _SHA256.fullmatch(file["sha256"]):
        raise ValueError("'file.sha256' must be 64 lowercase hexadecimal digits")
    if version_1 and kind is not TableKind.FREQUENCY_TABLE:
        raise ValueError(f"format {SIDECAR_FORMAT_V1!r} describes frequency tables only")
    spec = _object(top["table"], _TABLE_KEYS if version_1 else _TABLE_KEYS_V2, "'table'")
    extra = {} if version_1 else _v2_fields(spec)
    table = SidecarTable(
        index=_strings(spec["index"], "table.index"),
        columns=_strings(spec["columns"], "table.columns"),
        row_labels=tuple(_strings(key, "table.row_labels") for key in _list(spec["row_labels"])),
        column_labels=tuple(
            _strings(key, "table.column_labels") for key in _list(spec["column_labels"])
        ),
        rows=tuple(tuple(_list(line)) for line in _list(spec["rows"])),
        units=tuple(tuple(_list(line)) for line in _list(spec["units"])),
        unit=Unit(spec["unit"]),
        unit_column=_text(spec["unit_column"], "table.unit_column"),
        kind=kind,
        file_name=csv_name,
        sha256=file["sha256"],
        metadata=_metadata(top),
        **extra,
    )
    if file["bytes"] != _csv_size(table):
        raise ValueError("'file.bytes' does not match the table it describes")
    return table


def _v2_fields(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The table fields format /2 adds, as SidecarTable arguments (validated there)."""
    rounding = None
    if spec["rounding"] is not None:
        raw = _object(spec["rounding"], _ROUNDING_KEYS, "'table.rounding'")
        rounding = Rounding(base=raw["base"], redact_at_most=raw["redact_at_most"])
    magnitude = None
    if spec["magnitude"] is not None:
        raw = spec["magnitude"]
        quantile = isinstance(raw, dict) and raw.get("statistic") == Statistic.QUANTILE.value
        raw = _object(raw, _QUANTILE_KEYS if quantile else _MAGNITUDE_KEYS, "'table.magnitude'")
        magnitude = Magnitude(
            variable=_text(raw["variable"], "table.magnitude.variable"),
            statistic=Statistic(raw["statistic"]),
            top_n=raw["top_n"],
            totals=_number_grid(raw["totals"], "table.magnitude.totals", empty=False),
            top=tuple(
                tuple(tuple(_number(x, "table.magnitude.top") for x in _list(top)) for top in line)
                for line in map(_list, _list(raw["top"]))
            ),
            negative=tuple(tuple(_list(line)) for line in _list(raw["negative"])),
            missing=tuple(tuple(_list(line)) for line in _list(raw["missing"])),
            levels=tuple(_number(x, "table.magnitude.levels") for x in _list(raw["levels"]))
            if quantile else None,
        )
    model = None
    if spec["model"] is not None:
        raw = _object(spec["model"], _MODEL_KEYS, "'table.model'")
        model = ModelFit(
            estimator=_text(raw["estimator"], "table.model.estimator"),
            n_obs=raw["n_obs"],
            dof=raw["dof"],
        )
    values = None
    if spec["values"] is not None:
        values = _number_grid(spec["values"], "table.values", empty=True)
    return {
        "values": values,
        "structural_zeros": tuple(
            _strings(key, "table.structural_zeros") for key in _list(spec["structural_zeros"])
        ),
        "rounding": rounding,
        "magnitude": magnitude,
        "model": model,
    }


def _number(value: object, what: str) -> float:
    if type(value) not in (int, float):
        raise ValueError(f"{what} must hold numbers")
    return float(value)  # type: ignore[arg-type]


def _number_grid(value: object, what: str, *, empty: bool) -> tuple[tuple[Any, ...], ...]:
    lines = []
    for line in _list(value):
        lines.append(
            tuple(None if (empty and x is None) else _number(x, what) for x in _list(line))
        )
    return tuple(lines)


def _metadata(top: Mapping[str, Any]) -> dict[str, Any]:
    for key in ("population", "provenance"):
        if not isinstance(top[key], dict):
            raise ValueError(f"{key!r} must be an object")
    policy = _object(top["policy"], _POLICY_KEYS, "'policy'")
    for key in _POLICY_KEYS:
        _text(policy[key], f"policy.{key}")
    if top["justification"] is not None:
        _text(top["justification"], "justification")
    return {
        "population": top["population"],
        "provenance": top["provenance"],
        "checks": CheckResult.from_dict(top["checks"]),
        "policy": policy,
        "created_at": _text(top["created_at"], "created_at"),
        "justification": top["justification"],
    }


def _compare_csv(csv_bytes: bytes, table: SidecarTable) -> None:
    """Parse the CSV strictly and require every field to be what the sidecar describes."""
    name = table.file_name
    try:
        lines = list(csv.reader(io.StringIO(csv_bytes.decode("utf-8"), newline=""), strict=True))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise OutputRejected(f"the CSV {name!r} cannot be parsed: {exc}") from None
    for i, line in enumerate(lines, start=1):
        for j, text in enumerate(line, start=1):
            problem = label_problem(text)
            if problem is not None:
                raise OutputRejected(
                    f"the CSV {name!r} line {i} field {j} ({_short(text)}) {problem}"
                )
    expected = csv_grid(table)
    if len(lines) != len(expected):
        raise OutputRejected(
            f"the CSV {name!r} has {len(lines)} lines but its sidecar describes {len(expected)}"
        )
    header = len(expected) - len(table.row_labels)
    k = len(table.index)
    for i, (got, want) in enumerate(zip(lines, expected, strict=True)):
        if len(got) != len(want):
            raise OutputRejected(
                f"the CSV {name!r} line {i + 1} has {len(got)} fields, the sidecar {len(want)}"
            )
        for j, (a, b) in enumerate(zip(got, want, strict=True)):
            if a == b:
                continue
            if i >= header and j >= k:
                cell = (*table.row_labels[i - header], *table.column_labels[j - k])
                plain = table.kind is TableKind.FREQUENCY_TABLE and table.rounding is None
                gives = f"counts {b} rows" if plain else f"gives {_short(b)}"
                raise OutputRejected(
                    f"the CSV {name!r} cell ({', '.join(cell)}) reads {_short(a)} but the "
                    f"sidecar {gives}"
                )
            raise OutputRejected(
                f"the CSV {name!r} line {i + 1} field {j + 1} reads {_short(a)} but the "
                f"sidecar gives {_short(b)}"
            )


def _csv_size(table: SidecarTable) -> int:
    return len(render_csv(table))


def _object(value: object, keys: set[str], what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a JSON object")
    missing, unknown = sorted(keys - set(value)), sorted(set(value) - keys)
    if missing:
        raise ValueError(f"{what} lacks {missing}")
    if unknown:
        raise ValueError(f"{what} has unknown keys {[_short(k) for k in unknown]}")
    return value


def _list(value: object) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"expected a JSON array, got {type(value).__name__}")
    return value


def _strings(value: object, what: str) -> tuple[str, ...]:
    items = _list(value)
    if not all(isinstance(x, str) for x in items):
        raise ValueError(f"{what} must hold strings only")
    return tuple(items)


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string")
    return value


def _short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
