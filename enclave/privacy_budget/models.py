"""Tables owned by the privacy budget workflow: one budget per project and dataset, its spends.

Amounts are stored as integers in fixed units, epsilon in 10⁻⁹ and delta in 10⁻¹⁸ (columns
``*_epsilon_e9`` and ``*_delta_e18``), so that sums are exact on every backend: with floats,
three spends of 0.1 would exceed a total of 0.3. The running totals on the budget row are
updated under the row's lock in the transaction that inserts the spend, and CHECK constraints
make an overspend impossible even for a writer that bypasses the workflow.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from enclave.core.db import Base, UTCDateTime


class PrivacyBudget(Base):
    """The total privacy loss DEPP staff allow a project on one dataset, and what was spent."""

    __tablename__ = "privacy_budgets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"))
    total_epsilon_e9: Mapped[int] = mapped_column(BigInteger)
    total_delta_e18: Mapped[int] = mapped_column(BigInteger)
    spent_epsilon_e9: Mapped[int] = mapped_column(BigInteger, default=0)
    spent_delta_e18: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Bumped by every change (a new total or a spend).
    version: Mapped[int] = mapped_column(Integer, default=1)
    set_by: Mapped[str] = mapped_column(String(100))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        UniqueConstraint("project_id", "dataset_id"),
        CheckConstraint("total_epsilon_e9 > 0 AND total_delta_e18 >= 0", name="totals_valid"),
        CheckConstraint("spent_epsilon_e9 >= 0 AND spent_delta_e18 >= 0", name="spent_valid"),
        CheckConstraint("spent_epsilon_e9 <= total_epsilon_e9", name="epsilon_within_total"),
        CheckConstraint("spent_delta_e18 <= total_delta_e18", name="delta_within_total"),
    )


class PrivacySpend(Base):
    """One DP query's charge on a budget, recorded before the query runs and never refunded."""

    __tablename__ = "privacy_spends"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    budget_id: Mapped[int] = mapped_column(ForeignKey("privacy_budgets.id"))
    project_id: Mapped[str] = mapped_column(String(40))
    dataset_id: Mapped[str] = mapped_column(String(100))
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    description: Mapped[str] = mapped_column(Text)
    epsilon_e9: Mapped[int] = mapped_column(BigInteger)
    delta_e18: Mapped[int] = mapped_column(BigInteger)
    #: A :class:`~enclave.privacy_budget.ledger.SpendStatus` value; moved by the state machine.
    status: Mapped[str] = mapped_column(String(20))
    version: Mapped[int] = mapped_column(Integer, default=1)
    #: JSON of the query's accounting record (``anonymization.dp``), once it reported one.
    accounting: Mapped[str] = mapped_column(Text, default="{}")
    #: Sequence number of the audit event that recorded the spend (set in the same transaction).
    audit_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (
        Index("ix_privacy_spends_budget_id_id", "budget_id", "id"),
        CheckConstraint("epsilon_e9 > 0 AND delta_e18 >= 0", name="amounts_valid"),
    )
