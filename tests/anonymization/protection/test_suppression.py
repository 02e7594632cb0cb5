"""Local suppression: hand-computed cases, the k-anonymity property against a naive O(n^2)
re-count, and the importance invariant of the module docstring, replayed round by round."""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anonymization.exceptions import (
    AnonymizationError,
    ProtectionInputTypeError,
    ProtectionParameterError,
    ProtectionVariableError,
    TooFewRecordsError,
)
from anonymization.protection import _frequencies, suppression
from anonymization.protection._frequencies import na_aware_frequencies
from anonymization.protection.suppression import (
    LocalSuppressionResult,
    default_importance,
    local_suppression,
)
from anonymization.risk import key_frequencies
from tests.anonymization.protection.naive import (
    all_key_sets,
    frequencies,
    frequency,
    makes_safe,
    rows_of,
)


def check_invariant(
    frame: pd.DataFrame,
    keys: Sequence[Hashable],
    result: LocalSuppressionResult,
    strata: Sequence[object] | None = None,
) -> None:
    """Replay the rounds and check every guarantee of the module docstring naively."""
    k = result.k
    m = len(keys)
    before = rows_of(frame, keys)
    after = rows_of(result.data, keys)
    rank = {keys.index(key): position for position, key in enumerate(result.suppression_order)}

    def cost(keyset: Sequence[int]) -> int:
        return sum(1 << rank[j] for j in keyset)

    state = list(before)
    rounds = result.suppression_round
    for t in range(1, result.rounds + 1):
        before_round = list(state)
        treated = [i for i in range(len(state)) if rounds[i] == t]
        assert treated, f"round {t} treated nobody"
        level = None
        for i in treated:
            chosen = [j for j in range(m) if state[i][j] is not None and after[i][j] is None]
            assert chosen
            stratum = None if strata is None else strata[i]
            assert frequency(state, state[i], strata, stratum) < k, "a safe record was suppressed"
            assert makes_safe(state, i, chosen, k, strata), "the choice does not reach k"
            present = [j for j in range(m) if state[i][j] is not None]
            for size in range(1, len(chosen)):
                for other in all_key_sets(present, size):
                    assert not makes_safe(state, i, other, k, strata), "fewer keys would do"
            for other in all_key_sets(present, len(chosen)):
                if cost(other) < cost(chosen):
                    assert not makes_safe(state, i, other, k, strata), (
                        "a less important set of keys would do"
                    )
            if level is None:
                level = len(chosen)
            if t <= suppression._DEFERRING_ROUNDS:
                assert len(chosen) == level, "records of one round need as many suppressions"
        assert level is not None
        start = frequencies(state, strata)
        for i in treated:
            state[i] = after[i]
        end = frequencies(state, strata)
        for i in range(len(state)):
            if rounds[i] == t or start[i] >= k or end[i] >= k:
                continue
            # unsafe, untreated and still unsafe after the round: it waited because it
            # needed more suppressions than this round's records (first 20 rounds only)
            assert t <= suppression._DEFERRING_ROUNDS, "an unsafe record was left out"
            present = [j for j in range(m) if before_round[i][j] is not None]
            for size in range(1, level + 1):
                for other in all_key_sets(present, size):
                    assert not makes_safe(before_round, i, other, k, strata)
    assert state == after, "a record changed outside the rounds"
    assert min(frequencies(after, strata), default=k) >= k


def random_frame(
    rng: np.random.Generator, n: int, cards: Sequence[int], missing: float = 0.0
) -> pd.DataFrame:
    columns = {}
    for j, card in enumerate(cards):
        values = pd.Series(rng.integers(0, card, n), dtype="Int64")
        if missing:
            values = values.mask(rng.random(n) < missing)
        columns[f"k{j}"] = values
    return pd.DataFrame(columns)


# --------------------------------------------------------------------------- hand-computed


