"""Tables owned by the output review workflow: requests, their files, votes, releases and the
release ledger that differencing checks new requests against.

A request is reviewed in rounds: a returned request that the researcher amends and resubmits
starts round ``review_round + 1``. Files and votes carry the round they belong to, so the votes
of earlier rounds stay as history; a file replaced or removed in an amendment keeps its row with
``retired_round`` set (its frozen copy stays in the request's folder).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from enclave.core.db import Base, UTCDateTime


class OutputRequest(Base):
    """A set of files a researcher asks to take out of the enclave."""

    __tablename__ = "output_requests"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    requester: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(30), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    justification: Mapped[str] = mapped_column(Text, default="")
    folder: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    review_round: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class OutputFile(Base):
    """One file of a request: the frozen copy's hash and its automatic check result."""

    __tablename__ = "output_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("output_requests.id", ondelete="CASCADE"),
                                            index=True)
    name: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sidecar_sha256: Mapped[str] = mapped_column(String(64))
    check_outcome: Mapped[str] = mapped_column(String(10))
    check_result: Mapped[str] = mapped_column(Text)  # JSON of output_control CheckResult
    justification: Mapped[str] = mapped_column(Text, default="")
    #: Why the researcher asks controllers for an exception ("" when none is asked).
    exception_request: Mapped[str] = mapped_column(Text, default="", server_default="")
    #: JSON list of the rule names the exception request asks to waive.
    exception_rules: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")
    review_round: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    retired_round: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = (UniqueConstraint("request_id", "name", "review_round"),)


class Review(Base):
    """One controller's vote on one file; hidden from the other controller until both voted."""

    __tablename__ = "output_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("output_requests.id", ondelete="CASCADE"),
                                            index=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("output_files.id", ondelete="CASCADE"))
    reviewer: Mapped[str] = mapped_column(String(100))
    decision: Mapped[str] = mapped_column(String(20))
    comment: Mapped[str] = mapped_column(Text, default="")
    voted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    review_round: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    #: ``private`` (controllers only) or ``shared`` (the researcher sees it once the round is in)
    visibility: Mapped[str] = mapped_column(String(10), default="private",
                                            server_default="private")

    __table_args__ = (UniqueConstraint("file_id", "reviewer", "review_round"),)


class Release(Base):
    """A signed release package: exactly the approved bytes, with its manifest and signature."""

    __tablename__ = "releases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("output_requests.id"), unique=True)
    project_id: Mapped[str] = mapped_column(String(40), index=True)
    requester: Mapped[str] = mapped_column(String(100))
    path: Mapped[str] = mapped_column(String(500))
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))
    released_by: Mapped[str] = mapped_column(String(100))
    released_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReleasedTable(Base):
    """The release ledger: one released table's cells and population, for differencing.

    ``cells`` is :meth:`output_control.differencing.TableCells.to_json` (unit counts and, for
    totals, contributions: never released, kept to check later requests against).
    """

    __tablename__ = "release_ledger"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str] = mapped_column(String(40), index=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("output_requests.id"), index=True)
    file_name: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    population: Mapped[str] = mapped_column(Text)  # canonical JSON, or "null"
    cells: Mapped[str] = mapped_column(Text)
    released_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("request_id", "file_name"),)


class Rerun(Base):
    """A controller's re-run of a request's notebooks in a fresh sandbox on the same extract
    version, and the comparison of each regenerated file with the submitted one.

    ``outcome`` is a verdict outcome (``pass`` when every file was regenerated identically or
    within the stated tolerance, ``review`` when something could not be compared, ``fail``
    when a regenerated file differs); ``result`` the JSON of the per-file comparison.
    """

    __tablename__ = "output_reruns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("output_requests.id", ondelete="CASCADE"),
                                            index=True)
    review_round: Mapped[int] = mapped_column(Integer)
    run_by: Mapped[str] = mapped_column(String(100))
    run_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(10))
    result: Mapped[str] = mapped_column(Text)
