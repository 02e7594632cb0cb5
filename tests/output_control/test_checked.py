"""``checked.crosstab`` returns what pandas returns and writes the CSV with a faithful sidecar."""

from __future__ import annotations

import hashlib
import json
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from output_control.checked import crosstab
from output_control.exceptions import InvalidOutputName, InvalidTable, MissingUnitsError
from output_control.sidecar import SIDECAR_FORMAT
from tests.output_control.factories import events, make_policy


def _frame(n: int = 400, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "sexe": rng.choice(["F", "M"], n),
            "niveau": rng.choice(["CP", "CE1", "CE2"], n),
            "secteur": rng.choice(["public", "prive"], n),
            "eleve": rng.integers(0, 150, n),
        }
    )


def _sidecar(folder: Path, name: str) -> dict:
    return json.loads((folder / f"{name}.csv.sidecar.json").read_text())


@pytest.mark.parametrize(
    ("index", "columns"),
    [("sexe", "niveau"), (["sexe", "secteur"], "niveau"), ("sexe", ["niveau", "secteur"])],
)
def test_crosstab_returns_the_same_table_as_pandas(index, columns, tmp_path: Path) -> None:
    df = _frame()
    got = crosstab(df, index, columns, name="t", outputs_dir=tmp_path)
    as_list = [index] if isinstance(index, str) else index
    cols = [columns] if isinstance(columns, str) else columns
    expected = pd.crosstab([df[c] for c in as_list], [df[c] for c in cols])
    pd.testing.assert_frame_equal(got, expected)


def test_crosstab_writes_csv_and_sidecar_describing_it(tmp_path: Path) -> None:
    df = _frame()
    crosstab(
        df,
        "sexe",
        "niveau",
        name="by_sex",
        outputs_dir=tmp_path,
        population={"dataset": "panel-2024", "extract_version": 3, "filters": ["public"]},
        justification="needed for table 2 of the paper",
    )
    csv_bytes = (tmp_path / "by_sex.csv").read_bytes()
    doc = _sidecar(tmp_path, "by_sex")
    assert doc["format"] == SIDECAR_FORMAT
    assert doc["kind"] == "frequency_table"
    assert doc["file"] == {
        "name": "by_sex.csv",
        "sha256": hashlib.sha256(csv_bytes).hexdigest(),
        "bytes": len(csv_bytes),
    }
    assert doc["table"]["index"] == ["sexe"]
    assert doc["table"]["columns"] == ["niveau"]
    assert doc["table"]["unit_column"] == "eleve"
    expected_units = df.groupby(["sexe", "niveau"])["eleve"].nunique().unstack()
    assert doc["table"]["units"] == expected_units.to_numpy().tolist()
    assert doc["population"]["dataset"] == "panel-2024"
    assert doc["justification"] == "needed for table 2 of the paper"
    assert doc["policy"]["name"] == "default"
    assert doc["checks"]["policy_version"] == doc["policy"]["version"]
    assert doc["created_at"].endswith("Z")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["by_sex.csv", "by_sex.csv.sidecar.json"]


def test_crosstab_counts_distinct_pupils_not_rows(tmp_path: Path, capsys) -> None:
    df = events({("F", "CP"): (50, 3), ("M", "CP"): (40, 20), ("F", "CE1"): (12, 12)})
    table = crosstab(df, "sexe", "niveau", name="events", outputs_dir=tmp_path)
    assert table.loc["F", "CP"] == 50
    checks = _sidecar(tmp_path, "events")["checks"]
    assert checks["outcome"] == "fail"
    (verdict,) = [v for v in checks["verdicts"] if v["rule"] == "minimum_count"]
    assert [(c["cell"], c["value"]) for c in verdict["cells"]] == [(["F", "CP"], 3)]
    out = capsys.readouterr().out
    assert "FAIL minimum_count: 1 cell counts fewer than 10 distinct pupils: (F, CP)" in out


def test_crosstab_reports_pass_when_every_cell_is_large(tmp_path: Path, capsys) -> None:
    df = events({("F", "CP"): (30, 10), ("M", "CP"): (40, 20)})
    crosstab(df, "sexe", "niveau", name="ok", outputs_dir=tmp_path)
    assert _sidecar(tmp_path, "ok")["checks"]["outcome"] == "pass"
    assert "PASS" in capsys.readouterr().out


def test_crosstab_one_way_table_has_a_count_column(tmp_path: Path) -> None:
    df = events({("F", "CP"): (30, 10), ("M", "CP"): (40, 20)})
    got = crosstab(df, "sexe", name="oneway", outputs_dir=tmp_path)
    assert list(got.columns) == ["count"]
    assert got["count"].to_dict() == {"F": 30, "M": 40}
    assert (tmp_path / "oneway.csv").read_text() == "sexe,count\nF,30\nM,40\n"


