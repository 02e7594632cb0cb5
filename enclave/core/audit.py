"""The audit chain: append-only, hash-linked events with signed checkpoints outside the database.

Each event's ``hash = SHA-256(prev_hash || canonical_json(event))`` where ``prev_hash`` is the
previous event's hash as 32 raw bytes (32 zero bytes for the first event) and the canonical JSON
is the event's fields as UTF-8 JSON with sorted keys and no spaces (RFC 8785 style for the value
types used here). Appends happen inside the caller's transaction, so a state change and its
audit event commit or roll back together. Writers are serialised by ``BEGIN IMMEDIATE`` on SQLite
and by a transaction-scoped advisory lock on PostgreSQL; the primary key on ``seq`` makes a fork
impossible even if a writer bypasses the lock.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import BigInteger, Index, String, Table, Text, insert, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from enclave.core.db import Base, Database
from enclave.core.exceptions import AuditChainError
from enclave.core.files import write_atomic

GENESIS_HASH = "00" * 32
#: Arbitrary constant naming the advisory lock that serialises appends on PostgreSQL.
PG_AUDIT_LOCK = 0x656E636C61766501
SYSTEM_ACTOR = "system"


class AuditEvent(Base):
    """One row of the chain; never updated or deleted by the application."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(32))  # ISO 8601 UTC, microseconds, 'Z'
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    object_type: Mapped[str] = mapped_column(String(100))
    object_id: Mapped[str] = mapped_column(String(200))
    project_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    details: Mapped[str] = mapped_column(Text)  # canonical JSON of a mapping
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_events_project_id_seq", "project_id", "seq"),
        Index("ix_audit_events_actor_seq", "actor", "seq"),
        Index("ix_audit_events_action_seq", "action", "seq"),
    )


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def _event_document(seq: int, at: str, actor: str, action: str, object_type: str,
                    object_id: str, project_id: str | None, details: str) -> str:
    """The canonical JSON of one event, keys in sorted order; ``details`` is canonical JSON."""
    dump = _dump_str
    return ('{"action":' + dump(action) + ',"actor":' + dump(actor) + ',"at":' + dump(at)
            + ',"details":' + details + ',"object_id":' + dump(object_id)
            + ',"object_type":' + dump(object_type)
            + ',"project_id":' + ("null" if project_id is None else dump(project_id))
            + ',"seq":' + str(int(seq)) + "}")


_dump_str = json.JSONEncoder(ensure_ascii=False).encode


def event_hash(prev_hash: str, document: str) -> str:
    """``SHA-256(prev_hash_bytes || document_utf8)`` as lowercase hex."""
    return hashlib.sha256(bytes.fromhex(prev_hash) + document.encode("utf-8")).hexdigest()


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _lock_chain(session: Session) -> None:
    """Serialise appends: PostgreSQL advisory lock held until the transaction ends."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_AUDIT_LOCK})


_INSERT = insert(cast(Table, AuditEvent.__table__))
_HEAD_QUERY = select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)


def head(session: Session) -> tuple[int, str]:
    """The last sequence number and hash of the chain (0 and the genesis hash when empty)."""
    row = session.execute(_HEAD_QUERY).first()
    return (row[0], row[1]) if row else (0, GENESIS_HASH)


def record(session: Session, *, actor: str, action: str, object_type: str, object_id: str,
           project_id: str | None = None, details: Mapping[str, Any] | None = None) -> AuditEvent:
    """Append one event in the caller's transaction and return it (flushed, not committed)."""
    if not actor or not action or not object_type:
        raise AuditChainError("an audit event needs an actor, an action and an object type")
    try:
        details_json = canonical_json(dict(details or {}))
    except (TypeError, ValueError) as exc:
        raise AuditChainError(f"audit details for {action} are not JSON-serialisable: {exc}") \
            from None
    _lock_chain(session)
    session.flush()
    last_seq, last_hash = head(session)
    seq = last_seq + 1
    at = _now_iso()
    doc = _event_document(seq, at, actor, action, object_type, str(object_id), project_id,
                          details_json)
    values = {"seq": seq, "at": at, "actor": actor, "action": action,
              "object_type": object_type, "object_id": str(object_id), "project_id": project_id,
              "details": details_json, "prev_hash": last_hash,
              "hash": event_hash(last_hash, doc)}
    # A Core insert (not the ORM unit of work): the chain is append-only and this is hot.
    session.execute(_INSERT, values)
    return AuditEvent(**values)


# -- verification ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class VerifyResult:
    """Outcome of a verification: ``ok`` or the first bad sequence number and why."""

    ok: bool
    events: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    reason: str = ""
    checkpoint_seq: int | None = None

    def describe(self) -> str:
        """One line for people: what was checked and what was found."""
        cp = (f", last signed checkpoint at #{self.checkpoint_seq}"
              if self.checkpoint_seq is not None else ", no signed checkpoint yet")
        if self.ok:
            return f"OK: {self.events} events, head #{self.head_seq} {self.head_hash[:16]}{cp}"
        return f"FAILED at #{self.first_bad_seq}: {self.reason}{cp}"


def _iter_rows(session: Session, batch: int = 20_000) -> Iterator[tuple[Any, ...]]:
    cols = (AuditEvent.seq, AuditEvent.at, AuditEvent.actor, AuditEvent.action,
            AuditEvent.object_type, AuditEvent.object_id, AuditEvent.project_id,
            AuditEvent.details, AuditEvent.prev_hash, AuditEvent.hash)
    last = 0
    while True:
        rows = session.execute(
            select(*cols).where(AuditEvent.seq > last).order_by(AuditEvent.seq).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1][0]


