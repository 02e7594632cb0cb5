"""Verdicts combine to the worst outcome and survive a JSON round trip unchanged."""

from __future__ import annotations

import json

import pytest

from output_control.verdicts import (
    CellFinding,
    CheckResult,
    Outcome,
    RuleVerdict,
    summarise,
    worst,
)


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([Outcome.PASS], Outcome.PASS),
        ([Outcome.PASS, Outcome.REVIEW], Outcome.REVIEW),
        ([Outcome.REVIEW, Outcome.FAIL, Outcome.PASS], Outcome.FAIL),
        ([], Outcome.FAIL),
    ],
)
def test_worst_outcome_is_fail_then_review_then_pass_and_nothing_checked_fails(
    outcomes: list[Outcome], expected: Outcome
) -> None:
    assert worst(outcomes) is expected


def _result() -> CheckResult:
    finding = CellFinding("minimum_count", ("F", "CP"), 3, "3 distinct pupils, fewer than 10")
    return CheckResult.from_verdicts(
        [
            RuleVerdict("file_integrity", Outcome.PASS, "ok"),
            RuleVerdict(
                "minimum_count",
                Outcome.FAIL,
                "1 cell counts fewer than 10 distinct pupils",
                (finding,),
                {"threshold": 10, "unit": "distinct_pupils"},
            ),
        ],
        "default",
        "2026.1",
        "ab" * 32,
    )


def test_check_result_round_trips_through_json() -> None:
    result = _result()
    assert result.outcome is Outcome.FAIL
    again = CheckResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result


def test_check_result_from_dict_refuses_an_outcome_better_than_its_verdicts() -> None:
    data = _result().to_dict()
    data["outcome"] = "pass"
    with pytest.raises(ValueError, match="verdicts give 'fail'"):
        CheckResult.from_dict(data)


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda d: d.pop("verdicts"),
        lambda d: d.update(extra=1),
        lambda d: d["verdicts"][1].update(outcome="maybe"),
        lambda d: d["verdicts"][1]["cells"][0].update(cell="F"),
    ],
)
def test_check_result_from_dict_refuses_malformed_data(corrupt) -> None:
    data = _result().to_dict()
    corrupt(data)
    with pytest.raises(ValueError):
        CheckResult.from_dict(data)


def test_summary_names_failing_rule_and_cells_and_skips_passes() -> None:
    text = summarise(_result())
    assert text == "FAIL minimum_count: 1 cell counts fewer than 10 distinct pupils: (F, CP)"


def test_summary_truncates_long_cell_lists() -> None:
    findings = tuple(CellFinding("r", (str(i),), 1, "") for i in range(12))
    result = CheckResult.from_verdicts([RuleVerdict("r", Outcome.FAIL, "m", findings)], "p", "1")
    assert summarise(result, max_cells=10).endswith("(9), and 2 more")
