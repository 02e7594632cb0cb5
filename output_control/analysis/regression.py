"""Checked regressions (statsmodels): OLS, logit and probit.

Each writes the coefficient table (coef, std_err, t or z, p_value, ci_low, ci_high per term)
as a model output whose sidecar records the observations used, the distinct pupils among them
and the residual degrees of freedom (observations minus estimated parameters), so the policy's
``residual_degrees_of_freedom`` rule judges it. Nothing is refused up front: the rule decides.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

from output_control.checked import _write_output
from output_control.exceptions import InvalidTable, MissingUnitsError
from output_control.policy import Policy, load_policy
from output_control.sidecar import validate_output_name
from output_control.table import ModelFit, SidecarTable, TableKind, Unit

CONFIDENCE = 0.95


def ols(
    df: pd.DataFrame,
    formula: str | None = None,
    *,
    y: str | None = None,
    x: Sequence[str] | None = None,
    pupil_id: str = "eleve",
    name: str,
    outputs_dir: Path | str | None = None,
    population: dict | None = None,
    policy: Policy | str = "default",
    justification: str | None = None,
) -> Any:
    """Ordinary least squares, as ``statsmodels.formula.api.ols(formula, df).fit()``.

    Give a patsy ``formula`` (``"score ~ age + C(sexe)"``) or ``y`` and a list ``x`` of
    regressors (an intercept is added). Rows with a missing value are dropped. Returns the
    statsmodels results and writes ``<name>.csv`` with its sidecar.
    """
    return _fit(smf.ols, "ols", "t", df, formula, y, x, pupil_id, name, outputs_dir,
                population, policy, justification)  # fmt: skip


def logit(
    df: pd.DataFrame,
    formula: str | None = None,
    *,
    y: str | None = None,
    x: Sequence[str] | None = None,
    pupil_id: str = "eleve",
    name: str,
    outputs_dir: Path | str | None = None,
    population: dict | None = None,
    policy: Policy | str = "default",
    justification: str | None = None,
) -> Any:
    """Logistic regression of a 0/1 outcome, as ``statsmodels.formula.api.logit``; see ``ols``."""
    return _fit(smf.logit, "logit", "z", df, formula, y, x, pupil_id, name, outputs_dir,
                population, policy, justification)  # fmt: skip


def probit(
    df: pd.DataFrame,
    formula: str | None = None,
    *,
    y: str | None = None,
    x: Sequence[str] | None = None,
    pupil_id: str = "eleve",
    name: str,
    outputs_dir: Path | str | None = None,
    population: dict | None = None,
    policy: Policy | str = "default",
    justification: str | None = None,
) -> Any:
    """Probit regression of a 0/1 outcome, as ``statsmodels.formula.api.probit``; see ``ols``."""
    return _fit(smf.probit, "probit", "z", df, formula, y, x, pupil_id, name, outputs_dir,
                population, policy, justification)  # fmt: skip


def model_formula(formula: str | None, y: str | None, x: Sequence[str] | None) -> str:
    """``formula``, or one built from ``y`` and ``x`` (names quoted), exactly one way given."""
    if formula is not None:
        if y is not None or x is not None:
            raise ValueError("give either formula or y and x, not both")
        if not isinstance(formula, str) or "~" not in formula:
            raise ValueError(f"formula must be a text 'y ~ x1 + x2', got {formula!r}")
        return formula
    if y is None or x is None:
        raise ValueError("give a formula, or both y and x")
    regressors = [x] if isinstance(x, str) else list(x)
    if not regressors:
        raise ValueError("x must name at least one regressor")
    return f"{_quote(y)} ~ " + " + ".join(_quote(v) for v in regressors)


def _quote(column: str) -> str:
    return column if column.isidentifier() else f"Q({column!r})"


def _fit(
    estimator: Callable[..., Any],
    label: str,
    test: str,
    df: pd.DataFrame,
    formula: str | None,
    y: str | None,
    x: Sequence[str] | None,
    pupil_id: str,
    name: str,
    outputs_dir: Path | str | None,
    population: dict | None,
    policy: Policy | str,
    justification: str | None,
) -> Any:
    validate_output_name(name)
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    if pupil_id not in df.columns:
        raise MissingUnitsError(
            f"column {pupil_id!r} is missing: a model output records the distinct pupils it "
            "was fitted on; pass pupil_id=<the column identifying pupils>"
        )
    text = model_formula(formula, y, x)
    policy = policy if isinstance(policy, Policy) else load_policy(policy)
    model = estimator(text, data=df, missing="drop")
    result = model.fit(disp=0) if label != "ols" else model.fit()
    used = model.data.row_labels
    pupils = df.loc[used, pupil_id] if used is not None else df[pupil_id]
    if pupils.isna().any():
        raise MissingUnitsError(
            f"column {pupil_id!r} has missing values in rows of the model: every row must "
            "belong to a pupil so that pupils can be counted"
        )
    table = coefficient_table(result, label, test, units=int(pupils.nunique()), pupil_id=pupil_id)
    _write_output(
        table,
        name=name,
        policy=policy,
        population=population,
        justification=justification,
        outputs_dir=outputs_dir,
        function=label,
    )
    return result


def coefficient_table(
    result: Any, estimator: str, test: str, *, units: int, pupil_id: str = "eleve"
) -> SidecarTable:
    """The model output of a fitted statsmodels ``result``: one row per term."""
    n_obs = int(result.nobs)
    dof = max(0, round(float(result.df_resid)))
    columns = ("coef", "std_err", test, "p_value", "ci_low", "ci_high")
    # Without residual dof the standard errors are undefined: written empty, not warned about.
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        ci = result.conf_int(alpha=1 - CONFIDENCE)
        frame = pd.DataFrame(
            {
                "coef": result.params,
                "std_err": result.bse,
                test: result.tvalues,
                "p_value": result.pvalues,
                "ci_low": ci.iloc[:, 0],
                "ci_high": ci.iloc[:, 1],
            }
        )[list(columns)]
    values = tuple(tuple(_number(v) for v in line) for line in frame.to_numpy(dtype=float).tolist())
    shape_rows = tuple(tuple(n_obs for _ in columns) for _ in frame.index)
    shape_units = tuple(tuple(units for _ in columns) for _ in frame.index)
    try:
        return SidecarTable(
            index=("term",),
            columns=("statistic",),
            row_labels=tuple((str(term),) for term in frame.index),
            column_labels=tuple((c,) for c in columns),
            rows=shape_rows,
            units=shape_units,
            unit=Unit.DISTINCT_PUPILS,
            unit_column=str(pupil_id),
            kind=TableKind.MODEL_OUTPUT,
            values=values,
            model=ModelFit(estimator=estimator, n_obs=n_obs, dof=dof),
        )
    except InvalidTable as exc:
        raise InvalidTable(f"the model output cannot be written: {exc}") from None


def _number(value: float) -> float | None:
    """A finite float, or None (empty) for NaN or infinity (e.g. no residual dof left)."""
    return value if math.isfinite(value) else None
