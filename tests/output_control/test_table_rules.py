"""Rules on frequency tables and model outputs, on hand-computed tables: zeros and structural
zeros, class disclosure, rounding, residual degrees of freedom; and which rules run on which
kind of output."""

from __future__ import annotations

from dataclasses import replace

import pytest

from output_control.exceptions import InvalidTable
from output_control.rules import RULES, check_table
from output_control.rules.rounding import inconsistent_cells
from output_control.table import Rounding, SidecarTable, TableKind, round_half_up
from output_control.verdicts import Outcome, RuleVerdict
from tests.output_control.factories import (
    make_magnitude_table,
    make_model_output,
    make_table,
    rules_policy,
)

MIN10 = {"minimum_count": {"threshold": 10, "unit": "distinct_pupils"}}


def _verdict(table: SidecarTable, rules: dict, **top: object) -> RuleVerdict:
    (verdict,) = check_table(table, rules_policy(rules, **top)).verdicts
    return verdict


# Zeros and structural zeros.
def test_an_empty_cell_is_sent_for_review() -> None:
    table = make_table({("F", "CP"): 12, ("M", "CE1"): 15, ("F", "CE1"): 20})  # (M, CP) empty
    verdict = _verdict(table, {"zeros": {}})
    assert verdict.outcome is Outcome.REVIEW
    assert [(c.cell, c.value) for c in verdict.cells] == [(("M", "CP"), 0)]
    assert verdict.message.startswith("1 cell is empty and not declared a structural zero")


def test_a_zero_declared_structural_in_the_sidecar_is_not_flagged() -> None:
    table = make_table({("F", "CP"): 12, ("M", "CE1"): 15, ("F", "CE1"): 20})
    declared = replace(table, structural_zeros=(("M", "CP"),))
    verdict = _verdict(declared, {"zeros": {}})
    assert verdict.outcome is Outcome.PASS
    assert verdict.message == "the only empty cells (1) are declared structural zeros"


def test_a_zero_matching_a_policy_pattern_is_structural() -> None:
    table = make_table({("F", "CP"): 12, ("M", "CE1"): 15, ("F", "CE1"): 20})
    rules = {"zeros": {"outcome": "fail"}}
    assert _verdict(table, rules).outcome is Outcome.FAIL
    matched = [{"sexe": "M", "niveau": "CP"}]
    assert _verdict(table, rules, structural_zeros=matched).outcome is Outcome.PASS
    other_variable = [{"secteur": "prive", "niveau": "CP"}]  # not a variable of this table
    assert _verdict(table, rules, structural_zeros=other_variable).outcome is Outcome.FAIL


def test_a_non_empty_cell_cannot_be_declared_structural() -> None:
    table = make_table({("F", "CP"): 12, ("M", "CP"): 3})
    with pytest.raises(InvalidTable, match="declared a structural zero but counts 3"):
        replace(table, structural_zeros=(("M", "CP"),))
    with pytest.raises(InvalidTable, match="not a cell"):
        replace(table, structural_zeros=(("X", "CP"),))


def test_a_policy_pattern_never_hides_a_non_empty_cell() -> None:
    table = make_table({("F", "CP"): 12, ("M", "CP"): 3})
    verdict = _verdict(table, MIN10, structural_zeros=[{"sexe": "M"}])
    assert verdict.outcome is Outcome.FAIL


# Class disclosure.
def test_a_row_with_all_its_units_in_one_cell_is_class_disclosure() -> None:
    table = make_table(
        {("F", "CP"): 12, ("F", "CE1"): 11, ("M", "CP"): 30, ("M", "CE1"): 0, ("X", "CP"): 0,
         ("X", "CE1"): 14}
    )  # fmt: skip
    verdict = _verdict(table, {"class_disclosure": {}})
    assert verdict.outcome is Outcome.FAIL
    assert [(c.cell, c.value) for c in verdict.cells] == [(("M", "CP"), 30), (("X", "CE1"), 14)]
    assert verdict.cells[0].message == (
        "all 30 units of row (M) are in this cell; its other cells are empty"
    )


