"""The output review workflow: request -> automatic checks -> two blind reviews -> signed release.

Files are frozen at submission: their bytes are copied into the request's folder and hashed, and
the release later copies exactly those bytes after re-checking the hash, so what is released is
what was approved. Two distinct disclosure controllers, neither a member of the project, must
approve every file (:func:`approval_state` is the one place that rule lives); a controller does
not see the other's vote until both have voted.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from access_requests import workflow as projects
from enclave.core import audit, policy, statemachine
from enclave.core.db import Database, utcnow
from enclave.core.exceptions import NotFound, PermissionDenied, ValidationError
from enclave.core.files import fsync_dir, sha256_bytes, sha256_file, write_atomic
from enclave.core.keystore import Signer
from enclave.core.policy import Actor, Role, StateMachine, Transition
from enclave.core.settings import Settings
from output_control.review.models import OutputFile, OutputRequest, Release, Review
from output_control.rules import check_output, load_policy

SIDECAR_SUFFIX = ".sidecar.json"
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,150}$")
MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_SIDECAR_BYTES = 8 * MAX_FILE_BYTES + 1024 * 1024  # as output_control.sidecar reads them


class RequestStatus(StrEnum):
    """Where an output request stands."""

    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    RELEASED = "released"
    WITHDRAWN = "withdrawn"


class Decision(StrEnum):
    """A controller's vote on one file."""

    APPROVE = "approve"
    REJECT = "reject"


class ApprovalState(StrEnum):
    """The two-reviewer rule's answer for a request."""

    INCOMPLETE = "incomplete"
    APPROVED = "approved"
    REJECTED = "rejected"


def _all_approved(actor: Actor, facts: dict[str, Any]) -> str | None:
    if facts.get("approval") != ApprovalState.APPROVED:
        return "two distinct controllers have not yet approved every file"
    return None


def _some_rejected(actor: Actor, facts: dict[str, Any]) -> str | None:
    if facts.get("approval") != ApprovalState.REJECTED:
        return "no file was rejected by both reviews"
    return None


def _releasable(actor: Actor, facts: dict[str, Any]) -> str | None:
    return _all_approved(actor, facts) or policy.not_a_member(actor, facts)


S = RequestStatus
REQUEST_MACHINE: StateMachine[RequestStatus] = StateMachine("output_request", RequestStatus, (
    Transition(S.SUBMITTED, S.APPROVED, Role.SYSTEM, "output.approved", _all_approved),
    Transition(S.SUBMITTED, S.REJECTED, Role.SYSTEM, "output.rejected", _some_rejected),
    Transition(S.SUBMITTED, S.WITHDRAWN, Role.RESEARCHER, "output.withdrawn",
               policy.is_a_member),
    Transition(S.APPROVED, S.RELEASED, Role.OUTPUT_CHECKER, "output.released", _releasable),
))


def _regular_file(path: Path) -> bool:
    return not path.is_symlink() and path.is_file()


def _get(session: Session, request_id: str) -> OutputRequest:
    request = session.get(OutputRequest, request_id)
    if request is None:
        raise NotFound(f"no output request {request_id!r}")
    return request


def files_of(session: Session, request_id: str) -> list[OutputFile]:
    """The files of a request, in name order."""
    return list(session.execute(select(OutputFile).where(OutputFile.request_id == request_id)
                                .order_by(OutputFile.name)).scalars())


def outputs_dir(settings: Settings, project_id: str) -> Path:
    """``projects/<p>/outputs``: where a project's workspaces write candidate outputs."""
    return settings.projects_dir / project_id / "outputs"


