"""The minimum-count rule: 1..threshold-1 units fail, threshold passes, zero is not its concern."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from output_control.rules import check_table
from output_control.table import SidecarTable
from output_control.verdicts import Outcome, RuleVerdict
from tests.output_control.factories import make_policy, make_table


def _verdict(table: SidecarTable, **policy: object) -> RuleVerdict:
    result = check_table(table, make_policy(**policy))  # type: ignore[arg-type]
    (verdict,) = result.verdicts
    assert verdict.outcome is result.outcome
    return verdict


def test_cell_one_below_threshold_fails() -> None:
    verdict = _verdict(make_table({("F", "CP"): 9, ("M", "CP"): 40}))
    assert verdict.outcome is Outcome.FAIL
    assert [c.cell for c in verdict.cells] == [("F", "CP")]
    assert verdict.cells[0].value == 9
    assert verdict.message == "1 cell counts fewer than 10 distinct pupils"


def test_cell_exactly_at_threshold_passes() -> None:
    verdict = _verdict(make_table({("F", "CP"): 10, ("M", "CP"): 40}))
    assert verdict.outcome is Outcome.PASS
    assert verdict.cells == ()


def test_cell_of_one_fails() -> None:
    assert _verdict(make_table({("F", "CP"): 1})).outcome is Outcome.FAIL


def test_empty_cell_is_not_a_threshold_failure() -> None:
    verdict = _verdict(make_table({("F", "CP"): 12, ("M", "CE1"): 15}))  # (F,CE1),(M,CP) are 0
    assert verdict.outcome is Outcome.PASS
    assert "or are empty" in verdict.message


def test_every_failing_cell_is_listed_with_parameters() -> None:
    table = make_table({("F", "CP"): 3, ("F", "CE1"): 11, ("M", "CP"): 2, ("M", "CE1"): 9})
    verdict = _verdict(table)
    assert verdict.outcome is Outcome.FAIL
    assert {c.cell: c.value for c in verdict.cells} == {
        ("F", "CP"): 3,
        ("M", "CE1"): 9,
        ("M", "CP"): 2,
    }
    assert verdict.message == "3 cells count fewer than 10 distinct pupils"
    assert verdict.parameters == {"threshold": 10, "unit": "distinct_pupils"}


def test_threshold_counts_distinct_pupils_not_rows() -> None:
    verdict = _verdict(make_table({("F", "CP"): (50, 3), ("M", "CP"): (12, 12)}))
    assert verdict.outcome is Outcome.FAIL
    assert [(c.cell, c.value) for c in verdict.cells] == [(("F", "CP"), 3)]


def test_policy_may_count_rows_instead() -> None:
    table = make_table({("F", "CP"): (50, 3)})
    assert _verdict(table, unit="rows").outcome is Outcome.PASS


def test_threshold_comes_from_the_policy() -> None:
    table = make_table({("F", "CP"): 4})
    assert _verdict(table, threshold=5).outcome is Outcome.FAIL
    assert _verdict(table, threshold=4).outcome is Outcome.PASS


def test_check_result_carries_policy_identity() -> None:
    policy = make_policy(version="v9")
    result = check_table(make_table({("F", "CP"): 20}), policy)
    assert (result.policy_name, result.policy_version, result.policy_sha256) == (
        "test",
        "v9",
        policy.sha256,
    )


_cells = st.dictionaries(
    st.tuples(st.sampled_from(["F", "M", "X"]), st.sampled_from(["CP", "CE1", "CE2", "CM1"])),
    st.integers(0, 30).flatmap(lambda u: st.tuples(st.integers(u, u + 40 if u else 0), st.just(u))),
    min_size=1,
)


@settings(max_examples=300, deadline=None)
@given(cells=_cells, threshold=st.integers(1, 25))
def test_outcome_is_fail_iff_some_cell_has_between_one_and_threshold_minus_one_pupils(
    cells: dict[tuple[str, str], tuple[int, int]], threshold: int
) -> None:
    table = make_table(cells)
    result = check_table(table, make_policy(threshold=threshold))
    expected_fail = any(0 < cell.units < threshold for cell in table.cells)
    assert (result.outcome is Outcome.FAIL) is expected_fail
    assert result.outcome in (Outcome.FAIL, Outcome.PASS)