def test_a_column_with_all_its_units_in_one_cell_is_class_disclosure() -> None:
    table = make_table({("F", "CP"): 12, ("F", "CE1"): 11, ("M", "CE1"): 25, ("M", "CP"): 0})
    verdict = _verdict(table, {"class_disclosure": {"outcome": "review"}})
    assert verdict.outcome is Outcome.REVIEW
    # row M and column CP each have a single non-empty cell
    assert [(c.cell, c.message.split(" are")[0]) for c in verdict.cells] == [
        (("M", "CE1"), "all 25 units of row (M)"),
        (("F", "CP"), "all 12 units of column (CP)"),
    ]


def test_structural_zeros_do_not_make_class_disclosure() -> None:
    table = make_table({("F", "CP"): 12, ("F", "CE1"): 11, ("M", "CE1"): 25, ("M", "CP"): 0})
    declared = replace(table, structural_zeros=(("M", "CP"),))
    assert _verdict(declared, {"class_disclosure": {}}).outcome is Outcome.PASS


def test_a_one_way_table_with_everyone_in_one_category_is_class_disclosure() -> None:
    table = SidecarTable(
        index=("sexe",),
        columns=(),
        row_labels=(("F",), ("M",)),
        column_labels=((),),
        rows=((40,), (0,)),
        units=((40,), (0,)),
    )
    verdict = _verdict(table, {"class_disclosure": {}})
    assert [c.message for c in verdict.cells] == [
        "all 40 units of the table are in this cell; its other cells are empty"
    ]


def test_no_class_disclosure_without_zeros() -> None:
    table = make_table({("F", "CP"): 12, ("F", "CE1"): 11, ("M", "CP"): 30, ("M", "CE1"): 10})
    assert _verdict(table, {"class_disclosure": {}}).outcome is Outcome.PASS


# Rounding.
@pytest.mark.parametrize(
    ("count", "base", "rounded"),
    [(0, 5, 0), (2, 5, 0), (3, 5, 5), (12, 5, 10), (13, 5, 15), (15, 10, 20), (14, 10, 10)],
)
def test_round_half_up(count: int, base: int, rounded: int) -> None:
    assert round_half_up(count, base) == rounded


def test_a_rounded_table_publishes_rounded_counts_and_redacts_small_cells() -> None:
    table = make_table({("F", "CP"): (23, 12), ("F", "CE1"): (9, 7), ("M", "CP"): (8, 8)})
    rounded = replace(table, rounding=Rounding(base=5, redact_at_most=7))
    assert rounded.published == ((None, 25), (0, 10))  # (F,CE1): 7 pupils, redacted
    verdict = _verdict(rounded, {"rounding": {"base": 5, "redact_at_most": 7}})
    assert verdict.outcome is Outcome.PASS


def test_minimum_count_ignores_redacted_cells_but_not_published_small_ones() -> None:
    table = make_table({("F", "CP"): (23, 12), ("F", "CE1"): (9, 7), ("M", "CP"): (8, 8)})
    rounded = replace(table, rounding=Rounding(base=5, redact_at_most=7))
    verdict = _verdict(rounded, MIN10)
    assert [(c.cell, c.value) for c in verdict.cells] == [(("M", "CP"), 8)]  # 8 > 7: published
    fully = replace(table, rounding=Rounding(base=5, redact_at_most=9))
    assert _verdict(fully, MIN10).outcome is Outcome.PASS


def test_rounding_must_be_at_least_as_coarse_as_the_policy() -> None:
    table = make_table({("F", "CP"): (23, 12)})
    policy = {"rounding": {"base": 5, "redact_at_most": 7}}
    finer = replace(table, rounding=Rounding(base=3, redact_at_most=7))
    verdict = _verdict(finer, policy)
    assert verdict.outcome is Outcome.FAIL
    assert "base 3 is not a multiple of the policy's 5" in verdict.message
    less = replace(table, rounding=Rounding(base=10, redact_at_most=5))
    assert "redacts cells of at most 5 units, the policy asks 7" in _verdict(less, policy).message


