"""PRAM: the invariant matrix leaves expected frequencies unchanged (p R = p, analytically),
matrices are Markov, given matrices are applied exactly, and bad matrices are refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anonymization.exceptions import (
    ProtectionParameterError,
    ProtectionVariableError,
    TransitionMatrixError,
)
from anonymization.protection import (
    default_transition_matrix,
    invariant_matrix,
    pram,
)

counts_strategy = st.lists(st.integers(0, 1000), min_size=1, max_size=8).filter(
    lambda c: sum(c) > 0
)


@settings(max_examples=200, deadline=None)
@given(
    counts=counts_strategy,
    seed=st.integers(0, 2**32 - 1),
    alpha=st.floats(0.0, 1.0),
    pd_min=st.floats(0.0, 1.0),
)
def test_property_default_matrix_is_markov_and_invariant(
    counts: list[int], seed: int, alpha: float, pd_min: float
) -> None:
    matrix = default_transition_matrix(np.array(counts), np.random.default_rng(seed), pd_min, alpha)
    assert matrix.shape == (len(counts), len(counts))
    assert (matrix >= -1e-15).all()
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-12)
    p = np.array(counts, dtype=float) / sum(counts)
    np.testing.assert_allclose(p @ matrix, p, atol=1e-12)


@settings(max_examples=200, deadline=None)
@given(counts=counts_strategy, seed=st.integers(0, 2**32 - 1), alpha=st.floats(0.0, 1.0))
def test_property_any_markov_matrix_made_invariant(
    counts: list[int], seed: int, alpha: float
) -> None:
    rng = np.random.default_rng(seed)
    size = len(counts)
    base = rng.dirichlet(np.ones(size), size=size)
    base[rng.random((size, size)) < 0.3] = 0.0  # some impossible transitions
    base[np.arange(size), np.arange(size)] += 0.1
    base /= base.sum(axis=1, keepdims=True)
    matrix = invariant_matrix(base, np.array(counts), alpha)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-12)
    assert (matrix >= -1e-15).all()
    p = np.array(counts, dtype=float) / sum(counts)
    np.testing.assert_allclose(p @ matrix, p, atol=1e-12)


def test_invariant_matrix_by_hand() -> None:
    # P = [[.8, .2], [.4, .6]], p = (.5, .5): p P = (.6, .4)
    # Q[k, j] = P[j, k] p_j / s_k: Q = [[.8*.5/.6, .4*.5/.6], [.2*.5/.4, .6*.5/.4]]
    base = np.array([[0.8, 0.2], [0.4, 0.6]])
    q = np.array([[0.4 / 0.6, 0.2 / 0.6], [0.1 / 0.4, 0.3 / 0.4]])
    expected = base @ q
    np.testing.assert_allclose(invariant_matrix(base, np.array([5, 5])), expected)
    np.testing.assert_allclose(
        invariant_matrix(base, np.array([5, 5]), alpha=0.5), 0.5 * expected + 0.5 * np.eye(2)
    )
    np.testing.assert_allclose(invariant_matrix(base, np.array([0, 0])), np.eye(2))


def test_identity_matrix_changes_nothing_and_keeps_dtypes() -> None:
    frame = pd.DataFrame({"sector": [1, 2, 2, 1], "other": ["a", "b", "c", "d"]})
    identity = pd.DataFrame(np.eye(2), index=[1, 2], columns=[1, 2])
    result = pram(frame, "sector", np.random.default_rng(0), transitions={"sector": identity})
    assert result.data["sector"].tolist() == [1, 2, 2, 1]
    assert result.data["sector"].dtype == np.int64
    assert result.changes.to_dict() == {"sector": 0}
    pd.testing.assert_frame_equal(result.matrices["sector"][()], identity)


def test_permutation_matrix_is_applied_exactly() -> None:
    frame = pd.DataFrame({"c": pd.Categorical(["a", "b", None, "c"], categories=["a", "b", "c"])})
    swap = pd.DataFrame(
        [[0, 1, 0], [1, 0, 0], [0, 0, 1]],
        index=["a", "b", "c"],
        columns=["a", "b", "c"],
        dtype=float,
    )
    result = pram(frame, "c", np.random.default_rng(1), transitions={"c": swap})
    assert [None if pd.isna(v) else v for v in result.data["c"]] == ["b", "a", None, "c"]
    assert isinstance(result.data["c"].dtype, pd.CategoricalDtype)
    assert result.changes["c"] == 2
    assert frame["c"].tolist()[:2] == ["a", "b"], "input modified"


def test_given_matrix_made_invariant_on_request() -> None:
    frame = pd.DataFrame({"x": ["a"] * 30 + ["b"] * 10})
    base = pd.DataFrame([[0.9, 0.1], [0.5, 0.5]], index=["a", "b"], columns=["a", "b"])
    result = pram(
        frame, "x", np.random.default_rng(2), transitions={"x": base}, invariant=True, alpha=1.0
    )
    used = result.matrices["x"][()].to_numpy()
    np.testing.assert_allclose(np.array([0.75, 0.25]) @ used, [0.75, 0.25])


def test_frequencies_are_preserved_in_expectation_on_large_data() -> None:
    rng = np.random.default_rng(20240601)
    n = 200_000
    probabilities = np.array([0.5, 0.3, 0.15, 0.05])
    frame = pd.DataFrame({"ips": rng.choice(4, n, p=probabilities)})
    before = np.bincount(frame["ips"], minlength=4)
    result = pram(frame, "ips", np.random.default_rng(7), min_diagonal=0.5, alpha=1.0)
    after = np.bincount(result.data["ips"], minlength=4)
    assert result.changes["ips"] > 0.05 * n  # it did randomise
    # multinomial noise only: a few standard deviations of sqrt(n p (1 - p))
    assert np.all(np.abs(after - before) < 5 * np.sqrt(n * probabilities))


def test_strata_get_their_own_invariant_matrix() -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "region": ["N"] * 50 + ["S"] * 50,
            "v": list(rng.choice(["x", "y"], 50, p=[0.9, 0.1])) + list(rng.choice(["x", "y"], 50)),
        }
    )
    result = pram(frame, "v", np.random.default_rng(4), strata="region")
    assert set(result.matrices["v"]) == {("N",), ("S",)}
    for (region,), matrix in result.matrices["v"].items():
        counts = frame.loc[frame["region"] == region, "v"].value_counts()
        p = (counts.reindex(["x", "y"]).fillna(0) / counts.sum()).to_numpy()
        np.testing.assert_allclose(p @ matrix.to_numpy(), p, atol=1e-12)
    assert result.data["region"].tolist() == frame["region"].tolist()


def test_same_generator_state_gives_the_same_result() -> None:
    frame = pd.DataFrame({"v": list("abcabcabca") * 10})
    first = pram(frame, "v", np.random.default_rng(99))
    second = pram(frame, "v", np.random.default_rng(99))
    pd.testing.assert_frame_equal(first.data, second.data)


def test_missing_values_stay_missing() -> None:
    frame = pd.DataFrame({"v": ["a", None, "b", "a", None]})
    result = pram(frame, "v", np.random.default_rng(5), min_diagonal=0.0, alpha=1.0)
    assert result.data["v"].isna().tolist() == [False, True, False, False, True]


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (pd.DataFrame([[1.0]], index=["a"], columns=["a"]), "have no row"),
        (pd.DataFrame([[0.5, 0.5]], index=["a"], columns=["a", "b"]), "1 x 2"),
        (pd.DataFrame([[1.0, 0], [0, 1]], index=["a", "b"], columns=["b", "a"]), "labels differ"),
        (pd.DataFrame([[0.7, 0.2], [0, 1]], index=["a", "b"], columns=["a", "b"]), "sums to 1"),
        (pd.DataFrame([[1.5, -0.5], [0, 1]], index=["a", "b"], columns=["a", "b"]), "negative"),
        (np.eye(2), "not a DataFrame"),
    ],
)
def test_bad_matrices_are_refused(matrix: object, message: str) -> None:
    frame = pd.DataFrame({"v": ["a", "b"]})
    with pytest.raises(TransitionMatrixError, match=message):
        pram(frame, "v", np.random.default_rng(0), transitions={"v": matrix})  # type: ignore[dict-item]


def test_other_bad_calls() -> None:
    frame = pd.DataFrame({"v": ["a", "b"], "w": ["c", "d"]})
    with pytest.raises(ProtectionParameterError, match="Generator"):
        pram(frame, "v", 42)  # type: ignore[arg-type]
    with pytest.raises(ProtectionParameterError, match="Generator"):
        pram(frame, "v", np.random.RandomState(0))  # type: ignore[arg-type]
    with pytest.raises(ProtectionVariableError):
        pram(frame, "z", np.random.default_rng(0))
    with pytest.raises(ProtectionParameterError, match="alpha"):
        pram(frame, "v", np.random.default_rng(0), alpha=1.5)
    with pytest.raises(ProtectionParameterError, match="min_diagonal"):
        pram(frame, "v", np.random.default_rng(0), min_diagonal={"z": 0.5})
    with pytest.raises(ProtectionParameterError, match="transitions"):
        pram(frame, "v", np.random.default_rng(0), transitions={"w": pd.DataFrame()})
    with pytest.raises(ProtectionParameterError, match="disjoint"):
        pram(frame, "v", np.random.default_rng(0), strata="v")
