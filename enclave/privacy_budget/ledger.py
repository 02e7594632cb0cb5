"""The privacy budget ledger: totals set by DEPP staff, spends charged atomically, read openly.

A project has at most one budget per dataset: a total ``(ε, δ)``. Every DP query on that
dataset is charged to it *before* it runs, and a charge is never refunded. Under sequential
composition (Dwork & Roth 2014, Theorem 3.16) the privacy loss of all the project's queries on
the dataset is at most the sum of their charges, which the ledger keeps at or below the total.

**Atomicity.** :func:`reserve` locks the budget row (``SELECT ... FOR UPDATE`` on PostgreSQL;
on SQLite every transaction starts with ``BEGIN IMMEDIATE``, see :mod:`enclave.core.db`, which
serialises writers), reads the running total, refuses if the charge would pass the total, and
otherwise inserts the spend, updates the running total and appends the audit event, all in one
transaction. Concurrent spends therefore queue on the row and each sees the previous ones; the
CHECK constraints of :mod:`~enclave.privacy_budget.models` refuse an overspend even from a writer
that bypasses this module. Amounts are exact integers (see the models); a spend is rounded up
to the unit and a total down, so rounding never grants budget.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from access_requests import workflow as projects
from enclave.core import audit, policy, statemachine
from enclave.core.catalogue import Dataset
from enclave.core.db import Database, utcnow
from enclave.core.exceptions import NotFound
from enclave.core.policy import Actor, Role, StateMachine, Transition
from enclave.privacy_budget.exceptions import BudgetExceeded, InvalidBudget, NoBudget
from enclave.privacy_budget.models import PrivacyBudget, PrivacySpend

EPSILON_SCALE = 10**9
DELTA_SCALE = 10**18
#: Largest total epsilon accepted (far beyond any meaningful privacy guarantee).
MAX_EPSILON = Decimal(1000)
MAX_DESCRIPTION = 5000

Amount = float | int | Decimal | str


class SpendStatus(StrEnum):
    """Where a spend stands: charged before the query ran, then completed or failed."""

    RESERVED = "reserved"
    COMPLETED = "completed"
    FAILED = "failed"


#: The system records how a query ended; a spend is charged either way.
SPEND_MACHINE: StateMachine[SpendStatus] = StateMachine("privacy_spend", SpendStatus, (
    Transition(SpendStatus.RESERVED, SpendStatus.COMPLETED, Role.SYSTEM,
               "privacy_budget.query_completed"),
    Transition(SpendStatus.RESERVED, SpendStatus.FAILED, Role.SYSTEM,
               "privacy_budget.query_failed"),
))


# -- amounts --------------------------------------------------------------------------------------

def _decimal(name: str, value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise InvalidBudget(f"{name} must be a number; got {type(value).__name__}")
    try:
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise InvalidBudget(f"{name} must be a number; got {value!r}") from None
    if not number.is_finite() or number < 0:
        raise InvalidBudget(f"{name} must be a finite number >= 0; got {value!r}")
    return number


def _units(name: str, value: object, scale: int, *, spend: bool) -> int:
    rounding = ROUND_CEILING if spend else ROUND_FLOOR
    return int((_decimal(name, value) * scale).to_integral_value(rounding=rounding))


def epsilon_units(value: Amount, *, spend: bool) -> int:
    """Epsilon in units of 10⁻⁹: rounded up for a spend, down for a total; must be > 0."""
    if _decimal("epsilon", value) > MAX_EPSILON:
        raise InvalidBudget(f"epsilon must be at most {MAX_EPSILON}; got {value!r}")
    units = _units("epsilon", value, EPSILON_SCALE, spend=spend)
    if units <= 0:
        raise InvalidBudget(f"epsilon must be > 0 (at least 1e-9); got {value!r}")
    return units


def delta_units(value: Amount, *, spend: bool) -> int:
    """Delta in units of 10⁻¹⁸: rounded up for a spend, down for a total; must be < 1."""
    units = _units("delta", value, DELTA_SCALE, spend=spend)
    if units >= DELTA_SCALE:
        raise InvalidBudget(f"delta must be < 1; got {value!r}")
    return units


def amount(units: int, scale: int) -> Decimal:
    """An exact decimal from stored units."""
    return (Decimal(units) / Decimal(scale)).normalize() if units else Decimal(0)


# -- views ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SpendView:
    """One line of the ledger: who ran which query, when, for how much, and how it ended."""

    id: int
    actor: str
    at: datetime
    description: str
    epsilon: Decimal
    delta: Decimal
    status: SpendStatus
    accounting: dict[str, Any]
    audit_seq: int | None


@dataclass(frozen=True)
class Ledger:
    """A budget with what was spent, what remains, and every spend in order."""

    project_id: str
    dataset_id: str
    total_epsilon: Decimal
    total_delta: Decimal
    spent_epsilon: Decimal
    spent_delta: Decimal
    set_by: str
    set_at: datetime
    reason: str
    spends: tuple[SpendView, ...]

    @property
    def remaining_epsilon(self) -> Decimal:
        """Epsilon still available to the project on this dataset."""
        return self.total_epsilon - self.spent_epsilon

    @property
    def remaining_delta(self) -> Decimal:
        """Delta still available to the project on this dataset."""
        return self.total_delta - self.spent_delta


@dataclass(frozen=True)
class Reservation:
    """A charge that was committed: the query may now run (and the charge stays)."""

    spend_id: int
    project_id: str
    dataset_id: str
    epsilon: Decimal
    delta: Decimal
    remaining_epsilon: Decimal
    remaining_delta: Decimal
    audit_seq: int


def _spend_view(spend: PrivacySpend) -> SpendView:
    return SpendView(spend.id, spend.actor, spend.at, spend.description,
                     amount(spend.epsilon_e9, EPSILON_SCALE), amount(spend.delta_e18, DELTA_SCALE),
                     SpendStatus(spend.status), json.loads(spend.accounting or "{}"),
                     spend.audit_seq)


def _ledger_view(session: Session, budget: PrivacyBudget, with_spends: bool = True) -> Ledger:
    spends: tuple[SpendView, ...] = ()
    if with_spends:
        rows = session.execute(select(PrivacySpend).where(PrivacySpend.budget_id == budget.id)
                               .order_by(PrivacySpend.id)).scalars()
        spends = tuple(_spend_view(spend) for spend in rows)
    return Ledger(budget.project_id, budget.dataset_id,
                  amount(budget.total_epsilon_e9, EPSILON_SCALE),
                  amount(budget.total_delta_e18, DELTA_SCALE),
                  amount(budget.spent_epsilon_e9, EPSILON_SCALE),
                  amount(budget.spent_delta_e18, DELTA_SCALE),
                  budget.set_by, budget.set_at, budget.reason, spends)


# -- budgets --------------------------------------------------------------------------------------

def _budget(session: Session, project_id: str, dataset_id: str, *,
            lock: bool) -> PrivacyBudget | None:
    query = select(PrivacyBudget).where(PrivacyBudget.project_id == project_id,
                                        PrivacyBudget.dataset_id == dataset_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.execute(query).scalar_one_or_none()


def set_budget(db: Database, actor: Actor, project_id: str, dataset_id: str, *,
               epsilon: Amount, delta: Amount = 0, reason: str = "") -> Ledger:
    """Set (or change) the total budget of a project on a dataset; DEPP staff only.

    A new total may not be below what was already spent: spends are never undone. The change
    and its audit event commit together.
    """
    total_epsilon = epsilon_units(epsilon, spend=False)
    total_delta = delta_units(delta, spend=False)
    reason = str(reason)[:MAX_DESCRIPTION]
    with db.transaction() as session:
        facts = projects.facts(session, project_id)
        policy.check_set_privacy_budget(actor, facts["members"])
        if session.get(Dataset, dataset_id) is None:
            raise NotFound(f"no dataset {dataset_id!r} in the catalogue")
        budget = _budget(session, project_id, dataset_id, lock=True)
        previous = None
        if budget is None:
            budget = PrivacyBudget(project_id=project_id, dataset_id=dataset_id,
                                   total_epsilon_e9=total_epsilon, total_delta_e18=total_delta,
                                   spent_epsilon_e9=0, spent_delta_e18=0, version=1,
                                   set_by=actor.username, set_at=utcnow(), reason=reason)
            session.add(budget)
        else:
            if total_epsilon < budget.spent_epsilon_e9 or total_delta < budget.spent_delta_e18:
                raise InvalidBudget(
                    f"the new total (epsilon {amount(total_epsilon, EPSILON_SCALE)}, delta "
                    f"{amount(total_delta, DELTA_SCALE)}) is below what was already spent "
                    f"(epsilon {amount(budget.spent_epsilon_e9, EPSILON_SCALE)}, delta "
                    f"{amount(budget.spent_delta_e18, DELTA_SCALE)}); spends are never undone")
            previous = {"epsilon": str(amount(budget.total_epsilon_e9, EPSILON_SCALE)),
                        "delta": str(amount(budget.total_delta_e18, DELTA_SCALE))}
            budget.total_epsilon_e9, budget.total_delta_e18 = total_epsilon, total_delta
            budget.set_by, budget.set_at, budget.reason = actor.username, utcnow(), reason
            budget.version += 1
        session.flush()
        audit.record(session, actor=actor.username, action="privacy_budget.set",
                     object_type="privacy_budget", object_id=str(budget.id),
                     project_id=project_id,
                     details={"dataset_id": dataset_id,
                              "total_epsilon": str(amount(total_epsilon, EPSILON_SCALE)),
                              "total_delta": str(amount(total_delta, DELTA_SCALE)),
                              "previous": previous, "reason": reason})
        return _ledger_view(session, budget, with_spends=False)


# -- spends ---------------------------------------------------------------------------------------

def reserve(db: Database, actor: Actor, project_id: str, dataset_id: str, *,
            epsilon: Amount, delta: Amount = 0, description: str) -> Reservation:
    """Charge a DP query to the budget, atomically, before it runs; raise if it does not fit.

    Only a member who may use the project's data (policy ``spend_privacy_budget``) spends. On
    :class:`BudgetExceeded`, :class:`NoBudget` or a refusal nothing is recorded. Once this
    returns, the charge is committed and stays whatever happens to the query.
    """
    with db.transaction() as session:
        return charge(session, actor, project_id, dataset_id, epsilon=epsilon, delta=delta,
                      description=description)


def charge(session: Session, actor: Actor, project_id: str, dataset_id: str, *,
           epsilon: Amount, delta: Amount = 0, description: str) -> Reservation:
    """:func:`reserve` inside the caller's transaction, so that another workflow's change (an
    output request charged at submission) and its charge commit or roll back together.

    Locks the budget row (``FOR UPDATE``; SQLite serialises writers), so concurrent charges
    queue and each sees the previous ones. A caller charging several datasets in one
    transaction charges them in sorted order, so two such transactions never deadlock.
    """
    spend_epsilon = epsilon_units(epsilon, spend=True)
    spend_delta = delta_units(delta, spend=True)
    description = str(description).strip()
    if not description:
        raise InvalidBudget("a spend needs a description of the query it pays for")
    if len(description) > MAX_DESCRIPTION:
        raise InvalidBudget(f"a spend's description is at most {MAX_DESCRIPTION} characters")
    facts = projects.facts(session, project_id)
    policy.check_spend_privacy_budget(actor, facts["members"], facts["agreed"],
                                      facts["active"])
    budget = _budget(session, project_id, dataset_id, lock=True)
    if budget is None:
        raise NoBudget(f"no privacy budget is set for project {project_id!r} on dataset "
                       f"{dataset_id!r}; DEPP staff set one before any DP query")
    new_epsilon = budget.spent_epsilon_e9 + spend_epsilon
    new_delta = budget.spent_delta_e18 + spend_delta
    if new_epsilon > budget.total_epsilon_e9 or new_delta > budget.total_delta_e18:
        raise BudgetExceeded(
            f"the query asks for epsilon {amount(spend_epsilon, EPSILON_SCALE)}, delta "
            f"{amount(spend_delta, DELTA_SCALE)} but only epsilon "
            f"{amount(budget.total_epsilon_e9 - budget.spent_epsilon_e9, EPSILON_SCALE)}, "
            f"delta {amount(budget.total_delta_e18 - budget.spent_delta_e18, DELTA_SCALE)} "
            f"remain of project {project_id!r}'s budget on {dataset_id!r}; a budget is "
            f"never exceeded")
    budget.spent_epsilon_e9, budget.spent_delta_e18 = new_epsilon, new_delta
    budget.version += 1
    spend = PrivacySpend(budget_id=budget.id, project_id=project_id, dataset_id=dataset_id,
                         actor=actor.username, at=utcnow(), description=description,
                         epsilon_e9=spend_epsilon, delta_e18=spend_delta,
                         status=SpendStatus.RESERVED.value, version=1, accounting="{}")
    session.add(spend)
    session.flush()
    remaining_epsilon = amount(budget.total_epsilon_e9 - new_epsilon, EPSILON_SCALE)
    remaining_delta = amount(budget.total_delta_e18 - new_delta, DELTA_SCALE)
    event = audit.record(
        session, actor=actor.username, action="privacy_budget.spent",
        object_type="privacy_spend", object_id=str(spend.id), project_id=project_id,
        details={"budget_id": budget.id, "dataset_id": dataset_id,
                 "epsilon": str(amount(spend_epsilon, EPSILON_SCALE)),
                 "delta": str(amount(spend_delta, DELTA_SCALE)),
                 "description": description,
                 "remaining_epsilon": str(remaining_epsilon),
                 "remaining_delta": str(remaining_delta)})
    spend.audit_seq = event.seq
    return Reservation(spend.id, project_id, dataset_id,
                       amount(spend_epsilon, EPSILON_SCALE), amount(spend_delta, DELTA_SCALE),
                       remaining_epsilon, remaining_delta, event.seq)


def settle(db: Database, spend_id: int, status: SpendStatus, *,
           accounting: dict[str, Any] | None = None, error: str | None = None) -> None:
    """Record how the query of a spend ended (by the system); the charge itself never changes."""
    with db.transaction() as session:
        spend = session.get(PrivacySpend, spend_id)
        if spend is None:
            raise NotFound(f"no privacy spend {spend_id!r}")
        details: dict[str, Any] = {"budget_id": spend.budget_id, "dataset_id": spend.dataset_id}
        if error is not None:
            details["error"] = error
        if accounting is not None:
            spend.accounting = json.dumps(accounting, sort_keys=True, allow_nan=False)
        statemachine.move(session, policy.SYSTEM, SPEND_MACHINE, spend, status, details=details)


# -- reading --------------------------------------------------------------------------------------

def ledger(db: Database, actor: Actor, project_id: str, dataset_id: str) -> Ledger:
    """The budget of a project on a dataset with every spend: budget, spent, remaining.

    Readable by the ethics committee and DEPP staff, and by the project's own researchers.
    """
    with db.sessions() as session:
        facts = projects.facts(session, project_id)
        policy.check_read_privacy_ledger(actor, facts["members"])
        budget = _budget(session, project_id, dataset_id, lock=False)
        if budget is None:
            raise NoBudget(f"no privacy budget is set for project {project_id!r} on dataset "
                           f"{dataset_id!r}")
        return _ledger_view(session, budget)


def ledgers(db: Database, actor: Actor, project_id: str | None = None, *,
            with_spends: bool = False) -> list[Ledger]:
    """Every budget of one project, or of every project (ethics committee and DEPP staff)."""
    with db.sessions() as session:
        query = select(PrivacyBudget).order_by(PrivacyBudget.project_id,
                                               PrivacyBudget.dataset_id)
        if project_id is None:
            policy.check_read_privacy_ledger(actor, ())
        else:
            policy.check_read_privacy_ledger(actor, projects.facts(session, project_id)["members"])
            query = query.where(PrivacyBudget.project_id == project_id)
        return [_ledger_view(session, budget, with_spends)
                for budget in session.execute(query).scalars()]
