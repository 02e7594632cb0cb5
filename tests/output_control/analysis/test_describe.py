"""``analysis.describe`` returns pandas' statistics per group and writes one checked output per
column and statistic: counts as frequency tables (small groups flagged), the rest as magnitude
tables (min and max flagged as single-unit values, the median as a percentile)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from output_control.analysis import DESCRIBE_STATISTICS, describe
from output_control.policy import load_policy
from output_control.sidecar import check_output, read_output
from output_control.table import Statistic, TableKind, Unit
from output_control.verdicts import Outcome

# F: 12 pupils with scores 1..12 (pupil f0 has a second row, score 100). M: 3 pupils, one
# missing score.
ROWS = [
    *[("F", f"f{i}", float(i + 1)) for i in range(12)],
    ("F", "f0", 100.0),
    ("M", "m0", 5.0), ("M", "m1", 7.0), ("M", "m2", np.nan),
]  # fmt: skip


def _frame() -> pd.DataFrame:
    return pd.DataFrame(ROWS, columns=["sexe", "eleve", "score"])


def _verdict(path: Path, rule: str) -> Outcome:
    result = check_output(path, load_policy("default"))
    return next(v.outcome for v in result.verdicts if v.rule == rule)


def test_statistics_equal_pandas(tmp_path: Path) -> None:
    df = _frame()
    result = describe(df, "score", by="sexe", name="d", outputs_dir=tmp_path)
    expected = df.groupby("sexe")["score"].describe()
    assert list(result.columns) == [("score", s) for s in DESCRIBE_STATISTICS]
    assert list(result.index) == ["F", "M"]
    assert result[("score", "count")].tolist() == [13, 2]
    for ours, theirs in [("mean", "mean"), ("std", "std"), ("min", "min"),
                         ("median", "50%"), ("max", "max")]:  # fmt: skip
        np.testing.assert_allclose(result[("score", ours)], expected[theirs].to_numpy())
    # hand-checked: M has 5 and 7
    assert result.loc["M", ("score", "mean")] == 6.0
    assert result.loc["M", ("score", "min")] == 5.0


def test_one_output_per_statistic_with_the_right_kind(tmp_path: Path) -> None:
    describe(_frame(), ["score"], by="sexe", name="d", outputs_dir=tmp_path)
    for statistic in DESCRIBE_STATISTICS:
        _, table = read_output(tmp_path / f"d_score_{statistic}.csv")
        if statistic == "count":
            assert table.kind is TableKind.FREQUENCY_TABLE
            assert table.unit is Unit.DISTINCT_PUPILS
            # F: 13 rows of 12 pupils; M: 2 pupils with a value (the missing one left out)
            assert table.rows == ((13,), (2,))
            assert table.units == ((12,), (2,))
        else:
            assert table.kind is TableKind.MAGNITUDE_TABLE
            assert table.magnitude is not None
            assert table.magnitude.statistic is Statistic(statistic)
            assert table.magnitude.variable == "score"


def test_rules_flag_single_unit_values_and_small_groups(tmp_path: Path) -> None:
    describe(_frame(), "score", by="sexe", name="d", outputs_dir=tmp_path)
    assert _verdict(tmp_path / "d_score_min.csv", "single_unit_values") is Outcome.FAIL
    assert _verdict(tmp_path / "d_score_max.csv", "single_unit_values") is Outcome.FAIL
    assert _verdict(tmp_path / "d_score_median.csv", "single_unit_values") is Outcome.REVIEW
    result = check_output(tmp_path / "d_score_count.csv", load_policy("default"))
    threshold = next(v for v in result.verdicts if v.rule == "minimum_count")
    assert threshold.outcome is Outcome.FAIL
    assert [c.cell for c in threshold.cells] == [("M",)]
    # the recorded checks are those the researcher saw
    _, table = read_output(tmp_path / "d_score_max.csv")
    assert table.metadata["checks"].outcome is Outcome.FAIL


def test_whole_frame_without_by(tmp_path: Path) -> None:
    result = describe(_frame(), "score", name="all", outputs_dir=tmp_path,
                      statistics=("count", "mean"))  # fmt: skip
    assert list(result.index) == ["all"]
    assert result.loc["all", ("score", "count")] == 15
    assert result.loc["all", ("score", "mean")] == pytest.approx(_frame()["score"].mean())
    assert sorted(p.name for p in tmp_path.glob("*.csv")) == [
        "all_score_count.csv",
        "all_score_mean.csv",
    ]


def test_refusals(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="statistics"):
        describe(_frame(), "score", name="x", outputs_dir=tmp_path, statistics=("p25",))
    with pytest.raises(KeyError):  # checked before anything is written
        describe(_frame(), ["score", "nope"], by="sexe", name="x", outputs_dir=tmp_path)
    with pytest.raises(ValueError, match="also group"):
        describe(_frame(), "sexe", by="sexe", name="x", outputs_dir=tmp_path)
    with pytest.raises(ValueError, match="not allowed"):
        describe(_frame(), "score", by="sexe", name="x" * 90, outputs_dir=tmp_path)
    with pytest.raises(ValueError, match="'all'"):
        describe(_frame().assign(all=1), "score", name="x", outputs_dir=tmp_path)
    assert not list(tmp_path.iterdir())


def test_two_grouping_variables_and_two_columns(tmp_path: Path) -> None:
    df = _frame().assign(niveau=["CP", "CE1"] * 8, age=np.arange(16.0))
    result = describe(df, ["score", "age"], by=["sexe", "niveau"], name="d", outputs_dir=tmp_path)
    expected = df.groupby(["sexe", "niveau"])[["score", "age"]].describe()
    assert list(result.index) == [(s, n) for s, n in expected.index]
    for column in ("score", "age"):
        np.testing.assert_array_equal(
            result[(column, "count")].to_numpy(), expected[(column, "count")].to_numpy()
        )
        np.testing.assert_allclose(result[(column, "mean")], expected[(column, "mean")])
        np.testing.assert_allclose(result[(column, "median")], expected[(column, "50%")])
    assert len(list(tmp_path.glob("*.csv"))) == 2 * len(DESCRIBE_STATISTICS)
