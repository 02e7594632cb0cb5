"""Global recoding and top/bottom coding: boundaries exactly at the limits, R's conventions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anonymization.exceptions import (
    NonNumericVariableError,
    ProtectionParameterError,
    ProtectionVariableError,
    UnmappedValueError,
)
from anonymization.protection import global_recode, interval_labels, top_bottom_coding


def labels_of(frame: pd.DataFrame, column: str) -> list[object]:
    return [None if pd.isna(v) else v for v in frame[column].tolist()]


# --------------------------------------------------------------------------- breaks


def test_breaks_are_right_closed_like_r_cut() -> None:
    frame = pd.DataFrame({"age": [0.5, 10, 10.000001, 15, 20, np.nan]})
    result = global_recode(frame, "age", breaks=[0, 10, 20])
    assert labels_of(result, "age") == ["(0,10]", "(0,10]", "(10,20]", "(10,20]", "(10,20]", None]
    recoded = result["age"]
    assert isinstance(recoded.dtype, pd.CategoricalDtype)
    assert recoded.cat.ordered
    assert list(recoded.cat.categories) == ["(0,10]", "(10,20]"]
    assert frame["age"].tolist()[:5] == [0.5, 10, 10.000001, 15, 20], "input modified"


def test_lowest_break_is_outside_unless_include_lowest() -> None:
    frame = pd.DataFrame({"age": [0, 5]})
    with pytest.raises(UnmappedValueError, match=r"1 value\(s\) of 'age'.*outside the break range"):
        global_recode(frame, "age", breaks=[0, 10])
    result = global_recode(frame, "age", breaks=[0, 10], include_lowest=True)
    assert labels_of(result, "age") == ["[0,10]", "[0,10]"]


def test_left_closed_intervals() -> None:
    frame = pd.DataFrame({"x": [0, 9.999, 10, 19.5]})
    result = global_recode(frame, "x", breaks=[0, 10, 20], right=False)
    assert labels_of(result, "x") == ["[0,10)", "[0,10)", "[10,20)", "[10,20)"]
    with pytest.raises(UnmappedValueError):
        global_recode(pd.DataFrame({"x": [20]}), "x", breaks=[0, 10, 20], right=False)
    closed = global_recode(
        pd.DataFrame({"x": [20]}), "x", breaks=[0, 10, 20], right=False, include_lowest=True
    )
    assert labels_of(closed, "x") == ["[10,20]"]


def test_custom_labels_and_merged_intervals() -> None:
    frame = pd.DataFrame({"age": [3, 12, 17, 40, 70]})
    result = global_recode(
        frame,
        "age",
        breaks=[0, 10, 15, 18, 65, 120],
        labels=["child", "teen", "teen", "adult", "senior"],
    )
    assert labels_of(result, "age") == ["child", "teen", "teen", "adult", "senior"]
    assert list(result["age"].cat.categories) == ["child", "teen", "adult", "senior"]


def test_default_labels_values_outside_the_breaks() -> None:
    frame = pd.DataFrame({"income": [-5, 50, 5000]})
    result = global_recode(frame, "income", breaks=[0, 100, 1000], default="other")
    assert labels_of(result, "income") == ["other", "(0,100]", "other"]
    assert list(result["income"].cat.categories) == ["(0,100]", "(100,1000]", "other"]


def test_label_digits_follow_r() -> None:
    assert interval_labels([0, 1e6, 2.5e9]) == ["(0,1000000]", "(1000000,2.5e+09]"]
    assert interval_labels([0.1, 0.25]) == ["(0.1,0.25]"]
    # 8 significant digits would merge these breaks: more digits are used
    assert interval_labels([1.000000001, 1.000000002, 2]) == [
        "(1.000000001,1.000000002]",
        "(1.000000002,2]",
    ]
    assert interval_labels([0, 1, 2], right=False, include_lowest=True) == ["[0,1)", "[1,2]"]


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=30),
    cuts=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=8, unique=True),
    right=st.booleans(),
)
def test_property_each_value_lands_in_its_interval(
    values: list[float], cuts: list[float], right: bool
) -> None:
    breaks = sorted(cuts)
    frame = pd.DataFrame({"x": values})
    labels = list(range(len(breaks) - 1))
    result = global_recode(frame, "x", breaks=breaks, labels=labels, default=-1, right=right)
    for value, label in zip(values, result["x"].tolist(), strict=True):
        if label == -1 and right:
            assert value <= breaks[0] or value > breaks[-1]
        elif label == -1:
            assert value < breaks[0] or value >= breaks[-1]
        elif right:
            assert breaks[label] < value <= breaks[label + 1]
        else:
            assert breaks[label] <= value < breaks[label + 1]


# --------------------------------------------------------------------------- label maps


def test_label_map_on_strings() -> None:
    frame = pd.DataFrame({"dep": ["75", "92", "93", None]})
    result = global_recode(frame, "dep", mapping={"75": "IDF", "92": "IDF", "93": "IDF"})
    assert labels_of(result, "dep") == ["IDF", "IDF", "IDF", None]


def test_label_map_unmapped_value_is_an_error_naming_the_category() -> None:
    frame = pd.DataFrame({"dep": ["75", "2A", "2A", "13"]})
    with pytest.raises(UnmappedValueError, match=r"3 value\(s\) of 'dep'.*'2A', '13'"):
        global_recode(frame, "dep", mapping={"75": "IDF"})
    result = global_recode(frame, "dep", mapping={"75": "IDF"}, default="province")
    assert labels_of(result, "dep") == ["IDF", "province", "province", "province"]


def test_label_map_on_a_categorical_keeps_category_order() -> None:
    frame = pd.DataFrame(
        {
            "grade": pd.Categorical(
                ["CP", "CE1", "6e", "CP"], categories=["CP", "CE1", "6e"], ordered=True
            )
        }
    )
    result = global_recode(
        frame, "grade", mapping={"CP": "primaire", "CE1": "primaire", "6e": "college"}
    )
    grade = result["grade"]
    assert isinstance(grade.dtype, pd.CategoricalDtype)
    assert list(grade.cat.categories) == ["primaire", "college"]
    assert grade.cat.ordered
    assert grade.tolist() == ["primaire", "primaire", "college", "primaire"]


def test_label_map_on_numbers() -> None:
    frame = pd.DataFrame({"code": [1, 2, 3]})
    result = global_recode(frame, "code", mapping={1: 10, 2: 10, 3: 30})
    assert result["code"].tolist() == [10, 10, 30]


# --------------------------------------------------------------------------- errors


def test_recode_errors() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0], "s": ["a", "b"]})
    with pytest.raises(ProtectionVariableError, match="'y' is not in the data"):
        global_recode(frame, "y", breaks=[0, 1])
    with pytest.raises(ProtectionParameterError, match="exactly one"):
        global_recode(frame, "x")
    with pytest.raises(ProtectionParameterError, match="exactly one"):
        global_recode(frame, "x", breaks=[0, 3], mapping={1: 2})
    with pytest.raises(ProtectionParameterError, match="strictly increasing"):
        global_recode(frame, "x", breaks=[0, 3, 3])
    with pytest.raises(ProtectionParameterError, match="at least two"):
        global_recode(frame, "x", breaks=[0])
    with pytest.raises(ProtectionParameterError, match="at least two"):
        global_recode(frame, "x", breaks=[0, float("nan")])
    with pytest.raises(ProtectionParameterError, match="one per interval"):
        global_recode(frame, "x", breaks=[0, 1, 3], labels=["a"])
    with pytest.raises(NonNumericVariableError, match="'s' has dtype"):
        global_recode(frame, "s", breaks=[0, 1])
    with pytest.raises(ProtectionParameterError, match="labels"):
        global_recode(frame, "s", mapping={"a": 1, "b": 2}, labels=["x"])


# --------------------------------------------------------------------------- top/bottom


def test_top_coding_keeps_values_exactly_at_the_limit() -> None:
    frame = pd.DataFrame({"income": [10.0, 100.0, 100.0000001, 250.0, np.nan]})
    result = top_bottom_coding(frame, "income", 100, 100)
    assert result["income"].tolist()[:4] == [10.0, 100.0, 100.0, 100.0]
    assert np.isnan(result["income"].iloc[4])
    assert frame["income"].iloc[3] == 250.0, "input modified"


def test_bottom_coding_keeps_values_exactly_at_the_limit() -> None:
    frame = pd.DataFrame({"age": [2, 3, 4, 90]})
    result = top_bottom_coding(frame, "age", 3, 3, kind="bottom")
    assert result["age"].tolist() == [3, 3, 4, 90]
    assert result["age"].dtype == np.int64
    fractional = top_bottom_coding(frame, "age", 3, 2.5, kind="bottom")
    assert fractional["age"].tolist() == [2.5, 3, 4, 90]


def test_top_coding_matches_sdcmicro_semantics() -> None:
    # sdcMicro: x[x > value] <- replacement (top), x[x < value] <- replacement (bottom)
    values = [17.6, 80.9, 39.1, 33.4, 60.6]
    frame = pd.DataFrame({"v": values})
    assert top_bottom_coding(frame, "v", 35, 0)["v"].tolist() == [17.6, 0, 0, 33.4, 0]
    assert top_bottom_coding(frame, "v", 35, 0, kind="bottom")["v"].tolist() == [
        0,
        80.9,
        39.1,
        0,
        60.6,
    ]


def test_top_bottom_errors() -> None:
    frame = pd.DataFrame({"v": [1, 2], "s": ["a", "b"]})
    with pytest.raises(ProtectionParameterError, match="'top' or 'bottom'"):
        top_bottom_coding(frame, "v", 1, 1, kind="middle")  # type: ignore[arg-type]
    with pytest.raises(NonNumericVariableError):
        top_bottom_coding(frame, "s", 1, 1)
    with pytest.raises(ProtectionParameterError, match="finite"):
        top_bottom_coding(frame, "v", float("inf"), 1)
    with pytest.raises(ProtectionVariableError):
        top_bottom_coding(frame, "w", 1, 1)
