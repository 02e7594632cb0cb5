"""Errors of output control; each message states the rule that was broken and what to do."""

from __future__ import annotations


class OutputControlError(Exception):
    """Base of every error output control raises on purpose."""


class PolicyError(OutputControlError, ValueError):
    """A disclosure-control policy file is missing, malformed, or names unknown keys or rules."""


class InvalidTable(OutputControlError, ValueError):
    """A table breaks an invariant (shape, counts, unsafe label); it can be neither checked nor
    written."""


class InvalidOutputName(OutputControlError, ValueError):
    """An output name is not a safe file stem (letters, digits, ``_.-``; no ``..``)."""


class MissingUnitsError(OutputControlError, ValueError):
    """The column identifying statistical units (pupils) is absent or incomplete: counting units
    is mandatory, since disclosure rules count people, not rows."""


class OutputRejected(OutputControlError):
    """An output file cannot be trusted as it is (integrity, format, markup, size); fail closed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
