"""A summary of a CSV output for disclosure controllers, after OpenSAFELY's airlock: per
numeric column the count of values, the minimum, the minimum above zero, the sum, and how many
values are multiples of 5 (a rounded table has all of them; a low minimum above zero points to
a small cell). Pure: bytes in, rows out; the CSV itself is never rendered as markup.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any

MAX_ROWS = 200_000
MAX_COLUMNS = 500


def _number(text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def summarise_csv(data: bytes) -> list[dict[str, Any]]:
    """One row per column that holds numbers: ``column``, ``count``, ``min``, ``min_nonzero``,
    ``sum``, ``multiples_of_5`` (whole numbers divisible by 5) and ``text_values`` (cells that
    are not numbers). Raises ValueError on bytes that are not UTF-8 CSV or too large a table."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the file is not UTF-8 text") from None
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        return []
    except csv.Error as exc:
        raise ValueError(f"not a CSV file: {exc}") from None
    if len(header) > MAX_COLUMNS:
        raise ValueError(f"more than {MAX_COLUMNS} columns")
    columns: list[list[float]] = [[] for _ in header]
    texts = [0] * len(header)
    try:
        for n, line in enumerate(reader):
            if n >= MAX_ROWS:
                raise ValueError(f"more than {MAX_ROWS} rows")
            for j, field in enumerate(line[:len(header)]):
                value = _number(field)
                if value is not None:
                    columns[j].append(value)
                elif field.strip():
                    texts[j] += 1
    except csv.Error as exc:
        raise ValueError(f"not a CSV file: {exc}") from None
    summary = []
    for j, name in enumerate(header):
        values = columns[j]
        if not values:
            continue
        nonzero = [v for v in values if v != 0]
        summary.append({
            "column": name or f"#{j + 1}",
            "count": len(values),
            "min": _plain(min(values)),
            "min_nonzero": _plain(min(nonzero)) if nonzero else None,
            "sum": _plain(math.fsum(values)),
            "multiples_of_5": sum(1 for v in values if v.is_integer() and int(v) % 5 == 0),
            "text_values": texts[j],
        })
    return summary


def _plain(value: float) -> int | float:
    return int(value) if value.is_integer() else round(value, 6)
