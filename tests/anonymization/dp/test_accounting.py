"""Accounting by hand: epsilon, mechanism, sensitivity and noise scale of every query."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anonymization.dp import _diffprivlib as dpl
from anonymization.dp import (
    dp_category_counts,
    dp_count,
    dp_histogram,
    dp_mean,
    dp_quantile,
    dp_sum,
)
from anonymization.dp.accounting import Accounting

RNG = np.random.default_rng(20261128)
#: 30 pupils with 1 to 6 events each: a score in [0, 20] and a level.
EVENTS = pd.DataFrame({
    "eleve": np.repeat([f"p{i:02d}" for i in range(30)], RNG.integers(1, 7, 30)),
})
EVENTS["score"] = RNG.uniform(-5, 25, len(EVENTS))
EVENTS["niveau"] = RNG.choice(["6E", "5E", "4E"], len(EVENTS))


def _mechanisms(accounting: Accounting) -> list[tuple[str, float, float, float]]:
    return [(use.mechanism, use.epsilon, use.sensitivity, use.scale)
            for use in accounting.mechanisms]


def test_count_geometric_with_sensitivity_m() -> None:
    # m = 3, ε = 0.5: Δ = 3, scale Δ/ε = 6 (α = exp(-1/6)).
    result = dp_count(EVENTS, pupil="eleve", epsilon=0.5, max_contributions=3,
                      rng=np.random.default_rng(1))
    acc = result.accounting
    assert isinstance(result.value, int) and result.value >= 0
    assert (acc.query, acc.epsilon, acc.delta, acc.bounds, acc.max_contributions) == \
        ("count", 0.5, 0.0, None, 3)
    assert _mechanisms(acc) == [("GeometricTruncated", 0.5, 3.0, 6.0)]
    assert acc.mechanism == "GeometricTruncated" and acc.sensitivity == 3.0


def test_sum_laplace_with_sensitivity_m_times_largest_absolute_bound() -> None:
    # bounds (-2, 5), m = 4, ε = 2: Δ = 4 * max(2, 5) = 20, b = Δ/ε = 10.
    result = dp_sum(EVENTS, "score", pupil="eleve", bounds=(-2, 5), epsilon=2.0,
                    max_contributions=4, rng=np.random.default_rng(1))
    acc = result.accounting
    assert (acc.query, acc.epsilon, acc.delta, acc.bounds, acc.max_contributions) == \
        ("sum", 2.0, 0.0, (-2.0, 5.0), 4)
    assert _mechanisms(acc) == [("Laplace", 2.0, 20.0, 10.0)]
    # Negative bounds: Δ = m * 7 with bounds (-7, -1).
    negative = dp_sum(EVENTS, "score", pupil="eleve", bounds=(-7, -1), epsilon=1.0,
                      max_contributions=6)
    assert negative.accounting.sensitivity == 42.0


def test_mean_splits_epsilon_between_a_centred_sum_and_a_count() -> None:
    # bounds (0, 20), m = 2, ε = 1: centred sum Δ = 2 * 20/2 = 20 at ε/2 (b = 40); count
    # Δ = 2 at ε/2 (scale 4); total ε = 1.
    result = dp_mean(EVENTS, "score", pupil="eleve", bounds=(0, 20), epsilon=1.0,
                     max_contributions=2, rng=np.random.default_rng(1))
    acc = result.accounting
    assert _mechanisms(acc) == [("Laplace", 0.5, 20.0, 40.0),
                                ("GeometricTruncated", 0.5, 2.0, 4.0)]
    assert (acc.epsilon, acc.delta, acc.mechanism) == (1.0, 0.0, "Laplace+GeometricTruncated")
    assert 0.0 <= result.value <= 20.0


def test_histogram_and_category_counts_have_l1_sensitivity_m() -> None:
    # m = 5, ε = 1: per-bin geometric noise of scale m/ε = 5.
    hist = dp_histogram(EVENTS, "score", pupil="eleve", bins=4, bounds=(0, 20), epsilon=1.0,
                        max_contributions=5, rng=np.random.default_rng(1))
    assert _mechanisms(hist.accounting) == [("GeometricTruncated", 1.0, 5.0, 5.0)]
    assert hist.accounting.bounds == (0.0, 20.0)
    assert hist.value.edges.tolist() == [0.0, 5.0, 10.0, 15.0, 20.0]
    assert hist.value.counts.shape == (4,) and (hist.value.counts >= 0).all()
    cats = dp_category_counts(EVENTS, "niveau", pupil="eleve", categories=["6E", "5E"],
                              epsilon=0.25, max_contributions=2, rng=np.random.default_rng(1))
    assert _mechanisms(cats.accounting) == [("GeometricTruncated", 0.25, 2.0, 8.0)]
    assert list(cats.value.index) == ["6E", "5E"] and cats.value.index.name == "niveau"


def test_quantile_exponential_with_utility_sensitivity_m() -> None:
    # m = 5, ε = 1: Δ = 5, weights exp(ε u / 2Δ), scale 2Δ/ε = 10.
    result = dp_quantile(EVENTS, "score", 0.5, pupil="eleve", bounds=(0, 20), epsilon=1.0,
                         max_contributions=5, rng=np.random.default_rng(1))
    assert _mechanisms(result.accounting) == [("Exponential", 1.0, 5.0, 10.0)]
    assert 0.0 <= result.value <= 20.0


def test_the_accounting_depends_on_the_parameters_only_never_on_the_data() -> None:
    other = pd.DataFrame({"eleve": ["z"] * 3, "score": [1e6, -1e6, 0.0],
                          "niveau": ["6E", "6E", "6E"]})
    for data in (EVENTS, other, EVENTS.iloc[:0]):
        calls = [
            dp_count(data, pupil="eleve", epsilon=0.3, max_contributions=2,
                     rng=np.random.default_rng(0)),
            dp_sum(data, "score", pupil="eleve", bounds=(0, 20), epsilon=0.3,
                   max_contributions=2, rng=np.random.default_rng(0)),
            dp_mean(data, "score", pupil="eleve", bounds=(0, 20), epsilon=0.3,
                    max_contributions=2, rng=np.random.default_rng(0)),
            dp_histogram(data, "score", pupil="eleve", bins=[0, 10, 20], epsilon=0.3,
                         max_contributions=2, rng=np.random.default_rng(0)),
            dp_quantile(data, "score", 0.9, pupil="eleve", bounds=(0, 20), epsilon=0.3,
                        max_contributions=2, rng=np.random.default_rng(0)),
        ]
        records = [json.dumps(r.accounting.to_dict(), sort_keys=True) for r in calls]
        if data is EVENTS:
            expected = records
        assert records == expected


def test_accounting_is_json_and_names_its_library_version() -> None:
    acc = dp_sum(EVENTS, "score", pupil="eleve", bounds=(0, 20), epsilon=1.0,
                 max_contributions=6).accounting
    doc = json.loads(json.dumps(acc.to_dict()))
    assert doc["library"] == "diffprivlib" and doc["library_version"] == dpl.__version__
    assert doc["mechanisms"][0]["sensitivity"] == 120.0
    assert "pupil" in doc["neighbouring"]


@settings(max_examples=60, deadline=None)
@given(epsilon=st.floats(min_value=1e-3, max_value=50), m=st.integers(1, 20),
       bounds=st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3)).filter(
           lambda b: b[0] + 1e-3 < b[1]))
def test_epsilons_of_a_query_add_up_to_the_epsilon_asked(
        epsilon: float, m: int, bounds: tuple[float, float]) -> None:
    rng = np.random.default_rng(0)
    for result in (
            dp_count(EVENTS, pupil="eleve", epsilon=epsilon, max_contributions=m, rng=rng),
            dp_sum(EVENTS, "score", pupil="eleve", bounds=bounds, epsilon=epsilon,
                   max_contributions=m, rng=rng),
            dp_mean(EVENTS, "score", pupil="eleve", bounds=bounds, epsilon=epsilon,
                    max_contributions=m, rng=rng)):
        acc = result.accounting
        assert math.isclose(acc.epsilon, epsilon, rel_tol=1e-12)
        assert math.isclose(math.fsum(u.epsilon for u in acc.mechanisms), epsilon,
                            rel_tol=1e-12)
        for use in acc.mechanisms:
            assert math.isclose(use.scale, use.sensitivity / use.epsilon, rel_tol=1e-12)
    lower, upper = bounds
    assert dp_sum(EVENTS, "score", pupil="eleve", bounds=bounds, epsilon=epsilon,
                  max_contributions=m, rng=rng).accounting.sensitivity == \
        pytest.approx(m * max(abs(lower), abs(upper)))


def test_diffprivlib_global_accountant_is_never_charged() -> None:
    default = dpl.BudgetAccountant.load_default(None)
    before = list(default.spent_budget)
    dp_histogram(EVENTS, "score", pupil="eleve", bins=3, bounds=(0, 20), epsilon=1.0,
                 max_contributions=6)
    dp_quantile(EVENTS, "score", 0.25, pupil="eleve", bounds=(0, 20), epsilon=1.0,
                max_contributions=6)
    assert list(default.spent_budget) == before
