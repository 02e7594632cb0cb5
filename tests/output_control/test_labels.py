"""Label safety: markup, scripts, formulas, control characters and long text are refused."""

from __future__ import annotations

import pytest

from output_control.labels import MAX_LABEL_LENGTH, label_problem


@pytest.mark.parametrize(
    "label",
    ["CP", "Île-de-France", "", "-1", "+2.5", "0", "a-b", "> 60 ans", "Metadata: x", "x" * 200],
)
def test_ordinary_labels_are_safe(label: str) -> None:
    assert label_problem(label) is None


@pytest.mark.parametrize(
    ("label", "reason"),
    [
        ("<img src=x>", "markup"),
        ("a < b", "markup"),
        ("JavaScript:alert(1)", "script"),
        ("java script:x", "script"),
        ("=SUM(A1)", "formula"),
        ("+1+1", "formula"),
        ("-1+1", "formula"),
        ("@cmd", "formula"),
        ("  =1", "formula"),
        ("\t=1", "control"),
        ("line\nbreak", "control"),
        ("abc\u202edef", "control"),
        ("x" * (MAX_LABEL_LENGTH + 1), "longer"),
    ],
)
def test_unsafe_labels_are_refused_with_their_reason(label: str, reason: str) -> None:
    problem = label_problem(label)
    assert problem is not None
    assert reason in problem
