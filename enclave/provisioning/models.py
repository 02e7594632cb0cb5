"""Tables owned by extract provisioning."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from enclave.core.db import Base, UTCDateTime


class Extract(Base):
    """A published extract version of a project; the row is what makes the files visible."""

    __tablename__ = "extracts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))  # published | deleted
    path: Mapped[str] = mapped_column(String(500))
    key_id: Mapped[str] = mapped_column(String(36))
    manifest: Mapped[str] = mapped_column(Text)
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    built_by: Mapped[str] = mapped_column(String(100))
    built_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("project_id", "version"),)
