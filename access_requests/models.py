"""Tables owned by the access workflow: projects and their application, members, variables,
decisions, ethics opinions, agreements, change requests and the notification outbox.

Statuses are stored as the values of the workflow's ``StrEnum`` classes; the only code that
changes a ``status`` column is :func:`enclave.core.statemachine.move`.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from enclave.core.db import Base, UTCDateTime


class Project(Base):
    """An access project: one application, its decisions and its life until closure."""

    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id = property(lambda self: self.id)  # the state machine's uniform handle
    title: Mapped[str] = mapped_column(String(300))
    summary: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(30), index=True)
    #: Bumped by every change a decider should have seen (moves, edits, votes, opinions).
    version: Mapped[int] = mapped_column(Integer, default=1)
    principal_investigator: Mapped[str] = mapped_column(String(100))
    end_date: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    scientific_purpose: Mapped[str] = mapped_column(Text, default="")
    public_interest: Mapped[str] = mapped_column(Text, default="")
    legal_basis: Mapped[str] = mapped_column(String(40), default="gdpr_6_1_e_art_89")
    legal_basis_other: Mapped[str] = mapped_column(Text, default="")
    #: JSON ``{"years": [...], "levels": [...], "territories": [...]}``.
    population: Mapped[str] = mapped_column(Text, default="{}")
    ethics_reference: Mapped[str] = mapped_column(String(200), default="")
    planned_outputs: Mapped[str] = mapped_column(Text, default="")
    protocol_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    protocol_size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: Incremented each time a review starts; approvals count only in the current round.
    review_round: Mapped[int] = mapped_column(Integer, default=0)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    #: The register's sort (newest first) and status filter walk these (migration 0006).
    __table_args__ = (
        Index("ix_projects_created_at_id", "created_at", "id"),
        Index("ix_projects_status_created_at_id", "status", "created_at", "id"),
    )


class Membership(Base):
    """A person's membership of a project, with the data-use agreement they last accepted."""

    __tablename__ = "project_members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"),
                                            index=True)
    username: Mapped[str] = mapped_column(String(100))
    role_in_project: Mapped[str] = mapped_column(String(40), default="member")
    agreement_version: Mapped[str | None] = mapped_column(String(20), nullable=True)
    agreement_accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    institution: Mapped[str] = mapped_column(String(200), default="")

    __table_args__ = (UniqueConstraint("project_id", "username"),)


class RequestedVariable(Base):
    """A variable requested (and, once the project is approved, approved) for the project."""

    __tablename__ = "project_variables"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"),
                                            index=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"))
    variable: Mapped[str] = mapped_column(String(100))
    justification: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (UniqueConstraint("project_id", "dataset_id", "variable"),)


class ProjectDecision(Base):
    """One DEPP staff decision on an application in a review round (approve, reject, changes)."""

    __tablename__ = "project_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"),
                                            index=True)
    review_round: Mapped[int] = mapped_column(Integer)
    decided_by: Mapped[str] = mapped_column(String(100))
    decision: Mapped[str] = mapped_column(String(30))
    reason: Mapped[str] = mapped_column(Text, default="")
    seen_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EthicsOpinion(Base):
    """An opinion of the ethics committee on an application; the latest one counts."""

    __tablename__ = "ethics_opinions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"),
                                            index=True)
    author: Mapped[str] = mapped_column(String(100))
    verdict: Mapped[str] = mapped_column(String(20))
    reference: Mapped[str] = mapped_column(String(200), default="")
    comment: Mapped[str] = mapped_column(Text, default="")
    given_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AgreementVersion(Base):
    """A published version of the data-use agreement, with the SHA-256 of its exact text."""

    __tablename__ = "agreement_versions"

    version: Mapped[str] = mapped_column(String(20), primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    text_sha256: Mapped[str] = mapped_column(String(64))
    published_by: Mapped[str] = mapped_column(String(100))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AgreementAcceptance(Base):
    """Who accepted which agreement version for which project, and when."""

    __tablename__ = "agreement_acceptances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"),
                                            index=True)
    username: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(ForeignKey("agreement_versions.version"))
    text_sha256: Mapped[str] = mapped_column(String(64))
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("project_id", "username", "version"),)


class MembershipRequest(Base):
    """A request to add or remove a member of a project, decided by DEPP staff."""

    __tablename__ = "membership_requests"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"),
                                            index=True)
    change: Mapped[str] = mapped_column(String(10))  # add | remove
    username: Mapped[str] = mapped_column(String(100))
    institution: Mapped[str] = mapped_column(String(200), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    requested_by: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    decided_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ExtensionRequest(Base):
    """A request to move a project's end date later, decided by DEPP staff."""

    __tablename__ = "extension_requests"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"),
                                            index=True)
    current_end_date: Mapped[date] = mapped_column(Date)
    requested_end_date: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text, default="")
    requested_by: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    decided_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Notification(Base):
    """One message to one person on one channel: the outbox (e-mail) and the in-app inbox.

    Rows are written in the transaction of the change they announce; e-mail rows are then
    delivered by :func:`access_requests.notifications.deliver_email`.
    """

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recipient: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(10))  # email | in_app
    event: Mapped[str] = mapped_column(String(100))
    project_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    subject_fr: Mapped[str] = mapped_column(String(300))
    subject_en: Mapped[str] = mapped_column(String(300))
    body_fr: Mapped[str] = mapped_column(Text)
    body_en: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10))  # pending | sent | failed | stored
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    dedupe_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        UniqueConstraint("recipient", "channel", "dedupe_key"),
        Index("ix_notifications_recipient_channel_read", "recipient", "channel", "read_at"),
        Index("ix_notifications_channel_status", "channel", "status"),
    )
