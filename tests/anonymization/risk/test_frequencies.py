"""fk and Fk (sdcMicro freqCalc), missing values matching anything, and k-anonymity counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anonymization.risk import KeyFrequencies, k_anonymity_violations, key_frequencies
from anonymization.risk._grouping import combine, dense_groups
from tests.anonymization.risk.reference import naive_frequencies, sdcmicro_csv

PROPERTIES = settings(deadline=None, max_examples=80)
NAN = np.nan

# sdcMicro's francdat (Capobianchi, Polettini & Lucarelli), typed in: keys Key1..Key4, weight w.
FRANCDAT = pd.DataFrame(
    {
        "Key1": [1, 1, 1, 3, 4, 4, 6, 1],
        "Key2": [2, 2, 2, 3, 3, 3, 2, 2],
        "Key3": [5, 1, 1, 1, 1, 1, 1, 5],
        "Key4": [1, 1, 1, 5, 4, 1, 5, 1],
        "w": [18, 45.5, 39, 17, 541, 8, 5, 92],
    }
)
KEYS = ["Key1", "Key2", "Key3", "Key4"]


def francdat_with_missing() -> pd.DataFrame:
    """sdcMicro's freqCalc example: x[3,5] <- NA; x[4,2] <- x[4,4] <- NA; x[5,6] <- NA; x[6,2]."""
    data = FRANCDAT.astype({k: float for k in KEYS})
    data.loc[2, "Key3"] = NAN
    data.loc[3, ["Key1", "Key2"]] = NAN
    data.loc[4, "Key4"] = NAN
    data.loc[5, "Key1"] = NAN
    return data


# --------------------------------------------------------------------------- hand-computed


def test_fk_counts_records_sharing_the_combination_and_fk_sums_their_weights():
    result = key_frequencies(FRANCDAT, KEYS, weight="w")

    # combinations: (1,2,5,1) rows 1 & 8; (1,2,1,1) rows 2 & 3; rows 4..7 each alone
    assert result.fk.tolist() == [2, 2, 2, 1, 1, 1, 1, 2]
    # Fk: 18 + 92 = 110; 45.5 + 39 = 84.5; the singletons keep their own weight
    assert result.Fk.tolist() == [110, 84.5, 84.5, 17, 541, 8, 5, 110]
    assert (result.n1, result.n2) == (4, 4)


def test_without_weights_the_data_is_a_population_and_big_fk_equals_fk():
    result = key_frequencies(FRANCDAT, KEYS)

    assert result.Fk.tolist() == result.fk.tolist() == [2, 2, 2, 1, 1, 1, 1, 2]


def test_a_missing_key_value_matches_every_value_of_that_key():
    result = key_frequencies(francdat_with_missing(), KEYS, weight="w")

    # rows (Key1..Key4, w): 1 (1,2,5,1) 18 | 2 (1,2,1,1) 45.5 | 3 (1,2,NA,1) 39 |
    # 4 (NA,NA,1,5) 17 | 5 (4,3,1,NA) 541 | 6 (NA,3,1,1) 8 | 7 (6,2,1,5) 5 | 8 (1,2,5,1) 92
    # row 1: itself, row 8, row 3 (NA on Key3)        -> fk 3, Fk 18 + 92 + 39      = 149
    # row 2: itself, row 3                              -> fk 2, Fk 45.5 + 39         = 84.5
    # row 3: itself, rows 1, 2, 8                       -> fk 4, Fk 39 + 18 + 45.5 + 92 = 194.5
    # row 4: itself, row 7, row 5 (NA on Key4)          -> fk 3, Fk 17 + 5 + 541      = 563
    # row 5: itself, rows 4 and 6                       -> fk 3, Fk 541 + 17 + 8      = 566
    # row 6: itself, row 5                              -> fk 2, Fk 8 + 541           = 549
    # row 7: itself, row 4                              -> fk 2, Fk 5 + 17            = 22
    assert result.fk.tolist() == [3, 2, 4, 3, 3, 2, 2, 3]
    assert result.Fk.tolist() == [149, 84.5, 194.5, 563, 566, 549, 22, 149]
    assert result.has_missing


