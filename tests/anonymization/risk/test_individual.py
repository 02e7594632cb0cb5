"""Individual risk (Benedetti-Franconi, sdcMicro indivRisk), global and household risk."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anonymization.exceptions import InvalidParameterError, NullHouseholdError
from anonymization.risk import (
    global_risk,
    household_risk,
    individual_risk,
    key_frequencies,
    measure_risk,
)
from tests.anonymization.risk.reference import sdcmicro_csv

PROPERTIES = settings(deadline=None, max_examples=200)
NAN = np.nan

# --------------------------------------------------------------------------- hand-computed


def test_a_sample_unique_has_risk_p_over_1_minus_p_times_log_1_over_p():
    # fk = 1, Fk = 4: p = 0.25, p / (1 - p) = 1/3, log(1/p) = log 4 = 1.3862944
    # r = 1.3862944 / 3 = 0.4620981
    assert individual_risk([1], [4]) == pytest.approx([math.log(4) / 3])
    assert individual_risk([1], [4])[0] == pytest.approx(0.4620981, abs=1e-7)


def test_a_pair_has_risk_p_over_1_minus_p_minus_its_square_times_log_1_over_p():
    # fk = 2, Fk = 8: p = 0.25, ratio = 1/3, r = 1/3 - (1/9) log 4 = 0.3333333 - 0.1540327
    assert individual_risk([2], [8])[0] == pytest.approx(1 / 3 - math.log(4) / 9)
    assert individual_risk([2], [8])[0] == pytest.approx(0.1793006, abs=1e-7)


def test_larger_classes_use_p_over_fk_minus_1_minus_p():
    # fk = 4, Fk = 16: p = 0.25, r = 0.25 / (4 - 0.75) = 0.0769231; fk = 3, Fk = 6: p = 0.5,
    # r = 0.5 / (3 - 0.5) = 0.2
    assert individual_risk([4, 3], [16, 6]) == pytest.approx([0.25 / 3.25, 0.2])


def test_when_every_weight_is_one_the_risk_is_one_over_fk():
    assert individual_risk([1, 2, 5], [1, 2, 5]).tolist() == [1.0, 0.5, 0.2]


def test_unweighted_data_is_a_population_with_risk_one_over_fk():
    assert individual_risk([1, 2, 4], [9, 9, 9], weighted=False).tolist() == [1.0, 0.5, 0.25]


def test_qual_multiplies_the_weighted_risk():
    assert individual_risk([1], [4], qual=2.0) == pytest.approx([2 * math.log(4) / 3])


def test_close_to_fk_equal_fk_the_risk_is_computed_without_cancellation():
    # Fk = fk (1 + 1e-9): the limits are 1 (fk = 1) and 1/2 (fk = 2); the textbook form of the
    # fk = 2 formula loses about 8 digits here, the stable one keeps them
    fk = np.array([1.0, 2.0])
    risk = individual_risk(fk, fk * (1 + 1e-9))

    assert risk == pytest.approx([1.0, 0.5], abs=1e-8)


def test_a_fractional_fk_between_1_and_2_is_rated_as_a_sample_unique():
    # alpha < 1 gives fk = 1.5; sdcMicro's loop has no branch for it (risk 0); we use fk = 1's
    # formula: p = 1.5 / 6 = 0.25 -> log(4) / 3
    assert individual_risk([1.5], [6]) == pytest.approx([math.log(4) / 3])


def test_global_risk_is_the_expected_number_of_reidentifications():
    result = global_risk([0.5, 0.25, 0.25, 0.1])

    # ER = 0.5 + 0.25 + 0.25 + 0.1 = 1.1; per record 1.1 / 4 = 0.275; 27.5 %
    assert result.expected_reidentifications == pytest.approx(1.1)
    assert result.risk == pytest.approx(0.275)
    assert result.percent == pytest.approx(27.5)


def test_household_risk_is_one_minus_the_chance_no_member_is_reidentified():
    risk = [0.5, 0.2, 0.1, 0.3]
    households = ["a", "a", "b", "a"]

    result = household_risk(risk, households)

    # household a: 1 - (1 - 0.5)(1 - 0.2)(1 - 0.3) = 1 - 0.28 = 0.72; household b: 0.1
    assert result == pytest.approx([0.72, 0.72, 0.1, 0.72])


def test_measure_risk_gives_household_risk_to_every_member_and_sums_it_over_records():
    data = pd.DataFrame(
        {"sex": [1, 1, 2, 2, 2], "age": [1, 1, 1, 2, 2], "hid": [10, 10, 20, 20, 30]}
    )

    result = measure_risk(data, ["sex", "age"], household="hid")

    # unweighted: r = 1/fk = 1/2, 1/2, 1, 1/2, 1/2
    # household 10: 1 - (1/2)(1/2) = 3/4; household 20: 1 - 0 * (1/2) = 1; household 30: 1/2
    assert result.risk.tolist() == [0.5, 0.5, 1.0, 0.5, 0.5]
    assert result.household_risk is not None
    assert result.household_risk.tolist() == [0.75, 0.75, 1.0, 1.0, 0.5]
    assert result.global_risk.expected_reidentifications == pytest.approx(3.0)
    assert result.household_global_risk is not None
    # hier_risk_ER = 0.75 + 0.75 + 1 + 1 + 0.5 = 4.0, 80 %
    assert result.household_global_risk.expected_reidentifications == pytest.approx(4.0)
    assert result.household_global_risk.percent == pytest.approx(80.0)
    assert list(result.to_frame().columns) == ["risk", "fk", "Fk", "hier_risk"]


def test_a_missing_household_identifier_is_refused():
    data = pd.DataFrame({"sex": [1, 2], "hid": [1, None]})

    with pytest.raises(NullHouseholdError, match="1 missing value"):
        measure_risk(data, ["sex"], household="hid")


def test_frequencies_of_an_impossible_kind_are_refused():
    with pytest.raises(InvalidParameterError, match="fk >= 1"):
        individual_risk([0], [1])
    with pytest.raises(InvalidParameterError, match="shape"):
        individual_risk([1, 1], [2])


# --------------------------------------------------------------------------- sdcMicro's tests


def test_matches_the_expectations_of_sdcmicros_own_indivrisk_tests():
    # expected figures: sdcMicro tests/testthat/test_indivRisk.R, method "approx", qual 1
    def frame(values):
        data = pd.DataFrame(np.array(values, dtype=float).reshape(3, -1).T, columns=list("ABC"))
        data["weight"] = [18.0, 45.5, 39.0, 17.0, 92.0, 8.0, 123.5, 51]
        return data

    complete = frame([2, 3, 2, 2, 3, 3, 1, 2, 3, 3, 3, 3, 3, 3, 4, 3, 1, 3, 1, 2, 1, 1, 1, 1])
    missing = frame([2, 3, 2, 2, 3, 3, 1, NAN, 3, 3, 3, 3, 3, 3, 4, 3, 1, 3, NAN, 2, 1, 1, NAN, 1])

    for data, expected in [
        (
            complete,
            [
                0.01369863,
                0.08579129,
                0.01369863,
                0.17707583,
                0.01877883,
                0.01877883,
                0.03931625,
                0.01369863,
            ],
        ),
        (
            missing,
            [
                0.013698630,
                0.085791288,
                0.010554090,
                0.032466112,
                0.009836066,
                0.009836066,
                0.039316254,
                0.005973716,
            ],
        ),
    ]:
        freq = key_frequencies(data, ["A", "B", "C"], weight="weight")
        assert individual_risk(freq.fk, freq.Fk) == pytest.approx(expected, abs=1e-8)
        assert individual_risk(freq.fk, freq.Fk, qual=2) == pytest.approx(
            [2 * e for e in expected], abs=2e-8
        )


def test_testdata_gives_the_risk_figures_printed_in_the_sdcmicro_paper():
    # Templ, Kowarik & Meindl (2015), J. Stat. Softw. 67(4), section 4: createSdcObj(testdata,
    # keyVars = c("urbrur", "water", "sex", "age"), w = "sampling_weight", hhId = "ori_hid")
    # then print(sdcInitial, "risk"): "Expected number of re-identifications: 24.78 (0.54 %)"
    # and, for the hierarchical risk, "117.20 (2.56 %)" (figures quoted from the paper; its
    # body text could not be re-fetched from this sandbox, so they were checked from memory
    # before running this code, and they agree to the printed 2 decimals)
    data = sdcmicro_csv("testdata.csv")

    result = measure_risk(
        data, ["urbrur", "water", "sex", "age"], weight="sampling_weight", household="ori_hid"
    )

    assert round(result.global_risk.expected_reidentifications, 2) == 24.78
    assert round(result.global_risk.percent, 2) == 0.54
    assert result.household_global_risk is not None
    assert round(result.household_global_risk.expected_reidentifications, 2) == 117.20
    assert round(result.household_global_risk.percent, 2) == 2.56


# --------------------------------------------------------------------------- properties


@PROPERTIES
@given(
    fk=st.integers(1, 500),
    extra=st.one_of(st.just(0.0), st.floats(1e-12, 1e6)),
)
def test_with_weights_of_at_least_one_the_risk_is_in_0_1(fk, extra):
    risk = individual_risk([fk], [fk + extra])[0]

    assert 0 < risk <= 1 + 1e-12
    assert risk <= 1 / fk + 1e-9  # never above the risk of a known population of size fk


@PROPERTIES
@given(risk=st.lists(st.floats(0, 1), min_size=1, max_size=20), data=st.data())
def test_household_risk_is_at_least_each_members_risk_and_at_most_one(risk, data):
    households = data.draw(st.lists(st.integers(0, 3), min_size=len(risk), max_size=len(risk)))

    result = household_risk(risk, households)

    assert np.all(result >= np.asarray(risk) - 1e-12)
    assert np.all(result <= 1 + 1e-12)
