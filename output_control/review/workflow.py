"""The output review workflow: request -> automatic checks -> two blind reviews -> signed release,
with a return loop: a controller may return a file with a comment, and the researcher amends
and resubmits the request, which starts a new blind round.

Files are frozen at submission: their bytes are copied into the request's folder and hashed, and
the release later copies exactly those bytes after re-checking the hash, so what is released is
what was approved. Two distinct disclosure controllers, neither a member of the project, must
approve every file (:func:`approval_state` is the one place that rule lives); a controller does
not see the other's vote until both have voted in the round.

Per file a controller approves, rejects or returns; rejecting and returning need a comment,
marked private (controllers only) or shared (the researcher sees it once both votes of the round
are in). Once both voted on every file: any "return" returns the request to the researcher (who
may withdraw it, or amend it: replace, add or remove files, update justifications and exception
requests, and resubmit); otherwise any "reject" rejects it; otherwise it is approved. Votes of
earlier rounds are kept as history. Every status change is a move of :data:`REQUEST_MACHINE`,
checked by the policy module and audited in the transaction that makes it.

The automatic checks add a ``differencing`` verdict (:mod:`output_control.differencing`): each
table is compared with the tables the project released before (the release ledger, written by
:func:`release`) and with the request's other files; a disclosive difference makes the file
REVIEW with the pair of tables and the cells explained.

Each frozen file is checked by its kind (:mod:`output_control.review.checks`): a table with
its sidecar, a figure proved to be the drawing of its table (frozen beside it), or a DP
result, whose declared spend is charged to the privacy budget in the transaction that stores
the request (:mod:`output_control.review.dp_charges`). The notebooks the files record are
frozen with them, for a controller's re-run (:mod:`output_control.review.rerun`, which runs
them in the sandbox and is kept out of this module). A notebook's ``release_request.json`` is
submitted through :mod:`output_control.review.manifests`.

Every frozen file also gets a ``row_level_content`` verdict
(:mod:`output_control.review.row_level_check`): a file carrying any pupil pseudonym of the
project's published extracts fails, with where it was found (never more than a short prefix of
the pseudonym); the other rules' findings are then redacted the same way, the file is not
differenced, and its page shows neither its table nor its CSV summary. Files kept by an
amendment are checked again at resubmission.
"""
from __future__ import annotations

import io
import json
import os
import re
import secrets
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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
from output_control import differencing
from output_control.analysis.dp_outputs import DPOutput
from output_control.differencing import PopulationError, TableCells
from output_control.policy import Policy
from output_control.request_manifest import EXTRA_RULES as EXCEPTION_EXTRA_RULES
from output_control.request_manifest import ExceptionRequest
from output_control.review import checks, dp_charges
from output_control.review.models import (
    OutputFile,
    OutputRequest,
    Release,
    ReleasedTable,
    Review,
)
from output_control.review.row_level_check import (
    ProjectPseudonyms,
    published_extracts,
    row_level_failed,
)
from output_control.row_level import RULE as ROW_LEVEL_RULE
from output_control.rules import RULES, load_policy
from output_control.sidecar import INTEGRITY_RULE
from output_control.table import SidecarTable
from output_control.verdicts import CheckResult, Outcome, RuleVerdict

SIDECAR_SUFFIX = ".sidecar.json"
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,150}$")
MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_SIDECAR_BYTES = 8 * MAX_FILE_BYTES + 1024 * 1024  # as output_control.sidecar reads them
MAX_TEXT = 5000
RULES_POLICY = "default"


class RequestStatus(StrEnum):
    """Where an output request stands."""

    SUBMITTED = "submitted"
    RETURNED = "returned"
    APPROVED = "approved"
    REJECTED = "rejected"
    RELEASED = "released"
    WITHDRAWN = "withdrawn"


class Decision(StrEnum):
    """A controller's vote on one file."""

    APPROVE = "approve"
    REJECT = "reject"
    RETURN = "return"


class Visibility(StrEnum):
    """Who reads a controller's comment: controllers only, or the researcher too."""

    PRIVATE = "private"
    SHARED = "shared"


class ApprovalState(StrEnum):
    """The two-reviewer rule's answer for a request's current round."""

    INCOMPLETE = "incomplete"
    APPROVED = "approved"
    REJECTED = "rejected"
    RETURNED = "returned"


def _settled_as(state: ApprovalState) -> Any:
    def condition(actor: Actor, facts: Mapping[str, Any]) -> str | None:
        if facts.get("approval") != state:
            return f"the two reviews of this round do not make the request {state.value}"
        return None
    return condition


def _releasable(actor: Actor, facts: Mapping[str, Any]) -> str | None:
    return _settled_as(ApprovalState.APPROVED)(actor, facts) or policy.not_a_member(actor, facts)


def _may_resubmit(actor: Actor, facts: Mapping[str, Any]) -> str | None:
    """A member who may still ask for outputs (accredited, agreed, project active)."""
    reason = policy.is_a_member(actor, facts)
    if reason is not None:
        return reason
    try:
        policy.check_request_output(actor, facts.get("members", ()), facts.get("agreed", ()),
                                    bool(facts.get("active")))
    except PermissionDenied as exc:
        return str(exc)
    return None


