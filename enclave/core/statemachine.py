"""The one function that changes a workflow object's status: check, move, audit, one transaction.

Workflows declare their :class:`~enclave.core.policy.StateMachine` as data; this module applies
a move to an object that has ``id``, ``status``, ``version`` and ``project_id`` columns. The
object is re-read under a row lock (``SELECT ... FOR UPDATE`` on PostgreSQL, the database lock
on SQLite) so that two racing moves serialise and the second sees the first's result.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy.orm import Session

from enclave.core import audit, policy
from enclave.core.policy import Actor, StateMachine


class Stateful(Protocol):
    """What a workflow object must have for the state machine to move it."""

    id: Any
    status: Any
    version: int
    project_id: Any


def lock(session: Session, obj: Stateful) -> None:
    """Re-read ``obj`` under a row lock so the move sees the committed state."""
    session.flush()
    session.refresh(obj, with_for_update=True)


def move(session: Session, actor: Actor, machine: StateMachine[Any], obj: Stateful,
         target: StrEnum, *, facts: Mapping[str, Any] | None = None,
         details: Mapping[str, Any] | None = None) -> audit.AuditEvent:
    """Move ``obj`` to ``target`` if the policy allows it, writing the audit event with it."""
    lock(session, obj)
    source = machine.states(obj.status)
    transition = policy.check_transition(actor, machine, source, target, facts or {})
    obj.status = target.value
    obj.version += 1
    return audit.record(session, actor=actor.username, action=transition.action,
                        object_type=machine.object_type, object_id=str(obj.id),
                        project_id=str(obj.project_id) if obj.project_id is not None else None,
                        details={"from": source.value, "to": target.value, **(details or {})})