def submit_request(db: Database, settings: Settings, actor: Actor, project_id: str,
                   files: dict[str, str], justification: str = "") -> str:
    """Freeze ``{file name in outputs/: justification}``, check them and queue the request."""
    if not files:
        raise ValidationError("an output request needs at least one file")
    source = outputs_dir(settings, project_id)
    with db.transaction() as session:
        f = projects.facts(session, project_id)
        policy.check_request_output(actor, f["members"], f["agreed"], f["active"])
    for name in files:
        if not SAFE_NAME.match(name) or ".." in name or name.endswith(SIDECAR_SUFFIX):
            raise ValidationError(f"{name!r} is not an output file name")
        path = source / name
        if path.is_symlink() or not path.is_file():
            raise ValidationError(f"{name} is not a regular file of the project's outputs")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ValidationError(f"{name} is larger than {MAX_FILE_BYTES} bytes")
        sidecar = source / (name + SIDECAR_SUFFIX)
        # A sidecar that is a link or not a regular file is not copied: the file is then
        # frozen with a failed integrity check (fail closed, visible to the controllers).
        if _regular_file(sidecar) and sidecar.stat().st_size > MAX_SIDECAR_BYTES:
                raise ValidationError(f"the sidecar of {name} is larger than "
                                      f"{MAX_SIDECAR_BYTES} bytes")
    request_id = "out-" + secrets.token_hex(5)
    folder = settings.projects_dir / project_id / "requests" / request_id
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{request_id}-", dir=folder.parent))
    rules_policy = load_policy("default")
    try:
        rows = []
        for name, file_justification in sorted(files.items()):
            for suffix in ("", SIDECAR_SUFFIX):
                src = source / (name + suffix)
                if _regular_file(src):
                    shutil.copyfile(src, tmp / (name + suffix))
                    os.chmod(tmp / (name + suffix), 0o440)
            frozen = tmp / name
            sidecar = tmp / (name + SIDECAR_SUFFIX)
            result = check_output(frozen, rules_policy)
            rows.append(OutputFile(name=name, sha256=sha256_file(frozen),
                                   size=frozen.stat().st_size,
                                   sidecar_sha256=sha256_file(sidecar) if sidecar.exists()
                                   else "", check_outcome=str(result.outcome),
                                   check_result=json.dumps(result.to_dict()),
                                   justification=file_justification[:5000]))
        fsync_dir(tmp)
        os.rename(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        with db.transaction() as session:
            # Re-check in the transaction that stores the request: a suspension or a revoked
            # membership between the first check and now must win.
            f = projects.facts(session, project_id)
            policy.check_request_output(actor, f["members"], f["agreed"], f["active"])
            session.add(OutputRequest(id=request_id, project_id=project_id,
                                      requester=actor.username,
                                      status=RequestStatus.SUBMITTED.value, version=1,
                                      justification=justification[:5000], folder=str(folder),
                                      created_at=utcnow()))
            session.flush()
            for row in rows:
                row.request_id = request_id
                session.add(row)
            audit.record(session, actor=actor.username, action="output.submitted",
                         object_type="output_request", object_id=request_id,
                         project_id=project_id,
                         details={"files": [{"name": r.name, "sha256": r.sha256,
                                             "check": r.check_outcome} for r in rows]})
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return request_id


def withdraw(db: Database, actor: Actor, request_id: str, reason: str = "") -> None:
    """The requester's project members withdraw a request that is still under review."""
    with db.transaction() as session:
        request = _get(session, request_id)
        statemachine.move(session, actor, REQUEST_MACHINE, request, S.WITHDRAWN,
                          facts=projects.facts(session, request.project_id),
                          details={"reason": reason[:2000]} if reason else None)


def approval_state(session: Session, request_id: str) -> tuple[ApprovalState, list[str]]:
    """The two-reviewer rule: approved when two distinct reviewers approved every file."""
    files = files_of(session, request_id)
    votes = list(session.execute(select(Review).where(Review.request_id == request_id))
                 .scalars())
    reviewers = sorted({v.reviewer for v in votes})
    if len(reviewers) < 2 or any(
            len({v.reviewer for v in votes if v.file_id == f.id}) < 2 for f in files):
        return ApprovalState.INCOMPLETE, reviewers
    if all(v.decision == Decision.APPROVE for v in votes):
        return ApprovalState.APPROVED, reviewers
    return ApprovalState.REJECTED, reviewers


def _request_facts(session: Session, request: OutputRequest) -> dict[str, Any]:
    state, reviewers = approval_state(session, request.id)
    members = projects.facts(session, request.project_id)["members"]
    return {"members": members, "author": request.requester, "reviewers": reviewers,
            "approval": state, "approvers": reviewers if state == ApprovalState.APPROVED else []}


def review(db: Database, actor: Actor, request_id: str, votes: dict[str, Decision],
           comments: dict[str, str] | None = None) -> ApprovalState:
    """Record one controller's votes on every file; settle the request once both are in."""
    comments = comments or {}
    with db.transaction() as session:
        request = _get(session, request_id)
        statemachine.lock(session, request)
        if request.status != RequestStatus.SUBMITTED:
            raise PermissionDenied(f"request {request_id} is {request.status}, not open for review")
        facts = _request_facts(session, request)
        policy.check_review_output(actor, facts["members"], facts["author"], facts["reviewers"])
        files = {f.name: f for f in files_of(session, request_id)}
        if set(votes) != set(files):
            raise ValidationError("a review must vote on every file: " + ", ".join(sorted(files)))
        for name, decision in votes.items():
            try:
                decision = Decision(decision)
            except ValueError:
                raise ValidationError(f"{decision!r} is not a vote on {name}: one of "
                                      + ", ".join(d.value for d in Decision)) from None
            if decision == Decision.REJECT and not comments.get(name, "").strip():
                raise ValidationError(f"rejecting {name} needs a comment")
            session.add(Review(request_id=request_id, file_id=files[name].id,
                               reviewer=actor.username, decision=decision.value,
                               comment=comments.get(name, "")[:5000], voted_at=utcnow()))
        session.flush()
        audit.record(session, actor=actor.username, action="output.reviewed",
                     object_type="output_request", object_id=request_id,
                     project_id=request.project_id,
                     details={"votes": {n: Decision(d).value for n, d in sorted(votes.items())}})
        facts = _request_facts(session, request)
        if facts["approval"] == ApprovalState.APPROVED:
            statemachine.move(session, policy.SYSTEM, REQUEST_MACHINE, request, S.APPROVED,
                              facts=facts, details={"reviewers": facts["reviewers"]})
        elif facts["approval"] == ApprovalState.REJECTED:
            statemachine.move(session, policy.SYSTEM, REQUEST_MACHINE, request, S.REJECTED,
                              facts=facts, details={"reviewers": facts["reviewers"]})
        return facts["approval"]


def visible_votes(db: Database, actor: Actor, request_id: str) -> list[dict[str, str]]:
    """Votes a controller may see: their own, and the other's only once both have voted."""
    with db.sessions() as session:
        request = _get(session, request_id)
        policy.check_read_reviews(actor, projects.facts(session, request.project_id)["members"])
        state, _reviewers = approval_state(session, request_id)
        votes = session.execute(select(Review).where(Review.request_id == request_id)).scalars()
        both_in = state != ApprovalState.INCOMPLETE
        return [{"reviewer": v.reviewer, "decision": v.decision, "comment": v.comment}
                for v in votes if both_in or v.reviewer == actor.username]


@dataclass(frozen=True)
class ReleasedPackage:
    """A signed release package on disk."""

    request_id: str
    path: Path
    manifest: dict[str, Any]
    signature: str


def release(db: Database, settings: Settings, signer: Signer, actor: Actor,
            request_id: str) -> ReleasedPackage:
    """Package exactly the approved bytes with a signed manifest and mark the request released."""
    with db.transaction() as session:
        request = _get(session, request_id)
        facts = _request_facts(session, request)
        policy.check_release_output(actor, facts["members"], facts["approvers"])
        if request.status != RequestStatus.APPROVED:
            raise PermissionDenied(f"request {request_id} is {request.status}, not approved")
        files = files_of(session, request_id)
        project_id, requester, folder = request.project_id, request.requester, request.folder
        votes = [{"reviewer": v.reviewer, "decision": v.decision, "file_id": v.file_id}
                 for v in session.execute(select(Review).where(Review.request_id == request_id))
                 .scalars()]
    final = settings.releases_dir / request_id
    settings.releases_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{request_id}-", dir=settings.releases_dir))
    try:
        entries = []
        names = {f.id: f.name for f in files}
        for f in files:
            data = (Path(folder) / f.name).read_bytes()
            if sha256_bytes(data) != f.sha256:
                raise PermissionDenied(f"{f.name} changed since it was approved; not released")
            write_atomic(tmp / "files" / f.name, data, mode=0o440)
            entries.append({"name": f.name, "sha256": f.sha256, "size": f.size,
                            "checks": json.loads(f.check_result)})
        manifest = {"format": "enclave-release/1", "request": request_id, "project": project_id,
                    "requester": requester, "files": entries,
                    "reviews": [{"reviewer": v["reviewer"], "decision": v["decision"],
                                 "file": names[v["file_id"]]} for v in votes],
                    "released_by": actor.username, "released_at": utcnow().isoformat(),
                    "public_key": signer.public_hex()}
        manifest_bytes = (audit.canonical_json(manifest) + "\n").encode()
        signature = signer.sign(manifest_bytes).hex()
        write_atomic(tmp / "manifest.json", manifest_bytes, mode=0o440)
        write_atomic(tmp / "manifest.json.sig", (signature + "\n").encode(), mode=0o440)
        fsync_dir(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if final.exists():  # a concurrent release of the same request got there first
                raise PermissionDenied(f"request {request_id} is already being released") \
                    from None
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        with db.transaction() as session:
            request = _get(session, request_id)
            statemachine.move(session, actor, REQUEST_MACHINE, request, S.RELEASED,
                              facts=_request_facts(session, request),
                              details={"manifest_sha256": sha256_bytes(manifest_bytes)})
            session.add(Release(request_id=request_id, project_id=project_id, requester=requester,
                                path=str(final), manifest_sha256=sha256_bytes(manifest_bytes),
                                signature=signature, released_by=actor.username,
                                released_at=utcnow()))
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        raise
    return ReleasedPackage(request_id, final, manifest, signature)


def verify_package(path: Path, public_hex: str) -> bool:
    """True if the package's manifest signature and every file hash check out."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    manifest_bytes = (path / "manifest.json").read_bytes()
    signature = bytes.fromhex((path / "manifest.json.sig").read_text().strip())
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(signature,
                                                                              manifest_bytes)
    except InvalidSignature:
        return False
    manifest = json.loads(manifest_bytes)
    return all(sha256_file(path / "files" / e["name"]) == e["sha256"] for e in manifest["files"])