def verify_rows(rows: Iterator[tuple[Any, ...]]) -> VerifyResult:
    """Recompute the chain over rows ordered by ``seq``; stop at the first inconsistency."""
    expected_seq = 1
    prev = GENESIS_HASH
    count = 0
    sha256 = hashlib.sha256
    for seq, at, actor, action, otype, oid, project, details, prev_hash, stored in rows:
        if seq != expected_seq:
            reason = (f"event #{expected_seq} is missing (next present is #{seq})"
                      if seq > expected_seq else f"sequence number #{seq} is out of order")
            return VerifyResult(False, count, expected_seq - 1, prev, expected_seq, reason)
        if prev_hash != prev:
            return VerifyResult(False, count, seq - 1, prev, seq,
                                "its previous-hash link does not match the event before it "
                                "(an event was deleted, inserted or reordered)")
        doc = _event_document(seq, at, actor, action, otype, oid, project, details)
        digest = sha256(bytes.fromhex(prev) + doc.encode("utf-8")).hexdigest()
        if digest != stored:
            return VerifyResult(False, count, seq - 1, prev, seq,
                                "its content does not match its hash (the event was modified)")
        prev = stored
        count += 1
        expected_seq += 1
    return VerifyResult(True, count, expected_seq - 1, prev)


# -- signed checkpoints ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Checkpoint:
    """A signed statement 'the chain had head hash H at sequence S', kept outside the database."""

    seq: int
    head_hash: str
    at: str
    signature: str

    def payload(self) -> bytes:
        """The exact bytes that are signed."""
        return canonical_json({"head_hash": self.head_hash, "seq": self.seq, "at": self.at,
                               "type": "enclave-audit-checkpoint/1"}).encode()


class AuditChain:
    """The chain of one enclave: its database and its checkpoint folder and signing key."""

    def __init__(self, db: Database, checkpoints_dir: Path, signer: Any) -> None:
        self.db = db
        self.checkpoints_dir = checkpoints_dir
        self.signer = signer  # enclave.core.keystore.Signer

    def checkpoint(self) -> Checkpoint | None:
        """Sign the current head and write it atomically; None when the chain is empty."""
        with self.db.transaction() as session:
            seq, head_hash = head(session)
        if seq == 0:
            return None
        at = _now_iso()
        unsigned = Checkpoint(seq, head_hash, at, "")
        signature = self.signer.sign(unsigned.payload()).hex()
        cp = Checkpoint(seq, head_hash, at, signature)
        self.checkpoints_dir.mkdir(parents=True, exist_ok=True)
        doc = {"type": "enclave-audit-checkpoint/1", "seq": seq, "head_hash": head_hash,
               "at": at, "signature": signature, "public_key": self.signer.public_hex()}
        write_atomic(self.checkpoints_dir / f"checkpoint-{seq:012d}.json",
                     (canonical_json(doc) + "\n").encode())
        return cp

    def maybe_checkpoint(self, every: int) -> Checkpoint | None:
        """Checkpoint if at least ``every`` events were appended since the last checkpoint."""
        last = self.last_checkpoint()
        with self.db.transaction() as session:
            seq, _ = head(session)
        if seq and (last is None or seq - last.seq >= max(every, 1)):
            return self.checkpoint()
        return None

    def last_checkpoint(self) -> Checkpoint | None:
        """The latest checkpoint whose signature verifies; a bad one is an error, not skipped."""
        files = sorted(self.checkpoints_dir.glob("checkpoint-*.json")) \
            if self.checkpoints_dir.exists() else []
        if not files:
            return None
        path = files[-1]
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            cp = Checkpoint(int(doc["seq"]), str(doc["head_hash"]), str(doc["at"]),
                            str(doc["signature"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise AuditChainError(f"checkpoint file {path.name} is malformed: {exc}") from None
        if not self.signer.verify(bytes.fromhex(cp.signature), cp.payload()):
            raise AuditChainError(f"checkpoint file {path.name} has an invalid signature")
        return cp

    def verify(self) -> VerifyResult:
        """Verify every link, then the head against the last signed checkpoint (truncation)."""
        try:
            cp = self.last_checkpoint()
        except AuditChainError as exc:
            return VerifyResult(False, 0, 0, GENESIS_HASH, 0, str(exc))
        with self.db.sessions() as session:
            result = verify_rows(_iter_rows(session))
        cp_seq = cp.seq if cp else None
        result = VerifyResult(result.ok, result.events, result.head_seq, result.head_hash,
                              result.first_bad_seq, result.reason, cp_seq)
        if not result.ok or cp is None:
            return result
        if result.head_seq < cp.seq:
            return VerifyResult(False, result.events, result.head_seq, result.head_hash,
                                result.head_seq + 1,
                                f"the chain ends at #{result.head_seq} but a signed checkpoint "
                                f"covers #{cp.seq}: events were removed from the tail", cp_seq)
        with self.db.sessions() as session:
            at_cp = session.get(AuditEvent, cp.seq)
        if at_cp is None or at_cp.hash != cp.head_hash:
            return VerifyResult(False, result.events, result.head_seq, result.head_hash, cp.seq,
                                "the event differs from the signed checkpoint (the chain was "
                                "rewritten)", cp_seq)
        return result
