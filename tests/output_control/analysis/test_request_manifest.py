"""The release request file a notebook writes (``enclave-release-request/1``): parsed strictly,
every problem named, and turned into what the review workflow's ``submit_request`` takes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from output_control.request_manifest import (
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    InvalidRequestManifest,
    parse_request_manifest,
    read_request_manifest,
    write_request,
)

REASON = "the 90th percentile is of 2,000 pupils and rounded to the unit"


def _doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "justification": "Article on reading scores",
        "files": [
            {"name": "scores.csv", "justification": "Table 1", "exception": None},
            {"name": "p90.csv", "justification": "Table 2",
             "exception": {"rules": ["single_unit_values"], "reason": REASON}},
        ],
    }
    doc.update(changes)
    return doc


def _bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def test_a_valid_request_becomes_the_workflows_arguments() -> None:
    request = parse_request_manifest(_bytes(_doc()))
    files, justification = request.submission()
    assert justification == "Article on reading scores"
    assert files["scores.csv"] == "Table 1"
    assert files["p90.csv"].startswith("Table 2\n\nException requested for single_unit_values")
    assert REASON in files["p90.csv"]
    assert parse_request_manifest(_bytes(request.to_dict())) == request


@pytest.mark.parametrize(("change", "message"), [
    ({"format": "other/1"}, "unknown format"),
    ({"justification": " "}, "justification must be non-empty"),
    ({"files": []}, "1 to 100"),
    ({"extra": 1}, "unknown keys"),
    ({"files": [{"name": "../x.csv", "justification": "j", "exception": None}]}, "not an output"),
    ({"files": [{"name": "t.csv.sidecar.json", "justification": "j", "exception": None}]},
     "not an output"),
    ({"files": [{"name": "a.csv", "justification": "j", "exception": None}] * 2},
     "listed twice"),
    ({"files": [{"name": "a.csv", "justification": "j",
                 "exception": {"rules": ["no_such_rule"], "reason": REASON}}]}, "rule names"),
    ({"files": [{"name": "a.csv", "justification": "j",
                 "exception": {"rules": ["minimum_count"], "reason": "please"}}]},
     "at least 20"),
    ({"files": [{"name": "a.csv", "justification": "j"}]}, "lacks"),
])
def test_invalid_requests_name_the_problem(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequestManifest, match=message):
        parse_request_manifest(_bytes(_doc(**change)))


def test_duplicate_keys_and_non_json_are_refused() -> None:
    with pytest.raises(InvalidRequestManifest, match="duplicate key"):
        parse_request_manifest(b'{"format": "a", "format": "b"}')
    with pytest.raises(InvalidRequestManifest, match="not valid JSON"):
        parse_request_manifest(b"\xff")


def test_write_request_needs_the_files_in_the_outputs_area(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestManifest, match="not a regular file"):
        write_request({"scores.csv": "Table 1"}, "why", outputs_dir=tmp_path)
    assert not (tmp_path / MANIFEST_NAME).exists()
    (tmp_path / "scores.csv").write_text("x\n")
    (tmp_path / "p90.csv").write_text("x\n")
    written = write_request(
        {"scores.csv": "Table 1",
         "p90.csv": ("Table 2", {"rules": ["single_unit_values"], "reason": REASON})},
        "why", outputs_dir=tmp_path)
    assert read_request_manifest(tmp_path) == written
    (tmp_path / "p90.csv").unlink()
    with pytest.raises(InvalidRequestManifest, match=r"p90\.csv"):
        read_request_manifest(tmp_path)


def test_overview_lists_what_the_review_will_see_of_each_output(tmp_path: Path) -> None:
    import numpy as np
    import pandas as pd

    from anonymization.dp import dp_count
    from output_control.analysis import histogram, write_dp_result
    from output_control.checked import crosstab
    from output_control.request_manifest import overview

    df = pd.DataFrame({"eleve": [f"p{i}" for i in range(30)], "niveau": ["6e", "5e"] * 15,
                       "score": np.linspace(0, 29, 30)})
    crosstab(df, "niveau", name="t", outputs_dir=tmp_path)
    histogram(df, "score", [0, 15, 30], name="h", outputs_dir=tmp_path)
    write_dp_result(dp_count(df, pupil="eleve", epsilon=0.2), name="n", dataset="eleves",
                    outputs_dir=tmp_path)
    (tmp_path / "notes.txt").write_text("raw numbers\n")
    rows = {row["file"]: (row["kind"], row["automatic checks"]) for row in overview(tmp_path)}
    assert rows["t.csv"] == ("table", "pass")
    assert rows["h.csv"] == ("table", "pass")
    assert rows["h.png"] == ("figure", "drawn from h.csv")
    assert rows["n.csv"] == ("differential privacy",
                             "epsilon 0.2 charged to eleves when the request is submitted")
    assert rows["notes.txt"][0] == "refused"
