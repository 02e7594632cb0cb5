"""Run a DP query against a project's budget: reserve first, then compute, never refund.

The spend is committed before the computation starts and stays charged if the computation
fails. This is the safe choice, and deliberate: a failed query can still leak (its running
time, its error, a partial output written on the way), and the computation is the researcher's
code, which could read the noisy value and then raise to have the charge cancelled and ask
again. The ledger records how each query ended (``completed`` or ``failed``, with the error's
type only, since an error message may quote data).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, TypeVar

from anonymization.dp import Accounting
from enclave.core.db import Database
from enclave.core.policy import Actor
from enclave.privacy_budget.exceptions import ResultExceedsReservation
from enclave.privacy_budget.ledger import Amount, Reservation, SpendStatus, reserve, settle

T = TypeVar("T")


@dataclass(frozen=True)
class QueryRun(Generic[T]):
    """The value a DP query returned and the spend that paid for it."""

    value: T
    spend_id: int
    epsilon: Decimal
    delta: Decimal
    remaining_epsilon: Decimal
    remaining_delta: Decimal


def _description(compute: Callable[..., object]) -> str:
    name = getattr(compute, "__qualname__", None) or type(compute).__qualname__
    return f"{getattr(compute, '__module__', None) or '?'}.{name}"


def _as_dict(accounting: object) -> dict[str, Any] | None:
    return accounting.to_dict() if isinstance(accounting, Accounting) else None


def _check_within(reservation: Reservation, accounting: Accounting) -> None:
    """A query reporting more than was reserved is a bug; its value must not be released."""
    epsilon, delta = float(reservation.epsilon), float(reservation.delta)
    if (accounting.epsilon > epsilon and not math.isclose(accounting.epsilon, epsilon,
                                                          rel_tol=1e-9)) or \
            (accounting.delta > delta and not math.isclose(accounting.delta, delta,
                                                            rel_tol=1e-9)):
        raise ResultExceedsReservation(
            f"the query reported epsilon {accounting.epsilon}, delta {accounting.delta} but "
            f"epsilon {reservation.epsilon}, delta {reservation.delta} were reserved; its "
            f"result is withheld and the reservation stays charged")


def run_dp_query(db: Database, actor: Actor, project_id: str, dataset_id: str,
                 epsilon: Amount, compute: Callable[[float], T], *, delta: Amount = 0,
                 description: str | None = None) -> QueryRun[T]:
    """Reserve ``(epsilon, delta)`` on the budget, then return ``compute(epsilon)`` and the spend.

    ``compute`` receives the epsilon reserved (as a float) and must spend no more: when it
    returns an ``anonymization.dp.DPResult``, its accounting is checked against the
    reservation (:class:`ResultExceedsReservation` if above) and stored on the spend.
    Refusals (:class:`~enclave.privacy_budget.exceptions.BudgetExceeded`, ``NoBudget``,
    ``PermissionDenied``) happen before ``compute`` is called and charge nothing; once
    ``compute`` is called the charge is never refunded, even if it raises.
    """
    reservation = reserve(db, actor, project_id, dataset_id, epsilon=epsilon, delta=delta,
                          description=description or f"query {_description(compute)}")
    accounting: object = None
    try:
        value = compute(float(reservation.epsilon))
        accounting = getattr(value, "accounting", None)
        if isinstance(accounting, Accounting):
            _check_within(reservation, accounting)
    except BaseException as exc:
        try:
            settle(db, reservation.spend_id, SpendStatus.FAILED, error=type(exc).__name__,
                   accounting=_as_dict(accounting))
        except Exception as settle_error:  # keep the query's own error; the charge stands
            exc.add_note(f"the spend #{reservation.spend_id} stays charged but its outcome "
                         f"could not be recorded: {type(settle_error).__name__}")
        raise
    settle(db, reservation.spend_id, SpendStatus.COMPLETED, accounting=_as_dict(accounting))
    return QueryRun(value, reservation.spend_id, reservation.epsilon, reservation.delta,
                    reservation.remaining_epsilon, reservation.remaining_delta)
