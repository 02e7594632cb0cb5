"""The ledger: who sets, spends and reads budgets; spends charged first, exact, never refunded."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from access_requests.workflow import ProjectStatus
from anonymization.dp import DPResult, dp_count, dp_mean
from anonymization.dp.accounting import Accounting, MechanismUse
from enclave.core import people
from enclave.core.exceptions import InvalidTransition, NotFound, PermissionDenied
from enclave.privacy_budget import (
    BudgetExceeded,
    InvalidBudget,
    NoBudget,
    PrivacyBudget,
    PrivacySpend,
    ResultExceedsReservation,
    SpendStatus,
    ledger,
    ledgers,
    reserve,
    run_dp_query,
    set_budget,
    settle,
)
from tests.privacy_budget.conftest import DATASET, STAFF, give_budget, member
from tests.workflows.factories import Factory


class Spy:
    """A computation that records its calls and returns the epsilon it was given."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, epsilon: float) -> float:
        self.calls.append(epsilon)
        return epsilon


def _spends(factory: Factory) -> list[PrivacySpend]:
    with factory.enclave.db.sessions() as session:
        return list(session.execute(select(PrivacySpend).order_by(PrivacySpend.id)).scalars())


def _state(factory: Factory) -> tuple[int, int, list[tuple[Any, ...]]]:
    """Audit head, number of spends and every budget row: to prove nothing changed."""
    with factory.enclave.db.sessions() as session:
        budgets = [(b.total_epsilon_e9, b.spent_epsilon_e9, b.spent_delta_e18, b.version)
                   for b in session.execute(select(PrivacyBudget)).scalars()]
        count = session.execute(select(func.count()).select_from(PrivacySpend)).scalar_one()
    return factory.audit_head(), int(count), budgets


# -- setting budgets -------------------------------------------------------------------------------

def test_depp_staff_set_a_budget_with_its_audit_event(factory: Factory, project: str) -> None:
    head = factory.audit_head()
    view = set_budget(factory.enclave.db, factory.actor(STAFF), project, DATASET,
                      epsilon=2.5, delta=1e-6, reason="Publication des audiences")
    assert (view.total_epsilon, view.total_delta) == (Decimal("2.5"), Decimal("0.000001"))
    assert (view.spent_epsilon, view.remaining_epsilon) == (0, Decimal("2.5"))
    assert view.set_by == STAFF and view.spends == ()
    [event] = factory.audit_events_after(head)
    assert (event.action, event.actor, event.project_id) == ("privacy_budget.set", STAFF, project)
    assert '"total_epsilon":"2.5"' in event.details and DATASET in event.details


@pytest.mark.parametrize(("who", "why"), [
    ("dora", "is a member of this project"),        # DEPP staff, but a member
    ("alice", "needs the role depp_staff"),          # the principal investigator
    ("gaelle", "needs the role depp_staff"),         # the ethics committee reads, never sets
    ("admin", "needs the role depp_staff"),
], ids=["staff-member", "researcher", "ethics-committee", "platform-admin"])
def test_only_depp_staff_outside_the_project_set_a_budget(
        factory: Factory, project: str, who: str, why: str) -> None:
    before = _state(factory)
    with pytest.raises(PermissionDenied, match=why):
        set_budget(factory.enclave.db, factory.actor(who), project, DATASET, epsilon=1.0)
    assert _state(factory) == before


def test_a_budget_needs_a_known_project_and_dataset(factory: Factory, project: str) -> None:
    staff = factory.actor(STAFF)
    with pytest.raises(NotFound, match="no dataset 'nope'"):
        set_budget(factory.enclave.db, staff, project, "nope", epsilon=1.0)
    with pytest.raises(NotFound, match="no project"):
        set_budget(factory.enclave.db, staff, "prj-unknown", DATASET, epsilon=1.0)


@pytest.mark.parametrize(("epsilon", "delta"), [
    (0, 0), (-1, 0), (float("nan"), 0), (float("inf"), 0), ("beaucoup", 0), (True, 0),
    (None, 0), (5000, 0), (1e-12, 0), (1.0, 1), (1.0, -1e-6), (1.0, float("nan"))],
    ids=["zero", "negative", "nan", "inf", "text", "bool", "none", "too-large", "below-unit",
         "delta-one", "delta-negative", "delta-nan"])
