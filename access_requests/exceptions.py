"""Errors of the access workflow; each message states the rule that was broken and what to do.

They extend the core's errors, so an edge that already maps ``ValidationError`` to "400, show
the message next to the field" and ``PermissionDenied`` to "403" needs nothing new.
"""

from __future__ import annotations

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
