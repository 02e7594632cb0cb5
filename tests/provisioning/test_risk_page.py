"""The risk report's weighted measures, l-diversity, recodings and utility on a hand-computed
table, and the HTML page showing exactly the report's numbers (inline SVG, escaped, no JS)."""

from __future__ import annotations

import datetime
import math
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from enclave.core.exceptions import ValidationError
from enclave.provisioning.risk_page import fmt, render_page
from enclave.provisioning.risk_report import protect_table
from enclave.provisioning.spec import DatasetRules, ExtractSpec
from enclave.provisioning.transforms import RecodingStats, apply_rules


def _hand_table(tmp_path: Path) -> Path:
    # (F, CM2) x3 with aide a, a, b; (M, CM2) x3 with aide a, a, a; (F, 6e) x1 with aide b.
    # Every record has sampling weight 2.
    path = tmp_path / "eleves.parquet"
    pq.write_table(pa.table({
        "eleve": [f"p{i}" for i in range(7)],
        "sexe": ["F", "F", "F", "M", "M", "M", "F"],
        "niveau": ["CM2"] * 6 + ["6e"],
        "aide": ["a", "a", "b", "a", "a", "a", "b"],
        "w": [2.0] * 7}), path)
    return path


RULES = DatasetRules(quasi_identifiers=("sexe", "niveau"), k=3, sensitive=("aide",), weight="w")


def test_weighted_risk_l_diversity_and_subsets_are_hand_computed(tmp_path: Path) -> None:
    section = protect_table(_hand_table(tmp_path), RULES)
    before, after = section["risk_before"], section["risk_after"]
    # Before: fk = 3 (x6), 1; Fk = 6 (x6), 2. One record below k on fk and on Fk.
    assert before["violations"] == before["violations_weighted"] == 1
    assert before["min_fk"] == 1 and before["min_Fk"] == 2
    # indivRisk approx: fk = 3, Fk = 6, p = 1/2: p / (fk - (1 - p)) = 0.5 / 2.5 = 0.2;
    # fk = 1, Fk = 2: p/(1-p) log(1/p) = log 2. ER = 6 * 0.2 + log 2.
    assert before["global_risk_weighted"]["expected_reidentifications"] == pytest.approx(
        1.2 + math.log(2))
    assert before["max_individual_risk"] == pytest.approx(math.log(2))
    assert [b["records"] for b in before["individual_risk_histogram"]] == [0, 0, 0, 0, 6, 1]
    # After: (F, NA) matches the three (F, CM2): fk = 4, Fk = 8, r = 0.5 / 3.5 = 1/7;
    # the M records keep r = 0.2. ER = 4/7 + 0.6; unweighted ER = 4 * 1/4 + 3 * 1/3 = 2.
    assert section["suppressions"] == {"sexe": 0, "niveau": 1}
    assert after["violations"] == after["violations_weighted"] == 0
    assert after["global_risk_weighted"]["expected_reidentifications"] == pytest.approx(
        4 / 7 + 0.6)
    assert after["global_risk"]["expected_reidentifications"] == pytest.approx(2.0)
    assert [b["records"] for b in after["individual_risk_histogram"]] == [0, 0, 0, 4, 3, 0]
    # Per key-variable subset: niveau alone and both keys have one violation before, none
    # after (the suppressed niveau matches everyone); sexe alone never had one.
    assert section["violations_by_key_subset"] == [
        {"keys": ["niveau"], "before": 1, "after": 0},
        {"keys": ["sexe", "niveau"], "before": 1, "after": 0},
        {"keys": ["sexe"], "before": 0, "after": 0}]
    # l-diversity on the protected classes (a missing value is a class value of its own):
    # (F, CM2) holds a, b -> 2; (M, CM2) only a -> 1; (F, NA) only b -> 1.
    assert section["l_diversity"] == {"aide": {
        "min_distinct": 1, "min_entropy": pytest.approx(1.0), "min_recursive": 1,
        "records_in_classes_below_2": 4}}
    assert section["utility"]["suppressions"] == {"sexe": 0, "niveau": 1}
    assert section["utility"]["il1s"] is None  # no numeric quasi-identifier
    assert section["remaining_violating_combinations"] == []


def test_remaining_combinations_are_listed_as_delivered_when_not_protected(
        tmp_path: Path) -> None:
    rules = DatasetRules(quasi_identifiers=("sexe", "niveau"), k=3, local_suppression=False)
    section = protect_table(_hand_table(tmp_path), rules)
    assert section["remaining_violating_combinations"] == [
        {"values": {"sexe": "F", "niveau": "6e"}, "records": 1, "fk": 1.0}]


