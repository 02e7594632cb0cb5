"""Differencing across tables, with hand-computed tables: the classic attack (a total table minus
a sub-population table) is caught, non-nested pairs are not flagged, dominance of a residual
total is found, and a hypothesis property ties the finding to the true residual population.
"""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from output_control.checked import crosstab, pivot_table
from output_control.differencing import (
    CellData,
    Population,
    PopulationError,
    Relation,
    TableCells,
    canonical_population,
    differencing_verdict,
    find_differencing,
    parse_population,
    relation,
    table_cells,
)
from output_control.sidecar import read_output
from output_control.verdicts import Outcome


def _pop(**filters: object) -> Population:
    population = parse_population({"dataset": "eleves", "extract_version": 1,
                                   "filters": filters})
    assert population is not None
    return population


def _table(name: str, grid: dict[tuple[str, str], int], population: Population | None,
           totals: dict[tuple[str, str], tuple[float, tuple[float, ...]]] | None = None
           ) -> TableCells:
    cells = {}
    for (sexe, niveau), units in grid.items():
        total, top = (totals or {}).get((sexe, niveau), (None, ()))
        cells[(("niveau", niveau), ("sexe", sexe))] = CellData(units, total, top)
    measure = "total:score" if totals else "count"
    return TableCells(name, ("niveau", "sexe"), measure, cells, population)


ALL = {("F", "CM2"): 40, ("F", "6E"): 35, ("M", "CM2"): 38, ("M", "6E"): 30}
# Lyon only: every cell >= 10, so each table passes the minimum count on its own.
LYON = {("F", "CM2"): 37, ("F", "6E"): 20, ("M", "CM2"): 25, ("M", "6E"): 12}


# -- populations ---------------------------------------------------------------------------

def test_a_population_is_put_in_canonical_form() -> None:
    described = {"filters": {"annee": {"max": 2022, "min": 2020}, "academie": "Lyon"},
                 "extract_version": 2, "dataset": "eleves"}
    assert canonical_population(described) == {
        "dataset": "eleves", "extract_version": "2",
        "filters": {"academie": {"in": ["Lyon"]}, "annee": {"min": 2020, "max": 2022}}}
    assert canonical_population(None) is None and canonical_population({}) is None


@pytest.mark.parametrize("bad", [
    {"filters": {}},
    {"dataset": ""},
    {"dataset": "eleves", "extra": 1},
    {"dataset": "eleves", "filters": {"annee": {"min": 2023, "max": 2020}}},
    {"dataset": "eleves", "filters": {"annee": {"from": 2020}}},
    {"dataset": "eleves", "filters": {"academie": []}},
    {"dataset": "eleves", "filters": {"annee": {"min": float("nan")}}},
    {"dataset": "eleves", "filters": {"academie": [True]}},
], ids=["no-dataset", "empty-dataset", "unknown-key", "empty-interval", "unknown-bound",
        "no-label", "nan-bound", "boolean-label"])
def test_a_malformed_population_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(PopulationError):
        parse_population(bad)


RELATIONS = {
    "filter-added": (_pop(), _pop(academie=["Lyon"]), Relation.CONTAINS),
    "label-subset": (_pop(academie=["Lyon"]), _pop(academie=["Lyon", "Grenoble"]),
                     Relation.WITHIN),
    "same": (_pop(academie=["Lyon"]), _pop(academie="Lyon"), Relation.SAME),
    "disjoint-labels": (_pop(academie=["Lyon"]), _pop(academie=["Nice"]), Relation.DISJOINT),
    "overlapping-labels": (_pop(academie=["Lyon", "Nice"]), _pop(academie=["Lyon", "Caen"]),
                           Relation.OVERLAP),
    "interval-inside": (_pop(annee={"min": 2021, "max": 2021}),
                        _pop(annee={"min": 2020, "max": 2022}), Relation.WITHIN),
    "overlapping-intervals": (_pop(annee={"min": 2019, "max": 2021}),
                              _pop(annee={"min": 2020, "max": 2022}), Relation.OVERLAP),
    "labels-in-interval": (_pop(annee=[2020, 2021]), _pop(annee={"min": 2020}),
                           Relation.WITHIN),
    "crossed-filters": (_pop(academie=["Lyon"]), _pop(sexe=["F"]), Relation.OVERLAP),
    "undescribed": (None, _pop(), Relation.UNKNOWN),
    "other-extract": (_pop(), parse_population({"dataset": "eleves", "extract_version": 2}),
                      Relation.UNKNOWN),
    "other-dataset": (_pop(), parse_population({"dataset": "traces"}), Relation.UNRELATED),
}


@pytest.mark.parametrize(("a", "b", "expected"), RELATIONS.values(), ids=RELATIONS.keys())
def test_relations_between_populations(a: Population | None, b: Population | None,
                                       expected: Relation) -> None:
    assert relation(a, b) is expected


# -- the classic attack --------------------------------------------------------------------

