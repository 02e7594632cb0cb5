"""Privacy budgets: the persisted ledger of differential privacy spends per project and dataset.

DEPP staff set a total ``(ε, δ)`` for a project on a dataset; every DP query a member runs is
charged to it atomically *before* it runs and never refunded; the ethics committee, DEPP staff
and the project's members read the ledger. The DP computations themselves are the pure library
:mod:`anonymization.dp`; this workflow keeps their total within the budget. Unlike
diffprivlib's in-memory ``BudgetAccountant``, the ledger is in the database and safe under
concurrent queries (see :mod:`~enclave.privacy_budget.ledger`).

- :mod:`~enclave.privacy_budget.models`: the tables ``privacy_budgets`` and ``privacy_spends``;
- :mod:`~enclave.privacy_budget.ledger`: ``set_budget``, ``reserve`` (``charge`` inside a
  caller's transaction), ``settle``, ``ledger``,
  ``ledgers``, the spend statuses and their state machine;
- :mod:`~enclave.privacy_budget.run`: ``run_dp_query`` (reserve, compute, record the outcome);
- :mod:`~enclave.privacy_budget.exceptions`: ``NoBudget``, ``BudgetExceeded``,
  ``InvalidBudget``, ``ResultExceedsReservation``.
"""

from enclave.privacy_budget.exceptions import (
    BudgetExceeded,
    InvalidBudget,
    NoBudget,
    ResultExceedsReservation,
)
from enclave.privacy_budget.ledger import (
    SPEND_MACHINE,
    Ledger,
    Reservation,
    SpendStatus,
    SpendView,
    charge,
    ledger,
    ledgers,
    reserve,
    set_budget,
    settle,
)
from enclave.privacy_budget.models import PrivacyBudget, PrivacySpend
from enclave.privacy_budget.run import QueryRun, run_dp_query

__all__ = [
    "SPEND_MACHINE",
    "BudgetExceeded",
    "InvalidBudget",
    "Ledger",
    "NoBudget",
    "PrivacyBudget",
    "PrivacySpend",
    "QueryRun",
    "Reservation",
    "ResultExceedsReservation",
    "SpendStatus",
    "SpendView",
    "charge",
    "ledger",
    "ledgers",
    "reserve",
    "run_dp_query",
    "set_budget",
    "settle",
]
