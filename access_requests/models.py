"""Tables owned by the access workflow: projects, their members and their approved variables."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from enclave.core.db import Base, UTCDateTime


class Project(Base):
    """An access project: one application, its decision and its life until closure."""

    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id = property(lambda self: self.id)  # the state machine's uniform handle
    title: Mapped[str] = mapped_column(String(300))
    summary: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(30), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    principal_investigator: Mapped[str] = mapped_column(String(100))
    end_date: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Membership(Base):
    """A person's membership of a project, with the data-use agreement they accepted."""

    __tablename__ = "project_members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"),
                                            index=True)
    username: Mapped[str] = mapped_column(String(100))
    role_in_project: Mapped[str] = mapped_column(String(40), default="member")
    agreement_version: Mapped[str | None] = mapped_column(String(20), nullable=True)
    agreement_accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

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
