"""The portal's own acts on the trail, each checked by the policy and recorded in the chain.

Verifying the chain and exporting the trail change nothing but are worth knowing about: who
looked at the trail's integrity, who took a copy of it, with which filter. Like the hub's login
events, they are appended by the edge that performs them, in their own transaction.
"""

from __future__ import annotations

from enclave.core import audit, policy
from enclave.core.audit import VerifyResult
from enclave.core.context import Enclave
from enclave.core.policy import Actor
from enclave.portal.queries import AuditFilter


def verify_chain(enclave: Enclave, actor: Actor, via: str) -> VerifyResult:
    """Verify every link and the last signed checkpoint, then record who did and the result."""
    policy.check_verify_audit(actor)
    result = enclave.chain.verify()
    with enclave.db.transaction() as session:
        audit.record(session, actor=actor.username, action="audit.chain_verified",
                     object_type="audit_chain", object_id=str(result.head_seq),
                     details={"ok": result.ok, "events": result.events,
                              "first_bad_seq": result.first_bad_seq, "reason": result.reason,
                              "checkpoint_seq": result.checkpoint_seq, "via": via})
    enclave.checkpoint_if_due()
    return result


def record_export(enclave: Enclave, actor: Actor, filt: AuditFilter, via: str) -> None:
    """Record that ``actor`` takes a copy of the trail selected by ``filt``."""
    policy.check_read_audit(actor)
    with enclave.db.transaction() as session:
        audit.record(session, actor=actor.username, action="audit.trail_exported",
                     object_type="audit_chain", object_id="csv",
                     details={"filter": filt.params(), "via": via})
    enclave.checkpoint_if_due()