def test_malformed_amounts_are_refused_and_change_nothing(
        factory: Factory, project: str, epsilon: Any, delta: Any) -> None:
    before = _state(factory)
    with pytest.raises(InvalidBudget):
        set_budget(factory.enclave.db, factory.actor(STAFF), project, DATASET,
                   epsilon=epsilon, delta=delta)
    give_budget(factory, project)
    after_budget = _state(factory)
    if epsilon == 1e-12:  # a spend is rounded up to the unit: charged 1e-9, never 0
        spent = reserve(factory.enclave.db, member(factory), project, DATASET,
                        epsilon=epsilon, description="requête")
        assert spent.epsilon == Decimal("1e-9")
        return
    with pytest.raises(InvalidBudget):
        reserve(factory.enclave.db, member(factory), project, DATASET, epsilon=epsilon,
                delta=delta, description="requête")
    assert _state(factory) == after_budget
    assert before[1] == after_budget[1] == 0


def test_a_total_may_be_raised_but_never_below_what_was_spent(
        factory: Factory, project: str) -> None:
    give_budget(factory, project, 1.0)
    run_dp_query(factory.enclave.db, member(factory), project, DATASET, 0.6, Spy())
    give_budget(factory, project, 3)
    assert ledger(factory.enclave.db, member(factory), project, DATASET).remaining_epsilon == \
        Decimal("2.4")
    with pytest.raises(InvalidBudget, match="below what was already spent"):
        give_budget(factory, project, 0.5)
    give_budget(factory, project, 0.6)
    view = ledger(factory.enclave.db, member(factory), project, DATASET)
    assert (view.total_epsilon, view.remaining_epsilon) == (Decimal("0.6"), 0)


def test_the_database_itself_refuses_an_overspend(factory: Factory, project: str) -> None:
    give_budget(factory, project, 1.0)
    with pytest.raises(IntegrityError), factory.enclave.db.transaction() as session:
        session.execute(update(PrivacyBudget).values(spent_epsilon_e9=2 * 10**9))


# -- spending --------------------------------------------------------------------------------------

def test_a_query_is_charged_before_it_runs_with_its_audit_event(
        factory: Factory, project: str) -> None:
    give_budget(factory, project, 1.0)
    head = factory.audit_head()
    spy = Spy()
    run = run_dp_query(factory.enclave.db, member(factory), project, DATASET, 0.25, spy,
                       description="Nombre de connexions par mois")
    assert spy.calls == [0.25] and run.value == 0.25
    assert (run.epsilon, run.delta, run.remaining_epsilon) == (Decimal("0.25"), 0,
                                                               Decimal("0.75"))
    spent, completed = factory.audit_events_after(head)
    assert (spent.action, spent.actor, spent.project_id) == \
        ("privacy_budget.spent", "alice", project)
    assert '"epsilon":"0.25"' in spent.details and "connexions" in spent.details
    assert (completed.action, completed.actor) == ("privacy_budget.query_completed", "system")
    [spend] = _spends(factory)
    assert (spend.actor, spend.status, spend.audit_seq) == ("alice", "completed", spent.seq)


def test_decimal_amounts_add_up_exactly(factory: Factory, project: str) -> None:
    give_budget(factory, project, "0.3")
    for _ in range(3):
        run_dp_query(factory.enclave.db, member(factory), project, DATASET, 0.1, Spy())
    view = ledger(factory.enclave.db, member(factory), project, DATASET)
    assert (view.spent_epsilon, view.remaining_epsilon) == (Decimal("0.3"), 0)
    with pytest.raises(BudgetExceeded, match="only epsilon 0, delta 0 remain"):
        run_dp_query(factory.enclave.db, member(factory), project, DATASET, 1e-9, Spy())


def test_a_query_that_does_not_fit_is_refused_not_run_and_not_charged(
        factory: Factory, project: str) -> None:
    give_budget(factory, project, 1.0)
    run_dp_query(factory.enclave.db, member(factory), project, DATASET, 0.7, Spy())
    before, spy = _state(factory), Spy()
    with pytest.raises(BudgetExceeded, match=r"asks for epsilon 0\.4.*only epsilon 0\.3"):
        run_dp_query(factory.enclave.db, member(factory), project, DATASET, 0.4, spy)
    assert spy.calls == [] and _state(factory) == before


