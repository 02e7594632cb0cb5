"""Differentially private results as outputs: the noisy values plus what they cost.

A kernel in the sandbox has no database, so it cannot charge the project's privacy budget
(``enclave.privacy_budget``) when it runs a query. The budget is charged when the output is
**submitted for release** instead: :func:`write_dp_result` writes the noisy values of an
``anonymization.dp`` query as ``<name>.csv`` with a sidecar of format ``enclave-dp-output/1``
declaring the dataset, the epsilon and delta spent and the query's accounting record (bounds,
contribution bound, mechanisms), and :func:`read_dp_output` gives the review workflow that
declaration back, validated and bound to the CSV's SHA-256, to reserve on the ledger before
the request is queued (a submission over the remaining budget is refused).

What is published is a post-processing of a DP mechanism's output, so no disclosure rule on
counts applies: the privacy guarantee is the epsilon charged (Dwork & Roth 2014, Proposition
2.1 for post-processing, Theorem 3.16 for sequential composition of the released results).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from anonymization.dp import DPResult, Histogram
from output_control.analysis.charts import bin_labels
from output_control.checked import MAX_JUSTIFICATION, OUTPUTS_ENV, _json_object, _provenance
from output_control.exceptions import OutputRejected
from output_control.files import read_limited, strict_json, write_atomic
from output_control.labels import label_problem
from output_control.sidecar import (
    CSV_SUFFIX,
    DEFAULT_MAX_BYTES,
    format_value,
    sidecar_path,
    validate_output_name,
)

DP_FORMAT = "enclave-dp-output/1"
DP_KIND = "dp_result"
_TOP_KEYS = {"format", "kind", "file", "dataset", "epsilon", "delta", "accounting",
             "population", "provenance", "created_at", "justification"}
_FILE_KEYS = {"name", "sha256", "bytes"}


@dataclass(frozen=True)
class DPOutput:
    """A DP output's declaration, as the release workflow needs it to charge the budget."""

    file_name: str
    sha256: str
    dataset: str
    epsilon: float
    delta: float
    accounting: Mapping[str, Any]
    population: Mapping[str, Any]
    justification: str | None


def write_dp_result(
    result: DPResult[Any],
    *,
    name: str,
    dataset: str,
    outputs_dir: Path | str | None = None,
    population: dict | None = None,
    justification: str | None = None,
) -> Path:
    """Write ``result`` (from ``anonymization.dp``) as ``<name>.csv`` with its DP sidecar.

    ``dataset`` is the catalogue dataset whose budget pays for it (e.g. ``traces_xapi``).
    Nothing is charged here: submitting the file for release charges ``result``'s epsilon and
    delta to the project's budget on ``dataset``, or is refused when too little remains.
    """
    validate_output_name(name)
    validate_output_name(dataset)
    if not isinstance(result, DPResult):
        raise TypeError("result must be the DPResult an anonymization.dp query returned")
    population = _json_object(population, "population")
    if justification is not None and (not isinstance(justification, str)
                                      or len(justification) > MAX_JUSTIFICATION):
        raise ValueError(f"justification must be text of at most {MAX_JUSTIFICATION} characters")
    accounting = result.accounting.to_dict()
    csv_bytes = render_dp_csv(result.value, str(accounting["query"]))
    if len(csv_bytes) > DEFAULT_MAX_BYTES:
        raise ValueError("the DP result is over the release size limit")
    file_name = name + CSV_SUFFIX
    document = {
        "format": DP_FORMAT,
        "kind": DP_KIND,
        "file": {"name": file_name, "sha256": hashlib.sha256(csv_bytes).hexdigest(),
                 "bytes": len(csv_bytes)},
        "dataset": dataset,
        "epsilon": float(result.accounting.epsilon),
        "delta": float(result.accounting.delta),
        "accounting": accounting,
        "population": population,
        "provenance": _provenance("write_dp_result"),
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "justification": justification,
    }
    folder = Path(outputs_dir or os.environ.get(OUTPUTS_ENV) or "outputs")
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / file_name
    write_atomic(csv_path, csv_bytes)
    write_atomic(sidecar_path(csv_path),
                 (json.dumps(document, ensure_ascii=False, allow_nan=False) + "\n").encode())
    print(f"Wrote {csv_path} (differentially private, epsilon {document['epsilon']:g} on "
          f"{dataset}); the budget is charged when you submit it in an output request.")
    return csv_path


def render_dp_csv(value: object, query: str) -> bytes:
    """The CSV of a DP value: ``statistic,value`` for a number, ``bin,count`` for a histogram,
    ``<variable>,count`` for category counts."""
    lines: list[list[str]]
    if isinstance(value, Histogram):
        edges = np.asarray(value.edges, dtype=float)
        lines = [["bin", "count"], *([label, str(int(c))] for label, c in
                                     zip(bin_labels(edges), value.counts, strict=True))]
    elif isinstance(value, pd.Series):
        header = str(value.index.name or "category")
        lines = [[header, "count"], *([str(k), format_value(_number(v))]
                                      for k, v in value.items())]
    elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        lines = [["statistic", "value"], [query, format_value(_number(value))]]
    else:
        raise TypeError(f"cannot write a DP value of type {type(value).__name__}")
    for line in lines:
        for field in line:
            problem = label_problem(field)
            if problem is not None:
                raise ValueError(f"label {field[:40]!r} {problem}; recode it before release")
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(lines)
    return buffer.getvalue().encode("utf-8")


