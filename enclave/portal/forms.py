"""Reading what people type: the audit filter form, with an error per field.

Every error is a message key shown next to its field; a form with errors filters nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from enclave.portal.queries import AuditFilter

TEXT_LIMITS = {"actor": 200, "project": 100, "action": 100}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_CURSOR_MAX = 2**62


@dataclass
class FilterForm:
    """The values as typed (to show them back), the errors by field, and the filter if valid."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    filter: AuditFilter = field(default_factory=AuditFilter)
    before: int | None = None
    after: int | None = None


def _date(text: str) -> date | None:
    if not _DATE.fullmatch(text):
        raise ValueError(text)
    return date.fromisoformat(text)


def _cursor(text: str | None) -> int | None:
    if text is None or not text.isdigit() or len(text) > 19:
        return None
    value = int(text)
    return value if 0 < value < _CURSOR_MAX else None


def parse_audit_filter(params: Mapping[str, str]) -> FilterForm:
    """Validate the filter's fields; on any error the filter stays empty and errors say why."""
    form = FilterForm()
    clean: dict[str, object] = {}
    for name, limit in TEXT_LIMITS.items():
        raw = str(params.get(name) or "")
        form.values[name] = raw[:limit * 2]
        text = raw.strip()
        if len(text) > limit:
            form.errors[name] = "error.too_long"
        elif any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
            form.errors[name] = "error.control_chars"
        elif text:
            clean[name] = text
    for name in ("date_from", "date_to"):
        raw = str(params.get(name) or "").strip()
        form.values[name] = raw[:20]
        if raw:
            try:
                clean[name] = _date(raw)
            except ValueError:
                form.errors[name] = "error.date"
    start, end = clean.get("date_from"), clean.get("date_to")
    if isinstance(start, date) and isinstance(end, date) and start > end:
        form.errors["date_to"] = "error.date_order"
    if not form.errors:
        form.filter = AuditFilter(**clean)  # type: ignore[arg-type]
        form.before = _cursor(params.get("before"))
        form.after = _cursor(params.get("after"))
    return form
