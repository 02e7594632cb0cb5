"""``read_output`` fails closed: only a CSV exactly as its sidecar describes it is read, and
``check_output`` turns every refusal into a FAIL verdict instead of skipping the file."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from output_control.checked import crosstab
from output_control.exceptions import OutputRejected
from output_control.policy import load_policy
from output_control.sidecar import check_output, read_output
from output_control.table import Unit
from output_control.verdicts import Outcome
from tests.output_control.factories import events, make_policy

SPEC = {("F", "CP"): (50, 3), ("M", "CP"): (40, 20), ("F", "CE1"): (12, 12)}


@pytest.fixture
def output(tmp_path: Path) -> Path:
    crosstab(
        events(SPEC),
        "sexe",
        "niveau",
        name="table1",
        outputs_dir=tmp_path,
        population={"dataset": "traces-2025"},
        justification="grouped later",
    )
    return tmp_path / "table1.csv"


def _side(csv_path: Path) -> Path:
    return csv_path.with_name(csv_path.name + ".sidecar.json")


def _forge(
    csv_path: Path,
    csv_edit: Callable[[str], str] = lambda s: s,
    doc_edit: Callable[[dict], None] = lambda d: None,
) -> None:
    """Edit the CSV and/or the sidecar as a careful tamperer would: re-hashing the CSV."""
    text = csv_edit(csv_path.read_text())
    csv_path.write_text(text)
    doc = json.loads(_side(csv_path).read_text())
    doc_edit(doc)
    doc["file"]["sha256"] = hashlib.sha256(text.encode()).hexdigest()
    _side(csv_path).write_text(json.dumps(doc))


def _rejected(csv_path: Path, match: str, **kwargs: int) -> None:
    with pytest.raises(OutputRejected, match=match):
        read_output(csv_path, **kwargs)
    result = check_output(csv_path, load_policy("default"), **kwargs)
    assert result.outcome is Outcome.FAIL
    (verdict,) = result.verdicts
    assert verdict.rule == "file_integrity"
    assert verdict.outcome is Outcome.FAIL


def test_sidecar_round_trip_gives_back_table_counts_and_metadata(output: Path) -> None:
    frame, table = read_output(output)
    expected = pd.DataFrame(
        [[12, 50], [0, 40]],
        index=pd.Index(["F", "M"], name="sexe"),
        columns=pd.Index(["CE1", "CP"], name="niveau"),
    )
    pd.testing.assert_frame_equal(frame, expected)
    assert table.rows == ((12, 50), (0, 40))
    assert table.units == ((12, 3), (0, 20))
    assert table.unit is Unit.DISTINCT_PUPILS
    assert table.file_name == "table1.csv"
    assert table.sha256 == hashlib.sha256(output.read_bytes()).hexdigest()
    assert table.metadata["population"] == {"dataset": "traces-2025"}
    assert table.metadata["justification"] == "grouped later"
    assert table.metadata["checks"].outcome is Outcome.FAIL


def test_check_output_records_integrity_then_rules(output: Path) -> None:
    result = check_output(output, load_policy("default"))
    assert [(v.rule, v.outcome) for v in result.verdicts] == [
        ("file_integrity", Outcome.PASS),
        ("minimum_count", Outcome.FAIL),
        ("zeros", Outcome.REVIEW),
        ("class_disclosure", Outcome.FAIL),
        ("rounding", Outcome.PASS),
    ]
    assert [c.cell for c in result.verdicts[1].cells] == [("F", "CP")]
    assert check_output(output, make_policy(threshold=3)).outcome is Outcome.PASS


def test_multi_level_table_round_trips(tmp_path: Path) -> None:
    df = events(SPEC).assign(secteur=lambda d: ["public", "prive"] * (len(d) // 2))
    got = crosstab(df, ["sexe", "secteur"], ["niveau"], name="m", outputs_dir=tmp_path)
    frame, _ = read_output(tmp_path / "m.csv")
    pd.testing.assert_frame_equal(frame, got)


def test_tampered_csv_is_detected_by_its_hash(output: Path) -> None:
    output.write_text(output.read_text().replace("50", "51"))
    _rejected(output, "does not match its sidecar")


def test_rehashed_csv_whose_counts_differ_from_the_sidecar_is_rejected(output: Path) -> None:
    _forge(output, csv_edit=lambda s: s.replace("50", "51"))
    _rejected(output, r"cell \(F, CP\) reads '51' but the sidecar counts 50 rows")


def test_rehashed_csv_with_changed_label_is_rejected(output: Path) -> None:
    _forge(output, csv_edit=lambda s: s.replace("CE1", "CE2"))
    _rejected(output, "reads 'CE2' but the sidecar gives 'CE1'")


def test_markup_in_a_csv_label_is_rejected(output: Path) -> None:
    _forge(output, csv_edit=lambda s: s.replace("CE1", "<script>x</script>"))
    _rejected(output, "markup")


def test_markup_in_a_sidecar_label_is_rejected(output: Path) -> None:
    def both(doc: dict) -> None:
        doc["table"]["column_labels"][0] = ["<b>CE1</b>"]

    _forge(output, csv_edit=lambda s: s.replace("CE1", "<b>CE1</b>"), doc_edit=both)
    _rejected(output, "markup")


@pytest.mark.parametrize(
    "label", ["=1+1", "+cmd", "@SUM(A1)", "-2+3", " =1", "javascript:alert(1)", "a\tb", "a\u202eb"]
)
def test_formula_or_script_label_is_rejected(label: str, output: Path) -> None:
    def both(doc: dict) -> None:
        doc["table"]["column_labels"][0] = [label]

    _forge(output, csv_edit=lambda s: s.replace("CE1", f'"{label}"'), doc_edit=both)
    _rejected(output, "injection|script|control character|markup")


def test_negative_number_label_is_allowed(tmp_path: Path) -> None:
    df = events(SPEC).assign(niveau=lambda d: d["niveau"].map({"CP": "-1", "CE1": "2"}))
    crosstab(df, "sexe", "niveau", name="n", outputs_dir=tmp_path)
    frame, _ = read_output(tmp_path / "n.csv")
    assert list(frame.columns) == ["-1", "2"]


def test_missing_sidecar_is_rejected(output: Path) -> None:
    _side(output).unlink()
    _rejected(output, "sidecar 'table1.csv.sidecar.json' is missing")


def test_missing_csv_is_rejected(output: Path) -> None:
    output.unlink()
    _rejected(output, "CSV file 'table1.csv' is missing")


def test_oversize_csv_is_rejected(output: Path) -> None:
    _rejected(output, "larger than 10 bytes", max_bytes=10)


def test_symlinked_csv_is_rejected(output: Path, tmp_path: Path) -> None:
    link = tmp_path / "link.csv"
    os.symlink(output, link)
    _side(output).rename(_side(link))
    _rejected(link, "symbolic link")


def test_sidecar_of_another_file_is_rejected(output: Path) -> None:
    other = output.with_name("other.csv")
    other.write_bytes(output.read_bytes())
    _side(other).write_bytes(_side(output).read_bytes())
    _rejected(other, "belongs to another file")


def test_non_csv_output_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "plot.png").write_bytes(b"\x89PNG")
    _rejected(tmp_path / "plot.png", "not a checkable output name")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d.update(format="enclave-output-sidecar/0"), "unknown format"),
        (lambda d: d.update(kind="regression"), "unknown kind"),
        (lambda d: d.update(surprise=1), "unknown keys"),
        (lambda d: d.pop("checks"), "lacks"),
        (lambda d: d["table"].update(unit="schools"), "invalid"),
        (lambda d: d["table"]["units"][0].__setitem__(0, 13), "more units"),
        (lambda d: d["table"]["units"][1].__setitem__(1, 0), "rows but 0 units"),
        (lambda d: d["table"]["rows"][0].__setitem__(0, "12"), "non-negative integer"),
        (lambda d: d["table"]["rows"][0].__setitem__(0, True), "non-negative integer"),
        (lambda d: d["table"]["rows"].pop(), "grid"),
        (lambda d: d["checks"].update(outcome="pass"), "verdicts give 'fail'"),
        (lambda d: d["file"].update(bytes=1), "file.bytes"),
        (lambda d: d.update(population=[]), "population"),
    ],
)
def test_malformed_sidecar_is_rejected(edit, match: str, output: Path) -> None:
    _forge(output, doc_edit=edit)
    _rejected(output, match)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"format": 1, "format": 2}', "duplicate key"),
        (b'{"x": NaN}', "NaN"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[]", "JSON object"),
    ],
)
def test_unparseable_sidecar_is_rejected(raw: bytes, match: str, output: Path) -> None:
    _side(output).write_bytes(raw)
    _rejected(output, match)


def test_unparseable_csv_is_rejected(output: Path) -> None:
    _forge(output, csv_edit=lambda s: s + '"unterminated\n')
    _rejected(output, "cannot be parsed|lines")


def test_non_utf8_csv_is_rejected(output: Path) -> None:
    data = output.read_bytes().replace(b"CE1", b"CE\xff")
    output.write_bytes(data)
    doc = json.loads(_side(output).read_text())
    doc["file"]["sha256"] = hashlib.sha256(data).hexdigest()
    _side(output).write_text(json.dumps(doc))
    _rejected(output, "cannot be parsed")


def test_check_output_fails_closed_on_unexpected_errors(output: Path, monkeypatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("output_control.sidecar.read_output", boom)
    result = check_output(output, load_policy("default"))
    assert result.outcome is Outcome.FAIL
    assert "disk on fire" in result.verdicts[0].message


_event_rows = st.lists(
    st.tuples(
        st.sampled_from(["F", "M"]), st.sampled_from(["CP", "CE1", "CE2"]), st.integers(0, 40)
    ),
    min_size=1,
    max_size=250,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=_event_rows, threshold=st.integers(1, 12))
def test_check_outcome_is_fail_iff_some_cell_has_between_one_and_threshold_minus_one_pupils(
    rows: list[tuple[str, str, int]], threshold: int
) -> None:
    df = pd.DataFrame(rows, columns=["sexe", "niveau", "eleve"])
    pupils = df.groupby(["sexe", "niveau"])["eleve"].nunique()
    expected_fail = bool(((pupils > 0) & (pupils < threshold)).any())
    with tempfile.TemporaryDirectory() as folder:
        crosstab(df, "sexe", "niveau", name="prop", outputs_dir=folder)
        result = check_output(Path(folder) / "prop.csv", make_policy(threshold=threshold))
    assert result.verdicts[0].outcome is Outcome.PASS  # the file itself is intact
    assert (result.outcome is Outcome.FAIL) is expected_fail
