"""``analysis.quantiles`` equals pandas' quantiles per group and writes one magnitude table whose
every non-empty cell the single-unit rule flags: REVIEW in the default policy, FAIL in the
French one (a percentile is one or two pupils' own values)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from output_control.analysis import quantiles
from output_control.policy import load_policy
from output_control.sidecar import check_output, read_output
from output_control.table import Statistic, TableKind
from output_control.verdicts import Outcome


def _frame() -> pd.DataFrame:
    # A: 10 pupils scoring 1..10; B: 12 pupils scoring 10, 20, ..., 120.
    a = [(f"a{i}", "A", float(i + 1)) for i in range(10)]
    b = [(f"b{i}", "B", float(10 * (i + 1))) for i in range(12)]
    return pd.DataFrame(a + b, columns=["eleve", "groupe", "score"])


def test_quantiles_are_hand_computed_and_equal_pandas(tmp_path: Path) -> None:
    result = quantiles(_frame(), "score", [0.25, 0.9], by="groupe", name="q",
                       outputs_dir=tmp_path)
    # A: h = 9q; p25 = 1 + 2.25 * 1 = 3.25, p90 = 1 + 8.1 = 9.1
    assert result.loc["A", "p25"] == pytest.approx(3.25)
    assert result.loc["A", "p90"] == pytest.approx(9.1)
    # B: h = 11q; p25 = 10 * (1 + 2.75) = 37.5
    assert result.loc["B", "p25"] == pytest.approx(37.5)
    expected = _frame().groupby("groupe")["score"].quantile([0.25, 0.9]).unstack()
    np.testing.assert_allclose(result.to_numpy(), expected.to_numpy())


def test_the_output_is_a_percentile_table_with_levels_as_columns(tmp_path: Path) -> None:
    quantiles(_frame(), "score", [0.1, 0.025], name="q", outputs_dir=tmp_path)
    frame, table = read_output(tmp_path / "q.csv")
    assert table.kind is TableKind.MAGNITUDE_TABLE
    assert table.magnitude is not None and table.magnitude.statistic is Statistic.QUANTILE
    assert table.magnitude.levels == (0.1, 0.025)
    assert table.columns == ("quantile",)
    assert table.column_labels == (("p10",), ("p2.5",))
    assert table.units == ((22, 22),)
    assert list(frame.index) == ["all"]


@pytest.mark.parametrize(("policy", "expected"), [("default", Outcome.REVIEW),
                                                  ("depp_secret_statistique", Outcome.FAIL)])
def test_every_quantile_is_flagged_as_a_single_unit_value(
        tmp_path: Path, policy: str, expected: Outcome) -> None:
    quantiles(_frame(), "score", [0.5, 0.75], by="groupe", name="q", outputs_dir=tmp_path,
              policy=policy)
    result = check_output(tmp_path / "q.csv", load_policy(policy))
    verdict = next(v for v in result.verdicts if v.rule == "single_unit_values")
    assert verdict.outcome is expected
    assert sorted(c.cell for c in verdict.cells) == [
        ("A", "p50"), ("A", "p75"), ("B", "p50"), ("B", "p75")]
    counts = next(v for v in result.verdicts if v.rule == "minimum_count")
    assert counts.outcome is Outcome.PASS  # 10 and 12 pupils: at least the threshold


def test_small_groups_are_also_flagged_by_the_minimum_count(tmp_path: Path) -> None:
    small = _frame().iloc[:9]  # 9 pupils of A
    quantiles(small, "score", [0.5], name="q", outputs_dir=tmp_path)
    result = check_output(tmp_path / "q.csv", load_policy("default"))
    verdict = next(v for v in result.verdicts if v.rule == "minimum_count")
    assert verdict.outcome is Outcome.FAIL and verdict.cells[0].cell == ("all", "p50")


@pytest.mark.parametrize("levels", [[0.0], [1.0], [1.5], [], [0.5, 0.5], ["x"]])
def test_invalid_levels_are_refused(tmp_path: Path, levels: list[object]) -> None:
    with pytest.raises((ValueError, TypeError)):
        quantiles(_frame(), "score", levels, name="q", outputs_dir=tmp_path)  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=40),
       levels=st.lists(st.integers(1, 99), min_size=1, max_size=5, unique=True))
def test_quantiles_grow_with_their_level_and_stay_within_the_values(
        tmp_path: Path, values: list[float], levels: list[int]) -> None:
    df = pd.DataFrame({"eleve": [f"p{i}" for i in range(len(values))], "score": values})
    q = sorted(level / 100 for level in levels)
    result = quantiles(df, "score", q, name="prop", outputs_dir=tmp_path).iloc[0].to_numpy()
    assert (np.diff(result) >= -1e-9 * max(1.0, float(np.max(np.abs(values))))).all()
    assert min(values) - 1e-6 <= result.min() and result.max() <= max(values) + 1e-6


def test_the_rule_names_each_quantile_by_its_level_and_pupils(tmp_path: Path) -> None:
    # One group of 22 distinct pupils (the frame's "all" group): each finding states the
    # column's own level, hand-written here.
    quantiles(_frame(), "score", [0.1, 0.5, 0.025], name="q", outputs_dir=tmp_path)
    result = check_output(tmp_path / "q.csv", load_policy("default"))
    verdict = next(v for v in result.verdicts if v.rule == "single_unit_values")
    messages = {cell.cell: cell.message for cell in verdict.cells}
    assert messages == {
        ("all", "p10"): "the 10th percentile of 22 pupils is one pupil's own value (or "
                        "interpolated between two)",
        ("all", "p50"): "the 50th percentile (the median) of 22 pupils is one pupil's own "
                        "value (or interpolated between two)",
        ("all", "p2.5"): "the 2.5th percentile of 22 pupils is one pupil's own value (or "
                         "interpolated between two)",
    }