def test_an_unrounded_table_fails_only_if_rounding_is_required() -> None:
    table = make_table({("F", "CP"): (23, 12)})
    assert _verdict(table, {"rounding": {"base": 5}}).outcome is Outcome.PASS
    verdict = _verdict(table, {"rounding": {"base": 5, "required": True}})
    assert verdict.outcome is Outcome.FAIL
    assert "mitigation='round'" in verdict.message


@pytest.mark.parametrize(
    ("rows", "units", "published", "problem"),
    [
        (23, 12, 25, None),
        (22, 12, 20, None),  # within half a base
        (23, 12, 24, "not a multiple of 5"),
        (23, 12, 30, "for a true count of 23"),
        (23, 12, None, "redacted though it counts 12 units"),
        (9, 7, None, None),
        (9, 7, 10, "published, not redacted"),
        (0, 0, 0, None),
    ],
)
def test_rounding_consistency_of_one_cell(rows, units, published, problem) -> None:
    why = inconsistent_cells(Rounding(base=5, redact_at_most=7), rows, units, published)
    assert (why is None) if problem is None else (problem in why)


# Residual degrees of freedom.
@pytest.mark.parametrize(
    ("dof", "outcome"), [(9, Outcome.FAIL), (10, Outcome.PASS), (50, Outcome.PASS)]
)
def test_residual_degrees_of_freedom_at_the_threshold(dof: int, outcome: Outcome) -> None:
    verdict = _verdict(make_model_output(dof), {"residual_degrees_of_freedom": {"threshold": 10}})
    assert verdict.outcome is outcome
    if outcome is Outcome.FAIL:
        assert verdict.message == (
            "the ols model has 9 residual degrees of freedom (100 observations), fewer than 10"
        )


# Which rules run on which kind of output.
def test_each_rule_declares_the_kinds_it_checks() -> None:
    kinds = {name: spec.kinds for name, spec in RULES.items()}
    assert kinds["residual_degrees_of_freedom"] == {TableKind.MODEL_OUTPUT}
    assert kinds["p_percent"] == kinds["nk_dominance"] == {TableKind.MAGNITUDE_TABLE}
    assert kinds["rounding"] == {TableKind.FREQUENCY_TABLE}
    assert TableKind.MODEL_OUTPUT not in kinds["minimum_count"]


def test_default_policy_runs_only_the_rules_of_each_kind() -> None:
    from output_control.policy import load_policy

    policy = load_policy("default")
    model = check_table(make_model_output(30), policy)
    assert [v.rule for v in model.verdicts] == ["residual_degrees_of_freedom"]
    magnitude = check_table(make_magnitude_table({("F", "CP"): [5.0] * 12}), policy)
    assert [v.rule for v in magnitude.verdicts] == [
        "minimum_count", "p_percent", "nk_dominance", "zeros", "class_disclosure",
        "negative_or_missing", "single_unit_values",
    ]  # fmt: skip
    assert magnitude.outcome is Outcome.PASS


def test_an_output_no_rule_of_the_policy_checks_goes_to_review() -> None:
    result = check_table(make_model_output(30), rules_policy(MIN10))
    assert result.outcome is Outcome.REVIEW
    (verdict,) = result.verdicts
    assert verdict.message == (
        "no rule of policy test test.1 checks a model output; a controller must check it"
    )


def test_model_output_invariants() -> None:
    with pytest.raises(InvalidTable, match="exceeds"):
        make_model_output(dof=200, n_obs=100)
    with pytest.raises(InvalidTable, match="needs 'model'"):
        replace(make_model_output(10), model=None)
    with pytest.raises(InvalidTable, match="has no 'values'"):
        replace(make_table({("F", "CP"): 3}), values=((1.0,),))