def test_crosstab_without_pupil_column_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    df = _frame().drop(columns="eleve")
    with pytest.raises(MissingUnitsError, match="'eleve' is missing"):
        crosstab(df, "sexe", "niveau", name="t", outputs_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_crosstab_with_missing_pupil_ids_is_refused(tmp_path: Path) -> None:
    df = _frame().astype({"eleve": "float"})
    df.loc[3, "eleve"] = np.nan
    with pytest.raises(MissingUnitsError, match="missing values"):
        crosstab(df, "sexe", "niveau", name="t", outputs_dir=tmp_path)


def test_crosstab_uses_the_given_pupil_column(tmp_path: Path) -> None:
    df = _frame().rename(columns={"eleve": "pupil"})
    crosstab(df, "sexe", "niveau", pupil_id="pupil", name="t", outputs_dir=tmp_path)
    assert _sidecar(tmp_path, "t")["table"]["unit_column"] == "pupil"


@pytest.mark.parametrize(
    "name", ["", "../escape", "a/b", ".hidden", "a..b", "x" * 101, "tab\tle", "é", "-dash"]
)
def test_bad_output_names_are_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidOutputName) as raised:
        crosstab(_frame(), "sexe", "niveau", name=name, outputs_dir=tmp_path)
    assert isinstance(raised.value, ValueError)
    assert list(tmp_path.iterdir()) == []


def test_unsafe_label_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    df = _frame()
    df.loc[0, "niveau"] = '=HYPERLINK("http://x")'
    with pytest.raises(InvalidTable, match="formula injection"):
        crosstab(df, "sexe", "niveau", name="t", outputs_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_outputs_dir_defaults_to_the_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ENCLAVE_OUTPUTS_DIR", str(tmp_path / "env_out"))
    crosstab(_frame(), "sexe", "niveau", name="t")
    assert (tmp_path / "env_out" / "t.csv").exists()


def test_outputs_dir_falls_back_to_local_outputs(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("ENCLAVE_OUTPUTS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    crosstab(_frame(), "sexe", "niveau", name="t")
    assert (tmp_path / "outputs" / "t.csv.sidecar.json").exists()


def test_provenance_records_notebook_and_ipython_cell(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ENCLAVE_NOTEBOOK", "analysis/table2.ipynb")
    shell = types.SimpleNamespace(user_ns={"In": ["", "crosstab(df, 'sexe', name='t')"]})
    fake = types.ModuleType("IPython")
    fake.get_ipython = lambda: shell  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", fake)
    crosstab(_frame(), "sexe", "niveau", name="t", outputs_dir=tmp_path)
    provenance = _sidecar(tmp_path, "t")["provenance"]
    assert provenance["notebook"] == "analysis/table2.ipynb"
    assert provenance["cell_source"] == "crosstab(df, 'sexe', name='t')"


def test_provenance_survives_a_broken_ipython(tmp_path: Path, monkeypatch) -> None:
    fake = types.ModuleType("IPython")
    fake.get_ipython = lambda: 1 / 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", fake)
    crosstab(_frame(), "sexe", "niveau", name="t", outputs_dir=tmp_path)
    assert _sidecar(tmp_path, "t")["provenance"]["cell_source"] is None


def test_population_must_be_json(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="population"):
        crosstab(
            _frame(), "sexe", "niveau", name="t", outputs_dir=tmp_path, population={"x": object()}
        )
    assert list(tmp_path.iterdir()) == []


def test_crosstab_accepts_a_policy_object_or_path(tmp_path: Path) -> None:
    df = events({("F", "CP"): (5, 4)})
    crosstab(df, "sexe", "niveau", name="a", outputs_dir=tmp_path, policy=make_policy(threshold=3))
    assert _sidecar(tmp_path, "a")["checks"]["outcome"] == "pass"
    path = tmp_path / "strict.toml"
    path.write_text('name="s"\nversion="2"\n[rules.minimum_count]\nthreshold=5\nunit="rows"\n')
    crosstab(df, "sexe", "niveau", name="b", outputs_dir=tmp_path, policy=str(path))
    doc = _sidecar(tmp_path, "b")
    assert doc["checks"]["outcome"] == "pass"
    assert doc["policy"]["name"] == "s"


def test_rewriting_an_output_replaces_both_files_and_leaves_no_temp(tmp_path: Path) -> None:
    crosstab(events({("F", "CP"): (5, 4)}), "sexe", "niveau", name="t", outputs_dir=tmp_path)
    crosstab(events({("F", "CP"): (50, 40)}), "sexe", "niveau", name="t", outputs_dir=tmp_path)
    assert _sidecar(tmp_path, "t")["table"]["rows"] == [[50]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.csv.sidecar.json"]