def test_alpha_weighs_matches_through_a_missing_value():
    data = pd.DataFrame({"a": [1, 1, NAN, 2], "b": [1, 1, 1, 1], "w": [2.0, 3.0, 5.0, 7.0]})

    result = key_frequencies(data, ["a", "b"], weight="w", alpha=0.5)

    # complete (1,1) rows: themselves (2) + 0.5 * the NA row -> 2.5; Fk 2 + 3 + 0.5 * 5 = 7.5
    # NA row (NA,1): itself + complete rows matching on b, at full weight: 1 + 3 = 4,
    #   Fk 5 + 2 + 3 + 7 = 17
    # complete (2,1) row: itself + 0.5 * the NA row -> 1.5; Fk 7 + 2.5 = 9.5
    assert result.fk.tolist() == [2.5, 2.5, 4, 1.5]
    assert result.Fk.tolist() == [7.5, 7.5, 17, 9.5]


def test_records_missing_every_key_get_the_sample_size_and_count_in_every_record():
    data = pd.DataFrame({"a": [1, 1, NAN, NAN], "b": [1, NAN, NAN, 2]})

    result = key_frequencies(data, ["a", "b"])

    # row 1 (1,1) complete: itself + row 2 (1,NA) + row 3 (all missing); not row 4 (b)     -> 3
    # row 2 (1,NA): itself + row 1 + row 3 + row 4 (each misses where the other differs)  -> 4
    # row 3 (NA,NA): the sample size                                                      -> 4
    # row 4 (NA,2): itself + row 2 + row 3; not row 1 (b = 1)                              -> 3
    assert result.fk.tolist() == [3, 4, 4, 3]


def test_an_all_missing_record_counts_alpha_and_its_weight_in_complete_records():
    data = pd.DataFrame(
        {"a": [1, 1, 2, NAN], "b": [1, 1, 2, NAN], "w": [2.0, 3.0, 5.0, 10.0]}
    )

    result = key_frequencies(data, ["a", "b"], weight="w", alpha=0.5)

    # (1,1) x2: 2 + 0.5 * 1 = 2.5, Fk 5 + 0.5 * 10 = 10; (2,2): 1.5, Fk 5 + 5 = 10;
    # the all-missing record: fk = n = 4, Fk = sum(w) = 20
    assert result.fk.tolist() == [2.5, 2.5, 1.5, 4]
    assert result.Fk.tolist() == [10, 10, 10, 20]


def test_frequencies_agree_with_local_suppression_counting_on_all_missing_records():
    # sdcMicro's R code (addAllNAtoKeys <- FALSE) would give the complete records fk = 2 and
    # 1 here; its documented definition, which local suppression uses, gives 3 and 2.
    data = pd.DataFrame({"a": [1, 1, 2, NAN], "b": ["x", "x", "y", None]})

    result = key_frequencies(data, ["a", "b"])

    assert result.fk.tolist() == [3, 3, 2, 4]
    assert result.violations(2) == 0


def test_with_a_single_key_complete_records_do_count_the_missing_ones():
    # sdcMicro's freqCalc test "one column with NAs": A = 2,3,NA,2,1,NA,1,2
    data = pd.DataFrame({"A": [2, 3, NAN, 2, 1, NAN, 1, 2]})

    result = key_frequencies(data, "A")

    # value 2: 3 records + 2 missing = 5; value 3: 1 + 2 = 3; value 1: 2 + 2 = 4; NA: n = 8
    assert result.fk.tolist() == [5, 3, 8, 5, 4, 8, 4, 5]


def test_keys_of_any_dtype_are_categories_by_pandas_equality():
    data = pd.DataFrame(
        {
            "dep": ["75", "75", "2A", None],
            "sex": pd.Categorical(["F", "F", "M", "M"]),
            "flag": [True, True, False, False],
        }
    )

    result = key_frequencies(data, ["dep", "sex", "flag"])

    # rows 1 and 2 are identical; row 4 (None, M, False) matches row 3 through the missing dep
    assert result.fk.tolist() == [2, 2, 2, 2]


