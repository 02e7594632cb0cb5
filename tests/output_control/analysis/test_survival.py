"""``analysis.survival_table``: a Kaplan–Meier life table computed by hand equals the
product-limit estimate (and statsmodels'), its counts are a checked frequency table (intervals
with few events flagged), its estimates a model output judged on residual degrees of freedom."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st

from output_control.analysis import kaplan_meier, survival_table
from output_control.policy import load_policy
from output_control.sidecar import check_output, read_output
from output_control.table import TableKind
from output_control.verdicts import Outcome

TIMES = [1.0, 2.0, 2.0, 3.0, 4.0, 5.0]
EVENTS = [1, 1, 0, 1, 0, 1]
EDGES = [0.0, 2.0, 4.0, 6.0]


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"eleve": [f"p{i}" for i in range(6)], "t": TIMES, "d": EVENTS})


def test_life_table_is_hand_computed() -> None:
    table = kaplan_meier(np.array(TIMES), np.array(EVENTS), np.array(EDGES))
    assert table.at_risk.tolist() == [6, 5, 2]
    assert table.events.tolist() == [1, 2, 1]
    assert table.censored.tolist() == [0, 1, 1]
    assert table.survived.tolist() == [5, 2, 0]
    # S = 5/6 after t=1; x 4/5 at t=2 (5 at risk: the censored 2 still counts); x 2/3 at t=3;
    # x 0 at t=5.
    np.testing.assert_allclose(table.survival, [5 / 6, 4 / 9, 0.0])


def test_survival_equals_statsmodels_at_interval_ends() -> None:
    rng = np.random.default_rng(7)
    time = np.round(rng.exponential(10, 300))
    event = rng.random(300) < 0.7
    edges = np.array([0.0, 3, 7, 12, 20, 60])
    table = kaplan_meier(time, event, edges)
    fitted = sm.SurvfuncRight(time, event.astype(int))
    for end, ours in zip(edges[1:], table.survival, strict=True):
        before = fitted.surv_times < end
        expected = fitted.surv_prob[before][-1] if before.any() else 1.0
        assert ours == pytest.approx(expected)


def test_outputs_are_a_checked_count_table_and_a_model_output(tmp_path: Path) -> None:
    result = survival_table(_frame(), "t", "d", edges=EDGES, name="s", outputs_dir=tmp_path)
    assert list(result.index) == ["[0, 2)", "[2, 4)", "[4, 6)"]
    assert result["events"].tolist() == [1, 2, 1]
    _, counts = read_output(tmp_path / "s.csv")
    assert counts.kind is TableKind.FREQUENCY_TABLE
    assert counts.column_labels == (("event",), ("censored",), ("survived",))
    assert counts.units == ((1, 0, 5), (2, 1, 2), (1, 1, 0))
    _, model = read_output(tmp_path / "s_km.csv")
    assert model.kind is TableKind.MODEL_OUTPUT and model.model is not None
    assert (model.model.n_obs, model.model.dof) == (6, 3)  # 6 pupils, 3 published estimates
    policy = load_policy("default")
    minimum = next(v for v in check_output(tmp_path / "s.csv", policy).verdicts
                   if v.rule == "minimum_count")
    assert minimum.outcome is Outcome.FAIL
    assert ("[0, 2)", "event") in [c.cell for c in minimum.cells]
    dof = next(v for v in check_output(tmp_path / "s_km.csv", policy).verdicts
               if v.rule == "residual_degrees_of_freedom")
    assert dof.outcome is Outcome.FAIL


def test_intervals_with_many_events_pass_the_count_rules(tmp_path: Path) -> None:
    # 20 events in [0, 1), 20 censored in [1, 2), 20 going through: every cell 20 or empty.
    times = [0.5] * 20 + [1.5] * 20 + [5.0] * 20
    events = [1] * 20 + [0] * 20 + [0] * 20
    df = pd.DataFrame({"eleve": [f"p{i}" for i in range(60)], "t": times, "d": events})
    result = survival_table(df, "t", "d", edges=[0, 1, 2], name="s", outputs_dir=tmp_path)
    assert result["survival"].tolist() == pytest.approx([40 / 60, 40 / 60])
    checks = check_output(tmp_path / "s.csv", load_policy("default"))
    minimum = next(v for v in checks.verdicts if v.rule == "minimum_count")
    assert minimum.outcome is Outcome.PASS
    dof = check_output(tmp_path / "s_km.csv", load_policy("default"))
    assert dof.outcome is Outcome.PASS  # 60 pupils - 2 estimates = 58 residual dof


def test_survival_per_group(tmp_path: Path) -> None:
    df = pd.concat([_frame().assign(g="a"), _frame().assign(g="b", eleve=lambda f: f.eleve + "b")])
    result = survival_table(df, "t", "d", edges=EDGES, by="g", name="s", outputs_dir=tmp_path)
    assert result.loc[("b", "[2, 4)"), "survival"] == pytest.approx(4 / 9)
    _, counts = read_output(tmp_path / "s.csv")
    assert counts.index == ("g", "interval") and len(counts.row_labels) == 6


def test_a_pupil_with_two_rows_is_refused(tmp_path: Path) -> None:
    df = _frame()
    df.loc[1, "eleve"] = "p0"
    with pytest.raises(ValueError, match="one row per pupil"):
        survival_table(df, "t", "d", edges=EDGES, name="s", outputs_dir=tmp_path)
    assert not list(tmp_path.iterdir())


def test_times_before_the_first_edge_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="first interval edge"):
        survival_table(_frame(), "t", "d", edges=[1.5, 3, 6], name="s", outputs_dir=tmp_path)


@settings(max_examples=60, deadline=None)
@given(data=st.lists(st.tuples(st.integers(0, 30), st.booleans()), min_size=1, max_size=80),
       cuts=st.lists(st.integers(1, 40), min_size=1, max_size=6, unique=True))
def test_survival_is_non_increasing_in_unit_interval_and_counts_partition_the_risk_set(
        data: list[tuple[int, bool]], cuts: list[int]) -> None:
    edges = np.array([0, *sorted(cuts)], dtype=float)
    time = np.array([t for t, _ in data], dtype=float)
    event = np.array([d for _, d in data])
    table = kaplan_meier(time, event, edges)
    assert ((table.survival >= 0) & (table.survival <= 1)).all()
    assert (np.diff(table.survival) <= 1e-12).all()
    assert (table.events + table.censored + table.survived == table.at_risk).all()
    assert (table.at_risk[1:] == table.survived[:-1]).all()
    assert table.at_risk[0] == len(data)
