"""ExtractSpec validation and the Arrow transformations, on hand-written batches."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from enclave.core.exceptions import ValidationError
from enclave.provisioning.spec import ExtractSpec, Transform
from enclave.provisioning.transforms import apply_rules, transform_array


def _rules(**rules: object) -> ExtractSpec:
    return ExtractSpec.from_dict({"datasets": {"eleves": rules}})


def test_a_full_spec_round_trips_through_json() -> None:
    doc = {"datasets": {"eleves": {
        "filters": [{"variable": "niveau", "in": ["CM2", "6e"]}],
        "transforms": [{"variable": "ips", "op": "top_bottom", "bottom": 70, "top": 130},
                       {"variable": "ips", "op": "round", "base": 5}],
        "quasi_identifiers": ["sexe", "niveau"], "k": 3, "local_suppression": False}}}
    spec = ExtractSpec.from_json(json.dumps(doc))
    rules = spec.rules("eleves")
    assert rules.k == 3 and rules.quasi_identifiers == ("sexe", "niveau")
    assert not rules.local_suppression
    assert ExtractSpec.from_dict(spec.to_dict()) == spec
    assert spec.rules("other").transforms == ()


@pytest.mark.parametrize(("doc", "field"), [
    ({}, "datasets"),
    ({"datasets": {"eleves": {"filters": [{"variable": "x"}]}}},
     "datasets.eleves.filters[0]"),
    ({"datasets": {"eleves": {"transforms": [{"variable": "x", "op": "scramble"}]}}},
     "datasets.eleves.transforms[0].op"),
    ({"datasets": {"eleves": {"transforms": [{"variable": "x", "op": "round", "base": 0}]}}},
     "datasets.eleves.transforms[0].base"),
    ({"datasets": {"eleves": {"transforms": [
        {"variable": "x", "op": "top_bottom", "top": "high"}]}}},
     "datasets.eleves.transforms[0].top"),
    ({"datasets": {"eleves": {"transforms": [
        {"variable": "x", "op": "top_bottom", "top": 1, "bottom": 2}]}}},
     "datasets.eleves.transforms[0].bottom"),
    ({"datasets": {"eleves": {"quasi_identifiers": ["sexe"], "k": 0}}}, "datasets.eleves.k"),
    ({"datasets": {"eleves": {"quasi_identifiers": ["sexe"]}}}, "datasets.eleves"),
    ({"datasets": {"eleves": {"colour": 1}}}, "'colour'"),
    ({"datasets": {"eleves": {"local_suppression": "no"}}},
     "datasets.eleves.local_suppression"),
])
def test_invalid_specs_name_the_field(doc: dict, field: str) -> None:
    with pytest.raises(ValidationError, match=field.replace("[", r"\[").replace("]", r"\]")):
        ExtractSpec.from_dict(doc)


def test_check_against_refuses_unapproved_variables_and_datasets() -> None:
    approved = {"eleves": ["ine", "sexe", "niveau"]}
    ids, pupil = {"eleves": "ine"}, {"eleves": True}
    _rules(quasi_identifiers=["sexe"], k=2).check_against(approved, ids, pupil)
    with pytest.raises(ValidationError, match=r"filters\[0\]\.variable: 'ips'"):
        _rules(filters=[{"variable": "ips", "equals": 1}]).check_against(approved, ids, pupil)
    with pytest.raises(ValidationError, match=r"quasi_identifiers\[0\]: 'ine'"):
        _rules(quasi_identifiers=["ine"], k=2).check_against(approved, ids, pupil)
    with pytest.raises(ValidationError, match=r"quasi_identifiers\[0\]: 'sexe'"):
        _rules(transforms=[{"variable": "sexe", "op": "drop"}], quasi_identifiers=["sexe"],
               k=2).check_against(approved, ids, pupil)
    with pytest.raises(ValidationError, match="only pupil-level"):
        _rules(quasi_identifiers=["sexe"], k=2).check_against(approved, ids, {"eleves": False})
    with pytest.raises(ValidationError, match=r"datasets\.examens: dataset not approved"):
        ExtractSpec.from_dict({"datasets": {"examens": {}}}).check_against(approved, ids, pupil)


BATCH = pa.RecordBatch.from_pydict({
    "ine": ["a", "b", "c", "d", "e"],
    "niveau": ["CM2", "6e", "CM2", "CP", None],
    "naissance": pa.array([dt.date(2014, 5, 4), dt.date(2013, 12, 31), dt.date(2014, 1, 1),
                           None, dt.date(2015, 7, 9)], pa.date32()),
    "commune": ["75056", "97411", "2A004", "97115", None],
    "ips": [54.5, 101.2, 136.5, 88.0, None],
    "age": pa.array([9, 12, 14, 6, 10], pa.int32()),
})


def test_filters_keep_equal_or_member_rows_only() -> None:
    rules = _rules(filters=[{"variable": "niveau", "in": ["CM2", "6e"]}]).rules("eleves")
    assert apply_rules(BATCH, rules).column("ine").to_pylist() == ["a", "b", "c"]
    rules = _rules(filters=[{"variable": "niveau", "in": ["CM2", "6e"]},
                            {"variable": "age", "equals": 14}]).rules("eleves")
    assert apply_rules(BATCH, rules).column("ine").to_pylist() == ["c"]


def test_transformations_hand_computed() -> None:
    rules = _rules(transforms=[
        {"variable": "naissance", "op": "year"},
        {"variable": "commune", "op": "departement"},
        {"variable": "ips", "op": "top_bottom", "bottom": 70, "top": 130},
        {"variable": "ips", "op": "round", "base": 5},
        {"variable": "age", "op": "round", "base": 5},
        {"variable": "niveau", "op": "drop"}]).rules("eleves")
    out = apply_rules(BATCH, rules)
    assert out.schema.names == ["ine", "naissance", "commune", "ips", "age"]
    assert out.column("naissance").to_pylist() == [2014, 2013, 2014, None, 2015]
    assert out.column("commune").to_pylist() == ["75", "974", "2A", "971", None]
    assert out.column("ips").to_pylist() == [70.0, 100.0, 130.0, 90.0, None]
    assert out.column("age").type == pa.int32()
    assert out.column("age").to_pylist() == [10, 10, 15, 5, 10]


def test_year_month_and_type_errors() -> None:
    rules = _rules(transforms=[{"variable": "naissance", "op": "year_month"}]).rules("eleves")
    assert apply_rules(BATCH, rules).column("naissance").to_pylist() == [
        "2014-05", "2013-12", "2014-01", None, "2015-07"]
    with pytest.raises(ValidationError, match="'year' does not apply to 'niveau'"):
        apply_rules(BATCH, _rules(transforms=[{"variable": "niveau", "op": "year"}])
                    .rules("eleves"))


@pytest.mark.parametrize("array", [
    # 2024-08-31T22:30Z is already September in Paris; one value before 1970; a null
    pa.array([0, 1_725_143_400_000, None, -34_560_000_000, 1_725_000_000_000],
             pa.timestamp("ms", tz="Europe/Paris")),
    pa.array([1_725_143_400, 5], pa.timestamp("s")),
    pa.array([dt.date(2012, 3, 4), None, dt.date(1999, 12, 31)], pa.date32()),
])
def test_year_month_is_what_strftime_gives_in_the_values_time_zone(array: pa.Array) -> None:
    as_timestamps = pc.cast(array, pa.timestamp("s")) if pa.types.is_date(array.type) \
        else array
    expected = pc.strftime(as_timestamps, format="%Y-%m")
    got = transform_array(array, Transform("d", "year_month"))
    assert got.type == pa.string()
    assert got.to_pylist() == expected.to_pylist()
