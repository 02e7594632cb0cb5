"""k-anonymity on declared quasi-identifiers of a written pupil-level table, and its protection.

For one Parquet file: the sample frequency ``fk`` of each record's key combination
(:func:`anonymization.risk.key_frequencies`, missing values match any value), the records with
``fk < k`` (violations), the individual risk ``1/fk`` (a population: no weights) and the
global risk (expected re-identifications). When some records violate k and the rules allow it,
:func:`anonymization.protection.local_suppression` (importance: the declared order, the first
quasi-identifier suppressed last) suppresses key values until k holds, and the file is
rewritten with the protected columns. A table of fewer than k records cannot reach k: it is
left as it is, with the reason in its section. The section returned goes into
``risk_report.json``. The table is read whole: pupil-level tables hold one row per pupil.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from anonymization.exceptions import TooFewRecordsError
from anonymization.protection import local_suppression
from anonymization.risk import global_risk, individual_risk, key_frequencies
from enclave.provisioning.spec import DatasetRules

REPORT_NAME = "risk_report.json"


def _measure(frame: Any, keys: list[str], k: int) -> dict[str, Any]:
    if len(frame) == 0:
        return {"violations": 0, "global_risk": {"expected_reidentifications": 0.0,
                                                 "percent": 0.0}, "min_fk": None}
    freq = key_frequencies(frame, keys)
    risk = global_risk(individual_risk(freq.fk, freq.Fk, weighted=False))
    return {"violations": int(freq.violations(k)),
            "global_risk": {"expected_reidentifications": round(
                risk.expected_reidentifications, 9), "percent": round(risk.percent, 9)},
            "min_fk": float(freq.fk.min())}


def protect_table(path: Path, rules: DatasetRules) -> dict[str, Any]:
    """Measure (and, if needed and allowed, protect) the file at ``path`` in place."""
    keys = list(rules.quasi_identifiers)
    k = int(rules.k or 1)
    table = pq.read_table(path)
    frame = table.select(keys).to_pandas()
    before = _measure(frame, keys, k)
    section: dict[str, Any] = {
        "records": table.num_rows, "quasi_identifiers": keys, "k": k,
        "violations_before": before["violations"], "global_risk_before": before["global_risk"],
        "local_suppression": rules.local_suppression,
        "suppressions": dict.fromkeys(keys, 0)}
    after = before
    if before["violations"] and rules.local_suppression:
        try:
            result = local_suppression(frame, keys, k,
                                       importance=list(range(1, len(keys) + 1)))
        except TooFewRecordsError as exc:
            section["local_suppression_error"] = str(exc)
            section["violations_after"] = before["violations"]
            section["global_risk_after"] = before["global_risk"]
            return section
        section["suppressions"] = {str(key): int(n) for key, n in
                                   result.suppressions.items()}
        for key in keys:
            position = table.schema.get_field_index(key)
            column = pa.Array.from_pandas(result.data[key], type=table.schema.field(key).type)
            table = table.set_column(position, table.schema.field(key), column)
        pq.write_table(table, path, compression="zstd")
        after = _measure(result.data, keys, k)
    section["violations_after"] = after["violations"]
    section["global_risk_after"] = after["global_risk"]
    return section
