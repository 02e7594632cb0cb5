"""The per-record risk table and its file-level summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from anonymization.exceptions import InvalidParameterError, UnknownVariableError
from anonymization.risk import RiskSummary, risk_table, summarise_risk
from tests.anonymization.risk.reference import sdcmicro_csv

DATA = pd.DataFrame(
    {
        "sex": [1, 1, 1, 2, 2, 2, 2],
        "grade": [6, 6, 6, 6, 6, 5, 4],
        "w": [10.0, 10.0, 10.0, 20.0, 20.0, 5.0, 1.0],
        "hid": ["a", "a", "b", "b", "c", "d", "d"],
    },
    index=[f"r{i}" for i in range(7)],
)


def test_the_table_holds_every_measure_per_record_with_the_data_index():
    table = risk_table(DATA, ["sex", "grade"], weight="w", household="hid", k=3)

    assert list(table.columns) == [
        "fk",
        "Fk",
        "risk",
        "household_risk",
        "suda_score",
        "dis_suda_score",
        "violates_k_anonymity",
    ]
    assert table.index.tolist() == DATA.index.tolist()
    # (1,6) x3, (2,6) x2, (2,5) x1, (2,4) x1
    assert table["fk"].tolist() == [3, 3, 3, 2, 2, 1, 1]
    assert table["Fk"].tolist() == [30, 30, 30, 40, 40, 5, 1]
    assert table["violates_k_anonymity"].tolist() == [False] * 3 + [True] * 4
    # the last record's weight is 1: Fk = fk, risk 1/fk = 1; its household d: 1 - 0 = 1
    assert table["risk"].iloc[-1] == 1.0
    assert table["household_risk"].iloc[-1] == 1.0
    # grade 5 and grade 4 are each unique on their own: 1-MSUs, (M - 1)! = 1 each
    assert table["suda_score"].tolist() == [0, 0, 0, 0, 0, 1, 1]
    assert table.attrs == {"keys": ["sex", "grade"], "weight": "w", "household": "hid", "k": 3}


def test_the_summary_counts_violations_and_sums_expected_reidentifications():
    table = risk_table(DATA, ["sex", "grade"], household="hid", suda=False)

    summary = summarise_risk(table)

    # unweighted: r = 1/3 x3, 1/2 x2, 1 x2 -> ER = 1 + 1 + 2 = 4, 4 / 7 = 57.14 %
    assert isinstance(summary, RiskSummary)
    assert summary.expected_reidentifications == pytest.approx(4.0)
    assert summary.global_risk_pct == pytest.approx(400 / 7)
    assert (summary.violations_k2, summary.violations_k3, summary.violations_k5) == (2, 4, 7)
    assert summary.percent_violating(2) == pytest.approx(200 / 7)
    assert (summary.k, summary.violations_k) == (3, 4)
    assert summary.max_risk == 1.0
    # households: a {1/3, 1/3} -> 5/9; b {1/3, 1/2} -> 2/3; c {1/2}; d {1, 1} -> 1
    # sum over records: 2 * 5/9 + 2 * 2/3 + 1/2 + 2 * 1 = 4.9444
    assert summary.household_expected_reidentifications == pytest.approx(10 / 9 + 4 / 3 + 0.5 + 2)
    assert summary.max_dis_suda_score is None


def test_high_risk_records_stand_out_of_the_median_by_two_mads_and_exceed_ten_percent():
    table = pd.DataFrame({"fk": [1.0] * 10, "risk": [0.01] * 8 + [0.05, 0.5]})

    summary = summarise_risk(table)

    # median 0.01, MAD 0 -> threshold 0.01; 0.05 is above it but not above 0.1; 0.5 is both
    assert summary.high_risk_records == 1
    assert summary.k is None and summary.violations_k is None


def test_the_summary_needs_the_fk_and_risk_columns():
    with pytest.raises(UnknownVariableError, match="'risk'"):
        summarise_risk(pd.DataFrame({"fk": [1.0]}))


def test_the_summary_holds_violations_for_k_2_3_5_only():
    summary = summarise_risk(risk_table(DATA, ["sex"], suda=False))

    with pytest.raises(InvalidParameterError, match="2, 3 or 5"):
        summary.percent_violating(4)


def test_testdata_summary_reproduces_the_sdcmicro_paper_risk_print():
    # Templ, Kowarik & Meindl (2015), J. Stat. Softw. 67(4), section 4 (see test_individual):
    # 24.78 expected re-identifications (0.54 %), hierarchical 117.20 (2.56 %)
    data = sdcmicro_csv("testdata.csv")

    summary = summarise_risk(
        risk_table(
            data,
            ["urbrur", "water", "sex", "age"],
            weight="sampling_weight",
            household="ori_hid",
            suda=False,
        )
    )

    assert round(summary.expected_reidentifications, 2) == 24.78
    assert round(summary.global_risk_pct, 2) == 0.54
    assert summary.household_expected_reidentifications is not None
    assert round(summary.household_expected_reidentifications, 2) == 117.20
    assert summary.household_risk_pct is not None
    assert round(summary.household_risk_pct, 2) == 2.56
    assert summary.violations_k2 <= summary.violations_k3 <= summary.violations_k5


def test_a_large_table_with_suda_stays_fast_and_consistent():
    rng = np.random.default_rng(7)
    n = 20_000
    data = pd.DataFrame(
        {
            "sex": rng.integers(1, 3, n),
            "age": rng.integers(0, 20, n),
            "dep": rng.integers(1, 102, n),
            "w": rng.uniform(1, 40, n),
        }
    )

    table = risk_table(data, ["sex", "age", "dep"], weight="w")

    unique = table["fk"] == 1
    assert np.all(table.loc[~unique, "suda_score"] == 0)  # only sample uniques have MSUs
    assert np.all(table.loc[unique, "suda_score"] >= 1)
    assert np.all((table["risk"] > 0) & (table["risk"] <= 1))
