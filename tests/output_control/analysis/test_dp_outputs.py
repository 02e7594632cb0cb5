"""DP results written from a notebook declare the dataset and the epsilon to charge on release;
the declaration is bound to the CSV's bytes and read back fail-closed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from anonymization.dp import dp_category_counts, dp_count, dp_histogram, dp_mean
from output_control.analysis import read_dp_output, write_dp_result
from output_control.analysis.dp_outputs import is_dp_sidecar, total_spend
from output_control.checked import crosstab
from output_control.exceptions import OutputRejected
from output_control.policy import load_policy
from output_control.sidecar import check_output, sidecar_path
from output_control.verdicts import Outcome


def _traces() -> pd.DataFrame:
    return pd.DataFrame({"eleve": [f"p{i % 40}" for i in range(200)],
                         "duree_s": np.arange(200) % 90,
                         "matiere": ["maths", "francais"] * 100})


def test_a_dp_mean_is_written_with_its_declared_spend(tmp_path: Path) -> None:
    result = dp_mean(_traces(), "duree_s", pupil="eleve", bounds=(0, 90), epsilon=0.5,
                     max_contributions=5)
    path = write_dp_result(result, name="duree", dataset="traces_xapi", outputs_dir=tmp_path,
                           population={"dataset": "traces_xapi", "extract_version": 1})
    assert path.read_text().splitlines()[0] == "statistic,value"
    declared = read_dp_output(path)
    assert (declared.dataset, declared.epsilon, declared.delta) == ("traces_xapi", 0.5, 0.0)
    assert declared.accounting["bounds"] == [0.0, 90.0]
    assert declared.accounting["max_contributions"] == 5
    assert is_dp_sidecar(sidecar_path(path).read_bytes())


def test_histograms_and_category_counts_are_written_as_tables(tmp_path: Path) -> None:
    hist = dp_histogram(_traces(), "duree_s", pupil="eleve", bins=3, bounds=(0, 90),
                        epsilon=0.25, max_contributions=5)
    path = write_dp_result(hist, name="h", dataset="traces_xapi", outputs_dir=tmp_path)
    lines = path.read_text().splitlines()
    assert lines[0] == "bin,count" and lines[1].startswith('"[0, 30)",')
    cats = dp_category_counts(_traces(), "matiere", pupil="eleve",
                              categories=["maths", "francais"], epsilon=0.25,
                              max_contributions=5)
    path2 = write_dp_result(cats, name="c", dataset="traces_xapi", outputs_dir=tmp_path)
    assert path2.read_text().splitlines()[0] == "matiere,count"
    count = dp_count(_traces(), pupil="eleve", epsilon=0.1, max_contributions=5)
    path3 = write_dp_result(count, name="n", dataset="eleves", outputs_dir=tmp_path)
    spend = total_spend([read_dp_output(p) for p in (path, path2, path3)])
    assert spend == {"traces_xapi": (pytest.approx(0.5), 0.0), "eleves": (0.1, 0.0)}


def test_a_dp_output_edited_after_writing_is_rejected(tmp_path: Path) -> None:
    result = dp_count(_traces(), pupil="eleve", epsilon=0.1, max_contributions=5)
    path = write_dp_result(result, name="n", dataset="traces_xapi", outputs_dir=tmp_path)
    path.write_text("statistic,value\ncount,1\n")
    with pytest.raises(OutputRejected, match="changed after it was written"):
        read_dp_output(path)


def test_a_sidecar_declaring_less_epsilon_than_its_accounting_is_rejected(
        tmp_path: Path) -> None:
    result = dp_count(_traces(), pupil="eleve", epsilon=0.4, max_contributions=5)
    path = write_dp_result(result, name="n", dataset="traces_xapi", outputs_dir=tmp_path)
    side = sidecar_path(path)
    doc = json.loads(side.read_text())
    doc["epsilon"] = 0.01
    side.write_text(json.dumps(doc))
    with pytest.raises(OutputRejected, match="accounting"):
        read_dp_output(path)


def test_a_table_sidecar_is_not_a_dp_output_and_a_dp_output_is_not_a_table(
        tmp_path: Path) -> None:
    df = pd.DataFrame({"eleve": [f"p{i}" for i in range(12)], "niveau": ["6e"] * 12})
    crosstab(df, "niveau", name="t", outputs_dir=tmp_path)
    with pytest.raises(OutputRejected, match="not a DP output"):
        read_dp_output(tmp_path / "t.csv")
    result = dp_count(_traces(), pupil="eleve", epsilon=0.1, max_contributions=5)
    path = write_dp_result(result, name="n", dataset="traces_xapi", outputs_dir=tmp_path)
    # The table checker fails closed on it until the workflow routes DP outputs to its reader.
    assert check_output(path, load_policy("default")).outcome is Outcome.FAIL


def test_only_dp_results_are_written(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="DPResult"):
        write_dp_result(3.0, name="x", dataset="eleves", outputs_dir=tmp_path)  # type: ignore[arg-type]
    result = dp_count(_traces(), pupil="eleve", epsilon=0.1, max_contributions=5)
    with pytest.raises(ValueError):
        write_dp_result(result, name="x", dataset="../raw", outputs_dir=tmp_path)
    assert not list(tmp_path.iterdir())
