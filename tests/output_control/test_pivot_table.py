"""``checked.pivot_table`` computes as pandas does and writes a magnitude table whose sidecar
(format /2) holds what the dominance rules need, never released in the CSV; ``crosstab`` can
round and declare structural zeros; sidecars of format /1 are still read."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from output_control.checked import crosstab, pivot_table
from output_control.exceptions import MissingUnitsError, OutputRejected
from output_control.policy import load_policy
from output_control.sidecar import SIDECAR_FORMAT, check_output, read_output
from output_control.table import Rounding, Statistic, TableKind
from output_control.verdicts import Outcome
from tests.output_control.factories import events, make_policy, rules_policy

# Pupils p1..p4 in (F, CP): p1 has two rows (30 + 40.5 = 70.5), p2 one (20), p3 one (-1),
# p4 one missing value. (M, CP): five pupils of 10. (F, CE1): p5 alone (12).
ROWS = [
    ("F", "CP", "p1", 30.0), ("F", "CP", "p1", 40.5), ("F", "CP", "p2", 20.0),
    ("F", "CP", "p3", -1.0), ("F", "CP", "p4", np.nan),
    *[("M", "CP", f"m{i}", 10.0) for i in range(5)],
    ("F", "CE1", "p5", 12.0),
]  # fmt: skip


def _frame() -> pd.DataFrame:
    return pd.DataFrame(ROWS, columns=["sexe", "niveau", "eleve", "score"])


def _doc(folder: Path, name: str) -> dict:
    return json.loads((folder / f"{name}.csv.sidecar.json").read_text())


def _random(n: int = 600, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "sexe": rng.choice(["F", "M"], n),
            "niveau": rng.choice(["CP", "CE1", "CE2"], n),
            "secteur": rng.choice(["public", "prive"], n),
            "eleve": rng.integers(0, 200, n),
            "score": rng.normal(250, 40, n).round(2),
        }
    )


@pytest.mark.parametrize("aggfunc", ["sum", "mean", "median", "std", "min", "max"])
@pytest.mark.parametrize(
    ("index", "columns"), [("sexe", "niveau"), (["sexe", "secteur"], "niveau")]
)
def test_pivot_table_returns_what_pandas_returns(aggfunc, index, columns, tmp_path) -> None:
    df = _random()
    got = pivot_table(df, "score", index, columns, aggfunc, name="t", outputs_dir=tmp_path)
    expected = pd.pivot_table(df, values="score", index=index, columns=columns, aggfunc=aggfunc)
    pd.testing.assert_frame_equal(got, expected.astype("float64"), check_names=False)
    frame, table = read_output(tmp_path / "t.csv")
    pd.testing.assert_frame_equal(frame, got)
    assert table.kind is TableKind.MAGNITUDE_TABLE
    assert table.magnitude is not None and table.magnitude.statistic is Statistic(aggfunc)


def test_sidecar_records_per_pupil_contributions_and_flags(tmp_path: Path) -> None:
    pivot_table(_frame(), "score", "sexe", "niveau", "sum", name="s", outputs_dir=tmp_path)
    doc = _doc(tmp_path, "s")
    assert doc["format"] == SIDECAR_FORMAT == "enclave-output-sidecar/2"
    assert doc["kind"] == "magnitude_table"
    spec = doc["table"]
    assert spec["row_labels"] == [["F"], ["M"]] and spec["column_labels"] == [["CE1"], ["CP"]]
    assert spec["rows"] == [[1, 4], [0, 5]]  # rows with a value (p4's missing one left out)
    assert spec["units"] == [[1, 3], [0, 5]]  # distinct pupils with a value
    assert spec["values"] == [[12.0, 89.5], [None, 50.0]]
    mag = spec["magnitude"]
    assert (mag["variable"], mag["statistic"], mag["top_n"]) == ("score", "sum", 3)
    assert mag["totals"] == [[12.0, 89.5], [0.0, 50.0]]
    assert mag["top"] == [[[12.0], [70.5, 20.0, -1.0]], [[], [10.0, 10.0, 10.0]]]
    assert mag["negative"] == [[False, True], [False, False]]
    assert mag["missing"] == [[False, True], [False, False]]
    assert spec["rounding"] is None and spec["model"] is None and spec["structural_zeros"] == []


def test_contributions_stay_in_the_sidecar_and_out_of_the_csv(tmp_path: Path) -> None:
    pivot_table(_frame(), "score", "sexe", "niveau", "mean", name="m", outputs_dir=tmp_path)
    text = (tmp_path / "m.csv").read_text()
    assert text == "niveau,CE1,CP\nsexe,,\nF,12,22.375\nM,,10\n"
    assert "70.5" not in text and "40.5" not in text


def test_magnitude_output_is_checked_by_the_magnitude_rules(tmp_path: Path) -> None:
    pivot_table(_frame(), "score", "sexe", "niveau", "sum", name="s", outputs_dir=tmp_path)
    result = check_output(tmp_path / "s.csv", load_policy("default"))
    outcomes = {v.rule: v.outcome for v in result.verdicts}
    assert outcomes == {
        "file_integrity": Outcome.PASS,
        "minimum_count": Outcome.FAIL,
        "p_percent": Outcome.FAIL,  # (F, CE1): one pupil
        "nk_dominance": Outcome.FAIL,
        "zeros": Outcome.REVIEW,  # (M, CE1)
        "class_disclosure": Outcome.FAIL,  # row M, column CE1
        "negative_or_missing": Outcome.REVIEW,
        "single_unit_values": Outcome.PASS,
    }
    p_percent = next(v for v in result.verdicts if v.rule == "p_percent")
    assert [(c.cell, c.value) for c in p_percent.cells] == [
        (("F", "CE1"), 0.0),
        (("F", "CP"), None),  # negative contribution: undefined
    ]


def test_one_way_pivot_table_is_headed_by_its_variable(tmp_path: Path) -> None:
    got = pivot_table(_frame(), "score", "sexe", aggfunc="max", name="o", outputs_dir=tmp_path)
    assert list(got.columns) == ["score"]
    assert (tmp_path / "o.csv").read_text() == "sexe,score\nF,40.5\nM,10\n"
    result = check_output(tmp_path / "o.csv", load_policy("default"))
    single = next(v for v in result.verdicts if v.rule == "single_unit_values")
    assert single.outcome is Outcome.FAIL


def test_top_contributions_follow_the_policy_dominance_rules(tmp_path: Path) -> None:
    policy = rules_policy({"nk_dominance": {"pairs": [{"n": 5, "k": 95}]}})
    pivot_table(_frame(), "score", "sexe", "niveau", "sum", name="t", outputs_dir=tmp_path,
                policy=policy)  # fmt: skip
    mag = _doc(tmp_path, "t")["table"]["magnitude"]
    assert mag["top_n"] == 5
    assert mag["top"][1][1] == [10.0] * 5


def test_numbers_are_written_without_exponents_so_negatives_are_not_formulas(tmp_path) -> None:
    df = pd.DataFrame({"sexe": ["F", "F", "M"], "eleve": [1, 2, 3], "x": [-1e-7, -2e-7, 3e20]})
    pivot_table(df, "x", "sexe", aggfunc="sum", name="e", outputs_dir=tmp_path)
    text = (tmp_path / "e.csv").read_text()
    assert text == "sexe,x\nF,-0.0000003\nM,300000000000000000000\n"
    frame, _ = read_output(tmp_path / "e.csv")
    assert frame.loc["F", "x"] == pytest.approx(-3e-7)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"aggfunc": "count"}, ValueError, "crosstab"),
        ({"aggfunc": np.mean}, ValueError, "aggfunc"),
        ({"values": "sexe"}, ValueError, "value column"),
        ({"values": "nom"}, TypeError, "numeric"),
        ({"values": "absent"}, KeyError, "absent"),
        ({"pupil_id": "pupil"}, MissingUnitsError, "'pupil' is missing"),
        ({"name": "../x"}, ValueError, "not allowed"),
    ],
)
def test_bad_pivot_table_calls_are_refused_and_write_nothing(kwargs, error, match, tmp_path):
    df = _frame().assign(nom="a")
    args = {"values": "score", "index": "sexe", "columns": "niveau", "aggfunc": "mean",
            "name": "t", "outputs_dir": tmp_path} | kwargs  # fmt: skip
    with pytest.raises(error, match=match):
        pivot_table(df, **args)
    assert list(tmp_path.iterdir()) == []


def test_forged_csv_value_of_a_magnitude_table_is_rejected(tmp_path: Path) -> None:
    pivot_table(_frame(), "score", "sexe", "niveau", "mean", name="m", outputs_dir=tmp_path)
    path = tmp_path / "m.csv"
    text = path.read_text().replace("22.375", "22.4")
    path.write_text(text)
    doc = _doc(tmp_path, "m")
    doc["file"]["sha256"] = hashlib.sha256(text.encode()).hexdigest()
    (tmp_path / "m.csv.sidecar.json").write_text(json.dumps(doc))
    with pytest.raises(OutputRejected, match=r"cell \(F, CP\) reads '22.4' but the sidecar gives"):
        read_output(path)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda m: m["top"][1][1].__setitem__(0, 5.0), "decreasing order"),
        (lambda m: m["top"][1][1].pop(), "top contributions for 5 contributors"),
        (lambda m: m["top"][1][1].__setitem__(0, 99.0), "do not fit its total"),
        (lambda m: m.update(statistic="mode"), "invalid"),
        (lambda m: m["negative"][0].__setitem__(0, 1), "true or false"),
        (lambda m: m.update(top_n=1), "top_n"),
        (lambda m: m["totals"][0].__setitem__(0, "12"), "numbers"),
    ],
)
def test_forged_contribution_data_is_rejected(edit, match, tmp_path: Path) -> None:
    pivot_table(_frame(), "score", "sexe", "niveau", "sum", name="s", outputs_dir=tmp_path)
    side = tmp_path / "s.csv.sidecar.json"
    doc = json.loads(side.read_text())
    edit(doc["table"]["magnitude"])
    side.write_text(json.dumps(doc))
    with pytest.raises(OutputRejected, match=match):
        read_output(tmp_path / "s.csv")
    assert check_output(tmp_path / "s.csv", load_policy("default")).outcome is Outcome.FAIL


def test_a_version_1_sidecar_is_still_read_and_checked(tmp_path: Path) -> None:
    crosstab(events({("F", "CP"): (30, 12)}), "sexe", "niveau", name="v1", outputs_dir=tmp_path)
    side = tmp_path / "v1.csv.sidecar.json"
    doc = json.loads(side.read_text())
    doc["format"] = "enclave-output-sidecar/1"
    for key in ("values", "structural_zeros", "rounding", "magnitude", "model"):
        del doc["table"][key]
    side.write_text(json.dumps(doc))
    frame, table = read_output(tmp_path / "v1.csv")
    assert table.units == ((12,),) and frame.loc["F", "CP"] == 30
    result = check_output(tmp_path / "v1.csv", make_policy())
    assert result.outcome is Outcome.PASS


def test_a_version_1_sidecar_cannot_describe_a_magnitude_table(tmp_path: Path) -> None:
    pivot_table(_frame(), "score", "sexe", "niveau", "sum", name="s", outputs_dir=tmp_path)
    side = tmp_path / "s.csv.sidecar.json"
    doc = json.loads(side.read_text())
    doc["format"] = "enclave-output-sidecar/1"
    side.write_text(json.dumps(doc))
    with pytest.raises(OutputRejected, match="frequency tables only"):
        read_output(tmp_path / "s.csv")


# Rounding and structural zeros in crosstab.
def test_crosstab_rounds_as_the_policy_says_and_records_it(tmp_path: Path) -> None:
    df = events({("F", "CP"): (23, 12), ("F", "CE1"): (9, 7), ("M", "CP"): (48, 31),
                 ("M", "CE1"): (11, 11)})  # fmt: skip
    got = crosstab(df, "sexe", "niveau", name="r", outputs_dir=tmp_path, mitigation="round")
    assert got.dtypes.unique().tolist() == [pd.Int64Dtype()]
    assert got.loc["F", "CE1"] is pd.NA and got.loc["F", "CP"] == 25
    assert (tmp_path / "r.csv").read_text() == "niveau,CE1,CP\nsexe,,\nF,,25\nM,10,50\n"
    doc = _doc(tmp_path, "r")
    assert doc["table"]["rounding"] == {"base": 5, "redact_at_most": 9}
    assert doc["table"]["rows"] == [[9, 23], [11, 48]]  # true counts stay in the sidecar
    assert doc["checks"]["outcome"] == "pass"
    frame, table = read_output(tmp_path / "r.csv")
    assert table.rounding == Rounding(5, 9)
    pd.testing.assert_frame_equal(frame, got)
    assert check_output(tmp_path / "r.csv", load_policy("default")).outcome is Outcome.PASS


def test_rounded_csv_forged_to_true_counts_is_rejected(tmp_path: Path) -> None:
    df = events({("F", "CP"): (23, 12)})
    crosstab(df, "sexe", "niveau", name="r", outputs_dir=tmp_path, mitigation="round")
    path = tmp_path / "r.csv"
    text = path.read_text().replace("25", "23")
    path.write_text(text)
    doc = _doc(tmp_path, "r")
    doc["file"]["sha256"] = hashlib.sha256(text.encode()).hexdigest()
    (tmp_path / "r.csv.sidecar.json").write_text(json.dumps(doc))
    result = check_output(path, load_policy("default"))
    assert result.outcome is Outcome.FAIL
    assert "reads '23' but the sidecar gives '25'" in result.verdicts[0].message


def test_rounding_needs_a_policy_that_defines_it(tmp_path: Path) -> None:
    df = events({("F", "CP"): (23, 12)})
    with pytest.raises(ValueError, match="no 'rounding' rule"):
        crosstab(df, "sexe", "niveau", name="r", outputs_dir=tmp_path, mitigation="round",
                 policy="depp_secret_statistique")  # fmt: skip
    with pytest.raises(ValueError, match="mitigation must be"):
        crosstab(df, "sexe", "niveau", name="r", outputs_dir=tmp_path, mitigation="noise")
    assert list(tmp_path.iterdir()) == []


def test_crosstab_declares_structural_zeros(tmp_path: Path) -> None:
    df = events({("F", "CP"): (23, 12), ("F", "CE1"): (19, 17), ("M", "CP"): (48, 31)})
    crosstab(df, "sexe", "niveau", name="z", outputs_dir=tmp_path,
             structural_zeros=[("M", "CE1")], policy=rules_policy({"zeros": {}}))  # fmt: skip
    doc = _doc(tmp_path, "z")
    assert doc["table"]["structural_zeros"] == [["M", "CE1"]]
    assert doc["checks"]["outcome"] == "pass"
    with pytest.raises(ValueError, match="structural zero but counts 12"):
        crosstab(df, "sexe", "niveau", name="y", outputs_dir=tmp_path,
                 structural_zeros=[("F", "CP")])  # fmt: skip


_rows = st.lists(
    st.tuples(
        st.sampled_from(["F", "M"]),
        st.sampled_from(["CP", "CE1"]),
        st.integers(0, 15),
        st.one_of(st.integers(-5, 200).map(float), st.just(float("nan"))),
    ),
    min_size=1,
    max_size=120,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=_rows)
def test_sidecar_contributions_are_the_per_pupil_sums(rows) -> None:
    df = pd.DataFrame(rows, columns=["sexe", "niveau", "eleve", "score"])
    with tempfile.TemporaryDirectory() as folder:
        pivot_table(df, "score", "sexe", "niveau", "sum", name="h", outputs_dir=folder)
        _, table = read_output(Path(folder) / "h.csv")
    present = df.dropna(subset=["score"])
    per_pupil = present.groupby(["sexe", "niveau", "eleve"])["score"].sum()
    cells = per_pupil.index.droplevel(2)
    for cell in table.cells:
        key = (*cell.row, *cell.column)
        sums = per_pupil[cells == key].sort_values(ascending=False)
        assert cell.units == len(sums)
        assert cell.total == pytest.approx(float(sums.sum()))
        assert list(cell.top) == pytest.approx(list(sums.iloc[:3]))
        rows_of_cell = df[(df.sexe == cell.row[0]) & (df.niveau == cell.column[0])]
        assert cell.missing is bool(rows_of_cell.score.isna().any())
        assert cell.negative is bool((rows_of_cell.score < 0).any())