def test_total_minus_sub_population_is_caught_with_the_pair_and_cells() -> None:
    total = _table("out-1/tous.csv", ALL, _pop())
    lyon = _table("out-2/lyon.csv", LYON, _pop(academie=["Lyon"]))
    hits = find_differencing(lyon, [total], threshold=10)
    assert len(hits) == 1
    hit = hits[0]
    assert (hit.larger, hit.smaller, hit.relation) == ("out-1/tous.csv", "out-2/lyon.csv",
                                                       Relation.WITHIN)
    # By hand: 40-37=3 (F, CM2) and all others >= 10 (15, 13, 18).
    assert [(c.labels, c.units, c.rule) for c in hit.cells] == [
        (("niveau=CM2", "sexe=F"), 3, "minimum_count")]
    text = hit.explain()
    assert "out-2/lyon.csv" in text and "out-1/tous.csv" in text
    assert "academie in {Lyon}" in text and "40 - 37 = 3" in text
    # Either order of arrival finds it.
    assert find_differencing(total, [lyon], threshold=10)[0].cells == hit.cells


def test_the_limit_of_the_minimum_count_applies_to_the_residual() -> None:
    total = _table("tous", ALL, _pop())
    at_limit = _table("lyon", {**LYON, ("F", "CM2"): 30}, _pop(academie=["Lyon"]))  # 40-30=10
    assert find_differencing(at_limit, [total], threshold=10) == []
    below = _table("lyon", {**LYON, ("F", "CM2"): 31}, _pop(academie=["Lyon"]))  # 9
    assert [c.units for c in find_differencing(below, [total], threshold=10)[0].cells] == [9]


def test_an_empty_residual_cell_is_not_a_differencing_hit() -> None:
    total = _table("tous", ALL, _pop())
    lyon = _table("lyon", {**LYON, ("F", "CM2"): 40}, _pop(academie=["Lyon"]))  # 0 left
    assert find_differencing(lyon, [total], threshold=10) == []


def test_non_nested_pairs_are_not_flagged() -> None:
    lyon = _table("lyon", LYON, _pop(academie=["Lyon"]))
    nice = _table("nice", {k: v + 1 for k, v in LYON.items()}, _pop(academie=["Nice"]))
    overlap = _table("lyon-nice", ALL, _pop(academie=["Lyon", "Nice"]))
    crossed = _table("filles", ALL, _pop(academie=["Lyon", "Caen"]))
    assert find_differencing(lyon, [nice], threshold=10) == []
    assert find_differencing(crossed, [overlap], threshold=10) == []


def test_tables_on_other_margins_or_measures_are_not_compared() -> None:
    total = _table("tous", ALL, _pop())
    lyon = _table("lyon", LYON, _pop(academie=["Lyon"]))
    other_margins = TableCells("x", ("niveau", "voie"), "count", lyon.cells, lyon.population)
    assert find_differencing(other_margins, [total], threshold=10) == []
    other_extract = _table("lyon", LYON, parse_population(
        {"dataset": "eleves", "extract_version": 2, "filters": {"academie": "Lyon"}}))
    # Unknown relation: checked in the direction that is plausible, and explained as such.
    hits = find_differencing(other_extract, [total], threshold=10)
    assert hits[0].relation is Relation.UNKNOWN and "cannot be compared" in hits[0].explain()


def test_undescribed_populations_are_checked_only_where_nesting_is_possible() -> None:
    total = _table("tous", ALL, None)
    lyon = _table("lyon", LYON, None)
    assert [c.units for c in find_differencing(lyon, [total], threshold=10)[0].cells] == [3]
    # One cell larger in each table: neither can be a sub-population of the other.
    crossing = _table("autre", {**LYON, ("M", "6E"): 31}, None)
    assert find_differencing(crossing, [total], threshold=10) == []


# -- dominance of a residual total ---------------------------------------------------------

def test_a_residual_total_dominated_by_one_pupil_is_caught() -> None:
    # Totals of a score per cell. The larger cell's pupils worth 500 and 40 are above the smaller
    # cell's largest (20), so they are in the residual. Total 900 - 300 = 600: n=2 gives
    # 540/600 = 90% exactly (not more than 90), n=1 500/600 = 83% <= 85, p%: 600-540 = 60 >= 50:
    # safe. Total 880 - 300 = 580: n=2 gives 540/580 = 93% > 90: dominated.
    grid = {("F", "CM2"): 40, ("F", "6E"): 35, ("M", "CM2"): 38, ("M", "6E"): 30}
    small_grid = {("F", "CM2"): 20, ("F", "6E"): 20, ("M", "CM2"): 20, ("M", "6E"): 15}
    safe = _table("tous", grid, _pop(), {("F", "CM2"): (900.0, (500.0, 40.0, 20.0))})
    small = _table("lyon", small_grid, _pop(academie=["Lyon"]),
                   {("F", "CM2"): (300.0, (20.0, 20.0, 20.0))})
    nk = ((2, 90.0), (1, 85.0))
    assert find_differencing(small, [safe], threshold=10, nk_pairs=nk, p=10) == []
    dominated = _table("tous", grid, _pop(), {("F", "CM2"): (880.0, (500.0, 40.0, 20.0))})
    hits = find_differencing(small, [dominated], threshold=10, nk_pairs=nk, p=10)
    assert [(c.labels, c.rule) for c in hits[0].cells] == [(("niveau=CM2", "sexe=F"),
                                                           "nk_dominance")]


