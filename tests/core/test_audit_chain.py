"""The audit chain: hash links, tamper detection, checkpoints and concurrent appends."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from enclave.core import audit
from enclave.core.context import Enclave
from enclave.core.exceptions import AuditChainError


def _append(enclave: Enclave, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        with enclave.db.transaction() as session:
            audit.record(session, actor="alice", action="test.event", object_type="thing",
                         object_id=str(i), project_id="prj-1" if i % 2 else None,
                         details={"i": i, "texte": "élève"})


def _sql(enclave: Enclave, statement: str) -> None:
    with enclave.db.engine.begin() as conn:
        conn.execute(text(statement))


def test_event_hash_is_sha256_of_previous_hash_and_canonical_json(enclave: Enclave) -> None:
    with enclave.db.transaction() as session:
        event = audit.record(session, actor="alice", action="project.created",
                             object_type="project", object_id="prj-1", project_id="prj-1",
                             details={"b": 1, "a": "é"})
    doc = json.dumps({"action": "project.created", "actor": "alice", "at": event.at,
                      "details": {"a": "é", "b": 1}, "object_id": "prj-1",
                      "object_type": "project", "project_id": "prj-1", "seq": 1},
                     sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    expected = hashlib.sha256(bytes(32) + doc.encode("utf-8")).hexdigest()
    assert event.seq == 1
    assert event.prev_hash == "00" * 32
    assert event.hash == expected


def test_untouched_chain_verifies(enclave: Enclave) -> None:
    _append(enclave, 25)
    result = enclave.chain.verify()
    assert result.ok, result.describe()
    assert result.events == 25
    assert result.describe().startswith("OK: 25 events")


def test_empty_chain_verifies(enclave: Enclave) -> None:
    assert enclave.chain.verify().ok


def test_modified_row_is_reported_at_its_sequence_number(enclave: Enclave) -> None:
    _append(enclave, 10)
    _sql(enclave, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 4")
    result = enclave.chain.verify()
    assert not result.ok
    assert result.first_bad_seq == 4
    assert "modified" in result.reason


def test_modified_details_with_equivalent_json_is_still_detected(enclave: Enclave) -> None:
    _append(enclave, 5)
    _sql(enclave, """UPDATE audit_events SET details = '{"i": 2, "texte": "élève"}'
                     WHERE seq = 3""")
    assert enclave.chain.verify().first_bad_seq == 3


def test_deleted_row_is_reported(enclave: Enclave) -> None:
    _append(enclave, 10)
    _sql(enclave, "DELETE FROM audit_events WHERE seq = 6")
    result = enclave.chain.verify()
    assert not result.ok
    assert result.first_bad_seq == 6
    assert "missing" in result.reason


def test_reordered_rows_are_reported(enclave: Enclave) -> None:
    _append(enclave, 10)
    # Swap the contents of events 3 and 7 while keeping their sequence numbers.
    _sql(enclave, "UPDATE audit_events SET seq = -3 WHERE seq = 3")
    _sql(enclave, "UPDATE audit_events SET seq = 3 WHERE seq = 7")
    _sql(enclave, "UPDATE audit_events SET seq = 7 WHERE seq = -3")
    result = enclave.chain.verify()
    assert not result.ok
    assert result.first_bad_seq == 3


def test_inserted_row_is_reported(enclave: Enclave) -> None:
    _append(enclave, 6)
    # Make room after event 3 and insert a forged event with a self-consistent hash.
    _sql(enclave, "UPDATE audit_events SET seq = seq + 100 WHERE seq > 3")
    _sql(enclave, "UPDATE audit_events SET seq = seq - 99 WHERE seq > 100")
    with enclave.db.sessions() as session:
        prev = session.get(audit.AuditEvent, 3)
        assert prev is not None
        prev_hash = prev.hash
    doc = audit._event_document(4, "2026-01-01T00:00:00.000000Z", "mallory", "forged",
                                "thing", "x", None, "{}")
    forged = audit.event_hash(prev_hash, doc)
    _sql(enclave, "INSERT INTO audit_events (seq, at, actor, action, object_type, object_id, "
         f"details, prev_hash, hash) VALUES (4, '2026-01-01T00:00:00.000000Z', 'mallory', "
         f"'forged', 'thing', 'x', '{{}}', '{prev_hash}', '{forged}')")
    result = enclave.chain.verify()
    assert not result.ok
    assert result.first_bad_seq == 5  # the event after the insertion no longer links


def test_truncated_tail_is_detected_against_the_signed_checkpoint(enclave: Enclave) -> None:
    _append(enclave, 10)
    checkpoint = enclave.chain.checkpoint()
    assert checkpoint is not None and checkpoint.seq == 10
    _sql(enclave, "DELETE FROM audit_events WHERE seq > 7")
    result = enclave.chain.verify()
    assert not result.ok
    assert result.first_bad_seq == 8
    assert "removed from the tail" in result.reason


def test_rewritten_chain_is_detected_against_the_signed_checkpoint(enclave: Enclave) -> None:
    _append(enclave, 3)
    enclave.chain.checkpoint()
    _sql(enclave, "DELETE FROM audit_events")
    _append(enclave, 3, start=50)  # a new, internally consistent chain
    result = enclave.chain.verify()
    assert not result.ok
    assert result.first_bad_seq == 3
    assert "rewritten" in result.reason


def test_forged_checkpoint_signature_is_refused(enclave: Enclave) -> None:
    _append(enclave, 3)
    enclave.chain.checkpoint()
    path = next(Path(enclave.settings.checkpoints_dir).glob("checkpoint-*.json"))
    doc = json.loads(path.read_text())
    doc["seq"] = 1
    path.write_text(json.dumps(doc))
    with pytest.raises(AuditChainError, match="invalid signature"):
        enclave.chain.last_checkpoint()
    assert not enclave.chain.verify().ok


def test_checkpoint_is_written_only_when_due(enclave: Enclave) -> None:
    _append(enclave, 3)
    assert enclave.chain.maybe_checkpoint(every=5) is not None  # first checkpoint
    _append(enclave, 2)
    assert enclave.chain.maybe_checkpoint(every=5) is None
    _append(enclave, 3)
    assert enclave.chain.maybe_checkpoint(every=5) is not None


def test_audit_event_rolls_back_with_the_failed_change(enclave: Enclave) -> None:
    with pytest.raises(RuntimeError), enclave.db.transaction() as session:
        audit.record(session, actor="alice", action="x", object_type="t", object_id="1")
        raise RuntimeError("the change failed")
    with enclave.db.sessions() as session:
        assert audit.head(session) == (0, audit.GENESIS_HASH)


def test_details_that_are_not_json_are_refused(enclave: Enclave) -> None:
    with pytest.raises(AuditChainError, match="JSON"), enclave.db.transaction() as session:
        audit.record(session, actor="a", action="x", object_type="t", object_id="1",
                     details={"bad": object()})


def test_concurrent_writers_produce_one_unbroken_chain(enclave: Enclave) -> None:
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            _append(enclave, 40, start=k * 1000)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    result = enclave.chain.verify()
    assert result.ok, result.describe()
    assert result.events == 240
