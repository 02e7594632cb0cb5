"""Concurrent spends never exceed a budget: many threads racing on one budget row.

16 threads start together and each tries 50 spends of 0.01 against a total of 1.0: exactly
100 may succeed. Run on SQLite (writers serialised by BEGIN IMMEDIATE) and on PostgreSQL (the
budget row locked by SELECT ... FOR UPDATE).
"""

from __future__ import annotations

import threading
from collections import Counter
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from enclave.core import audit
from enclave.privacy_budget import BudgetExceeded, PrivacySpend, ledger, run_dp_query
from tests.privacy_budget.conftest import DATASET, give_budget, member
from tests.workflows.factories import Factory

THREADS = 16
ATTEMPTS = 50
SPEND = Decimal("0.01")
TOTAL = Decimal("1.0")
ALLOWED = int(TOTAL / SPEND)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_concurrent_spends_never_exceed_the_budget(factory: Factory, project: str) -> None:
    give_budget(factory, project, TOTAL)
    actor, db = member(factory), factory.enclave.db
    start = threading.Barrier(THREADS)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    computed: list[float] = []

    def compute(epsilon: float) -> float:
        with lock:
            computed.append(epsilon)
        return epsilon

    def worker(index: int) -> None:
        start.wait()
        for attempt in range(ATTEMPTS):
            try:
                run_dp_query(db, actor, project, DATASET, SPEND, compute,
                             description=f"thread {index} attempt {attempt}")
                outcome = "spent"
            except BudgetExceeded:
                outcome = "refused"
            except Exception as exc:  # any other error fails the test below
                outcome = f"error {type(exc).__name__}: {exc}"
            with lock:
                outcomes[outcome] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outcomes == {"spent": ALLOWED, "refused": THREADS * ATTEMPTS - ALLOWED}
    assert len(computed) == ALLOWED
    view = ledger(db, factory.actor("gaelle"), project, DATASET)
    assert (view.spent_epsilon, view.remaining_epsilon) == (TOTAL, 0)
    assert len(view.spends) == ALLOWED
    assert sum(spend.epsilon for spend in view.spends) == view.spent_epsilon <= TOTAL
    assert {spend.status.value for spend in view.spends} == {"completed"}
    with db.sessions() as session:
        spent_events = session.execute(
            select(func.count()).select_from(audit.AuditEvent)
            .where(audit.AuditEvent.action == "privacy_budget.spent")).scalar_one()
        rows = session.execute(select(func.count()).select_from(PrivacySpend)).scalar_one()
    assert spent_events == rows == ALLOWED
    verified = factory.enclave.chain.verify()
    assert verified.ok, verified.describe()
