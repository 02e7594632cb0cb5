"""The CSV summary controllers read instead of the file: hand-computed on small CSVs."""

from __future__ import annotations

import pytest

from output_control.csv_summary import summarise_csv


def test_summary_by_hand() -> None:
    data = b"niveau,CM2,6E\nsexe,,\nF,24,0\nM,15,7.5\n"
    assert summarise_csv(data) == [
        {"column": "CM2", "count": 2, "min": 15, "min_nonzero": 15, "sum": 39,
         "multiples_of_5": 1, "text_values": 0},
        {"column": "6E", "count": 2, "min": 0, "min_nonzero": 7.5, "sum": 7.5,
         "multiples_of_5": 1, "text_values": 0},
    ]  # "niveau" holds only labels: not summarised


def test_an_all_zero_column_has_no_minimum_above_zero() -> None:
    assert summarise_csv(b"a\n0\n0\n")[0]["min_nonzero"] is None


def test_text_and_markup_are_counted_never_returned() -> None:
    summary = summarise_csv(b"x,<script>alert(1)</script>\n1,<svg/>\n2,3\n")
    assert [s["column"] for s in summary] == ["x", "<script>alert(1)</script>"]
    assert summary[1]["text_values"] == 1 and summary[1]["count"] == 1


@pytest.mark.parametrize("data", [b"\xff\xfe", b"a\n" + b"1\n" * 200_001],
                         ids=["not-utf8", "too-many-rows"])
def test_unreadable_or_oversized_input_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError):
        summarise_csv(data)


def test_an_empty_file_has_no_summary() -> None:
    assert summarise_csv(b"") == []