def test_recoding_stats_count_changes_and_moments_over_batches() -> None:
    rules = ExtractSpec.from_dict({"datasets": {"eleves": {"transforms": [
        {"variable": "ips", "op": "top_bottom", "top": 130},
        {"variable": "ips", "op": "round", "base": 10},
        {"variable": "date", "op": "year"}]}}}).rules("eleves")
    stats = RecodingStats()
    values = [80.0, 95.0, 130.0, 150.0, None]
    for chunk in (values[:2], values[2:]):
        batch = pa.RecordBatch.from_pydict({
            "ips": pa.array(chunk, pa.float64()),
            "date": pa.array([datetime.date(2012, 3, 4)] * len(chunk), pa.date32())})
        apply_rules(batch, rules, stats)
    out = stats.to_dict(rules)
    assert out["rows_in"] == out["rows_out"] == 5
    # top: 150 -> 130 (one change); round to 10 (half up): 95 -> 100 (one change)
    assert [(t["op"], t["values"], t["changed"]) for t in out["transforms"]] == [
        ("top_bottom", 4, 1), ("round", 4, 1), ("year", 5, 5)]
    original = np.array([80.0, 95.0, 130.0, 150.0])
    final = np.array([80.0, 100.0, 130.0, 130.0])
    ips = out["numeric"]["ips"]
    assert ips["mean_before"] == pytest.approx(original.mean())
    assert ips["mean_after"] == pytest.approx(final.mean())
    assert ips["variance_before"] == pytest.approx(original.var(ddof=1))
    assert ips["variance_after"] == pytest.approx(final.var(ddof=1))
    assert ips["il1s"] == pytest.approx(25 / (math.sqrt(2) * original.std(ddof=1)) / 4)
    assert "date" not in out["numeric"]


class _Page(HTMLParser):
    """Collects the bars (series, category, value), table cells and any script or link."""

    def __init__(self) -> None:
        super().__init__()
        self.bars: list[tuple[str, str, str]] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.forbidden: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._row: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("script", "link", "img", "iframe", "object") or any(
                name in ("src", "href") or name.startswith("on") for name in a):
            self.forbidden.append(tag)
        if tag == "rect" and a.get("class") == "bar":
            self.bars.append((a["data-series"] or "", a["data-category"] or "",
                              a["data-value"] or ""))
        if tag == "table":
            self._table = a.get("class") or ""
            self.tables[self._table] = []
        if tag == "tr":
            self._row = []
        if tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        if tag == "tr" and self._table is not None and self._row:
            self.tables[self._table].append(self._row)

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _report(section: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"format": "enclave-risk-report/1", "project": "P-1", "version": 2,
            "tables": {"eleves": section}, "override": None, **extra}


def test_the_page_shows_the_report_numbers(tmp_path: Path) -> None:
    section = protect_table(_hand_table(tmp_path), RULES)
    stats = RecodingStats()
    section["recodings"] = stats.to_dict(DatasetRules())
    page = _Page()
    page.feed(render_page(_report(section)))
    assert page.forbidden == []
    histogram = {(s, c): v for s, c, v in page.bars if s in ("avant / before", "après / after")
                 and c.startswith("[")}
    labels = [c for s, c, _ in page.bars if s == "avant / before" and c.startswith("[")]
    assert labels[0] == "[0, 0.01)" and labels[-1] == "[0.5, 1]"
    for key, risk in (("avant / before", "risk_before"), ("après / after", "risk_after")):
        assert [histogram[(key, c)] for c in labels] == [
            fmt(b["records"]) for b in section[risk]["individual_risk_histogram"]]
    subsets = [(c, v) for s, c, v in page.bars if s == "avant / before" and "[" not in c]
    assert subsets == [(" × ".join(r["keys"]), fmt(r["before"]))
                       for r in section["violations_by_key_subset"]]
    assert [(c, v) for s, c, v in page.bars if s == "suppressions"] == [
        (k, fmt(n)) for k, n in section["suppressions"].items()]
    summary = {row[0]: row[1:] for row in page.tables["risk-summary"]}
    assert summary["ER (indivRisk, Fk)"] == [
        fmt(section["risk_before"]["global_risk_weighted"]["expected_reidentifications"]),
        fmt(section["risk_after"]["global_risk_weighted"]["expected_reidentifications"])]
    assert summary["violations (Fk < k)"] == ["1", "0"]
    assert page.tables["ldiversity"] == [["aide", "1", "1", "1", "4"]]


def test_the_page_escapes_every_text_from_the_report(tmp_path: Path) -> None:
    section = protect_table(_hand_table(tmp_path), RULES)
    hostile = '<script>alert("x")</script>'
    report = _report(section, override={"by": hostile, "reason": hostile,
                                        "violations": {}})
    report["project"] = hostile
    html = render_page(report)
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    page = _Page()
    page.feed(html)
    assert page.forbidden == []


def test_a_bad_weight_is_a_clear_error_and_the_file_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "eleves.parquet"
    pq.write_table(pa.table({"sexe": ["F", "M", "F"], "niveau": ["CP", "CP", "CP"],
                             "w": [1.0, 0.0, 2.0]}), path)
    before = path.read_bytes()
    rules = DatasetRules(quasi_identifiers=("sexe", "niveau"), k=2, weight="w")
    with pytest.raises(ValidationError,
                       match="risk measures on sexe, niveau: sampling weight column 'w' has 1"):
        protect_table(path, rules)
    assert path.read_bytes() == before
