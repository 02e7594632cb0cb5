"""The synthetic data look like DEPP data: plausible margins, consistent tables, rare cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from enclave.demo_data.geography import DEPARTEMENTS, OVERSEAS
from enclave.demo_data.school_year import END_US, START_US

CYCLE = {"CP": "ecole", "CE1": "ecole", "CE2": "ecole", "CM1": "ecole", "CM2": "ecole",
         "6e": "college", "5e": "college", "4e": "college", "3e": "college",
         "2nde": "lycee", "1re": "lycee", "Tle": "lycee"}
GRADE = {n: i for i, n in enumerate(CYCLE)}


@pytest.fixture(scope="module")
def eleves(modest: dict[str, pa.Table]) -> pd.DataFrame:
    """The pupils as a data frame."""
    return modest["eleves"].to_pandas()


def test_sex_ratio_is_near_one_half(eleves: pd.DataFrame) -> None:
    assert set(eleves["sexe"]) == {"F", "M"}
    assert 0.46 < (eleves["sexe"] == "F").mean() < 0.52


def test_about_one_pupil_in_five_is_in_a_private_school(eleves: pd.DataFrame) -> None:
    assert set(eleves["secteur"]) == {"public", "prive"}
    assert 0.12 < (eleves["secteur"] == "prive").mean() < 0.30


def test_ips_is_centred_on_100_and_higher_in_private_schools(eleves: pd.DataFrame) -> None:
    assert 96 < eleves["ips"].mean() < 104
    assert 12 < eleves["ips"].std() < 19
    by_sector = eleves.groupby("secteur")["ips"].mean()
    assert by_sector["prive"] > by_sector["public"] + 5
    school_means = eleves.groupby("uai")["ips"].mean()
    assert school_means.std() > 5  # schools differ in social intake


def test_every_grade_level_is_present_in_similar_numbers(eleves: pd.DataFrame) -> None:
    counts = eleves["niveau"].value_counts()
    assert set(counts.index) == set(CYCLE)
    assert counts.min() > 0.6 * counts.max()


def test_birth_dates_match_grade_with_some_pupils_behind_or_ahead(eleves: pd.DataFrame) -> None:
    year = pd.to_datetime(eleves["date_naissance"]).dt.year
    behind = 2019 - eleves["niveau"].map(GRADE) - year
    assert set(behind.unique()) <= {-1, 0, 1, 2}
    assert (behind == 0).mean() > 0.8
    assert (behind == 1).sum() > 0 and (behind == -1).sum() > 0
    # pupils behind are more frequent in lycée than in CP
    lycee = eleves["niveau"].map(CYCLE) == "lycee"
    assert (behind[lycee] > 0).mean() > (behind[eleves["niveau"] == "CP"] > 0).mean()


def test_schools_teach_only_the_levels_of_their_kind(eleves: pd.DataFrame) -> None:
    kinds = eleves.assign(cycle=eleves["niveau"].map(CYCLE)).groupby("uai")["cycle"].nunique()
    assert (kinds == 1).all()
    sector = eleves.groupby("uai")["secteur"].nunique()
    assert (sector == 1).all()


def test_geography_is_consistent_from_commune_to_academie(eleves: pd.DataFrame) -> None:
    academie = {code: acad for code, _, acad, _ in DEPARTEMENTS}
    assert (eleves["academie"] == eleves["code_departement"].map(academie)).all()
    width = eleves["code_departement"].str.len()
    assert (eleves["code_commune"].str.len() == 5).all()
    assert all(c.startswith(d) for c, d in zip(eleves["code_commune"],
                                               eleves["code_departement"], strict=True))
    assert set(width.unique()) == {2, 3}


def test_scholarships_only_from_6e_and_more_frequent_with_low_ips(eleves: pd.DataFrame) -> None:
    primary = eleves["niveau"].map(CYCLE) == "ecole"
    assert not eleves.loc[primary, "boursier"].any()
    secondary = eleves[~primary]
    assert 0.15 < secondary["boursier"].mean() < 0.45
    low = secondary["ips"] < secondary["ips"].quantile(0.25)
    high = secondary["ips"] > secondary["ips"].quantile(0.75)
    assert secondary.loc[low, "boursier"].mean() > 3 * secondary.loc[high, "boursier"].mean()


def test_handicap_is_mostly_null_with_rare_categories(eleves: pd.DataFrame) -> None:
    handicap = eleves["handicap"]
    assert 0.02 < handicap.notna().mean() < 0.06
    counts = handicap.value_counts()
    assert {"troubles_visuels", "troubles_auditifs", "troubles_moteurs", "troubles_cognitifs",
            "TSA", "polyhandicap"} <= set(counts.index)
    assert counts["polyhandicap"] < 10  # a very rare category: a real disclosure risk


def test_rare_combinations_exist_small_schools_overseas_and_corsica(
        eleves: pd.DataFrame) -> None:
    per_school = eleves["uai"].value_counts()
    assert (per_school < 5).any()
    assert per_school.max() > 20 * per_school.min()
    assert set(OVERSEAS) <= set(eleves["code_departement"])
    assert {"2A", "2B"} <= set(eleves["code_departement"])
    per_commune = eleves["code_commune"].value_counts()
    assert (per_commune == 1).sum() > 100


def test_evaluations_cover_cp_ce1_6e_once_per_domain(modest: dict[str, pa.Table],
                                                      eleves: pd.DataFrame) -> None:
    ev = modest["evaluations_reperes"].to_pandas()
    assert set(ev["niveau"]) == {"CP", "CE1", "6e"}
    assert set(ev["domaine"]) == {"francais", "mathematiques"}
    assert (ev["annee"] == 2025).all()
    assert not ev.duplicated(["ine", "domaine"]).any()
    merged = ev.merge(eleves[["ine", "niveau", "ips"]], on="ine", suffixes=("", "_eleve"))
    assert (merged["niveau"] == merged["niveau_eleve"]).all()
    eligible = eleves["niveau"].isin(["CP", "CE1", "6e"]).sum()
    assert 0.95 * 2 * eligible < len(ev) <= 2 * eligible
    assert 240 < ev["score"].mean() < 260
    assert 42 < ev["score"].std() < 58
    assert merged["score"].corr(merged["ips"]) > 0.15
    expected_group = np.searchsorted([150, 200, 250, 300, 350], ev["score"], side="right") + 1
    assert (ev["groupe_maitrise"] == expected_group).all()


def test_exam_results_are_consistent_with_marks(modest: dict[str, pa.Table],
                                                 eleves: pd.DataFrame) -> None:
    ex = modest["examens"].to_pandas()
    merged = ex.merge(eleves[["ine", "niveau"]], on="ine")
    assert ((merged["examen"] == "DNB") == (merged["niveau"] == "3e")).all()
    assert ((merged["examen"] == "BAC") == (merged["niveau"] == "Tle")).all()
    assert (ex["session"] == 2025).all()
    assert ex["note_moyenne"].between(0, 20).all()
    assert (ex["admis"] == (ex["note_moyenne"] >= 10)).all()
    assert 0.75 < ex["admis"].mean() < 0.97
    assert ex.loc[ex["examen"] == "DNB", "serie"].isna().all()
    assert set(ex.loc[ex["examen"] == "BAC", "serie"]) == {"generale", "technologique",
                                                           "professionnelle"}
    bounds = {"AB": (12, 14), "B": (14, 16), "TB": (16, 20), "TBF": (18, 20)}
    for mention, (low, high) in bounds.items():
        notes = ex.loc[ex["mention"] == mention, "note_moyenne"]
        assert notes.between(low, high).all(), mention
    assert ex.loc[ex["mention"].isna(), "note_moyenne"].lt(12).all()
    assert set(ex.loc[ex["mention"] == "TBF", "examen"]) == {"BAC"}
    bac = ex["examen"] == "BAC"
    assert (ex.loc[bac & (ex["note_moyenne"] >= 18), "mention"] == "TBF").all()
    assert (ex.loc[~bac & (ex["note_moyenne"] >= 16), "mention"] == "TB").all()


def test_traces_are_many_per_pupil_with_some_pupils_without_any(
        modest: dict[str, pa.Table], eleves: pd.DataFrame) -> None:
    tr = modest["traces_xapi"]
    assert 18 < tr.num_rows / len(eleves) < 22
    active = len(set(tr["ine"].to_pylist()))
    assert 0.02 < 1 - active / len(eleves) < 0.15


def test_trace_timestamps_fall_in_the_school_year_mostly_on_school_days(
        modest: dict[str, pa.Table]) -> None:
    ts = modest["traces_xapi"]["horodatage"]
    us = ts.cast("int64").to_numpy()
    assert us.min() >= START_US and us.max() < END_US
    local = ts.to_pandas().dt.tz_convert("Europe/Paris")
    weekday = local.dt.day_of_week
    assert (weekday < 5).mean() > 0.8
    assert local.dt.hour.between(7, 22).mean() > 0.9
    assert not ts.to_pandas().dt.month.isin([7, 8]).any()


def test_trace_results_are_null_without_result_and_follow_the_verb(
        modest: dict[str, pa.Table]) -> None:
    tr = modest["traces_xapi"].select(["verbe", "score_brut", "succes", "duree_s",
                                       "niveau_objet", "objet_id", "matiere"]).to_pandas()
    verb = tr["verbe"].str.rsplit("/", n=1).str[-1]
    assert set(verb) == {"experienced", "attempted", "answered", "completed", "passed",
                         "failed"}
    assert tr["verbe"].str.startswith("http://adlnet.gov/expapi/verbs/").all()
    no_result = verb.isin(["experienced", "attempted"])
    assert tr.loc[no_result, "score_brut"].isna().all()
    assert tr.loc[no_result, "succes"].isna().all()
    assert tr.loc[~no_result, "score_brut"].between(0, 1).all()
    assert (tr.loc[~no_result, "succes"] == (tr.loc[~no_result, "score_brut"] >= 0.5)).all()
    assert tr.loc[verb == "passed", "succes"].all()
    assert not tr.loc[verb == "failed", "succes"].any()
    assert (tr["duree_s"] >= 1).all()
    assert set(tr["niveau_objet"]) <= set(CYCLE)
    assert tr["objet_id"].str.match(r"https://ent\.example\.fr/activites/[a-z-]+-\w+-\d{3}$").all()
    assert set(tr["matiere"]) == {"mathematiques", "francais", "histoire_geographie",
                                  "sciences", "langues"}


def test_traces_are_sorted_by_pupil_then_time(modest: dict[str, pa.Table]) -> None:
    tr = modest["traces_xapi"].select(["ine", "horodatage"]).to_pandas()
    same_pupil = tr["ine"] == tr["ine"].shift()
    assert (~same_pupil).sum() == tr["ine"].nunique()  # one run of rows per pupil
    assert (tr["horodatage"].diff()[same_pupil] >= pd.Timedelta(0)).all()
