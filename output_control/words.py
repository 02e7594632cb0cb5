"""Plain words for statistics in rule messages (pure: no I/O)."""

from __future__ import annotations

import math


def ordinal(number: float) -> str:
    """``1st``, ``2nd``, ``3rd``, ``11th``, ``22nd``, ``2.5th``: an English ordinal of a level
    given in percent (a non-integer takes ``th``)."""
    if not math.isfinite(number):
        raise ValueError(f"{number!r} has no ordinal")
    rounded = round(number, 10)
    if rounded != int(rounded):
        return f"{rounded:g}th"
    whole = int(rounded)
    if whole % 100 in (11, 12, 13):
        return f"{whole}th"
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(whole % 10, "th")
    return f"{whole}{suffix}"


def percentile_words(level: float) -> str:
    """``the 10th percentile`` for 0.1 (the caller adds "the"), the median named as such."""
    percent = round(level * 100, 10)
    if percent == 50:
        return "50th percentile (the median)"
    return f"{ordinal(percent)} percentile"