def test_k_anonymity_violations_count_records_with_fk_below_k():
    result = key_frequencies(FRANCDAT, KEYS, weight="w")

    # fk = 2,2,2,1,1,1,1,2: four records below 2, all eight below 3
    assert result.violations(2) == k_anonymity_violations(result, 2) == 4
    assert k_anonymity_violations(result.fk, 3) == 8
    assert k_anonymity_violations(result, 1) == 0
    # sdcMicro kAnon_violations(weighted = TRUE): Fk < 10 only for weights 8 and 5
    assert result.violations(10, weighted=True) == 2


# --------------------------------------------------------------------------- sdcMicro's tests

SDCMICRO_W = [18.0, 45.5, 39.0, 17.0, 92.0, 8.0, 123.5, 51]


def _columns(values: list[float], n_columns: int) -> pd.DataFrame:
    """An R ``array(values, dim = c(rows, n_columns))``: filled column by column."""
    matrix = np.array(values, dtype=float).reshape(n_columns, -1).T
    return pd.DataFrame(matrix, columns=list("ABCDEFGH"[:n_columns]))


@pytest.mark.parametrize(
    ("values", "n_columns", "weights", "fk", "big_fk"),
    [
        pytest.param(
            [2, 3, 2, 2, 3, 3, 1, 2, 3, 3, 3, 3, 3, 3, 4, 3, 1, 3, 1, 2, 1, 1, 1, 1],
            3,
            SDCMICRO_W,
            [3, 1, 3, 1, 2, 2, 1, 3],
            [108.0, 45.5, 108.0, 17.0, 100.0, 100.0, 123.5, 108.0],
            id="complete",
        ),
        pytest.param(
            [2, 3, 2, 2, 3, 3, 1, 2, 3, 3, 3, 3, 3, 3, 4, 3, 1, 3, NAN, 2, 1, 1, NAN, 1],
            3,
            SDCMICRO_W,
            [3, 1, 4, 2, 2, 2, 1, 3],
            [108.0, 45.5, 125.0, 56.0, 100.0, 100.0, 123.5, 108.0],
            id="missing",
        ),
        pytest.param(
            [
                2,
                3,
                NAN,
                2,
                3,
                3,
                1,
                2,
                3,
                3,
                NAN,
                3,
                3,
                3,
                4,
                3,
                NAN,
                NAN,
                NAN,
                NAN,
                NAN,
                NAN,
                NAN,
                NAN,
            ],
            3,
            SDCMICRO_W,
            [4, 4, 8, 4, 4, 4, 2, 4],
            [125.0, 184.5, 394.0, 125.0, 184.5, 184.5, 162.5, 125.0],
            id="one-column-and-one-row-missing",
        ),
        pytest.param(
            [2, 3, NAN, 2, 1, NAN, 1, 2],
            1,
            SDCMICRO_W,
            [5, 3, 8, 5, 4, 8, 4, 5],
            [133.0, 92.5, 394.0, 133.0, 262.5, 394.0, 262.5, 133.0],
            id="one-key",
        ),
        pytest.param(
            [2, 3, NAN, 2, 3, 3, 1, NAN, 3, 3, NAN, 3, 3, 2, 2, 3, NAN, NAN, 1, 2, NAN, NAN, 4, 4],
            8,
            [18.0, 45.5, 122],
            [1, 2, 2],
            [18.0, 167.5, 167.5],
            id="more-keys-than-records",
        ),
    ],
)
def test_matches_the_expectations_of_sdcmicros_own_freqcalc_tests(
    values, n_columns, weights, fk, big_fk
):
    # expected figures: sdcMicro tests/testthat/test_freqCalc.R (sdcTools/sdcMicro on GitHub)
    data = _columns(values, n_columns)
    data["weight"] = weights

    result = key_frequencies(data, list(data.columns[:n_columns]), weight="weight")

    assert result.fk.tolist() == fk
    assert result.Fk.tolist() == pytest.approx(big_fk)


