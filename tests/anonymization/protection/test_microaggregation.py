"""MDAV microaggregation: group sizes in [k, 2k - 1], exact means, agreement with a naive
MDAV written from Domingo-Ferrer & Mateo-Sanz (2002), and clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anonymization.exceptions import (
    MissingNumericValueError,
    NonNumericVariableError,
    ProtectionParameterError,
    TooFewRecordsError,
)
from anonymization.protection import mdav_groups, microaggregation


def naive_mdav(points: np.ndarray, k: int) -> list[frozenset[int]]:
    """MDAV as published, recomputing everything from scratch at each step (O(n^2))."""
    sd = points.std(axis=0)
    z = (points - points.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    left = list(range(len(z)))
    groups = []

    def nearest(centre: np.ndarray) -> list[int]:
        ordered = sorted(left, key=lambda i: float(((z[i] - centre) ** 2).sum()))
        return ordered[:k]

    def farthest(centre: np.ndarray) -> int:
        return max(left, key=lambda i: float(((z[i] - centre) ** 2).sum()))

    while len(left) >= 2 * k:
        two = len(left) >= 3 * k
        centroid = z[left].mean(axis=0)
        r = farthest(centroid)
        s = farthest(z[r])
        s_point = z[s].copy()
        group = nearest(z[r])
        groups.append(frozenset(group))
        left = [i for i in left if i not in group]
        if two:
            group = nearest(s_point)
            groups.append(frozenset(group))
            left = [i for i in left if i not in group]
    if left:
        groups.append(frozenset(left))
    return groups


def partition(groups: np.ndarray) -> set[frozenset[int]]:
    return {frozenset(np.flatnonzero(groups == g).tolist()) for g in np.unique(groups)}


def test_two_clusters_by_hand() -> None:
    frame = pd.DataFrame({"x": [1.0, 2, 3, 10, 11, 12], "label": list("abcdef")})
    result = microaggregation(frame, ["x"], k=3)
    assert result.data["x"].tolist() == [2.0, 2.0, 2.0, 11.0, 11.0, 11.0]
    assert result.data["label"].tolist() == list("abcdef")
    assert frame["x"].tolist() == [1.0, 2, 3, 10, 11, 12], "input modified"
    assert sorted(result.group_sizes.tolist()) == [3, 3]


def test_seven_records_make_groups_of_three_and_four() -> None:
    # 7 < 3k: one group of 3 around the record farthest from the centroid (100), the rest
    frame = pd.DataFrame({"x": [1, 2, 3, 4, 5, 6, 100]})
    result = microaggregation(frame, "x", k=3)
    assert sorted(result.group_sizes.tolist()) == [3, 4]
    assert result.data["x"].tolist() == [2.5, 2.5, 2.5, 2.5, 37.0, 37.0, 37.0]


def test_multivariate_groups_share_one_vector() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(60, 3)) * [1, 100, 10_000], columns=list("abc"))
    result = microaggregation(frame, ["a", "b", "c"], k=4)
    for g in np.unique(result.groups):
        rows = result.data.loc[result.groups == g, ["a", "b", "c"]]
        assert (rows.nunique() == 1).all()


points_strategy = st.builds(
    lambda seed, n, d, ties: np.round(np.random.default_rng(seed).normal(size=(n, d)), ties),
    st.integers(0, 2**32 - 1),
    st.integers(2, 60),
    st.integers(1, 3),
    st.sampled_from([12, 12, 0]),  # 0 decimals: many ties
)


@settings(max_examples=150, deadline=None)
@given(points=points_strategy, k=st.integers(2, 6))
def test_property_group_sizes_and_exact_means(points: np.ndarray, k: int) -> None:
    n = len(points)
    if n < k:
        with pytest.raises(TooFewRecordsError):
            mdav_groups(points, k)
        return
    groups = mdav_groups(points, k)
    sizes = np.bincount(groups)
    assert (groups >= 0).all()
    assert sizes.min() >= k
    assert sizes.max() <= 2 * k - 1 or (len(sizes) == 1 and n < 2 * k)
    frame = pd.DataFrame(points, columns=[f"v{j}" for j in range(points.shape[1])])
    result = microaggregation(frame, list(frame.columns), k=k)
    np.testing.assert_allclose(
        result.data.mean().to_numpy(), frame.mean().to_numpy(), rtol=1e-12, atol=1e-12
    )


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1), n=st.integers(3, 50), d=st.integers(1, 3), k=st.integers(2, 5)
)
def test_property_same_groups_as_the_naive_algorithm(seed: int, n: int, d: int, k: int) -> None:
    if n < k:
        return
    points = np.random.default_rng(seed).normal(size=(n, d))  # continuous: no ties
    assert partition(mdav_groups(points, k)) == set(naive_mdav(points, k))


def test_strata_are_aggregated_separately() -> None:
    frame = pd.DataFrame({"s": ["a"] * 4 + ["b"] * 3, "x": [1.0, 2, 3, 4, 100, 200, 300]})
    result = microaggregation(frame, ["x"], k=2, strata="s")
    assert result.data["x"].tolist() == [1.5, 1.5, 3.5, 3.5, 200.0, 200.0, 200.0]
    assert len(set(result.groups[:4]) & set(result.groups[4:])) == 0


def test_integer_columns_become_float_means() -> None:
    frame = pd.DataFrame({"x": [1, 2, 4, 5]})
    result = microaggregation(frame, ["x"], k=2)
    assert result.data["x"].dtype == np.float64
    assert result.data["x"].tolist() == [1.5, 1.5, 4.5, 4.5]


def test_errors() -> None:
    frame = pd.DataFrame(
        {
            "x": [1.0, 2.0, 3.0],
            "s": ["a", "b", "c"],
            "b": [True, False, True],
            "c": pd.Categorical([1, 2, 3]),
            "n": [1.0, np.nan, 3.0],
        }
    )
    for column in ("s", "b", "c"):
        with pytest.raises(NonNumericVariableError, match=f"'{column}' has dtype"):
            microaggregation(frame, [column], k=2)
    with pytest.raises(MissingNumericValueError, match="1 missing or infinite"):
        microaggregation(frame, ["n"], k=2)
    with pytest.raises(ProtectionParameterError, match="k"):
        microaggregation(frame, ["x"], k=1)
    with pytest.raises(TooFewRecordsError, match="3 record"):
        microaggregation(frame, ["x"], k=4)
    with pytest.raises(ProtectionParameterError, match="mdav"):
        microaggregation(frame, ["x"], k=2, method="pca")
    with pytest.raises(TooFewRecordsError, match="stratum"):
        microaggregation(frame.assign(g=[1, 1, 2]), ["x"], k=2, strata="g")
