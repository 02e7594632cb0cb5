"""Minimal sample uniques, SUDA and DIS-SUDA scores (sdcMicro suda2)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anonymization.exceptions import InvalidParameterError
from anonymization.risk import dis_score_table, msu_weight, suda2
from tests.anonymization.risk.reference import naive_suda_msus, sdcmicro_csv

PROPERTIES = settings(deadline=None, max_examples=60)

# Templ (2017), "Statistical Disclosure Control for Microdata", SUDA example (sdcMicro's
# tests/testthat/test_suda2.R, "suda2 book example")
BOOK = pd.DataFrame(
    {
        "age": ["20s"] * 7 + ["60s"],
        "gender": ["male"] * 4 + ["female"] * 3 + ["male"],
        "income": ["50k+"] * 2 + ["50k-"] * 6,
        "education": ["highschool"] * 4
        + ["university", "highschool", "middleschool", "university"],
    }
)

# SDC guidelines (Benschop & Welch, sdcpractice), SUDA example (sdcMicro's test "suda2 sdc
# guideline")
GUIDELINE = pd.DataFrame(
    {
        "Residence": ["Urban"] * 4 + ["Rural"] + ["Urban"] * 5,
        "Gender": [
            "Female",
            "Female",
            "Female",
            "Male",
            "Female",
            "Male",
            "Female",
            "Male",
            "Female",
            "Female",
        ],
        "Education": ["Secondary incomplete", "Secondary incomplete", "Primary incomplete"]
        + ["Secondary complete"] * 3
        + ["Primary complete", "Post-secondary", "Secondary incomplete", "Secondary incomplete"],
        "Labor": [
            "Employed",
            "Employed",
            "Non-LF",
            "Employed",
            "Unemployed",
            "Employed",
            "Non-LF",
            "Unemployed",
            "Non-LF",
            "Non-LF",
        ],
    }
)


def test_msu_weights_are_m_minus_k_factorial_or_the_ihsn_variant():
    # M = 4: (M - k)! = 3! = 6, 2! = 2, 1! = 1, 0! = 1
    assert [msu_weight(k, 4) for k in range(1, 5)] == [6, 2, 1, 1]
    # IHSN: (2^(M-k) - 1) / C(M, k) = 7/4, 3/6, 1/4, 0/1
    assert [msu_weight(k, 4, original_scores=False) for k in range(1, 5)] == [1.75, 0.5, 0.25, 0]


def test_scores_sum_the_weights_of_each_records_msus():
    result = suda2(BOOK, list(BOOK.columns))

    # record 5 (20s, female, 50k-, university): MSUs {gender, education}, {age, education}
    #   -> 2 + 2 = 4; record 6 (female, highschool): {gender, education} -> 2;
    # record 7: {education = middleschool} -> 3! = 6; record 8: {age = 60s} -> 6 and
    #   {gender = male, education = university} -> 2, total 8; records 1-4 are not unique
    assert result.scores.tolist() == [0, 0, 0, 0, 4, 2, 6, 8]
    assert result.msu_counts[:, 0].tolist() == [0, 0, 0, 0, 0, 0, 1, 1]
    assert result.msu_counts[:, 1].tolist() == [0, 0, 0, 0, 2, 1, 0, 1]


def test_scores_match_the_sdc_guideline_example():
    # expected scores: sdcMicro's test "suda2 sdc guideline"
    result = suda2(GUIDELINE, list(GUIDELINE.columns))

    assert result.scores.tolist() == [0, 0, 6, 0, 12, 0, 6, 10, 0, 0]


def test_dis_suda_follows_the_dis_formula_by_hand():
    result = suda2(GUIDELINE, list(GUIDELINE.columns))

    # U = 4 sample uniques (records 3, 5, 7, 8); P = 6 records in three identical pairs
    # dis = U f / (U f + P (1 - f)) = 0.04 / (0.04 + 5.94) = 0.0066889, f = 0.01
    # Q = 1 + (8 - 4) / 20 = 1.2; A = 2 * 6^-1.2 + 12^-1.2 + 10^-1.2
    # DIS_i = 1 / (1 + (U / dis - U) / (s_i^Q A)), U / dis - U = 598 - 4 = 594
    assert (result.sample_uniques, result.paired_records) == (4, 6)
    assert result.dis == pytest.approx(0.04 / 5.98, rel=1e-6)
    adjustment = 2 * 6**-1.2 + 12**-1.2 + 10**-1.2
    expected = [
        0.0 if s == 0 else 1 / (1 + 594 / (s**1.2 * adjustment))
        for s in [0, 0, 6, 0, 12, 0, 6, 10, 0, 0]
    ]
    assert result.dis_scores == pytest.approx(expected, rel=1e-5)  # sdcMicro works in float32


def test_the_dis_table_counts_records_per_interval_as_sdcmicro_prints_it():
    table = dis_score_table([0.0, 0.0, 0.05, 0.1, 0.100001, 0.7, 0.9])

    # 0.1 falls in (0.0, 0.1]; 0.100001 in (0.1, 0.2]; 0.7 in (0.6, 0.7]
    assert table["records"].tolist() == [2, 2, 1, 0, 0, 0, 0, 1, 1]
    assert table["interval"].iloc[0] == "== 0"


def test_attribute_contributions_split_the_total_score_between_keys():
    # sdcMicro's test "suda2 simple example contrubtion": a = 2,1,1; b = 0,3,0; c = 0,6,0
    data = pd.DataFrame({"a": [2, 1, 1], "b": [0, 3, 0], "c": [0, 6, 0]})

    result = suda2(data, ["a", "b", "c"])

    # M = 3, weights 2, 1, 1. record 1: {a} -> 2; record 2: {b}, {c} -> 4;
    # record 3: {a, b}, {a, c} -> 2. raw per key: a = 2 + 2, b = 2 + 1, c = 2 + 1; total 8
    assert result.scores.tolist() == [2, 4, 2]
    assert result.attribute_contributions.tolist() == [50.0, 37.5, 37.5]
    assert result.contributions.tolist() == [[1, 0, 0], [0, 0.5, 0.5], [1, 0.5, 0.5]]
    frame = result.to_frame()
    assert list(frame.columns) == [
        "a_contribution",
        "b_contribution",
        "c_contribution",
        "suda_score",
        "dis_suda_score",
    ]


def test_a_record_cannot_have_an_msu_through_a_missing_value():
    data = pd.DataFrame({"a": [1, 2, None, 2], "b": [1, 1, 1, 1], "c": [5, 5, 6, 5]})

    result = suda2(data, ["a", "b", "c"])

    # record 1: {a = 1} unique -> 2! = 2; record 3 misses a, but {c = 6} is unique -> 2;
    # records 2 and 4 are identical
    assert result.scores.tolist() == [2, 0, 2, 0]


def test_max_size_bounds_the_search_but_keeps_the_weights_of_all_keys():
    full = suda2(BOOK, list(BOOK.columns))
    ones = suda2(BOOK, list(BOOK.columns), max_size=1)

    assert ones.scores.tolist() == [0, 0, 0, 0, 0, 0, 6, 6]  # only 1-MSUs, each 3! = 6
    assert full.msu_counts.shape == (8, 4)
    assert ones.msu_counts.shape == (8, 1)


def test_parameters_out_of_range_are_refused():
    with pytest.raises(InvalidParameterError, match="max_size"):
        suda2(BOOK, list(BOOK.columns), max_size=5)
    with pytest.raises(InvalidParameterError, match="dis_fraction"):
        suda2(BOOK, list(BOOK.columns), dis_fraction=0)
    many = pd.DataFrame({f"k{j}": [0, 1] for j in range(17)})
    with pytest.raises(InvalidParameterError, match="key subsets"):
        suda2(many, list(many.columns))


def test_testdata2_gives_the_scores_of_sdcmicros_suda2_tests():
    # expected figures: sdcMicro tests/testthat/test_suda2.R ("suda2 data frame",
    # "suda2 sdcObject original scores", "... non original scores"), first record of testdata2
    data = sdcmicro_csv("testdata2.csv")
    seven = ["urbrur", "roof", "walls", "water", "electcon", "relat", "sex"]

    assert suda2(data, ["urbrur", "roof", "walls", "water", "sex"]).scores[0] == 2
    assert suda2(data, seven).scores[0] == 180
    assert round(suda2(data, seven, original_scores=False).scores[0], 2) == 2.73


@st.composite
def frames(draw):
    n_keys = draw(st.integers(1, 4))
    n = draw(st.integers(1, 14))
    values = st.one_of(st.none(), st.integers(0, 2)) if draw(st.booleans()) else st.integers(0, 2)
    return pd.DataFrame(
        {
            f"k{j}": pd.array(draw(st.lists(values, min_size=n, max_size=n)), dtype="Int64")
            for j in range(n_keys)
        }
    )


@PROPERTIES
@given(data=frames())
def test_msus_equal_a_brute_force_search_over_every_key_subset(data):
    keys = list(data.columns)
    result = suda2(data, keys)

    msus = naive_suda_msus(data, keys)
    m = len(keys)
    for i, record_msus in enumerate(msus):
        sizes = [len(s) for s in record_msus]
        assert result.msu_counts[i].tolist() == [sizes.count(k) for k in range(1, m + 1)]
        expected = sum(math.factorial(m - k) for k in sizes)
        assert result.scores[i] == expected
    assert np.all((result.dis_scores >= 0) & (result.dis_scores <= 1))
    assert np.all((result.dis_scores > 0) == (result.scores > 0))
