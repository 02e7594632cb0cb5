"""Row-level content: fail an output that carries any pseudonym of the project's extract.

An aggregate output has no business naming an individual; a pupil's pseudonym in a released
table (a frequency table by pupil, a label, a note pasted into a cell) links the output back
to one row of the extract, so the issue's "fail closed" list blocks it, with the reason.

A pseudonym is 26 characters of the RFC 4648 base32 alphabet ``a-z2-7``
(:mod:`anonymization.pseudonyms`). Every text cell of a file (each label and value of a CSV,
each line of another text file, each printable run of a binary one) is tokenised on the
characters that cannot be part of a pseudonym; every token of at least 26 characters is cut
into all its 26-character windows, so a pseudonym glued to other letters (``eleve_<p>``,
``<p>x``) is found too. Letters are compared in lower case, so an upper-cased pseudonym is
found as well. The windows are looked up, all at once, in the extract's pseudonyms
(:class:`SortedPseudonyms`, a sorted fixed-width array searched with numpy, which can be a
memory map of an index file; any ``Container[str]`` works too).

What is reported never repeats a pseudonym: locations name the column by number and its label
with any pseudonym in it cut to a :data:`PREFIX_SHOWN`-character prefix, and the value shown is
that prefix. Deliberate disguise (a pseudonym split by separators, reversed or re-encoded) is
not what this check is for; the two human reviews are.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from anonymization.pseudonyms import PSEUDONYM_LENGTH
from output_control.verdicts import CellFinding, Outcome, RuleVerdict

__all__ = [
    "PREFIX_SHOWN",
    "PSEUDONYM_ALPHABET",
    "RULE",
    "Hit",
    "ManyContainer",
    "SortedPseudonyms",
    "TextCell",
    "binary_cells",
    "csv_cells",
    "file_cells",
    "find_pseudonyms",
    "redact",
    "row_level_verdict",
    "text_cells",
    "windows",
]

RULE = "row_level_content"
#: The base32 alphabet of pseudonyms (RFC 4648, lower case), as anonymization.pseudonyms writes.
PSEUDONYM_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
#: Characters of a pseudonym a verdict may show.
PREFIX_SHOWN = 4
#: Most cells a verdict lists (the message still counts them all).
MAX_FINDINGS = 50
#: Windows looked up at once.
LOOKUP_BATCH = 65_536
#: Bytes of tokens joined before their windows are looked up.
JOIN_BYTES = 1 << 20
_RUN = re.compile(f"[A-Za-z2-7]{{{PSEUDONYM_LENGTH},}}")
_PRINTABLE = re.compile(rb"[\x20-\x7e]{%d,}" % PSEUDONYM_LENGTH)
_DTYPE = np.dtype(f"S{PSEUDONYM_LENGTH}")


@dataclass(frozen=True)
class TextCell:
    """A piece of text of an output and where it is: ``column`` (1-based) with its ``label``
    and ``row`` (1-based data row; 0 for the header) for a CSV; ``row`` alone for a line of a
    text file; ``offset`` for a printable run of a binary file. ``part`` names the file it
    comes from when it is not the output itself (a figure's table)."""

    text: str
    row: int | None = None
    column: int | None = None
    label: str = ""
    offset: int | None = None
    part: str = ""


@runtime_checkable
class ManyContainer(Protocol):
    """A set of pseudonyms that answers for many candidates at once (one call, not one per
    candidate)."""

    def __contains__(self, value: object) -> bool: ...

    def contains_many(self, candidates: Sequence[str] | np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Hit:
    """A pseudonym of the extract found in a cell, at ``start`` of its text."""

    cell: TextCell
    start: int
    pseudonym: str

    @property
    def shown(self) -> str:
        """The prefix a verdict may show."""
        return self.pseudonym[:PREFIX_SHOWN] + "…"


class SortedPseudonyms:
    """A set of pseudonyms as a sorted array of unique 26-byte ASCII values (numpy ``S26``).

    Membership is a binary search (``numpy.searchsorted``), done for many candidates at once;
    26 bytes a pupil, and the array may be a read-only memory map of an index file, so a
    large extract costs neither a Python set nor a load.
    """

    def __init__(self, values: np.ndarray) -> None:
        if values.dtype != _DTYPE or values.ndim != 1:
            raise ValueError(f"pseudonyms must be a one-dimensional {_DTYPE} array")
        self.values = values

    @classmethod
    def from_strings(cls, values: Iterable[str | bytes]) -> SortedPseudonyms:
        """Sort and deduplicate pseudonyms (26 characters of the alphabet, else ValueError)."""
        raw = [v.encode("ascii") if isinstance(v, str) else bytes(v) for v in values]
        array = np.array(raw, dtype=_DTYPE) if raw else np.empty(0, dtype=_DTYPE)
        if any(len(v) != PSEUDONYM_LENGTH or not _RUN.fullmatch(v.decode("ascii", "replace"))
               or v != v.lower() for v in raw):
            raise ValueError("a pseudonym is 26 characters of a-z2-7")
        return cls(np.unique(array))

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def __contains__(self, value: object) -> bool:
        return isinstance(value, str) and bool(self.contains_many([value])[0])

    def contains_many(self, candidates: Sequence[str] | np.ndarray) -> np.ndarray:
        """A boolean per candidate (strings, or an ``S26`` array): is it a pseudonym?"""
        if not len(candidates) or not len(self):
            return np.zeros(len(candidates), dtype=bool)
        if isinstance(candidates, np.ndarray) and candidates.dtype == _DTYPE:
            wanted = candidates
        else:
            wanted = np.array([c.encode("ascii", "replace") for c in candidates],
                              dtype=_DTYPE)
        at = np.searchsorted(self.values, wanted)
        found = at < len(self)
        found[found] = self.values[at[found]] == wanted[found]
        return found


def windows(text: str) -> Iterable[tuple[int, str]]:
    """``(start, lower-cased window)`` for every 26-character window of every token of
    ``text`` made only of pseudonym characters (letters in either case and 2-7)."""
    for run in _RUN.finditer(text):
        token = run.group().lower()
        for i in range(len(token) - PSEUDONYM_LENGTH + 1):
            yield run.start() + i, token[i:i + PSEUDONYM_LENGTH]


def _decode(data: bytes) -> str:
    return data.decode("utf-8-sig", errors="replace")


def csv_cells(data: bytes, part: str = "") -> list[TextCell]:
    """Every label and value of a CSV: the header row (row 0) and each data row's values, with
    the column number and its header label. Undecodable bytes become U+FFFD (the rest is still
    read: this check must not be skipped because another one fails)."""
    cells = []
    header: list[str] = []
    reader = csv.reader(io.StringIO(_decode(data), newline=""))
    try:
        for row_number, row in enumerate(reader):
            if row_number == 0:
                header = row
            for j, value in enumerate(row, start=1):
                label = header[j - 1] if j <= len(header) else ""
                cells.append(TextCell(value, row=row_number, column=j, label=label, part=part))
    except csv.Error:  # malformed CSV (or a field over csv's size limit): scan its lines
        return text_cells(data, part)
    return cells


def text_cells(data: bytes, part: str = "") -> list[TextCell]:
    """Each line of a text file (1-based row)."""
    return [TextCell(line, row=i, part=part)
            for i, line in enumerate(_decode(data).splitlines(), start=1)]


def binary_cells(data: bytes, part: str = "") -> list[TextCell]:
    """Each run of at least 26 printable ASCII bytes of a binary file, at its byte offset."""
    return [TextCell(m.group().decode("ascii"), offset=m.start(), part=part)
            for m in _PRINTABLE.finditer(data)]


def file_cells(name: str, data: bytes, part: str = "") -> list[TextCell]:
    """The text cells of a file: a CSV's labels and values, a UTF-8 file's lines, otherwise
    the printable runs of its bytes."""
    if name.lower().endswith(".csv"):
        return csv_cells(data, part)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return binary_cells(data, part)
    return text_cells(data, part)


class _Plain:
    """Any ``Container[str]`` answering for an array of candidates, one at a time."""

    def __init__(self, container: Container[str]) -> None:
        self.container = container

    def __contains__(self, value: object) -> bool:
        return value in self.container

    def contains_many(self, candidates: Sequence[str] | np.ndarray) -> np.ndarray:
        return np.array([(c.decode("ascii") if isinstance(c, bytes) else c) in self.container
                         for c in candidates], dtype=bool)


_SEPARATOR = ord("0")  # never in a pseudonym


def find_pseudonyms(cells: Iterable[TextCell], pseudonyms: Container[str]) -> list[Hit]:
    """Every pseudonym of ``pseudonyms`` found in ``cells``, in cell order.

    The tokens (lower-cased) are joined with a character no pseudonym has, about
    :data:`JOIN_BYTES` at a time; the 26-byte windows of the joined bytes are a numpy sliding
    window, those that cross a separator are dropped, and the rest are looked up
    :data:`LOOKUP_BATCH` at a time as ``S26`` arrays. Time grows with the file's size and
    memory stays bounded, whatever the tokens' lengths."""
    lookup = pseudonyms if isinstance(pseudonyms, ManyContainer) else _Plain(pseudonyms)
    hits: list[tuple[int, int, Hit]] = []
    tokens: list[tuple[int, TextCell, int, str]] = []
    size = 0

    def flush() -> None:
        raw = np.frombuffer("0".join(t[3] for t in tokens).encode("ascii"), dtype=np.uint8)
        starts = np.cumsum([0] + [len(t[3]) + 1 for t in tokens[:-1]])
        view = np.lib.stride_tricks.sliding_window_view(raw, PSEUDONYM_LENGTH)
        for first in range(0, len(view), LOOKUP_BATCH):
            block = view[first:first + LOOKUP_BATCH]
            inside = np.flatnonzero((block != _SEPARATOR).all(axis=1))
            if not len(inside):
                continue
            batch = np.ascontiguousarray(block[inside]).view(_DTYPE).ravel()
            for position in inside[lookup.contains_many(batch)] + first:
                k = int(np.searchsorted(starts, position, side="right")) - 1
                order, cell, start, token = tokens[k]
                at = int(position - starts[k])
                hits.append((order, start + at,
                             Hit(cell, start + at, token[at:at + PSEUDONYM_LENGTH])))
        tokens.clear()

    for order, cell in enumerate(cells):
        for run in _RUN.finditer(cell.text):
            tokens.append((order, cell, run.start(), run.group().lower()))
            size += len(run.group()) + 1
            if size >= JOIN_BYTES:
                flush()
                size = 0
    if tokens:
        flush()
    hits.sort(key=lambda h: (h[0], h[1]))
    return [hit for _, _, hit in hits]


def _redact(text: str, hits: Sequence[Hit]) -> str:
    """``text`` with each pseudonym found in it cut to its shown prefix."""
    spans = sorted((h.start, h.start + PSEUDONYM_LENGTH, h.shown) for h in hits)
    out, at = [], 0
    for start, end, shown in spans:
        if start < at:
            continue
        out += [text[at:start], shown]
        at = end
    return "".join(out) + text[at:]


def redact(text: str, pseudonyms: Container[str]) -> str:
    """``text`` with every pseudonym of ``pseudonyms`` in it cut to its shown prefix (for the
    messages of other rules, which quote a table's labels)."""
    hits = find_pseudonyms([TextCell(text)], pseudonyms)
    return _redact(text, hits) if hits else text


def _location(cell: TextCell, label_hits: Sequence[Hit]) -> tuple[str, ...]:
    where = [f"in {cell.part}"] if cell.part else []
    if cell.column is not None:
        label = _redact(cell.label, label_hits)
        where.append(f"column {cell.column}" + (f" ({label})" if label else ""))
        where.append("header" if cell.row == 0 else f"row {cell.row}")
    elif cell.offset is not None:
        where.append(f"byte {cell.offset}")
    elif cell.row is not None:
        where.append(f"line {cell.row}")
    return tuple(where)


def row_level_verdict(cells: Sequence[TextCell], pseudonyms: Container[str], *,
                      scope: str) -> RuleVerdict:
    """FAIL naming every cell (up to :data:`MAX_FINDINGS`) that holds a pseudonym of
    ``pseudonyms``, or PASS; ``scope`` says in plain words which pseudonyms were searched
    (for example "the 100,000 pupil pseudonyms of extract v2")."""
    hits = find_pseudonyms(cells, pseudonyms)
    parameters = {"cells_checked": len(cells), "scope": scope}
    if not hits:
        return RuleVerdict(RULE, Outcome.PASS,
                           f"none of {scope} appears in the file's {len(cells)} text cells",
                           parameters=parameters)
    # Header hits redact the column labels shown with every cell of that column.
    header: dict[tuple[str, int | None], list[Hit]] = {}
    for hit in hits:
        if hit.cell.row == 0 and hit.cell.column is not None:
            header.setdefault((hit.cell.part, hit.cell.column), []).append(hit)
    findings = []
    for hit in hits[:MAX_FINDINGS]:
        where = _location(hit.cell, header.get((hit.cell.part, hit.cell.column), []))
        findings.append(CellFinding(RULE, where, hit.shown,
                                    f"a pupil pseudonym of the extract ({hit.shown})"))
    distinct = len({h.pseudonym for h in hits})
    places = len({(h.cell.part, h.cell.row, h.cell.column, h.cell.offset) for h in hits})
    first = ", ".join(findings[0].cell)
    return RuleVerdict(
        RULE, Outcome.FAIL,
        f"row-level content: {distinct} distinct pseudonym{'s' if distinct > 1 else ''} of "
        f"the extract found {len(hits)} time{'s' if len(hits) > 1 else ''} in {places} "
        f"cell{'s' if places > 1 else ''} (first: {first}, '{findings[0].value}'); an "
        "output must not name individuals: aggregate, or drop the identifier, before asking "
        "for release",
        cells=tuple(findings),
        parameters={**parameters, "pseudonyms_found": distinct, "occurrences": len(hits)})
