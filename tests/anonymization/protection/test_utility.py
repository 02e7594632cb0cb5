"""Utility measures: IL1s by hand, moments, correlations, suppression counts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from anonymization.exceptions import (
    NonNumericVariableError,
    ProtectionParameterError,
    ProtectionVariableError,
)
from anonymization.protection import (
    correlation_changes,
    il1s,
    il1s_by_variable,
    local_suppression,
    moment_changes,
    suppression_counts,
    utility_report,
)


def test_il1s_by_hand() -> None:
    original = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [0.0, 0.0, 2.0, 2.0]})
    protected = pd.DataFrame({"x": [1.0, 2.0, 3.0, 5.0], "y": [1.0, 0.0, 2.0, 1.0]})
    sd_x = math.sqrt(5 / 3)  # sample sd of 1, 2, 3, 4
    sd_y = math.sqrt(4 / 3)  # sample sd of 0, 0, 2, 2
    expected_x = (1 / (math.sqrt(2) * sd_x)) / 4
    expected_y = (2 / (math.sqrt(2) * sd_y)) / 4
    by_variable = il1s_by_variable(original, protected, ["x", "y"])
    assert by_variable["x"] == pytest.approx(expected_x)
    assert by_variable["y"] == pytest.approx(expected_y)
    # 1/(n p) * sum of all terms = mean of the per-variable scores
    assert il1s(original, protected, ["x", "y"]) == pytest.approx((expected_x + expected_y) / 2)
    assert il1s(original, original, ["x", "y"]) == 0.0


def test_il1s_missing_pairs_add_nothing_but_count_in_n() -> None:
    original = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    protected = pd.DataFrame({"x": [np.nan, 2.0, 3.0, 5.0]})
    sd = math.sqrt(5 / 3)
    assert il1s(original, protected, "x") == pytest.approx(1 / (math.sqrt(2) * sd) / 4)


def test_il1s_constant_variable() -> None:
    original = pd.DataFrame({"x": [2.0, 2.0, 2.0]})
    assert il1s(original, original, "x") == 0.0
    assert il1s(original, pd.DataFrame({"x": [2.0, 2.0, 3.0]}), "x") == math.inf


def test_moment_changes() -> None:
    original = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    protected = pd.DataFrame({"x": [2.0, 3.0, 4.0, 5.0]})
    table = moment_changes(original, protected, "x")
    row = table.loc["x"]
    assert row["mean_original"] == 2.5
    assert row["mean_protected"] == 3.5
    assert row["mean_difference"] == 1.0
    assert row["mean_relative_difference"] == pytest.approx(0.4)
    assert row["variance_original"] == pytest.approx(5 / 3)
    assert row["variance_ratio"] == pytest.approx(1.0)


def test_correlation_changes() -> None:
    rng = np.random.default_rng(0)
    original = pd.DataFrame({"x": rng.normal(size=50), "y": rng.normal(size=50)})
    assert (correlation_changes(original, original, ["x", "y"]).to_numpy() == 0).all()
    protected = original.assign(y=original["x"])
    change = correlation_changes(original, protected, ["x", "y"])
    assert change.loc["x", "y"] == pytest.approx(1 - original.corr().loc["x", "y"])


def test_suppression_counts_agree_with_local_suppression() -> None:
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"a": rng.integers(0, 3, 200), "b": rng.integers(0, 20, 200)})
    frame.loc[:9, "a"] = np.nan
    result = local_suppression(frame, ["a", "b"], 3)
    counts = suppression_counts(frame, result.data, ["a", "b"])
    assert counts.to_dict() == result.suppressions.to_dict()


def test_utility_report() -> None:
    original = pd.DataFrame(
        {"x": [1.0, 2.0, 3.0, 4.0], "y": [4.0, 3.0, 2.0, 0.0], "c": ["a", "b", "a", "b"]}
    )
    protected = pd.DataFrame(
        {"x": [1.0, 2.0, 3.0, 5.0], "y": [4.0, 3.0, 2.0, 0.0], "c": ["a", None, "a", "b"]}
    )
    report = utility_report(original, protected, numeric=["x", "y"], categorical=["c"])
    assert report.il1s == pytest.approx(il1s(original, protected, ["x", "y"]))
    assert report.suppressions.to_dict() == {"x": 0, "y": 0, "c": 1}
    assert report.max_correlation_change > 0
    assert list(report.moments.index) == ["x", "y"]
    only_categorical = utility_report(original, protected, categorical=["c"])
    assert math.isnan(only_categorical.il1s)


def test_errors() -> None:
    original = pd.DataFrame({"x": [1.0, 2.0], "s": ["a", "b"]})
    with pytest.raises(ProtectionParameterError, match="as many rows"):
        il1s(original, original.head(1), "x")
    with pytest.raises(ProtectionVariableError):
        il1s(original, original.drop(columns="x"), "x")
    with pytest.raises(NonNumericVariableError):
        il1s(original, original, "s")
    with pytest.raises(ProtectionParameterError, match="at least one variable"):
        utility_report(original, original)