def test_francdat_files_give_the_frequencies_of_sdcmicros_freqcalc_example():
    # the francdat example of sdcMicro's freqCalc help page, checked by hand above
    complete = key_frequencies(sdcmicro_csv("francdat.csv"), KEYS, weight="w")
    missing = key_frequencies(sdcmicro_csv("francdat_with_na.csv"), KEYS, weight="w")

    assert complete.fk.tolist() == [2, 2, 2, 1, 1, 1, 1, 2]
    assert complete.Fk.tolist() == [110, 84.5, 84.5, 17, 541, 8, 5, 110]
    assert missing.fk.tolist() == [3, 2, 4, 3, 3, 2, 2, 3]
    assert missing.Fk.tolist() == [149, 84.5, 194.5, 563, 566, 549, 22, 149]


# --------------------------------------------------------------------------- properties

small_values = st.one_of(st.none(), st.integers(0, 2))


@st.composite
def frames(draw, *, allow_missing: bool = True, max_keys: int = 4):
    n_keys = draw(st.integers(1, max_keys))
    n = draw(st.integers(1, 25))
    values = small_values if allow_missing else st.integers(0, 2)
    columns = {f"k{j}": draw(st.lists(values, min_size=n, max_size=n)) for j in range(n_keys)}
    data = pd.DataFrame({name: pd.array(v, dtype="Int64") for name, v in columns.items()})
    data["w"] = draw(st.lists(st.floats(1.0, 100.0), min_size=n, max_size=n))
    return data, [f"k{j}" for j in range(n_keys)]


@PROPERTIES
@given(case=frames(allow_missing=False))
def test_without_missing_values_fk_sums_to_n_over_distinct_combinations(case):
    data, keys = case
    result = key_frequencies(data, keys, weight="w")

    per_combination = pd.Series(result.fk).groupby(result.group).first()
    assert per_combination.sum() == len(data)
    assert np.all(result.fk >= 1)
    assert np.all(result.Fk >= result.fk - 1e-9)  # weights >= 1


@PROPERTIES
@given(case=frames(allow_missing=False))
def test_the_fast_path_equals_a_pandas_groupby(case):
    data, keys = case
    result = key_frequencies(data, keys, weight="w")

    grouped = data.groupby(keys)
    assert result.fk.tolist() == grouped["w"].transform("size").astype(float).tolist()
    assert result.Fk == pytest.approx(grouped["w"].transform("sum").to_numpy())


@PROPERTIES
@given(case=frames(), alpha=st.sampled_from([1.0, 0.5, 0.0]))
def test_with_missing_values_frequencies_equal_the_record_by_record_rule(case, alpha):
    data, keys = case
    result = key_frequencies(data, keys, weight="w", alpha=alpha)

    fk, big_fk = naive_frequencies(data, keys, "w", alpha)
    assert result.fk == pytest.approx(fk)
    assert result.Fk == pytest.approx(big_fk)
    assert np.all(result.fk >= 1)
    assert np.all(result.Fk >= result.fk * (1 - 1e-12))


def test_frequencies_are_frozen_results():
    result = key_frequencies(FRANCDAT, KEYS)

    assert isinstance(result, KeyFrequencies)
    with pytest.raises(AttributeError):
        result.alpha = 0.5  # type: ignore[misc]


def test_combining_many_wide_keys_recompresses_instead_of_overflowing():
    rng = np.random.default_rng(0)
    columns = [rng.integers(0, 1_000_000, 500) for _ in range(5)]  # radix product 10^30

    codes, space = combine(columns, [1_000_000] * 5)
    groups, sizes = dense_groups(codes, space)

    expected = pd.DataFrame(np.column_stack(columns)).groupby(list(range(5))).ngroups
    assert len(sizes) == expected
    assert sizes.sum() == 500
    assert groups.max() == expected - 1