def test_unique_record_loses_its_least_important_distinguishing_key() -> None:
    frame = pd.DataFrame(
        {
            "sex": ["F", "F", "F", "F", "M", "M", "M"],
            "age": ["10", "10", "10", "20", "20", "20", "20"],
        }
    )
    # record 3 (F, 20) is unique; suppressing age gives it (F, NA): 4 matches; suppressing
    # sex gives (NA, 20): 4 matches. Age has more categories? no: both have 2, so the
    # default importance keeps column order: sex 1, age 2 -> age is suppressed first.
    result = local_suppression(frame, ["sex", "age"], 2)
    assert result.importance == (1, 2)
    assert result.suppression_order == ("age", "sex")
    assert result.suppressions.to_dict() == {"sex": 0, "age": 1}
    assert result.data["age"].isna().tolist() == [False] * 3 + [True] + [False] * 3
    assert result.rounds == 1
    assert result.suppression_round.tolist() == [0, 0, 0, 1, 0, 0, 0]
    # with the importance reversed, sex goes first
    swapped = local_suppression(frame, ["sex", "age"], 2, importance=[2, 1])
    assert swapped.suppressions.to_dict() == {"sex": 1, "age": 0}
    assert pd.isna(swapped.data.loc[3, "sex"])
    assert not frame.isna().any().any(), "the input was modified"


def test_importance_does_not_outweigh_a_helpful_key() -> None:
    # records 0 (a, y, 9) and 4 (a, x, 9) are unique. Suppressing z (least important) helps
    # neither: no other record is (a, y, *) or (a, x, *). Suppressing y gives (a, NA, 9),
    # which matches the other one -> 2 = k. Row 0 goes first; then row 4 matches it and is
    # already safe, so it is left alone.
    frame = pd.DataFrame(
        {
            "x": ["a", "b", "b", "b", "a"],
            "y": ["y", "x", "x", "x", "x"],
            "z": [9, 1, 1, 1, 9],
        }
    )
    result = local_suppression(frame, ["x", "y", "z"], 2, importance=[1, 2, 3])
    assert result.suppressions.to_dict() == {"x": 0, "y": 1, "z": 0}
    assert result.data["y"].isna().tolist() == [True, False, False, False, False]
    check_invariant(frame, ["x", "y", "z"], result)


def test_records_made_safe_earlier_in_the_round_are_left_alone() -> None:
    # five pupils alike but for their département, each unique; k = 3. Suppressing the
    # département of the first two makes the other three match them: 3 matches each.
    frame = pd.DataFrame(
        {"sex": ["F"] * 5 + ["M"] * 3, "dep": ["01", "02", "03", "04", "05", "75", "75", "75"]}
    )
    result = local_suppression(frame, ["sex", "dep"], 3)
    assert result.suppression_order == ("dep", "sex")
    assert result.data["dep"].isna().tolist() == [True, True] + [False] * 6
    assert result.rounds == 1
    check_invariant(frame, ["sex", "dep"], result)
    # sdcMicro would suppress all five départements (one per record unsafe at the start of
    # its pass); two are enough: the risk module's freqCalc finds every record at k or more
    assert result.total_suppressions == 2
    assert key_frequencies(result.data, ["sex", "dep"]).fk.tolist() == [5, 5, 3, 3, 3, 3, 3, 3]


def test_default_importance_follows_sdcmicro() -> None:
    frame = pd.DataFrame({"a": [1, 2, 3, 1], "b": [1, 1, 2, 2], "c": [1, 2, 3, 4]})
    # categories: a 3, b 2, c 4 -> b most important (1), then a (2), c suppressed first (3)
    assert default_importance(frame, ["a", "b", "c"]) == (2, 1, 3)
    # ties keep column order: the earlier key is more important
    assert default_importance(frame, ["b", "a"]) == (1, 2)


def test_missing_values_are_wildcards_and_are_not_counted_as_suppressions() -> None:
    frame = pd.DataFrame({"a": [1, 1, None, 2], "b": [1, 2, 2, 2]}, dtype="Int64")
    # frequencies: (1,1): matches (NA,2)? no, b differs -> 1 ... record 0 unique
    assert frequencies(rows_of(frame, ["a", "b"])) == [1, 2, 3, 2]
    result = local_suppression(frame, ["a", "b"], 2)
    assert result.missing_before.to_dict() == {"a": 1, "b": 0}
    assert result.total_suppressions == 1
    check_invariant(frame, ["a", "b"], result)


def test_already_k_anonymous_data_is_untouched_but_keys_become_nullable() -> None:
    frame = pd.DataFrame({"a": [1, 1, 2, 2], "b": [True, True, False, False], "v": [1, 2, 3, 4]})
    result = local_suppression(frame, ["a", "b"], 2)
    assert result.total_suppressions == 0
    assert result.rounds == 0
    assert str(result.data["a"].dtype) == "Int64"
    assert str(result.data["b"].dtype) == "boolean"
    assert result.data["v"].dtype == np.int64
    assert result.data["a"].tolist() == [1, 1, 2, 2]


