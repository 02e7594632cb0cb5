"""Bad input gets an error stating the rule, from every risk measure."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from anonymization.exceptions import (
    AnonymizationError,
    EmptyDataError,
    InvalidParameterError,
    InvalidWeightError,
    NullHouseholdError,
    RiskInputTypeError,
    UnknownVariableError,
    VariableConflictError,
)
from anonymization.risk import key_frequencies, l_diversity, measure_risk, risk_table, suda2

DATA = pd.DataFrame({"sex": [1, 2, 2], "age": [3, 3, 4], "w": [1.0, 2.0, 3.0], "s": [0, 1, 1]})

MEASURES = {
    "key_frequencies": lambda data, keys: key_frequencies(data, keys),
    "measure_risk": lambda data, keys: measure_risk(data, keys),
    "l_diversity": lambda data, keys: l_diversity(data, keys, "s"),
    "suda2": lambda data, keys: suda2(data, keys),
    "risk_table": lambda data, keys: risk_table(data, keys),
}


@pytest.mark.parametrize("measure", MEASURES.values(), ids=MEASURES.keys())
def test_an_unknown_key_is_refused_naming_the_available_columns(measure):
    expected = r"key variable 'agee' is not in the data.*'age'"
    with pytest.raises(UnknownVariableError, match=expected):
        measure(DATA, ["sex", "agee"])


@pytest.mark.parametrize("measure", MEASURES.values(), ids=MEASURES.keys())
def test_empty_data_is_refused(measure):
    with pytest.raises(EmptyDataError, match="0 rows"):
        measure(DATA.iloc[:0], ["sex"])


@pytest.mark.parametrize("measure", MEASURES.values(), ids=MEASURES.keys())
def test_no_key_at_all_is_refused(measure):
    with pytest.raises(EmptyDataError, match="no key variable"):
        measure(DATA, [])


@pytest.mark.parametrize("measure", MEASURES.values(), ids=MEASURES.keys())
def test_something_else_than_a_dataframe_is_refused(measure):
    with pytest.raises(RiskInputTypeError, match="got a dict"):
        measure(DATA.to_dict(), ["sex"])


def test_a_key_named_twice_is_refused():
    with pytest.raises(VariableConflictError, match="more than once"):
        key_frequencies(DATA, ["sex", "sex"])


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([1.0, 0.0, 2.0], "1 value"),
        ([1.0, -3.0, -2.0], "2 value"),
        ([1.0, np.nan, 2.0], "1 missing"),
        ([1.0, np.inf, 2.0], "1 infinite"),
        (["1", "2", "3"], "not a number"),
    ],
)
def test_weights_must_be_finite_and_positive(weights, message):
    data = DATA.assign(w=weights)

    with pytest.raises(InvalidWeightError, match=message) as caught:
        key_frequencies(data, ["sex"], weight="w")
    assert "weights must be finite numbers > 0" in str(caught.value)


def test_the_weight_may_not_be_a_key():
    with pytest.raises(VariableConflictError, match="also a key"):
        key_frequencies(DATA, ["sex", "w"], weight="w")


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: key_frequencies(DATA, ["sex"], alpha=1.5), "alpha"),
        (lambda: risk_table(DATA, ["sex"], k=0), "k"),
        (lambda: measure_risk(DATA, ["sex"], weight="w", qual=0), "qual"),
    ],
)
def test_parameters_out_of_range_are_refused(call, name):
    with pytest.raises(InvalidParameterError, match=f"parameter '{name}'"):
        call()


def test_an_unknown_household_or_sensitive_variable_is_refused():
    with pytest.raises(UnknownVariableError, match="household variable 'hh'"):
        measure_risk(DATA, ["sex"], household="hh")
    with pytest.raises(UnknownVariableError, match="sensitive variable 'income'"):
        l_diversity(DATA, ["sex"], "income")


def test_bad_input_changes_nothing_in_the_data():
    before = DATA.copy()

    with pytest.raises(AnonymizationError):
        key_frequencies(DATA, ["sex", "nope"])
    risk_table(DATA, ["sex", "age"], weight="w")

    pd.testing.assert_frame_equal(DATA, before)


@pytest.mark.parametrize(
    "error",
    [
        RiskInputTypeError("list"),
        UnknownVariableError("x", "key", ["a"]),
        VariableConflictError("detail"),
        EmptyDataError("detail"),
        InvalidWeightError("w", "has 1 value(s) <= 0"),
        NullHouseholdError("hid", 2),
        InvalidParameterError("k", "an integer >= 1", 0),
    ],
)
def test_errors_survive_pickling_with_their_message(error):
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object, round trip

    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert isinstance(copy, AnonymizationError)
