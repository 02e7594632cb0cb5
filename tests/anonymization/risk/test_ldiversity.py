"""Distinct, entropy and recursive (c, l)-diversity per class (sdcMicro ldiversity)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anonymization.exceptions import InvalidParameterError, VariableConflictError
from anonymization.risk import key_frequencies, l_diversity
from tests.anonymization.risk.reference import naive_l_diversity

PROPERTIES = settings(deadline=None, max_examples=80)


def test_each_measure_follows_its_definition_on_a_hand_computed_class():
    # one class of 7 records with diagnosis a,a,a,a,b,c and one missing; another of 2 records
    data = pd.DataFrame(
        {
            "key": [1] * 7 + [2] * 2,
            "diagnosis": ["a", "a", "a", "a", "b", "c", None, "a", "b"],
        }
    )

    result = l_diversity(data, "key", "diagnosis")

    # class 1: distinct = 3 values + 1 for the missing category = 4
    #   entropy = exp(-(4/7 log 4/7 + 3 * 1/7 log 1/7)) = exp(0.3198 + 0.8340) = 3.1700
    #   recursive (c = 2), counts 4 >= 1 >= 1: l = 2 needs 4 < 2 (1 + 1) = 4: false -> 1
    # class 2: a, b: distinct 2, entropy exp(log 2) = 2, recursive: 1 < 2 * 1 -> 2
    entropy_1 = math.exp(-(4 / 7 * math.log(4 / 7) + 3 / 7 * math.log(1 / 7)))
    assert result["diagnosis_distinct"].tolist() == [4] * 7 + [2] * 2
    assert result["diagnosis_entropy"].tolist() == pytest.approx([entropy_1] * 7 + [2.0] * 2)
    assert result["diagnosis_recursive"].tolist() == [1] * 7 + [2] * 2


def test_the_recursive_constant_c_sets_how_dominant_the_most_frequent_value_may_be():
    data = pd.DataFrame({"key": [1] * 6, "s": ["a", "a", "a", "b", "b", "c"]})

    # counts 3, 2, 1: l = 2 holds when 3 < c (2 + 1), l = 3 when 3 < c * 1
    assert l_diversity(data, "key", "s")["s_recursive"].iloc[0] == 2  # c = 2: 3 < 6, not 3 < 2
    assert l_diversity(data, "key", "s", recursive_constant=4)["s_recursive"].iloc[0] == 3
    assert l_diversity(data, "key", "s", recursive_constant=1)["s_recursive"].iloc[0] == 1


def test_a_class_with_no_observed_sensitive_value_is_not_even_1_diverse():
    data = pd.DataFrame({"key": [1, 1, 2], "s": [None, None, "x"]})

    result = l_diversity(data, "key", "s")

    assert result[["s_distinct", "s_entropy", "s_recursive"]].iloc[0].tolist() == [0, 1.0, 0]
    assert result[["s_distinct", "s_entropy", "s_recursive"]].iloc[2].tolist() == [1, 1.0, 1]


def test_missing_key_values_form_a_class_of_their_own():
    # sdcMicro's ldiversity test "handles NAs and distinct counts correctly" (test_ldiversity.R)
    data = pd.DataFrame(
        {
            "sex": ["female", "female", "female", "male", "male", "female", "female"],
            "occupation": [None, None, None, "teacher", "teacher", "nurse", "nurse"],
            "ethnicity": ["other"] * 5 + ["majority"] * 2,
            "sensitive": [1, 0, 2, 1, 0, 0, 1],
        }
    )

    result = l_diversity(data, ["sex", "occupation", "ethnicity"], "sensitive")

    assert result["sensitive_distinct"].tolist() == [3, 3, 3, 2, 2, 2, 2]


def test_multi_attribute_measures_take_the_minimum_over_sub_classes_and_variables():
    # sdcMicro's test "handles multiple sensitive variables": sens1 A,B,A and sens2 X,Y,Z
    data = pd.DataFrame({"key": [1, 1, 1], "sens1": ["A", "B", "A"], "sens2": ["X", "Y", "Z"]})

    result = l_diversity(data, "key", ["sens1", "sens2"])

    assert result["sens1_distinct"].iloc[0] == 2
    assert result["sens2_distinct"].iloc[0] == 3
    # sens1 cut by sens2: three sub-classes of one record each -> entropy 1, recursive 1;
    # sens2 cut by sens1: {X, Z} (entropy 2, recursive 2: 1 < 2 * 1) and {Y} (1, 1) -> min 1
    assert result["multi_entropy"].tolist() == [1.0, 1.0, 1.0]
    assert result["multi_recursive"].tolist() == [1, 1, 1]


def test_multi_attribute_measures_keep_diversity_that_survives_the_cut():
    data = pd.DataFrame({"key": [1] * 4, "s1": ["a", "b", "a", "b"], "s2": ["x", "x", "y", "y"]})

    result = l_diversity(data, "key", ["s1", "s2"])

    # cut by s2, s1 is {a, b} in both sub-classes (entropy 2); cut by s1, s2 is {x, y} (2)
    assert result["multi_entropy"].tolist() == pytest.approx([2.0] * 4)
    assert result["multi_recursive"].tolist() == [2] * 4


def test_a_sensitive_variable_may_not_be_a_key():
    data = pd.DataFrame({"key": [1, 2], "s": [1, 2]})

    with pytest.raises(VariableConflictError, match="also a key"):
        l_diversity(data, ["key", "s"], "s")


def test_the_recursive_constant_must_be_positive():
    data = pd.DataFrame({"key": [1, 2], "s": [1, 2]})

    with pytest.raises(InvalidParameterError, match="recursive_constant"):
        l_diversity(data, "key", "s", recursive_constant=0)


@st.composite
def classes(draw):
    n = draw(st.integers(1, 30))
    keys = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    sensitive = draw(st.lists(st.one_of(st.none(), st.integers(0, 4)), min_size=n, max_size=n))
    constant = draw(st.sampled_from([0.5, 1.0, 2.0, 3.0]))
    return pd.DataFrame({"k": keys, "s": pd.array(sensitive, dtype="Int64")}), constant


@PROPERTIES
@given(case=classes())
def test_measures_equal_their_definitions_class_by_class(case):
    data, constant = case
    result = l_diversity(data, "k", "s", recursive_constant=constant)

    for key, rows in data.groupby("k").groups.items():
        expected = naive_l_diversity(list(data.loc[rows, "s"]), constant)
        got = result.loc[rows[0], ["s_distinct", "s_entropy", "s_recursive"]].tolist()
        assert got[0] == expected[0], key
        assert got[1] == pytest.approx(expected[1])
        assert got[2] == expected[2], key


@PROPERTIES
@given(case=classes())
def test_distinct_l_diversity_never_exceeds_the_class_frequency(case):
    data, _ = case

    result = l_diversity(data, "k", "s")

    assert np.all(result["s_distinct"].to_numpy() <= key_frequencies(data, "k").fk)
    assert np.all(result["s_recursive"] <= result["s_distinct"])
    assert np.all(result["s_entropy"] <= result["s_distinct"].clip(lower=1) + 1e-9)