def test_strata_are_never_mixed_nor_suppressed() -> None:
    frame = pd.DataFrame({"region": ["N", "N", "N", "S", "S", "S"], "a": [1, 1, 2, 1, 2, 2]})
    result = local_suppression(frame, ["a"], 2, strata="region")
    # in N, (2) is unique; in S, (1) is unique: each loses its value
    assert result.data["a"].isna().tolist() == [False, False, True, True, False, False]
    assert result.data["region"].tolist() == frame["region"].tolist()
    check_invariant(frame, ["a"], result, strata=frame["region"].tolist())


def test_categorical_and_string_keys() -> None:
    frame = pd.DataFrame(
        {
            "c": pd.Categorical(["x", "x", "y", "y", "z"], categories=["z", "y", "x"]),
            "s": pd.Series(["p", "p", "q", "q", "p"], dtype="str"),
        }
    )
    result = local_suppression(frame, ["c", "s"], 2)
    assert isinstance(result.data["c"].dtype, pd.CategoricalDtype)
    check_invariant(frame, ["c", "s"], result)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("k", [1, 0, -3, 2.5, True, "3"])
def test_k_below_two_or_not_an_integer_is_refused(k: object) -> None:
    frame = pd.DataFrame({"a": [1, 1, 1]})
    with pytest.raises(ProtectionParameterError, match="k") as caught:
        local_suppression(frame, ["a"], k)  # type: ignore[arg-type]
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, AnonymizationError)


def test_unknown_key_is_refused_with_the_available_columns() -> None:
    frame = pd.DataFrame({"a": [1, 1, 1]})
    with pytest.raises(ProtectionVariableError, match=r"'b' is not in the data.*'a'"):
        local_suppression(frame, ["a", "b"], 2)


@pytest.mark.parametrize("importance", [[1], [0, 1], [1, 3], [1.0, 2], "ab", None.__class__])
def test_bad_importance_is_refused(importance: object) -> None:
    frame = pd.DataFrame({"a": [1, 1], "b": [1, 1]})
    with pytest.raises(ProtectionParameterError, match="importance"):
        local_suppression(frame, ["a", "b"], 2, importance=importance)  # type: ignore[arg-type]


def test_other_bad_calls() -> None:
    frame = pd.DataFrame({"a": [1, 1, 2], "s": [1, 1, 2]})
    with pytest.raises(ProtectionInputTypeError):
        local_suppression(frame.to_numpy(), ["a"], 2)  # type: ignore[arg-type]
    with pytest.raises(ProtectionParameterError, match="keys"):
        local_suppression(frame, [], 2)
    with pytest.raises(ProtectionParameterError, match="repeats"):
        local_suppression(frame, ["a", "a"], 2)
    with pytest.raises(ProtectionParameterError, match="disjoint"):
        local_suppression(frame, ["a"], 2, strata=["a"])
    with pytest.raises(TooFewRecordsError, match="fewer than k=4"):
        local_suppression(frame, ["a"], 4)
    with pytest.raises(TooFewRecordsError, match=r"stratum \(2,\)"):
        local_suppression(frame, ["a"], 2, strata="s")


def test_empty_data() -> None:
    frame = pd.DataFrame({"a": pd.Series([], dtype="int64")})
    result = local_suppression(frame, ["a"], 3)
    assert len(result.data) == 0
    assert result.total_suppressions == 0


# --------------------------------------------------------------------------- properties

frames = st.builds(
    lambda seed, n, cards, missing: random_frame(np.random.default_rng(seed), n, cards, missing),
    st.integers(0, 2**32 - 1),
    st.integers(3, 60),
    st.lists(st.integers(1, 5), min_size=1, max_size=4),
    st.sampled_from([0.0, 0.0, 0.15]),
)


ENGINES: dict[str, list[tuple[object, str, object]]] = {
    # the per-pattern count tables and the level-by-level choice
    "tables": [(_frequencies, "CALL_COST", 0.0), (suppression, "_EXACT_MAX_RECORDS", 0)],
    # record-by-record comparisons and the exact (histogram) choice
    "direct": [(_frequencies, "CALL_COST", 1.0), (suppression, "_EXACT_MAX_RECORDS", 10**9)],
    # tables with codes densified as if the code space overflowed int64
    "densified": [
        (_frequencies, "CALL_COST", 0.0),
        (_frequencies, "MAX_CODE", 7),
        (suppression, "_EXACT_MAX_RECORDS", 0),
    ],
    "default": [],
}


