"""Errors of secondary suppression; each message states the protection rule that was broken."""

from __future__ import annotations

from output_control.exceptions import OutputControlError


class SuppressionError(OutputControlError, ValueError):
    """A suppression problem is malformed: shapes, values, margins or levels do not agree."""


class InfeasibleProtection(SuppressionError):
    """No suppression pattern can give a primary cell its protection interval (e.g. a lower
    protection level larger than the cell's distance to its a-priori lower bound)."""


class UnprotectedPattern(OutputControlError):
    """A suppression pattern lets an attacker narrow a primary cell below its protection
    interval, using the published cells and margins: it must not be released."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
