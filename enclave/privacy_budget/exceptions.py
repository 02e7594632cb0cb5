"""Errors of the privacy budget workflow; each message states the rule that was broken."""

from __future__ import annotations

from enclave.core.exceptions import EnclaveError, NotFound, ValidationError


class NoBudget(NotFound):
    """No privacy budget was set for this project and dataset: no DP query may run on it."""


class BudgetExceeded(EnclaveError):
    """The spend asked for would take the project's budget for the dataset past its total.

    Nothing was recorded: the query did not run and nothing was charged.
    """


class InvalidBudget(ValidationError):
    """A budget or a spend amount is malformed, or a new total is below what was already spent."""


class ResultExceedsReservation(EnclaveError):
    """A computation reported spending more than was reserved for it; its result is withheld."""