S = RequestStatus
REQUEST_MACHINE: StateMachine[RequestStatus] = StateMachine("output_request", RequestStatus, (
    Transition(S.SUBMITTED, S.APPROVED, Role.SYSTEM, "output.approved",
               _settled_as(ApprovalState.APPROVED)),
    Transition(S.SUBMITTED, S.REJECTED, Role.SYSTEM, "output.rejected",
               _settled_as(ApprovalState.REJECTED)),
    Transition(S.SUBMITTED, S.RETURNED, Role.SYSTEM, "output.returned",
               _settled_as(ApprovalState.RETURNED)),
    Transition(S.SUBMITTED, S.WITHDRAWN, Role.RESEARCHER, "output.withdrawn",
               policy.is_a_member),
    Transition(S.RETURNED, S.WITHDRAWN, Role.RESEARCHER, "output.withdrawn",
               policy.is_a_member),
    Transition(S.RETURNED, S.SUBMITTED, Role.RESEARCHER, "output.resubmitted", _may_resubmit),
    Transition(S.APPROVED, S.RELEASED, Role.OUTPUT_CHECKER, "output.released", _releasable),
))
SETTLING = {ApprovalState.APPROVED: S.APPROVED, ApprovalState.REJECTED: S.REJECTED,
            ApprovalState.RETURNED: S.RETURNED}


def _regular_file(path: Path) -> bool:
    return not path.is_symlink() and path.is_file()


def _get(session: Session, request_id: str) -> OutputRequest:
    request = session.get(OutputRequest, request_id)
    if request is None:
        raise NotFound(f"no output request {request_id!r}")
    return request


def files_of(session: Session, request_id: str) -> list[OutputFile]:
    """The current files of a request (not replaced or removed by an amendment), by name."""
    return list(session.execute(select(OutputFile).where(OutputFile.request_id == request_id,
                                                         OutputFile.retired_round.is_(None))
                                .order_by(OutputFile.name)).scalars())


def file_history(session: Session, request_id: str) -> list[OutputFile]:
    """Every file the request ever had, by round then name (retired ones included)."""
    return list(session.execute(select(OutputFile).where(OutputFile.request_id == request_id)
                                .order_by(OutputFile.review_round, OutputFile.name)).scalars())


def round_folder(folder: Path | str, review_round: int) -> Path:
    """Where the files frozen for ``review_round`` live: the request's folder for round 1, a
    ``round-N`` sub-folder for the files an amendment brought in round N."""
    return Path(folder) if review_round == 1 else Path(folder) / f"round-{review_round}"


def frozen_path(request: OutputRequest, file: OutputFile) -> Path:
    """The frozen copy of ``file``."""
    return round_folder(request.folder, file.review_round) / file.name


def outputs_dir(settings: Settings, project_id: str) -> Path:
    """``projects/<p>/outputs``: where a project's workspaces write candidate outputs."""
    return settings.projects_dir / project_id / "outputs"


def work_dir(settings: Settings, project_id: str, username: str) -> Path:
    """``projects/<p>/work/<user>``: a person's work folder of a project (their notebooks)."""
    return settings.projects_dir / project_id / "work" / username