def read_dp_output(csv_path: Path | str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> DPOutput:
    """The validated declaration of a DP output; OutputRejected on any doubt (fail closed).

    Checks that the sidecar is of format ``enclave-dp-output/1``, names this CSV, matches its
    SHA-256 and size, and declares a finite epsilon > 0 and a delta in [0, 1) equal to its
    accounting record's.
    """
    csv_path = Path(csv_path)
    name = csv_path.name
    stem = name.removesuffix(CSV_SUFFIX)
    if stem == name:
        raise OutputRejected(f"{name!r} is not a DP output name (<safe-name>.csv)")
    try:
        validate_output_name(stem)
    except ValueError as exc:
        raise OutputRejected(str(exc)) from None
    data = read_limited(csv_path, max_bytes, "CSV file")
    raw = read_limited(sidecar_path(csv_path), 1 << 20, "sidecar")
    try:
        doc = strict_json(raw)
        return _declaration(doc, name, data)
    except OutputRejected:
        raise
    except (UnicodeDecodeError, ValueError, TypeError, KeyError) as exc:
        raise OutputRejected(f"the DP sidecar of {name!r} is invalid: {exc}") from None


def is_dp_sidecar(sidecar_bytes: bytes) -> bool:
    """Whether a sidecar declares a DP output (to choose between this reader and the tables')."""
    try:
        doc = json.loads(sidecar_bytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("format") == DP_FORMAT


def total_spend(outputs: Iterable[DPOutput]) -> dict[str, tuple[float, float]]:
    """Epsilon and delta to charge per dataset for releasing ``outputs`` together (their sums:
    sequential composition, Dwork & Roth 2014, Theorem 3.16)."""
    epsilons: dict[str, list[float]] = {}
    deltas: dict[str, list[float]] = {}
    for output in outputs:
        epsilons.setdefault(output.dataset, []).append(output.epsilon)
        deltas.setdefault(output.dataset, []).append(output.delta)
    return {d: (math.fsum(eps), math.fsum(deltas[d])) for d, eps in epsilons.items()}


def _declaration(doc: object, name: str, data: bytes) -> DPOutput:
    if not isinstance(doc, dict) or doc.get("format") != DP_FORMAT:
        raise OutputRejected(f"the sidecar of {name!r} is not a DP output ({DP_FORMAT})")
    if set(doc) != _TOP_KEYS or doc["kind"] != DP_KIND:
        raise ValueError(f"expected exactly the keys {sorted(_TOP_KEYS)} and kind {DP_KIND!r}")
    file = doc["file"]
    if not isinstance(file, dict) or set(file) != _FILE_KEYS or file["name"] != name:
        raise ValueError(f"'file' must describe {name!r}")
    digest = hashlib.sha256(data).hexdigest()
    if file["sha256"] != digest or file["bytes"] != len(data):
        raise OutputRejected(f"the CSV {name!r} does not match its DP sidecar: it was changed "
                             "after it was written")
    dataset = doc["dataset"]
    if not isinstance(dataset, str):
        raise ValueError("'dataset' must be text")
    validate_output_name(dataset)
    epsilon, delta = doc["epsilon"], doc["delta"]
    if type(epsilon) not in (int, float) or not (math.isfinite(epsilon) and epsilon > 0):
        raise ValueError("'epsilon' must be a finite number > 0")
    if type(delta) not in (int, float) or not 0 <= delta < 1:
        raise ValueError("'delta' must be a number in [0, 1)")
    accounting = doc["accounting"]
    if not isinstance(accounting, dict):
        raise ValueError("'accounting' must be an object")
    if not (math.isclose(float(accounting.get("epsilon", -1)), epsilon, rel_tol=1e-12)
            and math.isclose(float(accounting.get("delta", -1)), delta, abs_tol=1e-15)):
        raise ValueError("'epsilon'/'delta' differ from the accounting record's")
    for key in ("population", "provenance"):
        if not isinstance(doc[key], dict):
            raise ValueError(f"{key!r} must be an object")
    if doc["justification"] is not None and not isinstance(doc["justification"], str):
        raise ValueError("'justification' must be text or null")
    return DPOutput(file_name=name, sha256=digest, dataset=dataset, epsilon=float(epsilon),
                    delta=float(delta), accounting=accounting, population=doc["population"],
                    justification=doc["justification"])


def _number(value: object) -> int | float:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number):
        raise ValueError("a DP value is not a finite number")
    return number
