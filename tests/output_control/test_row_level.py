"""Row-level content: pseudonyms of the extract found in any cell of an output, alone or inside
longer text, reported by place with no more than a short prefix; tables without one pass."""

from __future__ import annotations

import csv
import io
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anonymization.pseudonyms import PSEUDONYM_LENGTH, pseudonym
from output_control.row_level import (
    PREFIX_SHOWN,
    PSEUDONYM_ALPHABET,
    RULE,
    SortedPseudonyms,
    TextCell,
    binary_cells,
    csv_cells,
    file_cells,
    find_pseudonyms,
    redact,
    row_level_verdict,
    windows,
)
from output_control.verdicts import Outcome

KEY = bytes(range(32))
PUPILS = [pseudonym(f"INE{i:06d}", KEY) for i in range(300)]
KNOWN = SortedPseudonyms.from_strings(PUPILS)
P0, P1, P2 = PUPILS[:3]


def _csv(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode()


def _no_full_pseudonym(text: str) -> None:
    for p in PUPILS:
        assert p not in text


# -- the alphabet and the index ------------------------------------------------------------

def test_the_alphabet_and_length_are_those_pseudonyms_are_written_in() -> None:
    assert len(PSEUDONYM_ALPHABET) == 32 and PSEUDONYM_LENGTH == 26
    assert all(len(p) == 26 and set(p) <= set(PSEUDONYM_ALPHABET) for p in PUPILS)


def test_sorted_pseudonyms_are_sorted_unique_and_answer_membership() -> None:
    doubled = SortedPseudonyms.from_strings(PUPILS + PUPILS[:10])
    assert len(doubled) == 300
    assert list(doubled.values) == sorted(doubled.values)
    assert P0 in doubled and "a" * 26 not in doubled and 42 not in doubled
    assert list(doubled.contains_many([P1, "b" * 26, P2])) == [True, False, True]


def test_an_empty_set_contains_nothing() -> None:
    empty = SortedPseudonyms.from_strings([])
    assert len(empty) == 0 and P0 not in empty
    assert list(empty.contains_many([P0])) == [False]


@pytest.mark.parametrize("bad", ["short", "A" * 26, "1" * 26, "a" * 27])
def test_a_value_that_is_no_pseudonym_is_refused_in_the_set(bad: str) -> None:
    with pytest.raises(ValueError, match="26 characters"):
        SortedPseudonyms.from_strings([bad])


# -- tokenising ------------------------------------------------------------------------------

def test_windows_cut_every_long_token_into_all_its_26_character_windows() -> None:
    # "x" + 26 letters + "-" + 25 letters: one token of 27 (two windows), one too short.
    text = "x" + "a" * 26 + "-" + "b" * 25
    assert list(windows(text)) == [(0, "x" + "a" * 25), (1, "a" * 26)]


def test_windows_split_on_characters_no_pseudonym_has() -> None:
    # 0, 1, 8, 9, '_', ' ', 'é' cannot be in a pseudonym; upper case is lowered.
    assert [w for _, w in windows(f"0{P0.upper()}1")] == [P0]
    assert [w for _, w in windows(f"élève_{P0}_9")] == [P0]
    assert list(windows("abc 234 xyz")) == []


# -- cells of files --------------------------------------------------------------------------

def test_csv_cells_are_every_label_and_value_with_column_and_row() -> None:
    cells = csv_cells(_csv([["eleve", "n"], ["a", "12"], ["b", "3"]]))
    assert [(c.text, c.column, c.label, c.row) for c in cells] == [
        ("eleve", 1, "eleve", 0), ("n", 2, "n", 0), ("a", 1, "eleve", 1),
        ("12", 2, "n", 1), ("b", 1, "eleve", 2), ("3", 2, "n", 2)]


def test_text_and_binary_files_give_their_lines_and_printable_runs() -> None:
    assert [(c.text, c.row) for c in file_cells("note.txt", b"one\ntwo\n")] == [
        ("one", 1), ("two", 2)]
    binary = b"\x89PNG\x00\xff" + P0.encode() + b"\x00\x01"
    cells = file_cells("figure.png", binary)
    assert [(c.text, c.offset) for c in cells] == [(P0, 6)]
    assert binary_cells(b"\x00" * 100) == []


# -- the verdict -----------------------------------------------------------------------------

def test_a_frequency_table_whose_labels_are_pseudonyms_fails_naming_the_rule() -> None:
    data = _csv([["eleve", "n"], [P0, "12"], [P1, "15"], [P0, "11"]])
    verdict = row_level_verdict(csv_cells(data), KNOWN, scope="test pupils")
    assert verdict.rule == RULE == "row_level_content"
    assert verdict.outcome is Outcome.FAIL
    assert verdict.parameters["pseudonyms_found"] == 2
    assert verdict.parameters["occurrences"] == 3
    assert "2 distinct pseudonyms" in verdict.message and "3 cells" in verdict.message
    assert [c.cell for c in verdict.cells] == [
        ("column 1 (eleve)", "row 1"), ("column 1 (eleve)", "row 2"),
        ("column 1 (eleve)", "row 3")]
    assert [c.value for c in verdict.cells] == [P0[:4] + "…", P1[:4] + "…", P0[:4] + "…"]
    _no_full_pseudonym(repr(verdict.to_dict()))


def test_a_table_of_ordinary_labels_passes_and_says_what_was_searched() -> None:
    data = _csv([["sexe", "CM2", "6E"], ["F", "12", "14"], ["M", "13", "11"]])
    verdict = row_level_verdict(csv_cells(data), KNOWN, scope="the 300 pupils of v1")
    assert verdict.outcome is Outcome.PASS
    assert "the 300 pupils of v1" in verdict.message and "9 text cells" in verdict.message
    assert verdict.cells == ()


def test_a_pseudonym_hidden_inside_a_longer_label_is_caught() -> None:
    data = _csv([["groupe", "n"], [f"classe-{P2}x (test)", "12"], ["autre", "11"]])
    verdict = row_level_verdict(csv_cells(data), KNOWN, scope="s")
    assert verdict.outcome is Outcome.FAIL
    assert [c.cell for c in verdict.cells] == [("column 1 (groupe)", "row 1")]


def test_a_pseudonym_in_a_column_header_is_never_echoed_in_the_column_name() -> None:
    data = _csv([["sexe", f"n_{P0}"], ["F", "12"]])
    verdict = row_level_verdict(csv_cells(data), KNOWN, scope="s")
    assert verdict.outcome is Outcome.FAIL
    shown = f"column 2 (n_{P0[:PREFIX_SHOWN]}…)"
    assert verdict.cells[0].cell == (shown, "header")
    _no_full_pseudonym(repr(verdict.to_dict()))


def test_an_upper_cased_pseudonym_is_caught() -> None:
    verdict = row_level_verdict([TextCell(P1.upper(), row=4)], KNOWN, scope="s")
    assert verdict.outcome is Outcome.FAIL
    assert verdict.cells[0].cell == ("line 4",)


def test_a_pseudonym_of_another_key_is_not_one_of_the_extract() -> None:
    other = pseudonym("INE000000", bytes(32))
    assert row_level_verdict([TextCell(other, row=1)], KNOWN, scope="s").outcome \
        is Outcome.PASS


def test_a_plain_set_works_as_the_membership_test() -> None:
    hits = find_pseudonyms([TextCell(f"x{P0}", row=1)], set(PUPILS))
    assert [(h.start, h.pseudonym) for h in hits] == [(1, P0)]


def test_redact_cuts_every_pseudonym_of_the_set_to_its_prefix_and_leaves_the_rest() -> None:
    text = f"({P0}, F) and ({P1.upper()}x, M) but not {'a' * 26}"
    assert redact(text, KNOWN) == f"({P0[:4]}…, F) and ({P1[:4]}…x, M) " \
        f"but not {'a' * 26}"
    assert redact("plain", KNOWN) == "plain"


def test_a_pseudonym_inside_a_very_long_token_is_found_where_it_is() -> None:
    # Longer than LONG_TOKEN: searched as a numpy sliding window, with the same answer.
    text = "a" * 5000 + P2.upper() + "b" * 7000 + "-" + P0
    hits = find_pseudonyms([TextCell(text, row=1)], KNOWN)
    assert [(h.start, h.pseudonym) for h in hits] == [(5000, P2), (12027, P0)]
    assert [(h.start, h.pseudonym) for h in find_pseudonyms([TextCell(text, row=1)],
                                                            set(PUPILS))] == \
        [(5000, P2), (12027, P0)]


def test_an_endless_token_is_searched_quickly() -> None:
    import time

    started = time.perf_counter()
    verdict = row_level_verdict(file_cells("x.csv", b"a" * 2_000_000), KNOWN, scope="s")
    assert verdict.outcome is Outcome.PASS
    assert time.perf_counter() - started < 5  # a 10 MB token takes about 0.5 s here


def test_the_cells_of_a_figure_table_are_named_by_their_file() -> None:
    cells = csv_cells(_csv([["eleve", "n"], [P0, "12"]]), part="data.csv")
    verdict = row_level_verdict(cells, KNOWN, scope="s")
    assert verdict.cells[0].cell == ("in data.csv", "column 1 (eleve)", "row 1")


def test_findings_are_capped_but_counted() -> None:
    data = _csv([["eleve"], *[[p] for p in PUPILS]])
    verdict = row_level_verdict(csv_cells(data), KNOWN, scope="s")
    assert len(verdict.cells) == 50 and verdict.parameters["pseudonyms_found"] == 300


def test_a_malformed_csv_is_still_searched_as_text() -> None:
    data = b'a,b\n"unterminated,' + P0.encode() + b"\x00\n"
    verdict = row_level_verdict(file_cells("t.csv", data), KNOWN, scope="s")
    assert verdict.outcome is Outcome.FAIL


# -- properties ------------------------------------------------------------------------------

_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
_TABLES = st.lists(st.lists(_TEXT, min_size=1, max_size=5), min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(table=_TABLES, data=st.data())
def test_any_pseudonym_inserted_anywhere_in_any_cell_is_caught(
        table: list[list[str]], data: st.DataObject) -> None:
    row = data.draw(st.integers(0, len(table) - 1))
    column = data.draw(st.integers(0, len(table[row]) - 1))
    cell = table[row][column]
    at = data.draw(st.integers(0, len(cell)))
    chosen = data.draw(st.sampled_from(PUPILS))
    if data.draw(st.booleans()):
        chosen = chosen.upper()
    table[row][column] = cell[:at] + chosen + cell[at:]
    verdict = row_level_verdict(csv_cells(_csv(table)), KNOWN, scope="s")
    assert verdict.outcome is Outcome.FAIL
    assert chosen.lower()[:4] + "…" in {c.value for c in verdict.cells}


@settings(max_examples=200, deadline=None)
@given(table=_TABLES)
def test_a_table_without_a_pseudonym_of_the_extract_passes(table: list[list[str]]) -> None:
    # Random text (even runs of base32 letters) is not a pupil's pseudonym: 300 of 2^130.
    verdict = row_level_verdict(csv_cells(_csv(table)), KNOWN, scope="s")
    assert verdict.outcome is Outcome.PASS


@settings(max_examples=100, deadline=None)
@given(text=st.text(alphabet=string.ascii_lowercase + "234567 -", max_size=80))
def test_windows_agree_with_a_naive_search(text: str) -> None:
    naive = {text[i:i + 26] for i in range(len(text) - 25)
             if set(text[i:i + 26]) <= set(PSEUDONYM_ALPHABET)}
    assert {w for _, w in windows(text)} == naive


def test_the_module_is_a_pure_library() -> None:
    import ast
    from pathlib import Path

    import output_control.row_level as module

    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m and m.split(".")[0] in (
        "enclave", "access_requests", "sqlalchemy", "fastapi")}
    assert "output_control.review" not in imported


@settings(max_examples=150, deadline=None)
@given(parts=st.lists(st.one_of(st.sampled_from(PUPILS[:5]),
                                st.text(alphabet="abz27 -0É", max_size=30)), max_size=12),
       cells=st.integers(1, 3))
def test_the_vectorised_search_finds_exactly_what_a_window_by_window_search_finds(
        parts: list[str], cells: int) -> None:
    text = "".join(parts)
    chunks = [TextCell(text[i::cells], row=i) for i in range(cells)] + [TextCell(text, row=9)]
    expected = [(c.row, start, w) for c in chunks for start, w in windows(c.text)
                if w in set(PUPILS)]
    for members in (KNOWN, set(PUPILS)):
        found = [(h.cell.row, h.start, h.pseudonym) for h in find_pseudonyms(chunks, members)]
        assert found == expected
