"""k-anonymity on declared quasi-identifiers of a written pupil-level table, and its protection.

For one Parquet file: the sample frequency ``fk`` and weighted population frequency ``Fk`` of
each record's key combination (:func:`anonymization.risk.key_frequencies`, sdcMicro
``freqCalc``: missing values match any value), the records with ``fk < k`` and ``Fk < k``
(violations), the individual risk (sdcMicro ``indivRisk``, Benedetti-Franconi approximation
from ``fk`` and ``Fk``; ``1/fk`` without a weight variable, the table then being the
population) with its distribution, and the global risk (expected re-identifications, sdcMicro
``measure_risk``). When some records violate k and the rules allow it,
:func:`anonymization.protection.local_suppression` (importance: the declared order, the first
quasi-identifier suppressed last) suppresses key values until k holds, and the file is
rewritten with the protected columns; the utility measures of
:func:`anonymization.protection.utility_report` (suppressions, IL1s, changes of means,
variances and correlations of numeric quasi-identifiers) say what it cost. Declared sensitive
variables get their l-diversity (sdcMicro ``ldiversity``) on the protected table.

k-anonymity violations are also given per combination of key *variables* (every subset of the
quasi-identifiers, up to six; for more, single keys, pairs and the full set), before and after
protection, and the key *value* combinations still below k after protection (the top ones;
non-empty only when an override lets such an extract through). Value combinations from before
protection are never written: the report sits next to the extract, and they would give back
the values local suppression removed.

A table of fewer than k records cannot reach k: it is left as it is, with the reason in its
section. The section returned goes into ``risk_report.json``. The table is read whole:
pupil-level tables hold one row per pupil.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from anonymization.exceptions import AnonymizationError, TooFewRecordsError
from anonymization.protection import local_suppression, utility_report
from anonymization.risk import global_risk, individual_risk, key_frequencies, l_diversity
from enclave.core.exceptions import ValidationError
from enclave.provisioning.spec import DatasetRules

REPORT_NAME = "risk_report.json"
PAGE_NAME = "risk_report.html"
TOP = 20
"""How many key-variable subsets and remaining value combinations the report lists."""
RISK_BINS = (0.0, 0.01, 0.05, 0.1, 0.2, 0.5, 1.0)
"""Edges of the individual-risk histogram; the last bin includes 1."""
_ALL_SUBSETS_UP_TO = 6


def _round(value: float | None) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    return round(float(value), 9)


def _histogram(risk: np.ndarray) -> list[dict[str, Any]]:
    counts, _ = np.histogram(np.clip(risk, 0.0, 1.0), bins=np.asarray(RISK_BINS))
    return [{"from": RISK_BINS[i], "to": RISK_BINS[i + 1], "records": int(counts[i])}
            for i in range(len(counts))]


def _measure(frame: pd.DataFrame, keys: list[str], k: int,
             weight: str | None) -> dict[str, Any]:
    """Unweighted and weighted k-anonymity and risk of one state of the table."""
    if len(frame) == 0:
        zero = {"expected_reidentifications": 0.0, "percent": 0.0}
        return {"violations": 0, "violations_weighted": 0, "global_risk": zero,
                "global_risk_weighted": zero, "min_fk": None, "min_Fk": None,
                "max_individual_risk": None, "individual_risk_histogram": _histogram(
                    np.zeros(0))}
    try:
        freq = key_frequencies(frame, keys, weight=weight)
        plain = global_risk(individual_risk(freq.fk, freq.Fk, weighted=False))
        risk = individual_risk(freq.fk, freq.Fk, weighted=weight is not None)
    except AnonymizationError as exc:
        raise ValidationError(f"risk measures on {', '.join(keys)}: {exc}") from None
    weighted = global_risk(risk)
    return {"violations": int(freq.violations(k)),
            "violations_weighted": int(freq.violations(k, weighted=True)),
            "global_risk": {"expected_reidentifications": _round(
                plain.expected_reidentifications), "percent": _round(plain.percent)},
            "global_risk_weighted": {"expected_reidentifications": _round(
                weighted.expected_reidentifications), "percent": _round(weighted.percent)},
            "min_fk": float(freq.fk.min()), "min_Fk": _round(float(freq.Fk.min())),
            "max_individual_risk": _round(float(risk.max())),
            "individual_risk_histogram": _histogram(risk)}


def _key_subsets(keys: list[str]) -> list[tuple[str, ...]]:
    m = len(keys)
    sizes = range(1, m + 1) if m <= _ALL_SUBSETS_UP_TO else (1, 2, m)
    return [combo for size in sizes for combo in combinations(keys, size)]


def _violations_by_subset(before: pd.DataFrame, after: pd.DataFrame, keys: list[str],
                          k: int) -> list[dict[str, Any]]:
    """Records with ``fk < k`` on each subset of the keys, before and after protection.

    Suppression only turns values into wildcards, which never lowers a frequency on any
    subset of the keys, so a subset without violations before has none after: it is not
    counted again.
    """
    counts = []
    for subset in _key_subsets(keys):
        names = list(subset)
        found = int(key_frequencies(before, names).violations(k))
        remaining = int(key_frequencies(after, names).violations(k)) if found else 0
        counts.append((names, found, remaining))
    counts.sort(key=lambda c: (-c[1], -c[2], len(c[0]), c[0]))
    return [{"keys": names, "before": b, "after": a} for names, b, a in counts[:TOP]]


def _json_value(value: Any) -> Any:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value if isinstance(value, str | int | float | bool) else str(value)


def _remaining_combinations(frame: pd.DataFrame, keys: list[str],
                            k: int) -> list[dict[str, Any]]:
    """Value combinations (as shipped) still held by records with ``fk < k``: the top ones."""
    if len(frame) == 0:
        return []
    freq = key_frequencies(frame, keys)
    below = freq.fk < k
    if not below.any():
        return []
    groups, counts = np.unique(freq.group[below], return_counts=True)
    first = {int(g): int(np.flatnonzero(freq.group == g)[0]) for g in groups.tolist()}
    found = sorted(((float(freq.group_fk[int(g)]), int(c), int(g))
                    for g, c in zip(groups.tolist(), counts.tolist(), strict=True)),
                   key=lambda t: (t[0], -t[1]))
    return [{"values": {key: _json_value(frame[key].iloc[first[g]]) for key in keys},
             "records": c, "fk": f} for f, c, g in found[:TOP]]


def _l_diversity(frame: pd.DataFrame, keys: list[str],
                 sensitive: list[str]) -> dict[str, Any]:
    """Per sensitive variable: the smallest distinct, entropy and recursive l over key
    classes, and the records in classes whose members all share one value (distinct l < 2)."""
    if not sensitive or len(frame) == 0:
        return {}
    try:
        table = l_diversity(frame, keys, sensitive)
    except AnonymizationError as exc:
        raise ValidationError(f"l-diversity of {', '.join(sensitive)}: {exc}") from None
    out = {}
    for name in sensitive:
        distinct = table[f"{name}_distinct"].to_numpy()
        out[name] = {"min_distinct": int(distinct.min()),
                     "min_entropy": _round(float(table[f"{name}_entropy"].min())),
                     "min_recursive": int(table[f"{name}_recursive"].min()),
                     "records_in_classes_below_2": int(np.count_nonzero(distinct < 2))}
    return out


def _utility(before: pd.DataFrame, after: pd.DataFrame, keys: list[str]) -> dict[str, Any]:
    """What local suppression cost: suppressions, and for numeric keys IL1s and moments."""
    numeric = [c for c in keys if pd.api.types.is_numeric_dtype(before[c])
               and not pd.api.types.is_bool_dtype(before[c])]
    report = utility_report(before, after, numeric=numeric, categorical=keys)
    moments = {str(v): {c: _round(float(report.moments.loc[v, c]))
                        for c in ("mean_original", "mean_protected", "variance_original",
                                  "variance_protected")}
               for v in report.moments.index} if numeric else {}
    change = report.correlation_change
    correlations = {str(a): {str(b): _round(float(change.loc[a, b])) for b in change.columns}
                    for a in change.index} if numeric else {}
    return {"numeric_variables": numeric, "il1s": _round(report.il1s),
            "il1s_by_variable": {str(v): _round(float(x))
                                 for v, x in report.il1s_by_variable.items()},
            "moments": moments, "correlation_change": correlations,
            "max_correlation_change": _round(report.max_correlation_change),
            "suppressions": {str(v): int(x) for v, x in report.suppressions.items()}}


def protect_table(path: Path, rules: DatasetRules) -> dict[str, Any]:
    """Measure (and, if needed and allowed, protect) the file at ``path`` in place."""
    keys = list(rules.quasi_identifiers)
    k = int(rules.k or 1)
    sensitive = list(rules.sensitive)
    weight = rules.weight
    table = pq.read_table(path)
    columns = keys + sensitive + ([weight] if weight else [])
    frame = table.select(columns).to_pandas()
    before = _measure(frame, keys, k, weight)
    section: dict[str, Any] = {
        "records": table.num_rows, "quasi_identifiers": keys, "k": k,
        "weight": weight, "sensitive": sensitive,
        "violations_before": before["violations"], "global_risk_before": before["global_risk"],
        "risk_before": before, "local_suppression": rules.local_suppression,
        "suppressions": dict.fromkeys(keys, 0)}
    after, protected = before, frame
    if before["violations"] and rules.local_suppression:
        try:
            result = local_suppression(frame, keys, k,
                                       importance=list(range(1, len(keys) + 1)))
        except TooFewRecordsError as exc:
            section["local_suppression_error"] = str(exc)
        else:
            protected = result.data
            section["suppressions"] = {str(key): int(n) for key, n in
                                       result.suppressions.items()}
            for key in keys:
                position = table.schema.get_field_index(key)
                column = pa.Array.from_pandas(result.data[key],
                                              type=table.schema.field(key).type)
                table = table.set_column(position, table.schema.field(key), column)
            pq.write_table(table, path, compression="zstd")
            after = _measure(protected, keys, k, weight)
    section["violations_after"] = after["violations"]
    section["global_risk_after"] = after["global_risk"]
    section["risk_after"] = after
    if len(frame):
        section["violations_by_key_subset"] = _violations_by_subset(frame, protected, keys, k)
        section["utility"] = _utility(frame, protected, keys)
    else:
        section["violations_by_key_subset"] = []
        section["utility"] = None
    section["remaining_violating_combinations"] = _remaining_combinations(protected, keys, k)
    section["l_diversity"] = _l_diversity(protected, keys, sensitive)
    return section
