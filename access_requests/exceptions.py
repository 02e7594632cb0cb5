"""Errors of the access workflow; each message states the rule that was broken and what to do.

They extend the core's errors, so an edge that already maps ``ValidationError`` to "400, show
the message next to the field" and ``PermissionDenied`` to "403" needs nothing new.
"""

from __future__ import annotations

from collections.abc import Iterable

from enclave.core.exceptions import (
    EnclaveError,
    InvalidTransition,
    PermissionDenied,
    ValidationError,
)


class FieldError(ValidationError):
    """One field of a form was refused; ``field`` names it so the portal can show it in place."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    @property
    def errors(self) -> tuple[FieldError, ...]:
        """Every refused field: this one (see :class:`FieldErrors` for several)."""
        return (self,)


class FieldErrors(FieldError):
    """Several fields of one form were refused, each named (``errors``, in the form's order).

    Raised when a form is checked whole, so that the researcher sees every refusal in one
    round trip. It is a :class:`FieldError` whose ``field`` and ``reason`` are the first
    refusal's, so an edge that handles one field error still shows something right.
    """

    def __init__(self, errors: Iterable[FieldError]) -> None:
        flat = tuple(one for error in errors for one in error.errors)
        if not flat:
            raise ValueError("FieldErrors needs at least one refused field")
        ValidationError.__init__(self, "; ".join(f"{e.field}: {e.reason}" for e in flat))
        self.field, self.reason = flat[0].field, flat[0].reason
        self._errors = flat

    @property
    def errors(self) -> tuple[FieldError, ...]:
        """Every refused field, in the order the form was checked."""
        return self._errors


class AlreadySubmitted(InvalidTransition, ValidationError):
    """The application was already submitted: a second submission changes nothing.

    Both an invalid transition (submitted -> submitted is not a move) and a validation error
    (the form's submit button was pressed twice), so either handler shows it.
    """

    field = "status"
    #: The project concerned, when the refusal names one (a form sent twice).
    project_id: str | None = None


class StaleVersion(EnclaveError):
    """The decision was made on an older view of the object; reload it and decide again."""

    def __init__(self, what: str, seen: int, current: int) -> None:
        super().__init__(f"{what} changed since you looked at it (you saw version {seen}, it is "
                         f"now at version {current}); reload it and decide again")
        self.seen = seen
        self.current = current


class AlreadyApproved(PermissionDenied):
    """The same DEPP staff member tried to approve twice in one review round.

    A refusal (the second approval must come from someone else), kept distinct so that an
    edge can say so plainly instead of showing a bare "access denied".
    """


class OpinionClosed(PermissionDenied):
    """The application was already decided: the ethics committee's opinion comes before."""
