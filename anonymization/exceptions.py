"""Errors of the anonymisation library; each message states the rule that was broken.

Every error subclasses `AnonymizationError` and the built-in exception a caller would expect
(`ValueError`, `TypeError`, `LookupError`), so generic handlers keep working. Messages never
contain a key or an identifier value: they name columns, counts, types and lengths only.
"""

from __future__ import annotations

from collections.abc import Sequence


class AnonymizationError(Exception):
    """Base class of every error the anonymisation library raises on purpose."""


class InvalidKeyError(AnonymizationError, ValueError):
    """A pseudonymisation key is not exactly 32 raw bytes (a 256-bit project data key).

    It is a `ValueError`, not the built-in `KeyError`, which means "missing mapping key".
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(
            f"a pseudonymisation key must be exactly 32 raw bytes (the 256-bit project data key "
            f"from the key store); {reason}"
        )

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (type(self), (self.reason,))


def _describe(column: str | None) -> str:
    return "the identifier array" if column is None else f"identifier column {column!r}"


class NullIdentifierError(AnonymizationError, ValueError):
    """An identifier is null: refused, because it would leak through or merge unrelated people."""

    def __init__(self, column: str | None, count: int) -> None:
        self.column = column
        self.count = count
        super().__init__(
            f"{_describe(column)} has {count} null value(s); identifiers must not be null "
            f"(a null cannot be pseudonymised and would either leak through or merge unrelated "
            f"people); drop or resolve these rows before pseudonymising"
        )

    def __reduce__(self) -> tuple[type, tuple[str | None, int]]:
        return (type(self), (self.column, self.count))


class EmptyIdentifierError(NullIdentifierError):
    """An identifier is the empty string: a missing value in disguise, rejected like a null."""

    def __init__(self, column: str | None, count: int) -> None:
        self.column = column
        self.count = count
        ValueError.__init__(
            self,
            f"{_describe(column)} has {count} empty string(s); identifiers must not be empty "
            f"(an empty string is a missing identifier and would give every such row the same "
            f"pseudonym, merging unrelated people); drop or resolve these rows before "
            f"pseudonymising",
        )


class UnsupportedIdentifierTypeError(AnonymizationError, TypeError):
    """An identifier column is neither strings nor integers (floats and binaries are refused)."""

    def __init__(self, column: str | None, type_name: str) -> None:
        self.column = column
        self.type_name = type_name
        super().__init__(
            f"{_describe(column)} has Arrow type {type_name}; identifiers must be strings or "
            f"integers (integers are hashed as their decimal string; floats, booleans and "
            f"binaries are refused because their text form is ambiguous)"
        )

    def __reduce__(self) -> tuple[type, tuple[str | None, str]]:
        return (type(self), (self.column, self.type_name))


class MissingColumnError(AnonymizationError, LookupError):
    """A column to pseudonymise is absent from the data."""

    def __init__(self, column: str, available: Sequence[str]) -> None:
        self.column = column
        self.available = tuple(available)
        shown = ", ".join(repr(name) for name in self.available) or "none"
        super().__init__(
            f"identifier column {column!r} is not in the data; every column named for "
            f"pseudonymisation must exist (available columns: {shown})"
        )

    def __reduce__(self) -> tuple[type, tuple[str, tuple[str, ...]]]:
        return (type(self), (self.column, self.available))


class ColumnConflictError(AnonymizationError, ValueError):
    """Column names are ambiguous: a duplicated source, or two outputs with the same name."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(
            f"column names must be unambiguous before and after pseudonymisation; {detail}"
        )

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (type(self), (self.detail,))
