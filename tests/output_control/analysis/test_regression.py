"""``analysis.ols``/``logit``/``probit`` return statsmodels results and write the coefficient
table as a model output whose sidecar records n_obs and residual dof (n - k), so the dof rule
judges it: FAIL below 10, PASS at exactly 10."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from output_control.analysis import logit, ols, probit
from output_control.exceptions import MissingUnitsError
from output_control.policy import load_policy
from output_control.sidecar import check_output, read_output
from output_control.table import TableKind
from output_control.verdicts import Outcome

DOF_RULE = "residual_degrees_of_freedom"


def _data(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)
    score = 1.0 + 2.0 * x1 - 0.5 * x2 + rng.normal(size=n)
    return pd.DataFrame(
        {"eleve": [f"p{i}" for i in range(n)], "x1": x1, "x2": x2, "score": score,
         "reussite": (score + rng.normal(size=n) > 1).astype(int)}
    )  # fmt: skip


def _dof_verdict(path: Path) -> Outcome:
    result = check_output(path, load_policy("default"))
    return next(v.outcome for v in result.verdicts if v.rule == DOF_RULE)


def test_ols_coefficients_equal_least_squares(tmp_path: Path) -> None:
    df = _data(30)
    result = ols(df, "score ~ x1 + x2", name="m", outputs_dir=tmp_path)
    design = np.column_stack([np.ones(30), df["x1"], df["x2"]])
    expected, *_ = np.linalg.lstsq(design, df["score"].to_numpy(), rcond=None)
    np.testing.assert_allclose(result.params.to_numpy(), expected)

    frame, table = read_output(tmp_path / "m.csv")
    assert table.kind is TableKind.MODEL_OUTPUT
    assert table.model is not None
    assert (table.model.estimator, table.model.n_obs, table.model.dof) == ("ols", 30, 27)
    assert table.index == ("term",)
    assert [r[0] for r in table.row_labels] == ["Intercept", "x1", "x2"]
    assert [c[0] for c in table.column_labels] == [
        "coef", "std_err", "t", "p_value", "ci_low", "ci_high"
    ]  # fmt: skip
    np.testing.assert_allclose(frame["coef"].to_numpy(), expected)
    np.testing.assert_allclose(frame["std_err"].to_numpy(), result.bse.to_numpy())
    np.testing.assert_allclose(frame["ci_low"].to_numpy(), result.conf_int()[0].to_numpy())
    assert table.units[0][0] == 30
    assert _dof_verdict(tmp_path / "m.csv") is Outcome.PASS


@pytest.mark.parametrize(("n", "outcome"), [(12, Outcome.FAIL), (13, Outcome.PASS)])
def test_dof_rule_at_its_threshold(tmp_path: Path, n: int, outcome: Outcome) -> None:
    # 3 parameters: dof = n - 3, i.e. 9 (FAIL, below 10) and 10 (PASS, exactly at it)
    ols(_data(n), "score ~ x1 + x2", name="m", outputs_dir=tmp_path)
    _, table = read_output(tmp_path / "m.csv")
    assert table.model is not None and table.model.dof == n - 3
    assert _dof_verdict(tmp_path / "m.csv") is outcome
    assert table.metadata["checks"].outcome is outcome


def test_perfect_fit_is_written_and_fails(tmp_path: Path) -> None:
    # 3 observations, 3 parameters: no residual dof, standard errors undefined (empty cells)
    df = _data(3)
    ols(df, "score ~ x1 + x2", name="m", outputs_dir=tmp_path)
    _, table = read_output(tmp_path / "m.csv")
    assert table.model is not None and table.model.dof == 0
    assert _dof_verdict(tmp_path / "m.csv") is Outcome.FAIL


def test_rows_with_missing_values_are_dropped_and_pupils_counted(tmp_path: Path) -> None:
    df = _data(20)
    df.loc[0, "x1"] = np.nan
    df.loc[5, "eleve"] = "p4"  # one pupil, two rows
    result = ols(df, "score ~ x1", name="m", outputs_dir=tmp_path)
    _, table = read_output(tmp_path / "m.csv")
    assert int(result.nobs) == 19
    assert table.model is not None and (table.model.n_obs, table.model.dof) == (19, 17)
    assert table.rows[0][0] == 19 and table.units[0][0] == 18


def test_y_and_x_build_the_same_model(tmp_path: Path) -> None:
    df = _data(25)
    by_formula = ols(df, "score ~ x1 + x2", name="a", outputs_dir=tmp_path)
    by_names = ols(df, y="score", x=["x1", "x2"], name="b", outputs_dir=tmp_path)
    np.testing.assert_allclose(by_names.params.to_numpy(), by_formula.params.to_numpy())
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


@pytest.mark.parametrize(("fit", "reference"), [(logit, smf.logit), (probit, smf.probit)])
def test_binary_models_equal_statsmodels(
    tmp_path: Path, fit: Callable[..., Any], reference: Callable[..., Any]
) -> None:
    df = _data(60)
    result = fit(df, "reussite ~ x1", name="b", outputs_dir=tmp_path)
    expected = reference("reussite ~ x1", data=df).fit(disp=0)
    np.testing.assert_allclose(result.params.to_numpy(), expected.params.to_numpy())
    frame, table = read_output(tmp_path / "b.csv")
    assert table.model is not None
    model = (table.model.estimator, table.model.n_obs, table.model.dof)
    assert model == (fit.__name__, 60, 58)
    assert "z" in frame.columns
    np.testing.assert_allclose(frame["z"].to_numpy(), expected.tvalues.to_numpy())
    assert _dof_verdict(tmp_path / "b.csv") is Outcome.PASS


def test_refusals(tmp_path: Path) -> None:
    df = _data(20)
    with pytest.raises(MissingUnitsError):
        ols(df.drop(columns="eleve"), "score ~ x1", name="m", outputs_dir=tmp_path)
    with pytest.raises(ValueError, match="not both"):
        ols(df, "score ~ x1", y="score", x=["x1"], name="m", outputs_dir=tmp_path)
    with pytest.raises(ValueError, match="formula"):
        ols(df, name="m", outputs_dir=tmp_path)
    with pytest.raises(ValueError, match="not allowed"):
        ols(df, "score ~ x1", name="../m", outputs_dir=tmp_path)
    nameless = df.copy()
    nameless.loc[3, "eleve"] = None
    with pytest.raises(MissingUnitsError):
        ols(nameless, "score ~ x1", name="m", outputs_dir=tmp_path)
    assert not list(tmp_path.iterdir())
