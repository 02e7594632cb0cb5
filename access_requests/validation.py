"""Checks of researcher-supplied input: text fields, dates, population and the PDF protocol.

Text is stored as typed, except that markup (an HTML or XML tag), control characters and
bidirectional overrides are refused, and over-long values are refused rather than cut. The
portal escapes everything it renders anyway; refusing tags at the door also protects the other
readers of these texts (e-mails, CSV exports, reviewers' tools). Every refusal is a
:class:`FieldError` naming the field, raised before anything is written; a whole form is
checked field by field with a :class:`Collector`, which reports every refusal at once.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from datetime import date
from typing import NoReturn, ParamSpec, TypeVar

from access_requests.exceptions import FieldError, FieldErrors

P = ParamSpec("P")
T = TypeVar("T")

#: Bidirectional embedding/override/isolate controls: they make text display differently
#: from what it is ("Trojan Source", CVE-2021-42574).
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
LEVELS = ("CP", "CE1", "CE2", "CM1", "CM2", "6E", "5E", "4E", "3E", "2NDE", "1ERE", "TLE")
TERRITORY = re.compile(r"^[0-9A-Za-zÀ-ÿ' .()-]{1,100}$")
#: The start of an HTML/XML tag, comment, declaration or processing instruction: ``<`` directly
#: followed by a letter, ``/``, ``!`` or ``?`` (as the HTML tokenizer's tag-open state reads it).
#: ``< 10`` or ``<=`` in a sentence is not a tag and is accepted.
MARKUP = re.compile(r"<[A-Za-z/!?]")
MIN_YEAR = 1990
MAX_PROTOCOL_BYTES = 20 * 1024 * 1024
#: PDF names that start programs, scripts or carry files; refused in a protocol (a reviewer
#: opens it). Only visible when not inside a compressed object stream: a best-effort screen.
PDF_ACTIVE_CONTENT = (b"/JavaScript", b"/JS", b"/Launch", b"/EmbeddedFile", b"/RichMedia",
                      b"/XFA")


class Collector:
    """Runs each field's check and keeps every refusal, so that a form reports all its refused
    fields at once (:class:`FieldErrors`) instead of stopping at the first."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def check(self, rule: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | None:
        """``rule(*args, **kwargs)``, or None after keeping its refusal(s)."""
        try:
            return rule(*args, **kwargs)
        except FieldError as error:
            self.errors.extend(error.errors)
            return None

    def add(self, field: str, reason: str) -> None:
        """Keep a refusal found by the caller itself."""
        self.errors.append(FieldError(field, reason))

    def refused(self, field: str) -> bool:
        """True if ``field`` was already refused (a later check depending on it is skipped)."""
        return any(e.field == field for e in self.errors)

    def raise_if_any(self) -> None:
        """Raise :class:`FieldErrors` with every refusal kept so far, if any."""
        if self.errors:
            raise FieldErrors(self.errors)

    def fail(self) -> NoReturn:
        """Raise every refusal kept (called when a value is missing because it was refused)."""
        raise FieldErrors(self.errors or [FieldError("form", "was refused")])


def text(field: str, value: object, *, max_len: int, min_len: int = 0,
         multiline: bool = False) -> str:
    """The text as typed (line endings normalised to ``\\n``), or FieldError."""
    if not isinstance(value, str):
        raise FieldError(field, "must be text")
    if multiline:
        value = value.replace("\r\n", "\n")
    for char in value:
        if char in BIDI_CONTROLS:
            raise FieldError(field, f"contains a bidirectional control character "
                                    f"U+{ord(char):04X}, which is not allowed")
        category = unicodedata.category(char)
        if multiline and char in "\n\t":
            continue
        if category in ("Cc", "Cs") or (not multiline and category in ("Zl", "Zp")):
            raise FieldError(field, f"contains the control character U+{ord(char):04X}, "
                                    "which is not allowed" + ("" if multiline else
                                                              " (a single line is expected)"))
    if (tag := MARKUP.search(value)) is not None:
        raise FieldError(field, f"contains markup ({value[tag.start():tag.start() + 12]!r}…): "
                                "plain text only (a comparison such as '< 10' is fine)")
    stripped = value.strip()
    if not min_len <= len(stripped) <= max_len:
        if min_len:
            raise FieldError(field, f"needs {min_len} to {max_len} characters "
                                    f"(got {len(stripped)})")
        raise FieldError(field, f"is longer than {max_len} characters (got {len(stripped)})")
    return stripped