def test_p_percent_on_a_residual_total() -> None:
    grid = {("F", "CM2"): 40}
    small_grid = {("F", "CM2"): 20}
    nk = ((2, 95.0),)
    # Residual total 1000 - 200 = 800; known contributors above 30: 600 and 150.
    # n=2: 750/800 = 93.75% <= 95: safe. p%: 800 - 600 - 150 = 50 < 10% of 600 = 60: sensitive.
    big = _table("tous", grid, _pop(), {("F", "CM2"): (1000.0, (600.0, 150.0, 30.0))})
    small = _table("lyon", small_grid, _pop(academie=["Lyon"]),
                   {("F", "CM2"): (200.0, (30.0, 10.0, 10.0))})
    hits = find_differencing(small, [big], threshold=10, nk_pairs=nk, p=10)
    assert [c.rule for c in hits[0].cells] == ["p_percent"]
    assert find_differencing(small, [big], threshold=10, nk_pairs=nk, p=5) == []


# -- verdicts and real sidecars ---------------------------------------------------------------

def _events(per_cell: dict[tuple[str, str], int], prefix: str = "") -> pd.DataFrame:
    records = [{"sexe": s, "niveau": n, "eleve": f"{prefix}{s}{n}{i:03d}", "score": 10.0}
               for (s, n), count in per_cell.items() for i in range(count) for _ in range(2)]
    return pd.DataFrame.from_records(records)


def test_real_checked_tables_are_differenced_through_their_sidecars(tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    everyone = pd.concat([_events(LYON, "L"), _events({k: ALL[k] - LYON[k] for k in ALL}, "X")])
    crosstab(everyone, "sexe", "niveau", name="tous", outputs_dir=folder,
             population={"dataset": "eleves", "extract_version": 1})
    crosstab(everyone[everyone["eleve"].str.startswith("L")], "niveau", "sexe", name="lyon",
             outputs_dir=folder, population={"dataset": "eleves", "extract_version": 1,
                                             "filters": {"academie": ["Lyon"]}})
    tous = table_cells(read_output(folder / "tous.csv")[1], "tous.csv")
    lyon = table_cells(read_output(folder / "lyon.csv")[1], "lyon.csv")
    assert tous is not None and lyon is not None  # transposed tables share their margins
    hits = find_differencing(lyon, [tous], threshold=10)
    verdict = differencing_verdict(lyon, hits, 1, threshold=10)
    assert verdict.outcome is Outcome.REVIEW
    assert [(c.cell, c.value) for c in verdict.cells] == [(("niveau=CM2", "sexe=F"), 3)]
    assert "tous.csv" in verdict.message and "lyon.csv" in verdict.message
    assert TableCells.from_json(tous.to_json()) == tous
    clean = differencing_verdict(tous, [], 3, threshold=10)
    assert clean.outcome is Outcome.PASS and "3 earlier" in clean.message


def test_medians_are_not_differenced(tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    pivot_table(_events(ALL), "score", "sexe", "niveau", aggfunc="median", name="mediane",
                outputs_dir=folder)
    assert table_cells(read_output(folder / "mediane.csv")[1], "mediane.csv") is None
    assert differencing_verdict(None, [], 0, threshold=10).outcome is Outcome.PASS


# -- property: a hit is exactly a small residual cell of a true sub-population -------------------

counts = st.integers(min_value=0, max_value=40)


@settings(max_examples=150, deadline=None)
@given(inside=st.lists(counts, min_size=4, max_size=4),
       outside=st.lists(counts, min_size=4, max_size=4),
       threshold=st.integers(min_value=1, max_value=15))
def test_property_nested_pairs_flag_exactly_the_small_residual_cells(
        inside: list[int], outside: list[int], threshold: int) -> None:
    keys = list(ALL)
    sub = _table("sub", dict(zip(keys, inside, strict=True)), _pop(academie=["Lyon"]))
    whole = _table("whole", {k: i + o for k, i, o in zip(keys, inside, outside, strict=True)},
                   _pop())
    flagged = {c.key for hit in find_differencing(sub, [whole], threshold=threshold)
               for c in hit.cells}
    expected = {(("niveau", n), ("sexe", s)) for (s, n), o in zip(keys, outside, strict=True)
                if 0 < o < threshold}
    assert flagged == expected
    # A disjoint population of the same sizes is never flagged, whatever the counts.
    other = _table("other", dict(zip(keys, outside, strict=True)), _pop(academie=["Nice"]))
    assert find_differencing(other, [sub, whole.__class__(
        "whole2", whole.margins, whole.measure, whole.cells, _pop(academie=["Caen"]))],
        threshold=threshold) == []