@contextmanager
def engine(name: str) -> Iterator[None]:
    """Force one of the counting and choosing paths (they must all agree)."""
    with pytest.MonkeyPatch.context() as patch:
        for module, attribute, value in ENGINES[name]:
            patch.setattr(module, attribute, value)
        yield


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=frames, k=st.integers(2, 4), path=st.sampled_from(sorted(ENGINES)), data=st.data())
def test_property_k_anonymity_and_importance_invariant(
    frame: pd.DataFrame, k: int, path: str, data: st.DataObject
) -> None:
    keys = list(frame.columns)
    importance = data.draw(
        st.one_of(
            st.none(),
            st.lists(st.integers(1, len(keys)), min_size=len(keys), max_size=len(keys)),
        )
    )
    with engine(path):
        if len(frame) < k:
            with pytest.raises(TooFewRecordsError):
                local_suppression(frame, keys, k, importance=importance)
            return
        result = local_suppression(frame, keys, k, importance=importance)
    check_invariant(frame, keys, result)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    frame=frames,
    k=st.integers(2, 3),
    seed=st.integers(0, 1000),
    path=st.sampled_from(sorted(ENGINES)),
)
def test_property_with_strata(frame: pd.DataFrame, k: int, seed: int, path: str) -> None:
    rng = np.random.default_rng(seed)
    frame = frame.assign(group=rng.integers(0, 2, len(frame)))
    keys = [c for c in frame.columns if c != "group"]
    sizes = frame["group"].value_counts()
    with engine(path):
        if sizes.min() < k:
            with pytest.raises(TooFewRecordsError):
                local_suppression(frame, keys, k, strata="group")
            return
        result = local_suppression(frame, keys, k, strata="group")
    check_invariant(frame, keys, result, strata=frame["group"].tolist())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=frames, k=st.integers(2, 4))
def test_property_every_path_gives_the_same_result(frame: pd.DataFrame, k: int) -> None:
    if len(frame) < k:
        return
    keys = list(frame.columns)
    results = []
    for path in sorted(ENGINES):
        with engine(path):
            results.append(local_suppression(frame, keys, k))
    for other in results[1:]:
        pd.testing.assert_frame_equal(results[0].data, other.data)
        assert results[0].suppression_round.tolist() == other.suppression_round.tolist()


def test_frequencies_helper_matches_the_naive_count() -> None:
    rng = np.random.default_rng(7)
    frame = random_frame(rng, 60, [3, 4, 2], missing=0.2)
    keys = list(frame.columns)
    fast = na_aware_frequencies(frame, keys)
    assert fast.tolist() == frequencies(rows_of(frame, keys))


@pytest.mark.parametrize("path", sorted(ENGINES))
def test_frequencies_on_larger_data_agree_with_a_direct_count(path: str) -> None:
    # 3,000 records: the count tables (dense and hashed) against a vectorised direct count
    rng = np.random.default_rng(11)
    frame = random_frame(rng, 3000, [2, 7, 40, 300], missing=0.05)
    keys = list(frame.columns)
    with engine(path):
        fast = na_aware_frequencies(frame, keys)
    values = [frame[c].to_numpy(dtype=float, na_value=np.nan) for c in keys]
    for i in rng.choice(len(frame), 200, replace=False):
        same = np.ones(len(frame), dtype=bool)
        for column in values:
            if not np.isnan(column[i]):
                same &= (column == column[i]) | np.isnan(column)
        assert fast[i] == same.sum()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=frames, k=st.integers(2, 4))
def test_property_after_suppression_risk_frequencies_reach_k_for_every_record(
    frame: pd.DataFrame, k: int
) -> None:
    """The risk module's freqCalc (missing matches anything, records missing every key
    included) and local suppression count alike: after suppression to k no record is below k."""
    keys = list(frame.columns)
    assert key_frequencies(frame, keys).fk.tolist() == na_aware_frequencies(frame, keys).tolist()
    if len(frame) < k:
        return
    result = local_suppression(frame, keys, k)
    frequencies = key_frequencies(result.data, keys)
    assert frequencies.fk.min() >= k
    assert frequencies.violations(k) == 0