def future_date(field: str, value: object, today: date) -> date:
    """A date strictly after ``today``."""
    if not isinstance(value, date):
        raise FieldError(field, "must be a date")
    if value <= today:
        raise FieldError(field, f"must be in the future (after {today.isoformat()}); "
                                f"got {value.isoformat()}")
    return value


def years(field: str, values: Iterable[object], today: date) -> list[int]:
    """Distinct school years (the calendar year a school year starts), sorted."""
    out = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FieldError(field, f"{value!r} is not a year")
        if not MIN_YEAR <= value <= today.year + 1:
            raise FieldError(field, f"{value} is outside {MIN_YEAR}-{today.year + 1}")
        out.append(value)
    return sorted(set(out))


def levels(field: str, values: Iterable[object]) -> list[str]:
    """School levels among :data:`LEVELS`, in school order."""
    out = set()
    for value in values:
        if not isinstance(value, str) or value.upper() not in LEVELS:
            raise FieldError(field, f"{value!r} is not a school level; known: "
                                    + ", ".join(LEVELS))
        out.add(value.upper())
    return [level for level in LEVELS if level in out]


def territories(field: str, values: Iterable[object]) -> list[str]:
    """Names or codes of territories (académies, départements, 'France entière')."""
    out: list[str] = []
    for value in values:
        name = text(field, value, max_len=100, min_len=1)
        if not TERRITORY.match(name):
            raise FieldError(field, f"{name!r} is not a territory name or code")
        if name not in out:
            out.append(name)
    if len(out) > 200:
        raise FieldError(field, "lists more than 200 territories")
    return out


def pdf(field: str, data: object) -> bytes:
    """A plausible, passive PDF: magic bytes, size, version, trailer and cross-reference.

    This is a parse-level sanity check (header ``%PDF-1.x``/``2.x``, an ``%%EOF`` marker and a
    ``startxref`` offset that points at a cross-reference table or stream inside the file, at
    least one indirect object), not a full parser; it refuses visible active content.
    """
    if not isinstance(data, bytes | bytearray):
        raise FieldError(field, "must be the bytes of a PDF file")
    data = bytes(data)
    if not data:
        raise FieldError(field, "is empty")
    if len(data) > MAX_PROTOCOL_BYTES:
        raise FieldError(field, f"is larger than {MAX_PROTOCOL_BYTES // (1024 * 1024)} MiB")
    if not data.startswith(b"%PDF-"):
        raise FieldError(field, "is not a PDF file (it does not start with %PDF-)")
    if not re.match(rb"%PDF-[12]\.\d", data):
        raise FieldError(field, "has an unknown PDF version in its header")
    tail = data[-4096:]
    if b"%%EOF" not in tail:
        raise FieldError(field, "is not a complete PDF file (no %%EOF marker at its end)")
    match = list(re.finditer(rb"startxref\s+(\d{1,12})\s+%%EOF", tail))
    if not match:
        raise FieldError(field, "is not a valid PDF file (no startxref before %%EOF)")
    offset = int(match[-1].group(1))
    if not 0 < offset < len(data):
        raise FieldError(field, "is not a valid PDF file (its cross-reference offset points "
                                "outside the file)")
    at = data[offset:offset + 64]
    if not (at.startswith(b"xref") or re.match(rb"\d+\s+\d+\s+obj", at)):
        raise FieldError(field, "is not a valid PDF file (no cross-reference at startxref)")
    if not re.search(rb"\d+\s+\d+\s+obj\b", data) or b"endobj" not in data:
        raise FieldError(field, "is not a valid PDF file (it holds no object)")
    for name in PDF_ACTIVE_CONTENT:
        if re.search(re.escape(name) + rb"(?![A-Za-z])", data):
            raise FieldError(field, f"contains active content ({name.decode()}); export the "
                                    "protocol again as a plain PDF")
    if re.search(rb"/Encrypt(?![A-Za-z])", data):
        raise FieldError(field, "is encrypted; upload an unprotected PDF")
    return data
