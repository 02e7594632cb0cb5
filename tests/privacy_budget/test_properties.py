"""Properties: a budget is never exceeded; amounts are exact; the schema is the migrated one."""

from __future__ import annotations

import ast
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enclave.core.context import Enclave
from enclave.core.db import Base
from enclave.privacy_budget import BudgetExceeded, ledger, run_dp_query
from enclave.privacy_budget.ledger import (
    DELTA_SCALE,
    EPSILON_SCALE,
    SPEND_MACHINE,
    SpendStatus,
    amount,
    delta_units,
    epsilon_units,
)
from enclave.privacy_budget.models import PrivacyBudget, PrivacySpend
from tests.privacy_budget.conftest import DATASET, give_budget, member
from tests.workflows.factories import Factory

ROOT = Path(__file__).resolve().parents[2]
EPSILONS = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("0.5"), places=3)


@pytest.fixture
def sqlite_project(sqlite_factory: Factory) -> str:
    """An active project with a budget on SQLite, shared by every example of a property."""
    project = sqlite_factory.active_project()
    give_budget(sqlite_factory, project, "0.001")
    return project


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(total=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("2"), places=3),
       requests=st.lists(EPSILONS, max_size=15))
def test_a_budget_is_never_exceeded_and_a_spend_succeeds_iff_it_fits(
        sqlite_factory: Factory, sqlite_project: str, total: Decimal,
        requests: list[Decimal]) -> None:
    db, actor, project = sqlite_factory.enclave.db, member(sqlite_factory), sqlite_project
    start = ledger(db, actor, project, DATASET).spent_epsilon
    give_budget(sqlite_factory, project, start + total)  # this example's own headroom
    spent = Decimal(0)
    for request in requests:
        fits = spent + request <= total
        try:
            run_dp_query(db, actor, project, DATASET, request, float)
            assert fits, f"{request} was accepted with {total - spent} left"
            spent += request
        except BudgetExceeded:
            assert not fits, f"{request} was refused with {total - spent} left"
        view = ledger(db, actor, project, DATASET)
        assert view.spent_epsilon == start + spent <= view.total_epsilon
    assert sum(s.epsilon for s in ledger(db, actor, project, DATASET).spends) == start + spent


@given(value=st.decimals(min_value=Decimal("1e-9"), max_value=Decimal(1000), places=9))
def test_epsilon_units_are_exact_for_nine_decimals(value: Decimal) -> None:
    assert amount(epsilon_units(value, spend=True), EPSILON_SCALE) == value
    assert amount(epsilon_units(value, spend=False), EPSILON_SCALE) == value


@given(value=st.floats(min_value=1e-9, max_value=1000, allow_nan=False))
def test_rounding_never_grants_budget(value: float) -> None:
    exact = Decimal(str(value))
    assert amount(epsilon_units(value, spend=True), EPSILON_SCALE) >= exact
    total = epsilon_units(value, spend=False) if exact >= Decimal("1e-9") else None
    if total:
        assert amount(total, EPSILON_SCALE) <= exact
    assert amount(delta_units(min(value, 0.5), spend=True), DELTA_SCALE) >= \
        Decimal(str(min(value, 0.5)))


def test_the_spend_machine_moves_only_from_reserved() -> None:
    assert {t.source for t in SPEND_MACHINE.transitions} == {SpendStatus.RESERVED}
    assert {t.target for t in SPEND_MACHINE.transitions} == \
        {SpendStatus.COMPLETED, SpendStatus.FAILED}
    assert len({t.action for t in SPEND_MACHINE.transitions}) == 2


def test_the_migrated_schema_matches_the_models(enclave: Enclave) -> None:
    tables = {PrivacyBudget.__tablename__, PrivacySpend.__tablename__}

    def only_ours(obj: Any, name: str | None, type_: str, reflected: bool,
                  compare_to: Any) -> bool:
        return name in tables if type_ == "table" else obj.table.name in tables

    with enclave.db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": only_ours})
        assert tables <= set(connection.dialect.get_table_names(connection))
        assert compare_metadata(context, Base.metadata) == []


@pytest.mark.parametrize("forbidden", ["enclave.hub", "enclave.cli", "enclave.demo",
                                       "enclave.portal"])
def test_the_workflow_imports_no_edge(forbidden: str) -> None:
    for path in sorted((ROOT / "enclave" / "privacy_budget").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n == forbidden or n.startswith(forbidden + ".") for n in names), \
                f"{path.name} imports {forbidden}"


def test_migration_0003_goes_down_and_up_again(enclave: Enclave) -> None:
    from alembic import command
    from sqlalchemy import inspect

    from enclave.core.db import _alembic_config, current_revision, head_revision, upgrade

    db = enclave.db
    command.downgrade(_alembic_config(db), "0002")
    assert current_revision(db) == "0002"
    assert not {"privacy_budgets", "privacy_spends"} & set(inspect(db.engine).get_table_names())
    upgrade(db)
    assert current_revision(db) == head_revision()
    assert {"privacy_budgets", "privacy_spends"} <= set(inspect(db.engine).get_table_names())