def _text(value: str, what: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be text")
    return value[:MAX_TEXT]


def _check_sources(source: Path, names: Iterable[str]) -> None:
    """Every name is a safe, regular, bounded file of the outputs folder (else nothing is done)."""
    for name in names:
        if not isinstance(name, str) or not SAFE_NAME.match(name) or ".." in name \
                or name.endswith(SIDECAR_SUFFIX):
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


@dataclass
class _Frozen:
    """A file just frozen: its row (not yet stored), its differencing view and, for a DP
    result, the declaration whose spend the submission charges."""

    row: OutputFile
    cells: TableCells | None
    dp: DPOutput | None = None


def _cells_of(table: SidecarTable | None, label: str) -> TableCells | None:
    """A checked table's cells for differencing (None when there is no table). A population
    that is not in the canonical structure counts as not described (the relation is then
    unknown)."""
    if table is None:
        return None
    try:
        return differencing.table_cells(table, label)
    except PopulationError:
        return differencing.table_cells(table, label, population={})


def _differencing_view(frozen: Path, label: str) -> TableCells | None:
    """The cells differencing compares for a frozen file: its table's, or for a figure the
    table it was drawn from; None if there is none or it cannot be verified (the file's own
    check has then already failed)."""
    try:
        table = checks.check_frozen(frozen, load_policy(RULES_POLICY),
                                    max_bytes=MAX_FILE_BYTES).table
    except Exception:  # fail closed elsewhere: the file's own check says why
        return None
    return _cells_of(table, label)


def _freeze(source: Path, dest: Path, files: Mapping[str, str], rules_policy: Policy,
            review_round: int, exceptions: Mapping[str, ExceptionLike],
            pseudonyms: ProjectPseudonyms) -> list[_Frozen]:
    """Copy each file and its sidecar (and a figure's table) into ``dest`` (read-only), then
    check and hash the copies; the checks include the row-level verdict (no pseudonym of the
    project's extracts in the file)."""
    frozen = []
    for name in sorted(files):
        for suffix in ("", SIDECAR_SUFFIX):
            src = source / (name + suffix)
            if _regular_file(src):
                shutil.copyfile(src, dest / (name + suffix))
                os.chmod(dest / (name + suffix), 0o440)
        checks.freeze_companions(source, dest, name)
    for name, file_justification in sorted(files.items()):
        path = dest / name
        sidecar = dest / (name + SIDECAR_SUFFIX)
        checked = checks.check_frozen(path, rules_policy, max_bytes=MAX_FILE_BYTES)
        result = pseudonyms.checked(checked.result, path, max_bytes=MAX_FILE_BYTES)
        rules, reason = _exception(exceptions.get(name), name)
        frozen.append(_Frozen(OutputFile(
            name=name, sha256=sha256_file(path), size=path.stat().st_size,
            sidecar_sha256=sha256_file(sidecar) if sidecar.exists() else "",
            check_outcome=str(result.outcome), check_result=json.dumps(result.to_dict()),
            justification=_text(file_justification, f"the justification of {name}"),
            exception_request=reason, exception_rules=json.dumps(rules),
            review_round=review_round), _cells_of(checked.table, name), checked.dp))
    return frozen


ExceptionLike = ExceptionRequest | str


def _exception(value: ExceptionLike | None, name: str) -> tuple[list[str], str]:
    """``(rules, reason)`` of a file's exception request: an :class:`ExceptionRequest` (the
    rules it asks controllers to waive, validated, and why) or, from the older forms, a
    reason alone."""
    if value is None:
        return [], ""
    if isinstance(value, ExceptionRequest):
        known = (*RULES, *EXCEPTION_EXTRA_RULES)
        rules = list(value.rules)
        if (not rules or len(set(rules)) != len(rules)
                or not all(isinstance(r, str) and r in known for r in rules)):
            raise ValidationError(f"the exception request of {name} must name distinct rules "
                                  f"among {sorted(known)}")
        return rules, _text(value.reason, f"the exception request of {name}")
    return [], _text(value, f"the exception request of {name}")


def _keep_rules(value: ExceptionLike, rules: list[str]) -> ExceptionLike:
    """An amended exception request given as text alone (the portal's form edits the reason)
    keeps the rules the file's request already named; emptied, it withdraws the request."""
    if isinstance(value, str) and rules and value.strip():
        return ExceptionRequest(tuple(rules), value)
    return value


def exception_rules(row: OutputFile) -> list[str]:
    """The rules a file's exception request asks controllers to waive (maybe none)."""
    try:
        rules = json.loads(row.exception_rules or "[]")
    except ValueError:
        return []
    return [str(r) for r in rules] if isinstance(rules, list) else []


# -- differencing ---------------------------------------------------------------------------

def released_tables(session: Session, project_id: str) -> list[ReleasedTable]:
    """The project's release ledger, oldest first."""
    return list(session.execute(select(ReleasedTable).where(ReleasedTable.project_id == project_id)
                                .order_by(ReleasedTable.id)).scalars())


def _ledger_views(session: Session, project_id: str) -> list[TableCells]:
    return [TableCells.from_json(json.loads(t.cells)) for t in released_tables(session, project_id)]


def _apply_differencing(files: list[_Frozen], earlier: list[TableCells],
                        rules_policy: Policy) -> None:
    """Set each file's ``differencing`` verdict: against the earlier releases and the others."""
    rules = rules_policy.rules
    threshold = int(rules["minimum_count"]["threshold"]) if "minimum_count" in rules else 10
    nk = tuple(rules["nk_dominance"]["pairs"]) if "nk_dominance" in rules else ()
    p = float(rules["p_percent"]["p"]) if "p_percent" in rules else None
    for entry in files:
        result = CheckResult.from_dict(json.loads(entry.row.check_result))
        kept = [v for v in result.verdicts if v.rule != differencing.RULE]
        if any(v.rule == "file_integrity" and v.outcome != "pass" for v in kept):
            continue  # already failed closed: nothing to difference
        if row_level_failed(result):
            continue  # blocked for naming pupils; its differences would quote their labels
        others = earlier + [f.cells for f in files if f is not entry and f.cells is not None]
        verdict: RuleVerdict
        if entry.cells is None:
            verdict = differencing.differencing_verdict(None, [], 0, threshold=threshold)
        else:
            hits = differencing.find_differencing(entry.cells, others, threshold=threshold,
                                                  nk_pairs=nk, p=p)
            verdict = differencing.differencing_verdict(entry.cells, hits, len(others),
                                                        threshold=threshold)
        combined = CheckResult.from_verdicts((*kept, verdict), result.policy_name,
                                             result.policy_version, result.policy_sha256)
        entry.row.check_result = json.dumps(combined.to_dict())
        entry.row.check_outcome = str(combined.outcome)


#: Rules whose failure **blocks** a file (the issue's "fail closed"): a file that cannot be
#: trusted (unparseable, unknown type, over the size limit, markup, a sidecar that lies) or that
#: carries row-level content can be rejected or returned, never approved nor released, whatever
#: the controllers vote. Other failures are for the controllers to weigh (exception requests).
BLOCKING_RULES = frozenset({INTEGRITY_RULE, ROW_LEVEL_RULE})


def blocking_failures(check_result: str) -> list[RuleVerdict]:
    """The verdicts of a stored check result that block its file (empty if none)."""
    result = CheckResult.from_dict(json.loads(check_result))
    return [v for v in result.verdicts
            if v.rule in BLOCKING_RULES and v.outcome is not Outcome.PASS]


def _refuse_blocked(file: OutputFile, what: str) -> None:
    blocked = blocking_failures(file.check_result)
    if blocked:
        reasons = "; ".join(f"{v.rule}: {v.message[:300]}" for v in blocked)
        raise ValidationError(f"{file.name} is blocked by the automatic checks and cannot be "
                              f"{what} ({reasons}); reject or return it")


# -- submission -----------------------------------------------------------------------------

def submit_request(db: Database, settings: Settings, actor: Actor, project_id: str,
                   files: dict[str, str], justification: str = "",
                   exception_requests: Mapping[str, ExceptionLike] | None = None, *,
                   origin: Mapping[str, str] | None = None) -> str:
    """Freeze ``{file name in outputs/: justification}``, check them and queue the request.

    ``exception_requests`` maps a file to the researcher's request for an exception to rules
    that did not pass (an :class:`ExceptionRequest` naming the rules, or a reason alone),
    shown to the controllers next to those rules. The DP results among the files are charged
    to the project's privacy budget in the transaction that stores the request
    (:func:`~output_control.review.dp_charges.charge_dp`); ``BudgetExceeded`` refuses the
    submission and removes the frozen folder. ``origin`` (e.g. the request file it came from,
    with its hash) is recorded in the submission's audit event.
    """
    if not files:
        raise ValidationError("an output request needs at least one file")
    exceptions = dict(exception_requests or {})
    if set(exceptions) - set(files):
        raise ValidationError("an exception request names a file that is not in the request")
    source = outputs_dir(settings, project_id)
    with db.transaction() as session:
        f = projects.facts(session, project_id)
        policy.check_request_output(actor, f["members"], f["agreed"], f["active"])
        extracts = published_extracts(session, project_id)
    _check_sources(source, files)
    pseudonyms = ProjectPseudonyms.load(extracts)
    request_id = "out-" + secrets.token_hex(5)
    folder = settings.projects_dir / project_id / "requests" / request_id
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{request_id}-", dir=folder.parent))
    rules_policy = load_policy(RULES_POLICY)
    try:
        frozen = _freeze(source, tmp, files, rules_policy, 1, exceptions, pseudonyms)
        checks.freeze_notebooks(tmp, sorted(files), work_dir(settings, project_id,
                                                               actor.username))
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
            _apply_differencing(frozen, _ledger_views(session, project_id), rules_policy)
            spends = dp_charges.charge_dp(session, actor, project_id, request_id, 1,
                                          [f.dp for f in frozen if f.dp is not None])
            session.add(OutputRequest(id=request_id, project_id=project_id,
                                      requester=actor.username,
                                      status=RequestStatus.SUBMITTED.value, version=1,
                                      review_round=1,
                                      justification=_text(justification, "the justification"),
                                      folder=str(folder), created_at=utcnow()))
            session.flush()
            rows = [entry.row for entry in frozen]
            for row in rows:
                row.request_id = request_id
                session.add(row)
            audit.record(session, actor=actor.username, action="output.submitted",
                         object_type="output_request", object_id=request_id,
                         project_id=project_id,
                         details={"files": [{"name": r.name, "sha256": r.sha256,
                                             "check": r.check_outcome} for r in rows],
                                  **({"privacy_spends": spends} if spends else {}),
                                  **({"origin": dict(origin)} if origin else {})})
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return request_id


def withdraw(db: Database, actor: Actor, request_id: str, reason: str = "") -> None:
    """The requester's project members withdraw a request under review or returned to them."""
    with db.transaction() as session:
        request = _get(session, request_id)
        statemachine.move(session, actor, REQUEST_MACHINE, request, S.WITHDRAWN,
                          facts=projects.facts(session, request.project_id),
                          details={"reason": reason[:2000]} if reason else None)


# -- the two blind reviews ------------------------------------------------------------------

def _round_votes(session: Session, request: OutputRequest) -> list[Review]:
    return list(session.execute(select(Review).where(
        Review.request_id == request.id, Review.review_round == request.review_round)).scalars())


def approval_state(session: Session, request_id: str) -> tuple[ApprovalState, list[str]]:
    """The two-reviewer rule on the current round: settled once two distinct reviewers voted on
    every current file; then any "return" returns, else any "reject" rejects, else approved."""
    request = _get(session, request_id)
    files = files_of(session, request_id)
    votes = _round_votes(session, request)
    reviewers = sorted({v.reviewer for v in votes})
    if len(reviewers) < 2 or any(
            len({v.reviewer for v in votes if v.file_id == f.id}) < 2 for f in files):
        return ApprovalState.INCOMPLETE, reviewers
    decisions = {v.decision for v in votes}
    if Decision.RETURN in decisions:
        return ApprovalState.RETURNED, reviewers
    if Decision.REJECT in decisions:
        return ApprovalState.REJECTED, reviewers
    return ApprovalState.APPROVED, reviewers


def _request_facts(session: Session, request: OutputRequest) -> dict[str, Any]:
    state, reviewers = approval_state(session, request.id)
    project = projects.facts(session, request.project_id)
    return {**project, "author": request.requester, "reviewers": reviewers,
            "approval": state, "approvers": reviewers if state == ApprovalState.APPROVED else []}


def review(db: Database, actor: Actor, request_id: str, votes: Mapping[str, Decision | str],
           comments: Mapping[str, str] | None = None,
           visibility: Mapping[str, Visibility | str] | None = None) -> ApprovalState:
    """Record one controller's votes on every current file; settle the round once both are in.

    Rejecting or returning a file needs a comment; ``visibility`` says per file whether the
    comment is ``private`` (controllers only, the default) or ``shared`` with the researcher.
    """
    comments = comments or {}
    visibility = visibility or {}
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
        if set(visibility) - set(files) or set(comments) - set(files):
            raise ValidationError("comments and their visibility must name files of the request")
        recorded = {}
        for name, raw in sorted(votes.items()):
            try:
                decision = Decision(raw)
            except ValueError:
                raise ValidationError(f"{raw!r} is not a vote on {name}: one of "
                                      + ", ".join(d.value for d in Decision)) from None
            try:
                seen_by = Visibility(visibility.get(name, Visibility.PRIVATE))
            except ValueError:
                raise ValidationError(f"the visibility of the comment on {name} must be one of "
                                      + ", ".join(v.value for v in Visibility)) from None
            comment = _text(comments.get(name, ""), f"the comment on {name}")
            if decision in (Decision.REJECT, Decision.RETURN) and not comment.strip():
                verb = "rejecting" if decision == Decision.REJECT else "returning"
                raise ValidationError(f"{verb} {name} needs a comment")
            if decision == Decision.APPROVE:
                _refuse_blocked(files[name], "approved")
            session.add(Review(request_id=request_id, file_id=files[name].id,
                               reviewer=actor.username, decision=decision.value,
                               comment=comment, visibility=seen_by.value,
                               review_round=request.review_round, voted_at=utcnow()))
            recorded[name] = decision.value
        session.flush()
        audit.record(session, actor=actor.username, action="output.reviewed",
                     object_type="output_request", object_id=request_id,
                     project_id=request.project_id,
                     details={"votes": recorded, "round": request.review_round})
        facts = _request_facts(session, request)
        target = SETTLING.get(facts["approval"])
        if target is not None:
            statemachine.move(session, policy.SYSTEM, REQUEST_MACHINE, request, target,
                              facts=facts, details={"reviewers": facts["reviewers"],
                                                    "round": request.review_round})
        return ApprovalState(facts["approval"])


# -- amend and resubmit ---------------------------------------------------------------------

@dataclass(frozen=True)
class Amendment:
    """What a researcher changes before resubmitting a returned request.

    ``replace`` freezes files of the outputs folder (new, or replacing one of the same name)
    with their justification; ``remove`` drops files; ``justifications`` and
    ``exception_requests`` update those of files kept as they are (or of replaced ones).
    """

    replace: Mapping[str, str] = field(default_factory=dict)
    remove: tuple[str, ...] = ()
    justifications: Mapping[str, str] = field(default_factory=dict)
    exception_requests: Mapping[str, ExceptionLike] = field(default_factory=dict)
    justification: str | None = None  # of the whole request


def resubmit(db: Database, settings: Settings, actor: Actor, request_id: str,
             amendment: Amendment | None = None) -> int:
    """Amend a returned request and resubmit it: a new blind round starts; returns its number.

    The earlier rounds' votes and retired files stay as history. Nothing changes on any error:
    the newly frozen files are removed and no row or audit event is written.
    """
    amendment = amendment or Amendment()
    with db.transaction() as session:
        request = _get(session, request_id)
        facts = projects.facts(session, request.project_id)
        policy.check_transition(actor, REQUEST_MACHINE, RequestStatus(request.status),
                                S.SUBMITTED, facts)
        rows = files_of(session, request_id)
        current = {f.name for f in rows}
        asked = {f.name: exception_rules(f) for f in rows}
        project_id, folder, seen_version = request.project_id, request.folder, request.version
        next_round = request.review_round + 1
        extracts = published_extracts(session, project_id)
    removed = set(amendment.remove)
    if removed - current:
        raise ValidationError("cannot remove files that are not in the request: "
                              + ", ".join(sorted(removed - current)))
    if removed & set(amendment.replace):
        raise ValidationError("a file cannot be both removed and replaced")
    result = (current - removed) | set(amendment.replace)
    if not result:
        raise ValidationError("an output request needs at least one file")
    for what, names in (("justification", amendment.justifications),
                        ("exception request", amendment.exception_requests)):
        if set(names) - result:
            raise ValidationError(f"a {what} names a file that is not in the amended request")
    source = outputs_dir(settings, project_id)
    _check_sources(source, amendment.replace)
    rules_policy = load_policy(RULES_POLICY)
    pseudonyms = ProjectPseudonyms.load(extracts)
    dest = round_folder(folder, next_round)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-round-{next_round}-", dir=folder))
    try:
        fresh = _freeze(source, tmp, {n: amendment.justifications.get(n, j)
                                      for n, j in amendment.replace.items()},
                        rules_policy, next_round,
                        {n: _keep_rules(v, asked.get(n, []))
                         for n, v in amendment.exception_requests.items()},
                        pseudonyms)
        checks.freeze_notebooks(tmp, sorted(amendment.replace),
                                work_dir(settings, project_id, actor.username))
        fsync_dir(tmp)
        if fresh:
            try:
                os.rename(tmp, dest)
            except OSError:
                if dest.exists():  # a concurrent resubmission froze this round first
                    raise PermissionDenied(f"request {request_id} is already being "
                                           "resubmitted") from None
                raise
        else:
            shutil.rmtree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        with db.transaction() as session:
            request = _get(session, request_id)
            statemachine.lock(session, request)
            if request.version != seen_version:
                raise PermissionDenied(f"request {request_id} changed while it was being "
                                       "amended; try again")
            kept: list[_Frozen] = []
            for row in files_of(session, request_id):
                if row.name in removed or row.name in amendment.replace:
                    row.retired_round = next_round
                    continue
                if row.name in amendment.justifications:
                    row.justification = _text(amendment.justifications[row.name],
                                              f"the justification of {row.name}")
                if row.name in amendment.exception_requests:
                    rules, reason = _exception(
                        _keep_rules(amendment.exception_requests[row.name],
                                    exception_rules(row)), row.name)
                    row.exception_request, row.exception_rules = reason, json.dumps(rules)
                # Checked again: an extract version published since may hold its pupils.
                rechecked = pseudonyms.checked(
                    CheckResult.from_dict(json.loads(row.check_result)),
                    frozen_path(request, row), max_bytes=MAX_FILE_BYTES)
                row.check_result = json.dumps(rechecked.to_dict())
                row.check_outcome = str(rechecked.outcome)
                kept.append(_Frozen(row, _differencing_view(frozen_path(request, row),
                                                            row.name)))
            session.flush()
            every = kept + fresh
            _apply_differencing(every, _ledger_views(session, request.project_id),
                                rules_policy)
            spends = dp_charges.charge_dp(session, actor, request.project_id, request_id,
                                          next_round, [f.dp for f in fresh if f.dp is not None])
            for entry in fresh:
                entry.row.request_id = request_id
                session.add(entry.row)
            if amendment.justification is not None:
                request.justification = _text(amendment.justification, "the justification")
            request.review_round = next_round
            statemachine.move(session, actor, REQUEST_MACHINE, request, S.SUBMITTED,
                              facts=projects.facts(session, request.project_id),
                              details={"round": next_round,
                                       "replaced": sorted(amendment.replace),
                                       "removed": sorted(removed),
                                       "updated": sorted(set(amendment.justifications)
                                                         | set(amendment.exception_requests)),
                                       "files": [{"name": e.row.name, "sha256": e.row.sha256,
                                                  "check": e.row.check_outcome}
                                                 for e in sorted(every,
                                                                 key=lambda e: e.row.name)],
                                       **({"privacy_spends": spends} if spends else {})})
    except BaseException:
        if fresh:
            shutil.rmtree(dest, ignore_errors=True)
        raise
    return next_round


# -- who sees what --------------------------------------------------------------------------

def _audience(session: Session, actor: Actor, request: OutputRequest) -> str:
    """``controller`` (controllers outside the project, the ethics committee: every vote once
    the round is in) or ``member`` (the project's members: shared comments of settled rounds)."""
    members = projects.facts(session, request.project_id)["members"]
    if policy.can_read_reviews(actor, members):
        return "controller"
    if actor.username in members and policy.can_view_project(actor, members):
        return "member"
    policy.check_read_reviews(actor, members)  # raises with the controllers' rule's reason
    raise PermissionDenied(f"{actor.username} may not see this request")  # pragma: no cover


def visible_votes(db: Database, actor: Actor, request_id: str) -> list[dict[str, Any]]:
    """Votes a controller may see: all of earlier rounds; of the current round their own, and
    the other's only once both have voted."""
    with db.sessions() as session:
        request = _get(session, request_id)
        policy.check_read_reviews(actor, projects.facts(session, request.project_id)["members"])
        return _votes_seen(session, actor, request)


def _votes_seen(session: Session, actor: Actor, request: OutputRequest) -> list[dict[str, Any]]:
    state, _reviewers = approval_state(session, request.id)
    names = {f.id: f.name for f in file_history(session, request.id)}
    votes = session.execute(select(Review).where(Review.request_id == request.id)
                            .order_by(Review.review_round, Review.id)).scalars()
    return [{"reviewer": v.reviewer, "decision": v.decision, "comment": v.comment,
             "visibility": v.visibility, "round": v.review_round, "file": names[v.file_id]}
            for v in votes
            if v.review_round < request.review_round or state != ApprovalState.INCOMPLETE
            or v.reviewer == actor.username]


def shared_comments(session: Session, request: OutputRequest) -> list[dict[str, Any]]:
    """Comments shared with the researcher, of rounds whose two reviews are in; no reviewer
    names (the researcher sees what to change, not who asked)."""
    state, _ = approval_state(session, request.id)
    names = {f.id: f.name for f in file_history(session, request.id)}
    votes = session.execute(select(Review).where(
        Review.request_id == request.id, Review.visibility == Visibility.SHARED.value)
        .order_by(Review.review_round, Review.id)).scalars()
    return [{"round": v.review_round, "file": names[v.file_id], "decision": v.decision,
             "comment": v.comment} for v in votes
            if v.review_round < request.review_round or state != ApprovalState.INCOMPLETE]


@dataclass(frozen=True)
class FileView:
    """One current file as a page shows it: its row, its checks, what its sidecar says, and
    the checked table itself (None when the file could not be verified against its sidecar).
    A file whose row-level check failed has neither table nor CSV summary: both would show
    its labels, pupils' pseudonyms, in full."""

    row: OutputFile
    checks: CheckResult
    population: dict[str, Any]
    provenance: dict[str, Any]
    csv_summary: list[dict[str, Any]]
    table: SidecarTable | None = None


@dataclass(frozen=True)
class RequestView:
    """Everything a request page shows, already filtered for the person looking."""

    request: OutputRequest
    audience: str  # controller or member
    files: list[FileView]
    votes: list[dict[str, Any]]  # controllers only (blind within the current round)
    comments: list[dict[str, Any]]  # shared comments, for members
    earlier_releases: list[ReleasedTable]
    approval: ApprovalState
    reviewers: list[str]
    may_vote: bool
    may_release: bool
    may_withdraw: bool
    may_resubmit: bool
    release: Release | None
    history: list[OutputFile]


def _sidecar_facts(path: Path) -> tuple[dict[str, Any], dict[str, Any], SidecarTable | None]:
    """(population, provenance, table) of a frozen file that passed its integrity check (for a
    figure, its table's; for a DP result, its declared population); empty when it cannot be
    verified (its check then says why)."""
    try:
        checked = checks.check_frozen(path, load_policy(RULES_POLICY), max_bytes=MAX_FILE_BYTES)
    except Exception:  # the file's own check says why
        return {}, {}, None
    table = checked.table
    if table is None:
        declared = checked.dp.population if checked.dp is not None else {}
        return dict(declared), {}, None
    population = table.metadata.get("population")
    provenance = table.metadata.get("provenance")
    return (dict(population) if isinstance(population, Mapping) else {},
            dict(provenance) if isinstance(provenance, Mapping) else {}, table)


def view_request(db: Database, actor: Actor, request_id: str) -> RequestView:
    """A request as ``actor`` may see it (controllers outside the project, the ethics
    committee, or the project's members)."""
    from output_control.csv_summary import summarise_csv

    with db.sessions() as session:
        request = _get(session, request_id)
        audience = _audience(session, actor, request)
        facts = _request_facts(session, request)
        files = []
        for row in files_of(session, request_id):
            path = frozen_path(request, row)
            population, provenance, table = _sidecar_facts(path)
            result = CheckResult.from_dict(json.loads(row.check_result))
            try:
                summary = summarise_csv(path.read_bytes())
            except (OSError, ValueError):
                summary = []
            if row_level_failed(result):  # its labels name pupils: no page shows them
                summary, table = [], None
            files.append(FileView(row, result, population, provenance, summary, table))
        status = RequestStatus(request.status)
        return RequestView(
            request=request, audience=audience, files=files,
            votes=_votes_seen(session, actor, request) if audience == "controller" else [],
            comments=shared_comments(session, request),
            earlier_releases=[t for t in released_tables(session, request.project_id)
                              if t.request_id != request_id] if audience == "controller"
            else [],
            approval=facts["approval"], reviewers=facts["reviewers"],
            may_vote=status == S.SUBMITTED and policy.can_review_output(
                actor, facts["members"], facts["author"], facts["reviewers"]),
            may_release=status == S.APPROVED and policy.can_transition(
                actor, REQUEST_MACHINE, status, S.RELEASED, facts),
            may_withdraw=policy.can_transition(actor, REQUEST_MACHINE, status, S.WITHDRAWN,
                                               facts),
            may_resubmit=policy.can_transition(actor, REQUEST_MACHINE, status, S.SUBMITTED,
                                               facts),
            release=session.execute(select(Release).where(Release.request_id == request_id))
            .scalar_one_or_none(),
            history=file_history(session, request_id))


def review_queue(db: Database, actor: Actor) -> list[tuple[OutputRequest, bool]]:
    """Requests a controller may act on: under review (``True`` if they may still vote in this
    round) or approved and waiting for release; never those of their own projects."""
    policy.check_read_reviews(actor, ())
    with db.sessions() as session:
        requests = session.execute(select(OutputRequest).where(
            OutputRequest.status.in_([S.SUBMITTED.value, S.APPROVED.value]))
            .order_by(OutputRequest.created_at)).scalars().all()
        rows = []
        for request in requests:
            facts = _request_facts(session, request)
            if not policy.can_read_reviews(actor, facts["members"]):
                continue
            may_vote = request.status == S.SUBMITTED and policy.can_review_output(
                actor, facts["members"], facts["author"], facts["reviewers"])
            rows.append((request, may_vote))
        return rows


def requests_of(db: Database, actor: Actor) -> list[OutputRequest]:
    """The output requests of the projects ``actor`` is a member of, newest first."""
    with db.sessions() as session:
        mine = [p.id for p in projects.projects_of(session, actor)]
        if not mine:
            return []
        return list(session.execute(select(OutputRequest).where(
            OutputRequest.project_id.in_(mine)).order_by(OutputRequest.created_at.desc()))
            .scalars())


# -- release --------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReleasedPackage:
    """A signed release package on disk."""

    request_id: str
    path: Path
    manifest: dict[str, Any]
    signature: str


def release(db: Database, settings: Settings, signer: Signer, actor: Actor,
            request_id: str) -> ReleasedPackage:
    """Package exactly the approved bytes with a signed manifest, mark the request released and
    record each released table in the project's release ledger (one transaction)."""
    with db.transaction() as session:
        request = _get(session, request_id)
        facts = _request_facts(session, request)
        policy.check_release_output(actor, facts["members"], facts["approvers"])
        if request.status != RequestStatus.APPROVED:
            raise PermissionDenied(f"request {request_id} is {request.status}, not approved")
        files = files_of(session, request_id)
        for file in files:  # defence in depth: approval already refuses blocked files
            _refuse_blocked(file, "released")
        paths = {f.id: frozen_path(request, f) for f in files}
        project_id, requester = request.project_id, request.requester
        final_round = request.review_round
        names = {f.id: f.name for f in file_history(session, request_id)}
        votes = [{"reviewer": v.reviewer, "decision": v.decision, "file": names[v.file_id],
                  "round": v.review_round}
                 for v in session.execute(select(Review).where(Review.request_id == request_id)
                                          .order_by(Review.review_round, Review.id)).scalars()]
    final = settings.releases_dir / request_id
    settings.releases_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{request_id}-", dir=settings.releases_dir))
    ledger: list[tuple[OutputFile, TableCells]] = []
    try:
        entries = []
        for f in files:
            data = paths[f.id].read_bytes()
            if sha256_bytes(data) != f.sha256:
                raise PermissionDenied(f"{f.name} changed since it was approved; not released")
            write_atomic(tmp / "files" / f.name, data, mode=0o440)
            entries.append({"name": f.name, "sha256": f.sha256, "size": f.size,
                            "checks": json.loads(f.check_result)})
            cells = _differencing_view(paths[f.id], f"{request_id}/{f.name}")
            if cells is not None:
                ledger.append((f, cells))
        manifest = {"format": "enclave-release/1", "request": request_id, "project": project_id,
                    "requester": requester, "files": entries, "review_rounds": final_round,
                    "reviews": votes,
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
                              details={"manifest_sha256": sha256_bytes(manifest_bytes),
                                       "ledger": [f.name for f, _ in ledger]})
            now = utcnow()
            session.add(Release(request_id=request_id, project_id=project_id, requester=requester,
                                path=str(final), manifest_sha256=sha256_bytes(manifest_bytes),
                                signature=signature, released_by=actor.username,
                                released_at=now))
            for f, cells in ledger:
                population = None if cells.population is None else cells.population.to_json()
                session.add(ReleasedTable(project_id=project_id, request_id=request_id,
                                          file_name=f.name, sha256=f.sha256,
                                          population=json.dumps(population, sort_keys=True),
                                          cells=json.dumps(cells.to_json(), sort_keys=True),
                                          released_at=now))
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        raise
    return ReleasedPackage(request_id, final, manifest, signature)


def download_package(db: Database, actor: Actor, request_id: str) -> tuple[str, bytes]:
    """The released package as a zip archive (``(file name, bytes)``) for its requester, while
    still a member of the project; the download is audited before the bytes are handed out."""
    with db.transaction() as session:
        request = _get(session, request_id)
        released = session.execute(select(Release).where(Release.request_id == request_id)) \
            .scalar_one_or_none()
        if released is None:
            raise NotFound(f"request {request_id} has no release package")
        policy.check_download_release(actor, released.requester)
        reason = policy.is_a_member(actor, projects.facts(session, request.project_id))
        if reason is not None:
            raise PermissionDenied(reason)
        package = Path(released.path)
        manifest = (package / "manifest.json").read_bytes()
        if sha256_bytes(manifest) != released.manifest_sha256:
            raise PermissionDenied(f"the package of {request_id} does not match its record")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(p for p in package.rglob("*") if _regular_file(p)):
                archive.write(path, f"{request_id}/{path.relative_to(package)}")
        data = buffer.getvalue()
        audit.record(session, actor=actor.username, action="output.downloaded",
                     object_type="output_request", object_id=request_id,
                     project_id=request.project_id,
                     details={"manifest_sha256": released.manifest_sha256,
                              "archive_sha256": sha256_bytes(data)})
    return f"{request_id}.zip", data


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
