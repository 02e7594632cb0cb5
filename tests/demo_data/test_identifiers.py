"""Identifiers: INE, UAI and xAPI statement ids are well-formed, unique and linked."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from enclave.demo_data import ine_is_well_formed, uai_is_well_formed
from enclave.demo_data.geography import DEPARTEMENTS, uai_prefix
from enclave.demo_data.identifiers import (
    INE_SPACE,
    IneCodec,
    check_letter,
    fixed_width_strings,
    uai,
    uuid4_strings,
)

UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def test_ine_are_unique_and_well_formed(modest: dict[str, pa.Table]) -> None:
    ines = modest["eleves"]["ine"]
    assert pc.count_distinct(ines).as_py() == len(ines)
    assert all(ine_is_well_formed(s) for s in ines.to_pylist())


def test_check_letters_reject_a_changed_digit() -> None:
    assert ine_is_well_formed("0000000000A")
    assert not ine_is_well_formed("0000000001A")
    assert not ine_is_well_formed("000000000A")
    assert not ine_is_well_formed("000000000OA")
    assert uai_is_well_formed(uai("075", 1234))
    assert not uai_is_well_formed("0751234" + check_letter(751235))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, INE_SPACE - 1), min_size=1, max_size=200, unique=True),
       st.integers(0, 2**32))
def test_ine_permutation_never_gives_two_pupils_the_same_ine(indexes: list[int],
                                                             key_seed: int) -> None:
    codec = IneCodec(np.random.default_rng(key_seed))
    numbers = codec.numbers(np.array(indexes, dtype=np.uint64))
    assert len(set(numbers.tolist())) == len(indexes)
    assert int(numbers.max()) < INE_SPACE
    assert all(ine_is_well_formed(s) for s in IneCodec.strings(numbers).to_pylist())


def test_every_table_refers_only_to_pupils_of_eleves(modest: dict[str, pa.Table]) -> None:
    pupils = modest["eleves"]["ine"]
    for dataset in ("evaluations_reperes", "examens", "traces_xapi"):
        ines = modest[dataset]["ine"]
        assert len(ines) > 0
        assert pc.all(pc.is_in(ines, value_set=pupils)).as_py(), dataset


def test_uai_is_well_formed_and_opens_with_its_departement(modest: dict[str, pa.Table]) -> None:
    eleves = modest["eleves"]
    pairs = set(zip(eleves["uai"].to_pylist(), eleves["code_departement"].to_pylist(),
                    strict=True))
    for code, departement in pairs:
        assert uai_is_well_formed(code), code
        assert code[:3] == uai_prefix(departement), (code, departement)
    assert len({code for code, _ in pairs}) == len(pairs)  # a school lies in one département


def test_corsica_and_overseas_uai_prefixes_are_the_real_ones() -> None:
    assert uai_prefix("2A") == "620"
    assert uai_prefix("2B") == "720"
    assert uai_prefix("974") == "974"
    assert uai_prefix("01") == "001"
    assert len(DEPARTEMENTS) == 101


def test_statement_ids_are_unique_version_4_uuids(modest: dict[str, pa.Table]) -> None:
    ids = modest["traces_xapi"]["statement_id"]
    assert pc.count_distinct(ids).as_py() == len(ids)
    assert all(UUID4.fullmatch(s) for s in ids.slice(0, 20_000).to_pylist())


def test_uuid_formatting_follows_the_byte_layout() -> None:
    raw = np.arange(32, dtype=np.uint8).reshape(2, 16)
    assert uuid4_strings(raw).to_pylist() == [
        "00010203-0405-4607-8809-0a0b0c0d0e0f", "10111213-1415-4617-9819-1a1b1c1d1e1f"]


def test_fixed_width_strings_handle_empty_input() -> None:
    assert fixed_width_strings(np.zeros((0, 11), dtype=np.uint8)).to_pylist() == []
