"""CSV that spreadsheets cannot execute: every text cell that could start a formula is defused.

Spreadsheet programs evaluate a cell beginning with ``=``, ``+``, ``-`` or ``@`` (and, through
DDE, tab or carriage return) as a formula. Following OWASP's "CSV injection" guidance, such a
cell is prefixed with a single quote, which the spreadsheet shows as text; leading spaces do not
hide the trigger, and the full-width forms of the four characters are treated the same way.
Numbers we produce ourselves (sequence numbers) are written as they are.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence

FORMULA_TRIGGERS = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
BOM = "\ufeff"  # lets spreadsheet programs read accented French names as UTF-8


def safe_cell(value: object) -> str:
    """The cell's text, prefixed with ``'`` when a spreadsheet would read it as a formula."""
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    text = str(value)
    stripped = text.lstrip(" \u00a0")
    if (text and text[0] in FORMULA_TRIGGERS) or (stripped and stripped[0] in FORMULA_TRIGGERS):
        return "'" + text
    return text


def csv_lines(header: Sequence[str], rows: Iterable[Sequence[object]]) -> Iterator[str]:
    """The CSV document (RFC 4180, every field quoted), one line at a time, BOM first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")

    def line(cells: Sequence[object]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([safe_cell(c) for c in cells])
        return buffer.getvalue()

    yield BOM + line(header)
    for row in rows:
        yield line(row)
