"""Safety of the text that goes into a released table: labels and variable names.

Released CSVs are opened in spreadsheets and shown in the review web page, so a label must carry
neither markup nor a formula (OWASP "CSV injection": cells starting ``= + - @`` or a control
character), nor be long enough to smuggle microdata.
"""

from __future__ import annotations

import re
import unicodedata

MAX_LABEL_LENGTH = 200
_FORMULA_STARTS = ("=", "+", "-", "@")
_SCHEMES = ("javascript:", "vbscript:")
# A bare number such as "-1" or "+2.5" is not a formula for any spreadsheet: allowed.
_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


def label_problem(text: str) -> str | None:
    """Why ``text`` may not appear in a released table, or None when it is safe."""
    if len(text) > MAX_LABEL_LENGTH:
        return f"is longer than {MAX_LABEL_LENGTH} characters"
    if "<" in text:
        return "contains '<' (markup)"
    folded = "".join(text.split()).lower()
    for scheme in _SCHEMES:
        if scheme in folded:
            return f"contains {scheme!r} (script)"
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cf"):
            return f"contains the control character U+{ord(char):04X}"
    stripped = text.lstrip()
    if stripped.startswith(_FORMULA_STARTS) and not _NUMBER.fullmatch(stripped):
        return f"starts with {stripped[0]!r} (spreadsheet formula injection)"
    return None