def test_delta_is_budgeted_too(factory: Factory, project: str) -> None:
    give_budget(factory, project, 10, delta=1e-6)
    for _ in range(2):
        run_dp_query(factory.enclave.db, member(factory), project, DATASET, 0.1, Spy(),
                     delta=5e-7)
    with pytest.raises(BudgetExceeded, match="delta"):
        run_dp_query(factory.enclave.db, member(factory), project, DATASET, 0.1, Spy(),
                     delta=1e-18)
    assert run_dp_query(factory.enclave.db, member(factory), project, DATASET, 0.1,
                        Spy()).remaining_delta == 0


def test_no_budget_no_query(factory: Factory, project: str) -> None:
    spy = Spy()
    with pytest.raises(NoBudget, match="DEPP staff set one before any DP query"):
        run_dp_query(factory.enclave.db, member(factory), project, DATASET, 0.1, spy)
    give_budget(factory, project, dataset="eleves")
    with pytest.raises(NoBudget):
        run_dp_query(factory.enclave.db, member(factory), project, DATASET, 0.1, spy)
    assert spy.calls == []


@pytest.mark.parametrize(("who", "why"), [
    ("rita", "not a member of this project"),
    ("claire", "needs the role researcher"),
    ("gaelle", "needs the role researcher"),
], ids=["researcher-outside", "depp-staff", "ethics-committee"])
def test_only_members_who_may_use_the_data_spend(
        factory: Factory, project: str, who: str, why: str) -> None:
    give_budget(factory, project)
    before, spy = _state(factory), Spy()
    with pytest.raises(PermissionDenied, match=why):
        run_dp_query(factory.enclave.db, factory.actor(who), project, DATASET, 0.1, spy)
    assert spy.calls == [] and _state(factory) == before


def test_no_spend_on_a_project_that_is_not_active(factory: Factory) -> None:
    approved = factory.project(ProjectStatus.APPROVED, ready=True)
    give_budget(factory, approved)
    with pytest.raises(PermissionDenied, match="the project is not active"):
        run_dp_query(factory.enclave.db, member(factory), approved, DATASET, 0.1, Spy())


def test_a_member_whose_training_expired_cannot_spend(factory: Factory, project: str) -> None:
    give_budget(factory, project)
    later = factory.actor_on("bruno", date.today() + people.ACCREDITATION_VALIDITY)
    with pytest.raises(PermissionDenied, match="accreditation"):
        run_dp_query(factory.enclave.db, later, project, DATASET, 0.1, Spy())


def test_a_failed_query_stays_charged_and_its_error_type_is_recorded(
        factory: Factory, project: str) -> None:
    give_budget(factory, project, 1.0)

    def leaky(epsilon: float) -> float:
        raise ValueError("élève INE-0123456789A a une valeur extrême")  # data in a message

    with pytest.raises(ValueError, match="INE-"):
        run_dp_query(factory.enclave.db, member(factory), project, DATASET, 0.4, leaky)
    view = ledger(factory.enclave.db, member(factory), project, DATASET)
    assert view.spent_epsilon == Decimal("0.4")
    [spend] = view.spends
    assert spend.status == SpendStatus.FAILED
    [failed] = factory.audit_events_after(spend.audit_seq or 0)
    assert failed.action == "privacy_budget.query_failed"
    assert '"error":"ValueError"' in failed.details and "INE-" not in failed.details


def test_a_result_that_spent_more_than_reserved_is_withheld(
        factory: Factory, project: str) -> None:
    give_budget(factory, project, 1.0)
    greedy = Accounting("count", 0.5, 0.0,
                        (MechanismUse("GeometricTruncated", 0.5, 0.0, 1.0, 2.0, "count"),), None,
                        1)
    with pytest.raises(ResultExceedsReservation, match="result is withheld"):
        run_dp_query(factory.enclave.db, member(factory), project, DATASET, 0.1,
                     lambda epsilon: DPResult(42, greedy))
    [spend] = ledger(factory.enclave.db, member(factory), project, DATASET).spends
    assert (spend.status, spend.epsilon, spend.accounting["epsilon"]) == \
        (SpendStatus.FAILED, Decimal("0.1"), 0.5)


