"""Contribution bounding: each pupil keeps at most max_contributions rows, drawn at random."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anonymization.dp import bound_contributions, dp_count, dp_histogram, dp_sum, kept_rows
from anonymization.exceptions import DPMissingValueError, DPParameterError


@settings(max_examples=200, deadline=None)
@given(pupils=st.lists(st.sampled_from(["a", "b", "c", "d", "e", "f", "g"]), max_size=80),
       m=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_each_pupil_keeps_min_of_its_rows_and_m(pupils: list[str], m: int, seed: int) -> None:
    data = pd.DataFrame({"eleve": pupils, "row": np.arange(len(pupils))})
    kept = bound_contributions(data, "eleve", m, np.random.default_rng(seed))
    before, after = Counter(pupils), Counter(kept["eleve"])
    assert all(after[p] == min(before[p], m) for p in before)
    assert max(after.values(), default=0) <= m
    # A subset of the rows, unchanged and in their original order.
    assert kept["row"].is_monotonic_increasing
    pd.testing.assert_frame_equal(kept, data.loc[kept.index])
    # The same generator state selects the same rows (the selection is reproducible).
    again = bound_contributions(data, "eleve", m, np.random.default_rng(seed))
    assert kept.index.equals(again.index)


def test_rows_kept_are_a_uniform_sample_within_each_pupil() -> None:
    data = pd.DataFrame({"eleve": ["a"] * 4 + ["b"], "row": range(5)})
    rng = np.random.default_rng(3)
    draws = 4000
    chosen = Counter(int(r) for _ in range(draws)
                     for r in bound_contributions(data, "eleve", 1, rng)["row"])
    assert chosen[4] == draws  # pupil b has one row: always kept
    for row in range(4):
        assert chosen[row] / draws == pytest.approx(0.25, abs=0.03)
    pairs = Counter(tuple(bound_contributions(data, "eleve", 2, rng)["row"][:2])
                    for _ in range(3000))
    assert len(pairs) == 6 and all(n / 3000 == pytest.approx(1 / 6, abs=0.03)
                                   for n in pairs.values())


def test_nothing_is_drawn_when_no_pupil_exceeds_the_bound() -> None:
    data = pd.DataFrame({"eleve": [1, 2, 2, 3], "x": [1.0, 2.0, 3.0, 4.0]})
    assert bound_contributions(data, "eleve", 2) is data
    assert kept_rows(data, "eleve", 2) is None
    assert kept_rows(data.iloc[:0], "eleve", 1) is None
    with pytest.raises(DPParameterError, match="rows kept are drawn at random"):
        bound_contributions(data, "eleve", 1)


def test_a_missing_pupil_identifier_is_refused() -> None:
    data = pd.DataFrame({"eleve": ["a", None, float("nan")], "x": [1.0, 2.0, 3.0]})
    with pytest.raises(DPMissingValueError, match="'eleve' has 2 missing value"):
        bound_contributions(data, "eleve", 5, np.random.default_rng(0))


def _one_heavy_pupil() -> pd.DataFrame:
    """20 pupils with one event each and one pupil with 1,000 events of an extreme value."""
    heavy = pd.DataFrame({"eleve": ["heavy"] * 1000, "minutes": [500.0] * 1000})
    light = pd.DataFrame({"eleve": [f"p{i}" for i in range(20)], "minutes": [10.0] * 20})
    return pd.concat([light, heavy], ignore_index=True)


@pytest.mark.parametrize("m", [1, 2, 5])
def test_queries_count_at_most_m_rows_of_any_pupil(m: int) -> None:
    data = _one_heavy_pupil()
    rng = np.random.default_rng(0)
    # ε = 40 with Δ = m: the noise is almost always 0, so the count shows the bounding.
    counts = [dp_count(data, pupil="eleve", epsilon=40.0, max_contributions=m, rng=rng).value
              for _ in range(20)]
    assert np.median(counts) == 20 + m
    sums = [dp_sum(data, "minutes", pupil="eleve", bounds=(0, 60), epsilon=1000.0,
                   max_contributions=m, rng=rng).value for _ in range(20)]
    assert np.median(sums) == pytest.approx(20 * 10 + m * 60, abs=1.0)
    hist = dp_histogram(data, "minutes", pupil="eleve", bins=[0, 30, 1000], epsilon=40.0,
                        max_contributions=m, rng=rng).value
    assert hist.counts.tolist() in ([20, m], [20, m - 1], [20, m + 1], [19, m], [21, m])
