"""``analysis.histogram`` and ``bar_chart`` count rows and distinct pupils per bin like numpy and
pandas, write them as a checked frequency table (small bins flagged, empty bins sent to review)
and draw the PNG from the checked counts only, which ``check_figure`` verifies byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from output_control.analysis import bar_chart, check_figure, histogram
from output_control.analysis.charts import figure_sidecar_path, render_chart
from output_control.exceptions import OutputRejected
from output_control.policy import load_policy
from output_control.sidecar import check_output, read_output
from output_control.table import TableKind
from output_control.verdicts import Outcome


def _verdict(path: Path, rule: str) -> tuple[Outcome, list[tuple[str, ...]]]:
    result = check_output(path, load_policy("default"))
    verdict = next(v for v in result.verdicts if v.rule == rule)
    return verdict.outcome, [c.cell for c in verdict.cells]


def _hand_frame() -> pd.DataFrame:
    # bin [0,10): 0, 5, 9.99 (3 pupils); [10,20): pupil q twice (2 rows, 1 pupil);
    # [20,30]: 30 (closed last bin); 31 and -1 fall outside and are not counted.
    rows = [("a", 0.0), ("b", 5.0), ("c", 9.99), ("q", 10.0), ("q", 15.0), ("d", 30.0),
            ("e", 31.0), ("f", -1.0), ("g", np.nan)]
    return pd.DataFrame(rows, columns=["eleve", "score"])


def test_histogram_counts_rows_like_numpy_and_pupils_per_bin(tmp_path: Path) -> None:
    chart = histogram(_hand_frame(), "score", [0, 10, 20, 30], name="h", outputs_dir=tmp_path)
    assert chart.counts["count"].tolist() == [3, 2, 1]
    values = _hand_frame()["score"].dropna()
    assert chart.counts["count"].tolist() == np.histogram(values, [0, 10, 20, 30])[0].tolist()
    assert list(chart.counts.index) == ["[0, 10)", "[10, 20)", "[20, 30]"]
    _, table = read_output(chart.table)
    assert table.kind is TableKind.FREQUENCY_TABLE
    assert table.index == ("score_bin",)
    assert table.rows == ((3,), (2,), (1,))
    assert table.units == ((3,), (1,), (1,))  # pupil q's two rows are one pupil


def test_number_of_bins_needs_an_explicit_range(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="range="):
        histogram(_hand_frame(), "score", 3, name="h", outputs_dir=tmp_path)
    chart = histogram(_hand_frame(), "score", 3, range=(0, 30), name="h", outputs_dir=tmp_path)
    assert chart.edges == (0.0, 10.0, 20.0, 30.0)
    assert not list(tmp_path.glob("*.png.tmp*"))


def _bins_of(counts: dict[str, int]) -> pd.DataFrame:
    rows = []
    for low, n in counts.items():
        rows += [(f"{low}-{i}", float(low) + 0.5) for i in range(n)]
    return pd.DataFrame(rows, columns=["eleve", "score"])


def test_bins_with_fewer_than_ten_pupils_are_flagged_and_exactly_ten_pass(
        tmp_path: Path) -> None:
    df = _bins_of({"0": 10, "1": 9, "3": 12})  # bin [2, 3) stays empty
    chart = histogram(df, "score", [0, 1, 2, 3, 4], name="h", outputs_dir=tmp_path)
    assert chart.counts["count"].tolist() == [10, 9, 0, 12]
    outcome, cells = _verdict(chart.table, "minimum_count")
    assert outcome is Outcome.FAIL and cells == [("[1, 2)",)]
    outcome, cells = _verdict(chart.table, "zeros")
    assert outcome is Outcome.REVIEW and cells == [("[2, 3)",)]
    assert chart.checks.outcome is Outcome.FAIL


def test_histogram_per_group_has_one_column_per_group(tmp_path: Path) -> None:
    df = _bins_of({"0": 12, "1": 12}).assign(sexe=["F", "M"] * 12)
    chart = histogram(df, "score", [0, 1, 2], by="sexe", name="h", outputs_dir=tmp_path)
    assert chart.counts.columns.tolist() == ["F", "M"]
    assert chart.counts.to_numpy().tolist() == [[6, 6], [6, 6]]
    outcome, cells = _verdict(chart.table, "minimum_count")
    assert outcome is Outcome.FAIL and len(cells) == 4


def test_bar_chart_counts_categories_and_keeps_declared_empty_ones(tmp_path: Path) -> None:
    levels = pd.Categorical(["6e"] * 11 + ["3e"] * 2, categories=["6e", "5e", "3e"])
    df = pd.DataFrame({"eleve": [f"p{i}" for i in range(13)], "niveau": levels})
    chart = bar_chart(df, "niveau", name="b", outputs_dir=tmp_path)
    assert chart.counts["count"].tolist() == [11, 0, 2]
    assert list(chart.counts.index) == ["6e", "5e", "3e"]
    assert _verdict(chart.table, "minimum_count") == (Outcome.FAIL, [("3e",)])
    assert _verdict(chart.table, "zeros") == (Outcome.REVIEW, [("5e",)])
    plain = bar_chart(df.assign(niveau=df["niveau"].astype(str)), "niveau", name="c",
                      outputs_dir=tmp_path)
    assert plain.counts["count"].to_dict() == {"3e": 2, "6e": 11}


def test_the_figure_is_the_drawing_of_its_checked_table(tmp_path: Path) -> None:
    chart = histogram(_bins_of({"0": 12, "1": 15}), "score", [0, 1, 2], name="h",
                      outputs_dir=tmp_path, title="Scores")
    table, spec = check_figure(chart.figure)
    assert spec["title"] == "Scores" and table.rows == ((12,), (15,))
    assert chart.figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert render_chart(table, spec) == render_chart(table, spec)  # deterministic bytes


def test_a_figure_edited_after_drawing_is_rejected(tmp_path: Path) -> None:
    chart = histogram(_bins_of({"0": 12}), "score", [0, 1], name="h", outputs_dir=tmp_path)
    png = bytearray(chart.figure.read_bytes())
    png[-20] ^= 0xFF
    chart.figure.write_bytes(bytes(png))
    with pytest.raises(OutputRejected, match="changed after it was drawn"):
        check_figure(chart.figure)


def test_a_figure_whose_record_claims_other_drawing_parameters_is_rejected(
        tmp_path: Path) -> None:
    chart = histogram(_bins_of({"0": 12}), "score", [0, 1], name="h", outputs_dir=tmp_path)
    record_path = figure_sidecar_path(chart.figure)
    record = json.loads(record_path.read_text())
    record["chart"]["title"] = "something else"
    record_path.write_text(json.dumps(record))
    with pytest.raises(OutputRejected, match="bytes differ"):
        check_figure(chart.figure)


def test_a_figure_whose_table_was_edited_is_rejected(tmp_path: Path) -> None:
    chart = histogram(_bins_of({"0": 12}), "score", [0, 1], name="h", outputs_dir=tmp_path)
    chart.table.write_text(chart.table.read_text().replace("12", "13"))
    with pytest.raises(OutputRejected):
        check_figure(chart.figure)


@pytest.mark.parametrize("bins", [[0, 0, 1], [1, 0], [0, float("inf")], [0], "auto", 0])
def test_invalid_bins_are_refused(tmp_path: Path, bins: object) -> None:
    with pytest.raises(ValueError):
        histogram(_hand_frame(), "score", bins, range=None, name="h",  # type: ignore[arg-type]
                  outputs_dir=tmp_path)


def test_a_chart_without_the_pupil_column_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="pupil"):
        bar_chart(pd.DataFrame({"niveau": ["6e"]}), "niveau", name="b", outputs_dir=tmp_path)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.floats(-50, 150, allow_nan=False), min_size=1, max_size=60),
       cuts=st.lists(st.integers(0, 100), min_size=2, max_size=8, unique=True),
       pupils=st.integers(1, 20))
def test_histogram_counts_sum_to_the_rows_inside_the_edges(
        tmp_path: Path, values: list[float], cuts: list[int], pupils: int) -> None:
    edges = sorted(cuts)
    df = pd.DataFrame({"eleve": [f"p{i % pupils}" for i in range(len(values))],
                       "score": values})
    chart = histogram(df, "score", edges, name="prop", outputs_dir=tmp_path)
    inside = sum(edges[0] <= v <= edges[-1] for v in values)
    assert int(chart.counts["count"].sum()) == inside
    assert chart.counts["count"].tolist() == np.histogram(values, edges)[0].tolist()
    _, table = read_output(chart.table)
    assert all(u <= r for (u,), (r,) in zip(table.units, table.rows, strict=True))