def test_a_dp_query_of_the_library_records_its_accounting(
        factory: Factory, project: str) -> None:
    give_budget(factory, project, 1.0)
    traces = pd.DataFrame({"eleve": np.repeat(np.arange(50), 4),
                           "minutes": np.tile([5.0, 10.0, 20.0, 90.0], 50)})
    rng = np.random.default_rng(1)
    run = run_dp_query(
        factory.enclave.db, member(factory), project, DATASET, 0.5,
        lambda eps: dp_mean(traces, "minutes", pupil="eleve", bounds=(0, 60), epsilon=eps,
                            max_contributions=2, rng=rng),
        description="Durée moyenne des sessions (bornée à 60 min, 2 sessions par élève)")
    assert 0 <= run.value.value <= 60
    run_dp_query(factory.enclave.db, member(factory), project, DATASET, 0.25,
                 lambda eps: dp_count(traces, pupil="eleve", epsilon=eps, rng=rng))
    first, second = ledger(factory.enclave.db, factory.actor("gaelle"), project, DATASET).spends
    assert first.accounting["mechanism"] == "Laplace+GeometricTruncated"
    assert first.accounting["max_contributions"] == 2 and first.accounting["epsilon"] == 0.5
    assert first.accounting["bounds"] == [0.0, 60.0]
    assert second.description.startswith("query ") and "lambda" in second.description


def test_a_spend_is_settled_once(factory: Factory, project: str) -> None:
    give_budget(factory, project)
    reservation = reserve(factory.enclave.db, member(factory), project, DATASET, epsilon=0.1,
                          description="requête")
    settle(factory.enclave.db, reservation.spend_id, SpendStatus.COMPLETED)
    with pytest.raises(InvalidTransition, match="privacy_spend cannot go from completed"):
        settle(factory.enclave.db, reservation.spend_id, SpendStatus.FAILED)
    with pytest.raises(InvalidBudget, match="description"):
        reserve(factory.enclave.db, member(factory), project, DATASET, epsilon=0.1,
                description="   ")


# -- reading the ledger ----------------------------------------------------------------------------

@pytest.mark.parametrize(("who", "allowed"), [
    ("gaelle", True), ("claire", True), ("dora", True), ("alice", True), ("bruno", True),
    ("rita", False), ("emma", False), ("admin", False)],
    ids=["ethics-committee", "depp-staff", "depp-staff-member", "principal-investigator",
         "member", "researcher-outside", "output-checker", "platform-admin"])
def test_who_reads_a_project_s_ledger(factory: Factory, project: str, who: str,
                                      allowed: bool) -> None:
    give_budget(factory, project, 1.0)
    run_dp_query(factory.enclave.db, member(factory), project, DATASET, 0.1, Spy(),
                 description="Audience par académie")
    if not allowed:
        with pytest.raises(PermissionDenied):
            ledger(factory.enclave.db, factory.actor(who), project, DATASET)
        with pytest.raises(PermissionDenied):
            ledgers(factory.enclave.db, factory.actor(who), project)
        return
    view = ledger(factory.enclave.db, factory.actor(who), project, DATASET)
    assert (view.total_epsilon, view.spent_epsilon, view.remaining_epsilon) == \
        (1, Decimal("0.1"), Decimal("0.9"))
    [spend] = view.spends
    assert (spend.actor, spend.description, spend.epsilon) == \
        ("alice", "Audience par académie", Decimal("0.1"))
    assert [v.dataset_id for v in ledgers(factory.enclave.db, factory.actor(who), project)] \
        == [DATASET]


def test_oversight_lists_every_project_s_budgets_researchers_do_not(
        factory: Factory, project: str) -> None:
    other = factory.active_project()
    give_budget(factory, project, 1.0)
    give_budget(factory, other, 2.0, dataset="eleves")
    for who in ("gaelle", "claire"):
        views = ledgers(factory.enclave.db, factory.actor(who), with_spends=True)
        assert sorted((v.project_id, v.dataset_id) for v in views) == \
            sorted([(project, DATASET), (other, "eleves")])
    with pytest.raises(PermissionDenied):
        ledgers(factory.enclave.db, member(factory))


def test_the_audit_chain_verifies_after_spends(factory: Factory, project: str) -> None:
    give_budget(factory, project, 1.0)
    for epsilon in (0.1, 0.2):
        run_dp_query(factory.enclave.db, member(factory), project, DATASET, epsilon, Spy())
    result = factory.enclave.chain.verify()
    assert result.ok, result.describe()
