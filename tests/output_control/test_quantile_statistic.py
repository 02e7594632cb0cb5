"""The ``quantile`` statistic: its levels are part of the table, the sidecar keeps them, and
the single-unit rule names each quantile by its level (hand-computed tables)."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pandas as pd
import pytest

from output_control.checked import pivot_table
from output_control.exceptions import InvalidTable, OutputRejected
from output_control.policy import load_policy
from output_control.rules import check_table
from output_control.rules.single_unit import check_single_unit_values
from output_control.sidecar import (
    encode_sidecar,
    parse_sidecar,
    render_csv,
    sidecar_document,
)
from output_control.table import Magnitude, SidecarTable, Statistic, TableKind
from output_control.words import ordinal, percentile_words

PARAMS = {"extremes": "fail", "percentiles": "review"}


def quantile_table(levels: tuple[float, ...] | None = (0.1, 0.9),
                   statistic: Statistic = Statistic.QUANTILE) -> SidecarTable:
    """Two groups (A: 3 pupils scoring 1, 2, 3; B: empty) x two levels; hand-computed:
    Q(0.1) of 1, 2, 3 = 1 + 0.2 * 1 = 1.2 and Q(0.9) = 2 + 0.8 * 1 = 2.8."""
    return SidecarTable(
        index=("groupe",), columns=("quantile",),
        row_labels=(("A",), ("B",)), column_labels=(("p10",), ("p90",)),
        rows=((3, 3), (0, 0)), units=((3, 3), (0, 0)),
        kind=TableKind.MAGNITUDE_TABLE, values=((1.2, 2.8), (None, None)),
        magnitude=Magnitude(variable="score", statistic=statistic, top_n=3,
                            totals=((6.0, 6.0), (0.0, 0.0)),
                            top=(((3.0, 2.0, 1.0), (3.0, 2.0, 1.0)), ((), ())),
                            negative=((False, False), (False, False)),
                            missing=((False, False), (False, False)), levels=levels))


@pytest.mark.parametrize(("number", "words"), [
    (1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (10, "10th"), (11, "11th"), (12, "12th"),
    (13, "13th"), (21, "21st"), (22, "22nd"), (90, "90th"), (101, "101st"), (2.5, "2.5th")])
def test_ordinals_follow_english_usage(number: float, words: str) -> None:
    assert ordinal(number) == words


def test_the_median_level_is_named_as_the_median() -> None:
    assert percentile_words(0.5) == "50th percentile (the median)"
    assert percentile_words(0.25) == "25th percentile"


def test_each_non_empty_quantile_cell_is_flagged_with_its_level() -> None:
    verdict = check_single_unit_values(quantile_table(), PARAMS)
    assert verdict.outcome.value == "review"
    assert [(c.cell, c.value, c.message) for c in verdict.cells] == [
        (("A", "p10"), 3, "the 10th percentile of 3 pupils is one pupil's own value (or "
                          "interpolated between two)"),
        (("A", "p90"), 3, "the 90th percentile of 3 pupils is one pupil's own value (or "
                          "interpolated between two)"),
    ]
    assert "percentile" in verdict.message and "median" not in verdict.message


def test_a_quantile_table_follows_the_policys_percentiles_outcome() -> None:
    french = check_table(quantile_table(), load_policy("depp_secret_statistique"))
    verdict = next(v for v in french.verdicts if v.rule == "single_unit_values")
    assert verdict.outcome.value == "fail"


@pytest.mark.parametrize(("levels", "problem"), [
    (None, "one level per column"),
    ((0.1,), "one level per column"),
    ((0.1, 1.0), "strictly between 0 and 1"),
    ((0.0, 0.5), "strictly between 0 and 1"),
    ((0.1, float("nan")), "strictly between 0 and 1"),
])
def test_a_quantile_table_needs_one_valid_level_per_column(
        levels: tuple[float, ...] | None, problem: str) -> None:
    with pytest.raises(InvalidTable, match=problem):
        quantile_table(levels)


def test_only_a_quantile_table_has_levels() -> None:
    with pytest.raises(InvalidTable, match="has no quantile levels"):
        quantile_table((0.1, 0.9), Statistic.MEDIAN)


def test_the_sidecar_keeps_the_levels_and_refuses_them_elsewhere() -> None:
    policy = load_policy("default")
    table = quantile_table()
    csv = render_csv(table)
    table = replace(table, file_name="q.csv", sha256=hashlib.sha256(csv).hexdigest())
    doc = sidecar_document(table, checks=check_table(table, policy), policy=policy)
    assert doc["table"]["magnitude"]["levels"] == [0.1, 0.9]
    back = parse_sidecar(encode_sidecar(doc), "q.csv")
    assert back.magnitude is not None and back.magnitude.levels == (0.1, 0.9)
    doc["table"]["magnitude"]["statistic"] = "median"
    with pytest.raises(OutputRejected, match="unknown keys"):
        parse_sidecar(encode_sidecar(doc), "q.csv")


def test_pivot_table_refuses_quantile_as_an_aggregation() -> None:
    frame = pd.DataFrame({"eleve": ["a"], "g": ["x"], "score": [1.0]})
    with pytest.raises(ValueError, match="quantiles"):
        pivot_table(frame, "score", "g", aggfunc="quantile", name="q")
