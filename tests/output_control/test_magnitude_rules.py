"""Rules on magnitude tables, on hand-computed cells, each threshold tested exactly at its limit:
p% rule, (n, k) dominance, negative or missing contributions, single-unit statistics."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from output_control.rules import check_table
from output_control.rules.nk_dominance import is_nk_sensitive
from output_control.rules.p_percent import is_p_sensitive
from output_control.table import SidecarTable
from output_control.verdicts import Outcome, RuleVerdict
from tests.output_control.factories import make_magnitude_table, rules_policy

P10 = {"p_percent": {"p": 10}}
NK = {"nk_dominance": {"pairs": [{"n": 2, "k": 90}, {"n": 1, "k": 85}]}}


def _verdict(table: SidecarTable, rules: dict) -> RuleVerdict:
    (verdict,) = check_table(table, rules_policy(rules)).verdicts
    return verdict


def _one_cell(contributions: list[float], **kwargs: object) -> SidecarTable:
    return make_magnitude_table({("F", "CP"): contributions}, **kwargs)  # type: ignore[arg-type]


# p% rule: sensitive iff X - x1 - x2 < p/100 * x1 (p = 10).
@pytest.mark.parametrize(
    ("contributions", "outcome"),
    [
        ([100, 50, 10], Outcome.PASS),  # 160 - 100 - 50 = 10 = 10% of 100: exactly at the limit
        ([100, 50, 9], Outcome.FAIL),  # 9 < 10
        ([100, 50, 11], Outcome.PASS),
        ([100, 50, 4, 4, 2], Outcome.PASS),  # the rest adds up to 10: at the limit again
        ([100, 50, 4, 4, 1], Outcome.FAIL),
        ([1000, 999, 99], Outcome.FAIL),  # the second largest is irrelevant to the bound
        ([7], Outcome.FAIL),  # a lone contributor is always disclosed
        ([0], Outcome.PASS),  # ... unless it contributes nothing
        ([0, 0, 0], Outcome.PASS),
        ([30, 30, 30, 30], Outcome.PASS),
    ],
)
def test_p_percent_rule_on_hand_computed_cells(contributions: list[float], outcome: Outcome):
    verdict = _verdict(_one_cell(contributions), P10)
    assert verdict.outcome is outcome
    assert verdict.parameters == {"p": 10.0}
    assert [c.cell for c in verdict.cells] == ([("F", "CP")] if outcome is Outcome.FAIL else [])


def test_p_percent_finding_states_the_share_and_the_rule_in_plain_words() -> None:
    verdict = _verdict(_one_cell([100, 50, 9]), P10)
    (finding,) = verdict.cells
    assert finding.value == 9.0
    assert finding.message == (
        "the contributions other than the two largest add up to 9.0% of the largest, less "
        "than 10%"
    )
    assert verdict.message == "1 cell fails the p% rule (p = 10%)"


def test_p_percent_is_exact_at_the_limit_for_any_p_and_scale() -> None:
    for p in (1, 5, 10, 15, 25):
        for x1 in (100, 300, 1000, 12_345):
            x2 = x1 // 2
            rest = p * x1 / 100
            assert not is_p_sensitive(x1 + x2 + rest, x1, x2, p)
            assert is_p_sensitive(x1 + x2 + rest - 1, x1, x2, p)


def test_p_percent_applies_to_means_but_not_to_medians() -> None:
    assert _verdict(_one_cell([100, 50, 9], statistic="mean"), P10).outcome is Outcome.FAIL
    verdict = _verdict(_one_cell([100, 50, 9], statistic="median"), P10)
    assert verdict.outcome is Outcome.PASS
    assert verdict.message.startswith("not applicable")


# (n, k) dominance: sensitive iff the n largest exceed k% of the total.
@pytest.mark.parametrize(
    ("contributions", "outcome", "value"),
    [
        ([60, 30, 10], Outcome.PASS, None),  # top 2 = 90% exactly; top 1 = 60%
        ([60, 31, 9], Outcome.FAIL, 91.0),  # top 2 = 91% > 90%
        ([85, 5, 5, 5], Outcome.PASS, None),  # top 1 = 85% exactly, top 2 = 90% exactly
        ([86, 2, 2, 2, 2, 2, 2, 2], Outcome.FAIL, 86.0),  # top 1 = 86% > 85%; top 2 = 88%
        ([50], Outcome.FAIL, 100.0),  # fewer contributors than n: all of the cell
        ([0, 0], Outcome.PASS, None),
    ],
)
def test_nk_dominance_on_hand_computed_cells(contributions, outcome, value) -> None:
    verdict = _verdict(_one_cell(contributions), NK)
    assert verdict.outcome is outcome
    assert [c.value for c in verdict.cells] == ([] if value is None else [value])


def test_nk_finding_names_the_pair_that_fired() -> None:
    (finding,) = _verdict(_one_cell([86, 2, 2, 2, 2, 2, 2, 2]), NK).cells
    assert finding.message == "the largest contribution makes up 86.0% of the cell, more than 85%"
    (finding,) = _verdict(_one_cell([60, 31, 9]), NK).cells
    assert finding.message == "the 2 largest contributions make up 91.0% of the cell, more than 90%"


def test_nk_dominance_is_exact_at_the_limit() -> None:
    for n, k in ((1, 85), (2, 90), (3, 95)):
        for total in (100, 200, 1000, 777):
            top = (k * total / 100 / n,) * n
            assert not is_nk_sensitive(total, top, n, k)
            bigger = (top[0] + 1, *top[1:])
            assert is_nk_sensitive(total, bigger, n, k)


def test_nk_needs_as_many_recorded_contributions_as_its_largest_n() -> None:
    table = _one_cell([10, 10, 10, 10, 10], top_n=2)
    verdict = _verdict(table, {"nk_dominance": {"pairs": [{"n": 3, "k": 90}]}})
    assert verdict.outcome is Outcome.FAIL
    assert "records only the 2 largest" in verdict.message


def test_dominance_with_negative_contributions_is_undefined_and_reviewed() -> None:
    table = make_magnitude_table({("F", "CP"): [100, -20, 30], ("F", "CE1"): [30, 30, 30, 30]})
    for rules in (P10, NK):
        verdict = _verdict(table, rules)
        assert verdict.outcome is Outcome.REVIEW
        assert [c.cell for c in verdict.cells] == [("F", "CP")]
        assert "undefined" in verdict.cells[0].message


def test_sensitive_cells_fail_even_beside_undefined_ones() -> None:
    table = make_magnitude_table({("F", "CP"): [100, -20, 30], ("F", "CE1"): [100, 1]})
    verdict = _verdict(table, P10)
    assert verdict.outcome is Outcome.FAIL
    assert {c.cell for c in verdict.cells} == {("F", "CP"), ("F", "CE1")}


# Negative or missing contributions.
def test_negative_and_missing_contributions_are_listed_for_review() -> None:
    table = make_magnitude_table(
        {("F", "CP"): [5, -1, 3], ("M", "CP"): [4, 4], ("F", "CE1"): [1, 2]},
        missing=frozenset({("M", "CP")}),
    )
    verdict = _verdict(table, {"negative_or_missing": {}})
    assert verdict.outcome is Outcome.REVIEW
    assert [(c.cell, c.message) for c in verdict.cells] == [
        (("F", "CP"), "negative contributions: dominance rules are undefined"),
        (("M", "CP"), "missing values were left out of the statistic"),
    ]
    assert verdict.message == (
        "1 cell with negative contributions; 1 cell with missing values; a controller must "
        "check them"
    )


def test_negative_or_missing_outcomes_come_from_the_policy() -> None:
    table = make_magnitude_table({("F", "CP"): [5, -1]}, missing=frozenset({("F", "CP")}))
    rules = {"negative_or_missing": {"negative": "review", "missing": "fail"}}
    assert _verdict(table, rules).outcome is Outcome.FAIL
    clean = make_magnitude_table({("F", "CP"): [5, 1]})
    assert _verdict(clean, rules).outcome is Outcome.PASS


def test_negative_values_matter_only_where_dominance_is_used() -> None:
    table = make_magnitude_table({("F", "CP"): [5, -1, 3]}, statistic="max")
    assert _verdict(table, {"negative_or_missing": {}}).outcome is Outcome.PASS


# Minima, maxima and medians.
@pytest.mark.parametrize(
    ("statistic", "outcome"),
    [
        ("min", Outcome.FAIL),
        ("max", Outcome.FAIL),
        ("median", Outcome.REVIEW),
        ("mean", Outcome.PASS),
        ("sum", Outcome.PASS),
        ("std", Outcome.PASS),
    ],
)
def test_single_unit_statistics_are_flagged_cell_by_cell(statistic: str, outcome: Outcome):
    table = make_magnitude_table(
        {("F", "CP"): [1, 2, 3] * 5, ("M", "CP"): [4] * 12}, statistic=statistic
    )
    verdict = _verdict(table, {"single_unit_values": {}})
    assert verdict.outcome is outcome
    if outcome is not Outcome.PASS:
        assert [c.cell for c in verdict.cells] == [("F", "CP"), ("M", "CP")]
        assert "one pupil's own value" in verdict.cells[0].message


def test_single_unit_outcomes_come_from_the_policy() -> None:
    table = make_magnitude_table({("F", "CP"): [1, 2, 3]}, statistic="max")
    rules = {"single_unit_values": {"extremes": "review", "percentiles": "fail"}}
    assert _verdict(table, rules).outcome is Outcome.REVIEW


def test_minimum_count_counts_contributors_of_a_magnitude_table() -> None:
    table = make_magnitude_table({("F", "CP"): [1.0] * 9, ("M", "CP"): [1.0] * 10})
    verdict = _verdict(table, {"minimum_count": {"threshold": 10, "unit": "distinct_pupils"}})
    assert verdict.outcome is Outcome.FAIL
    assert [(c.cell, c.value) for c in verdict.cells] == [(("F", "CP"), 9)]


_contributions = st.lists(st.integers(0, 1000), min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(contributions=_contributions, p=st.integers(1, 50))
def test_p_percent_flags_exactly_the_cells_of_its_formula(contributions: list[int], p: int):
    x = sorted(contributions, reverse=True)
    x1, x2 = x[0], (x[1] if len(x) > 1 else 0)
    expected = 100 * (sum(x) - x1 - x2) < p * x1  # integer arithmetic: no rounding at all
    verdict = _verdict(_one_cell([float(v) for v in contributions]), {"p_percent": {"p": p}})
    assert (verdict.outcome is Outcome.FAIL) is expected


@settings(max_examples=300, deadline=None)
@given(contributions=_contributions, n=st.integers(1, 3), k=st.integers(50, 99))
def test_nk_flags_exactly_the_cells_of_its_formula(contributions: list[int], n: int, k: int):
    x = sorted(contributions, reverse=True)
    expected = 100 * sum(x[:n]) > k * sum(x)
    rules = {"nk_dominance": {"pairs": [{"n": n, "k": k}]}}
    verdict = _verdict(_one_cell([float(v) for v in contributions]), rules)
    assert (verdict.outcome is Outcome.FAIL) is expected
