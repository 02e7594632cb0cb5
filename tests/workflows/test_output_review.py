"""Output requests as truth tables: who may submit, what is frozen, the two blind reviews and
the signed release, on both backends. Every refusal changes nothing: no row, no folder, no
audit event.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from access_requests.workflow import ProjectStatus
from enclave.core import people
from enclave.core.exceptions import PermissionDenied, ValidationError
from enclave.core.policy import Actor
from output_control.review import workflow as outputs
from output_control.review.models import OutputFile, OutputRequest, Release, Review
from output_control.review.workflow import ApprovalState, Decision, RequestStatus
from tests.workflows.factories import OUTPUT_NAME, Factory

A, R = Decision.APPROVE, Decision.REJECT


@pytest.fixture
def factory(shared_factory: Factory) -> Factory:
    """One enclave per backend for this module: each test builds and observes its own project
    and request (the one test that changes the agreement version uses ``fresh_factory``)."""
    return shared_factory


# -- observations -----------------------------------------------------------------------------

def _count(factory: Factory, model: type, **where: str) -> int:
    query = select(func.count()).select_from(model)
    for column, value in where.items():
        query = query.where(getattr(model, column) == value)
    with factory.enclave.db.sessions() as session:
        return int(session.execute(query).scalar_one())


def _request(factory: Factory, request_id: str) -> OutputRequest:
    with factory.enclave.db.sessions() as session:
        request = session.get(OutputRequest, request_id)
        assert request is not None
        return request


def _files(factory: Factory, request_id: str) -> dict[str, OutputFile]:
    with factory.enclave.db.sessions() as session:
        return {f.name: f for f in outputs.files_of(session, request_id)}


def _state(factory: Factory, request_id: str) -> tuple[ApprovalState, list[str]]:
    with factory.enclave.db.sessions() as session:
        return outputs.approval_state(session, request_id)


def _requests_dir(factory: Factory, project_id: str) -> Path:
    return factory.enclave.settings.projects_dir / project_id / "requests"


def _assert_nothing_submitted(factory: Factory, project_id: str, head: int) -> None:
    assert _count(factory, OutputRequest, project_id=project_id) == 0
    folder = _requests_dir(factory, project_id)
    assert not folder.exists() or list(folder.iterdir()) == []
    assert factory.audit_events_after(head) == []


def _submit(factory: Factory, who: str, project_id: str, names: list[str]) -> str:
    return outputs.submit_request(factory.enclave.db, factory.enclave.settings,
                                  factory.actor(who), project_id,
                                  dict.fromkeys(names, "Tableau descriptif"))


# -- who may submit ---------------------------------------------------------------------------

def _training_expired(factory: Factory, project_id: str) -> Actor | None:
    later = date.today() + people.ACCREDITATION_VALIDITY  # trained 30 days ago: expired then
    return factory.actor_on("bruno", later)


#: (project status, set-up returning the acting person if not the plain one, who submits,
#: allowed). Members: alice (principal investigator), bruno, dora (staff) and oscar.
SUBMITTERS: list[tuple[str, ProjectStatus, Callable[[Factory, str], Actor | None] | None, str,
                       bool]] = [
    ("principal-investigator", ProjectStatus.ACTIVE, None, "alice", True),
    ("researcher-member", ProjectStatus.ACTIVE, None, "bruno", True),
    ("researcher-non-member", ProjectStatus.ACTIVE, None, "rita", False),
    ("member-whose-training-expired", ProjectStatus.ACTIVE, _training_expired, "bruno", False),
    ("staff-member", ProjectStatus.ACTIVE, None, "dora", False),
    ("staff-non-member", ProjectStatus.ACTIVE, None, "claire", False),
    ("output-checker", ProjectStatus.ACTIVE, None, "emma", False),
    ("ethics-committee", ProjectStatus.ACTIVE, None, "gaelle", False),
    ("platform-admin", ProjectStatus.ACTIVE, None, "admin", False),
    ("system", ProjectStatus.ACTIVE, None, "system", False),
    ("project-approved-not-active", ProjectStatus.APPROVED, None, "alice", False),
    ("project-suspended", ProjectStatus.SUSPENDED, None, "alice", False),
    ("project-revoked", ProjectStatus.REVOKED, None, "alice", False),
    ("project-expired", ProjectStatus.EXPIRED, None, "alice", False),
    ("project-closed", ProjectStatus.CLOSED, None, "alice", False),
]


@pytest.mark.parametrize(("status", "prepare", "who", "allowed"),
                         [case[1:] for case in SUBMITTERS], ids=[case[0] for case in SUBMITTERS])
def test_only_an_agreed_accredited_member_of_an_active_project_may_submit(
        factory: Factory, status: ProjectStatus,
        prepare: Callable[[Factory, str], Actor | None] | None, who: str,
        allowed: bool) -> None:
    project_id = factory.project(status, ready=True)
    actor = (prepare(factory, project_id) if prepare else None) or factory.actor(who)
    factory.output_file(project_id)
    head = factory.audit_head()
    files = {OUTPUT_NAME: "Tableau descriptif"}
    if allowed:
        request_id = outputs.submit_request(factory.enclave.db, factory.enclave.settings,
                                            actor, project_id, files)
        request = _request(factory, request_id)
        assert (request.status, request.requester, request.version) == ("submitted", who, 1)
        assert [(e.action, e.actor, e.object_id) for e in factory.audit_events_after(head)] \
            == [("output.submitted", who, request_id)]
        assert sorted(p.name for p in Path(request.folder).iterdir()) == [
            OUTPUT_NAME, OUTPUT_NAME + outputs.SIDECAR_SUFFIX]
    else:
        with pytest.raises(PermissionDenied):
            outputs.submit_request(factory.enclave.db, factory.enclave.settings, actor,
                                   project_id, files)
        _assert_nothing_submitted(factory, project_id, head)


def test_a_member_must_accept_a_new_agreement_version_before_submitting(
        fresh_factory: Factory) -> None:
    factory = fresh_factory
    project_id = factory.active_project()
    factory.output_file(project_id)
    factory.publish_agreement()  # changes every project: hence a fresh enclave
    head = factory.audit_head()
    with pytest.raises(PermissionDenied, match="agreement"):
        _submit(factory, "alice", project_id, [OUTPUT_NAME])
    _assert_nothing_submitted(factory, project_id, head)
    factory.agree(project_id, "alice")
    assert _request(factory, _submit(factory, "alice", project_id, [OUTPUT_NAME])).status \
        == RequestStatus.SUBMITTED


# -- what may be submitted ----------------------------------------------------------------------

def _outside_symlink(outputs_dir: Path) -> str:
    secret = outputs_dir.parent.parent / "secret.csv"
    secret.write_text("ine,note\n1234567890A,12\n")
    (outputs_dir / "lien.csv").symlink_to(secret)
    return "lien.csv"


def _inside_symlink(outputs_dir: Path) -> str:
    (outputs_dir / "alias.csv").symlink_to(outputs_dir / OUTPUT_NAME)
    return "alias.csv"


def _sidecar_name(outputs_dir: Path) -> str:
    return OUTPUT_NAME + outputs.SIDECAR_SUFFIX


def _oversize(outputs_dir: Path) -> str:
    with open(outputs_dir / "gros.csv", "wb") as fh:
        fh.truncate(outputs.MAX_FILE_BYTES + 1)
    return "gros.csv"


def _directory(outputs_dir: Path) -> str:
    (outputs_dir / "dossier.csv").mkdir()
    return "dossier.csv"


def _fixed(name: str) -> Callable[[Path], str]:
    return lambda _outputs_dir: name


UNSAFE: dict[str, Callable[[Path], str]] = {
    "parent-path": _fixed("../x.csv"),
    "parent-path-to-extract": _fixed("../extract/v1/eleves.parquet"),
    "absolute-path": _fixed("/etc/passwd"),
    "hidden-name": _fixed(".niveau_par_sexe.csv"),
    "dot-dot-inside": _fixed("a..csv"),
    "sidecar-name": _sidecar_name,
    "symlink-outside": _outside_symlink,
    "symlink-inside": _inside_symlink,
    "missing-file": _fixed("absent.csv"),
    "over-10-mib": _oversize,
    "directory": _directory,
}


def _refuses_and_stores_nothing(factory: Factory, make: Callable[[Path], str],
                                with_good_file: bool) -> None:
    project_id = factory.active_project()
    factory.output_file(project_id)
    bad = make(factory.outputs_dir(project_id))
    names = [OUTPUT_NAME, bad] if with_good_file else [bad]
    head = factory.audit_head()
    with pytest.raises(ValidationError):
        _submit(factory, "alice", project_id, names)
    _assert_nothing_submitted(factory, project_id, head)


@pytest.mark.parametrize("make", UNSAFE.values(), ids=UNSAFE.keys())
def test_submit_refuses_unsafe_names_and_stores_nothing(
        factory: Factory, make: Callable[[Path], str]) -> None:
    _refuses_and_stores_nothing(factory, make, with_good_file=False)


@pytest.mark.parametrize("kind", ["parent-path", "symlink-outside", "over-10-mib"])
def test_one_unsafe_file_refuses_the_whole_request(factory: Factory, kind: str) -> None:
    _refuses_and_stores_nothing(factory, UNSAFE[kind], with_good_file=True)


def test_submit_refuses_an_empty_request(factory: Factory) -> None:
    project_id = factory.active_project()
    head = factory.audit_head()
    with pytest.raises(ValidationError, match="at least one file"):
        _submit(factory, "alice", project_id, [])
    _assert_nothing_submitted(factory, project_id, head)


# -- fail closed --------------------------------------------------------------------------------

def _remove_sidecar(csv: Path) -> None:
    Path(str(csv) + outputs.SIDECAR_SUFFIX).unlink()


def _edit_csv(csv: Path) -> None:
    text = csv.read_text()
    assert "F,24," in text
    csv.write_text(text.replace("F,24,", "F,25,"))


def _garble_sidecar(csv: Path) -> None:
    Path(str(csv) + outputs.SIDECAR_SUFFIX).write_text('{"format": ')


def _edit_sidecar(csv: Path) -> None:
    sidecar = Path(str(csv) + outputs.SIDECAR_SUFFIX)
    text = sidecar.read_text()
    assert '"rows":[[24,' in text
    sidecar.write_text(text.replace('"rows":[[24,', '"rows":[[25,'))


def _symlink_sidecar(csv: Path) -> None:
    sidecar = Path(str(csv) + outputs.SIDECAR_SUFFIX)
    kept = sidecar.with_name("kept.json")
    sidecar.rename(kept)
    sidecar.symlink_to(kept)


TAMPERING: dict[str, Callable[[Path], None]] = {
    "sidecar-missing": _remove_sidecar,
    "csv-edited-after-writing": _edit_csv,
    "sidecar-not-json": _garble_sidecar,
    "sidecar-edited": _edit_sidecar,
    "sidecar-is-a-symlink": _symlink_sidecar,
}


@pytest.mark.parametrize("tamper", TAMPERING.values(), ids=TAMPERING.keys())
def test_a_file_that_cannot_be_trusted_is_frozen_with_a_failed_check(
        factory: Factory, tamper: Callable[[Path], None]) -> None:
    project_id = factory.active_project()
    factory.output_file(project_id, "propre.csv")
    factory.output_file(project_id)
    tamper(factory.outputs_dir(project_id) / OUTPUT_NAME)
    request_id = _submit(factory, "alice", project_id, ["propre.csv", OUTPUT_NAME])
    files = _files(factory, request_id)
    assert sorted(files) == sorted(["propre.csv", OUTPUT_NAME])  # frozen, not skipped
    assert files["propre.csv"].check_outcome == "pass"
    assert files[OUTPUT_NAME].check_outcome == "fail"
    assert "file_integrity" in files[OUTPUT_NAME].check_result
    assert (Path(_request(factory, request_id).folder) / OUTPUT_NAME).is_file()


def test_a_missing_sidecar_is_recorded_as_missing(factory: Factory) -> None:
    project_id = factory.active_project()
    factory.output_file(project_id)
    _remove_sidecar(factory.outputs_dir(project_id) / OUTPUT_NAME)
    request_id = _submit(factory, "alice", project_id, [OUTPUT_NAME])
    assert _files(factory, request_id)[OUTPUT_NAME].sidecar_sha256 == ""


# -- the two-reviewer rule ----------------------------------------------------------------------

TWO_FILES = [OUTPUT_NAME, "effectifs.csv"]

#: (votes in order as (reviewer, {file: decision}), approval state, request status).
REVIEWS: dict[str, tuple[list[tuple[str, list[Decision]]], ApprovalState, RequestStatus]] = {
    "one-approval": ([("emma", [A, A])], ApprovalState.INCOMPLETE, RequestStatus.SUBMITTED),
    "one-rejection": ([("emma", [R, A])], ApprovalState.INCOMPLETE, RequestStatus.SUBMITTED),
    "two-approvals": ([("emma", [A, A]), ("farid", [A, A])], ApprovalState.APPROVED,
                      RequestStatus.APPROVED),
    "approve-then-reject": ([("emma", [A, A]), ("farid", [R, A])], ApprovalState.REJECTED,
                            RequestStatus.REJECTED),
    "reject-then-approve": ([("emma", [A, R]), ("farid", [A, A])], ApprovalState.REJECTED,
                            RequestStatus.REJECTED),
    "two-rejections": ([("emma", [R, R]), ("farid", [R, R])], ApprovalState.REJECTED,
                       RequestStatus.REJECTED),
    "split-on-different-files": ([("emma", [A, R]), ("farid", [R, A])], ApprovalState.REJECTED,
                                 RequestStatus.REJECTED),
}
SETTLING_ACTION = {RequestStatus.APPROVED: ["output.approved"],
                   RequestStatus.REJECTED: ["output.rejected"], RequestStatus.SUBMITTED: []}


@pytest.mark.parametrize(("votes", "state", "status"), REVIEWS.values(), ids=REVIEWS.keys())
def test_two_distinct_controllers_must_approve_every_file(
        factory: Factory, votes: list[tuple[str, list[Decision]]], state: ApprovalState,
        status: RequestStatus) -> None:
    request_id = factory.output_request(names=TWO_FILES)
    head = factory.audit_head()
    returned = None
    for reviewer, decisions in votes:
        returned = outputs.review(factory.enclave.db, factory.actor(reviewer), request_id,
                                  dict(zip(TWO_FILES, decisions, strict=True)),
                                  dict.fromkeys(TWO_FILES, "motif"))
    assert returned == state
    assert _state(factory, request_id) == (state, sorted(r for r, _ in votes))
    request = _request(factory, request_id)
    assert request.status == status
    assert request.version == (1 if status == RequestStatus.SUBMITTED else 2)
    actions = [e.action for e in factory.audit_events_after(head)]
    assert actions == ["output.reviewed"] * len(votes) + SETTLING_ACTION[status]


#: Who may review a request of alice's project (members: alice, bruno, dora, oscar).
REVIEWERS = {
    "controller-outsider": ("emma", True),
    "controller-who-is-a-member": ("oscar", False),
    "requester": ("alice", False),
    "researcher-member": ("bruno", False),
    "researcher-non-member": ("rita", False),
    "staff-member": ("dora", False),
    "staff-non-member": ("claire", False),
    "ethics-committee": ("gaelle", False),
    "platform-admin": ("admin", False),
    "system": ("system", False),
}


@pytest.mark.parametrize(("who", "allowed"), REVIEWERS.values(), ids=REVIEWERS.keys())
def test_only_a_controller_outside_the_project_may_review(
        factory: Factory, who: str, allowed: bool) -> None:
    request_id = factory.output_request()
    head = factory.audit_head()
    if allowed:
        assert factory.vote(request_id, who, A) == ApprovalState.INCOMPLETE
        assert _count(factory, Review, request_id=request_id) == 1
        return
    with pytest.raises(PermissionDenied):
        factory.vote(request_id, who, A)
    assert _count(factory, Review, request_id=request_id) == 0
    assert factory.audit_events_after(head) == []


def test_a_controller_cannot_review_their_own_request(factory: Factory) -> None:
    request_id = factory.output_request(requester="oscar")
    with pytest.raises(PermissionDenied, match="belongs to this project"):
        factory.vote(request_id, "oscar", A)
    assert _count(factory, Review, request_id=request_id) == 0


@pytest.mark.parametrize("second", [A, R], ids=["approve", "reject"])
def test_a_controller_cannot_review_twice(factory: Factory, second: Decision) -> None:
    request_id = factory.output_request()
    factory.vote(request_id, "emma", A)
    head = factory.audit_head()
    with pytest.raises(PermissionDenied, match="already reviewed"):
        factory.vote(request_id, "emma", second)
    assert _state(factory, request_id) == (ApprovalState.INCOMPLETE, ["emma"])
    assert _count(factory, Review, request_id=request_id) == 1
    assert factory.audit_events_after(head) == []


@pytest.mark.parametrize("status", [RequestStatus.APPROVED, RequestStatus.REJECTED,
                                    RequestStatus.RELEASED], ids=lambda s: s.value)
def test_a_settled_request_takes_no_more_reviews(factory: Factory, status: RequestStatus) -> None:
    request_id = factory.output_request(status)
    head = factory.audit_head()
    with pytest.raises(PermissionDenied, match="not open for review"):
        factory.vote(request_id, "hugo", A)
    assert _request(factory, request_id).status == status
    assert factory.audit_events_after(head) == []


@pytest.mark.parametrize("comment", [None, "", "   \n"], ids=["none", "empty", "blank"])
def test_rejecting_without_a_comment_is_refused(factory: Factory, comment: str | None) -> None:
    request_id = factory.output_request(names=TWO_FILES)
    head = factory.audit_head()
    comments = None if comment is None else dict.fromkeys(TWO_FILES, comment)
    with pytest.raises(ValidationError, match="needs a comment"):
        outputs.review(factory.enclave.db, factory.actor("emma"), request_id,
                       {OUTPUT_NAME: A, "effectifs.csv": R}, comments)
    assert _count(factory, Review, request_id=request_id) == 0
    assert _state(factory, request_id) == (ApprovalState.INCOMPLETE, [])
    assert factory.audit_events_after(head) == []


def test_a_review_must_vote_on_every_file(factory: Factory) -> None:
    request_id = factory.output_request(names=TWO_FILES)
    with pytest.raises(ValidationError, match="every file"):
        outputs.review(factory.enclave.db, factory.actor("emma"), request_id,
                       {OUTPUT_NAME: A})
    assert _count(factory, Review, request_id=request_id) == 0


# -- blindness ----------------------------------------------------------------------------------

def _seen(factory: Factory, who: str, request_id: str) -> list[tuple[str, str]]:
    return sorted((v["reviewer"], v["decision"])
                  for v in outputs.visible_votes(factory.enclave.db, factory.actor(who),
                                                 request_id))


def test_votes_stay_hidden_from_the_other_controller_until_both_voted(factory: Factory) -> None:
    request_id = factory.output_request()
    assert _seen(factory, "emma", request_id) == []
    factory.vote(request_id, "emma", R)
    assert _seen(factory, "emma", request_id) == [("emma", "reject")]
    assert _seen(factory, "farid", request_id) == []
    assert _seen(factory, "hugo", request_id) == []
    factory.vote(request_id, "farid", A)
    both = [("emma", "reject"), ("farid", "approve")]
    assert _seen(factory, "emma", request_id) == both
    assert _seen(factory, "farid", request_id) == both


# -- release ------------------------------------------------------------------------------------

def _release(factory: Factory, who: str, request_id: str) -> outputs.ReleasedPackage:
    return outputs.release(factory.enclave.db, factory.enclave.settings,
                           factory.enclave.keys.signer(), factory.actor(who), request_id)


def _assert_nothing_released(factory: Factory, request_id: str, status: RequestStatus,
                             head: int) -> None:
    releases = factory.enclave.settings.releases_dir
    assert _count(factory, Release, request_id=request_id) == 0
    assert not (releases / request_id).exists()
    assert not releases.exists() or [p.name for p in releases.iterdir()
                                     if p.name.startswith(".tmp-")] == []
    assert _request(factory, request_id).status == status
    assert factory.audit_events_after(head) == []


#: (request status, who releases, allowed).
RELEASERS = {
    "approved-by-first-approver": (RequestStatus.APPROVED, "emma", True),
    "approved-by-second-approver": (RequestStatus.APPROVED, "farid", True),
    "approved-by-another-controller": (RequestStatus.APPROVED, "hugo", True),
    "approved-by-a-controller-member": (RequestStatus.APPROVED, "oscar", False),
    "approved-by-the-requester": (RequestStatus.APPROVED, "alice", False),
    "approved-by-staff": (RequestStatus.APPROVED, "claire", False),
    "approved-by-ethics-committee": (RequestStatus.APPROVED, "gaelle", False),
    "approved-by-platform-admin": (RequestStatus.APPROVED, "admin", False),
    "approved-by-system": (RequestStatus.APPROVED, "system", False),
    "submitted-not-reviewed": (RequestStatus.SUBMITTED, "emma", False),
    "rejected": (RequestStatus.REJECTED, "emma", False),
    "withdrawn": (RequestStatus.WITHDRAWN, "emma", False),
}


@pytest.mark.parametrize(("status", "who", "allowed"), RELEASERS.values(),
                         ids=RELEASERS.keys())
def test_release_needs_two_approvals_and_a_controller_outside_the_project(
        factory: Factory, status: RequestStatus, who: str, allowed: bool) -> None:
    request_id = factory.output_request(status)
    head = factory.audit_head()
    if not allowed:
        with pytest.raises(PermissionDenied):
            _release(factory, who, request_id)
        _assert_nothing_released(factory, request_id, status, head)
        return
    package = _release(factory, who, request_id)
    public = factory.enclave.keys.signer().public_hex()
    assert outputs.verify_package(package.path, public)
    assert package.path == factory.enclave.settings.releases_dir / request_id
    assert _request(factory, request_id).status == RequestStatus.RELEASED
    assert _count(factory, Release, request_id=request_id) == 1
    assert [(e.action, e.actor) for e in factory.audit_events_after(head)] == [
        ("output.released", who)]
    assert {r["reviewer"] for r in package.manifest["reviews"]} == {"emma", "farid"}


def test_release_after_one_approval_is_refused(factory: Factory) -> None:
    request_id = factory.output_request()
    factory.vote(request_id, "emma", A)
    head = factory.audit_head()
    with pytest.raises(PermissionDenied, match="two distinct"):
        _release(factory, "farid", request_id)
    _assert_nothing_released(factory, request_id, RequestStatus.SUBMITTED, head)


def test_a_request_is_released_once(factory: Factory) -> None:
    request_id = factory.output_request(RequestStatus.RELEASED)
    package = factory.enclave.settings.releases_dir / request_id
    manifest = (package / "manifest.json").read_bytes()
    head = factory.audit_head()
    with pytest.raises(PermissionDenied):
        _release(factory, "farid", request_id)
    assert (package / "manifest.json").read_bytes() == manifest
    assert _count(factory, Release, request_id=request_id) == 1
    assert factory.audit_events_after(head) == []


def test_a_frozen_file_altered_after_approval_is_not_released(factory: Factory) -> None:
    request_id = factory.output_request(RequestStatus.APPROVED)
    frozen = Path(_request(factory, request_id).folder) / OUTPUT_NAME
    os.chmod(frozen, 0o640)
    frozen.write_bytes(frozen.read_bytes().replace(b"24", b"99"))
    head = factory.audit_head()
    with pytest.raises(PermissionDenied, match="changed since it was approved"):
        _release(factory, "emma", request_id)
    _assert_nothing_released(factory, request_id, RequestStatus.APPROVED, head)


def test_the_release_holds_the_frozen_bytes_not_the_current_outputs(factory: Factory) -> None:
    project_id = factory.active_project()
    factory.output_file(project_id)
    original = (factory.outputs_dir(project_id) / OUTPUT_NAME).read_bytes()
    request_id = factory.output_request(RequestStatus.APPROVED, project_id=project_id)
    factory.output_file(project_id, per_cell=15)  # the researcher rewrites the output later
    assert (factory.outputs_dir(project_id) / OUTPUT_NAME).read_bytes() != original
    package = _release(factory, "emma", request_id)
    assert (package.path / "files" / OUTPUT_NAME).read_bytes() == original


# -- races --------------------------------------------------------------------------------------

def _race(*calls: Callable[[], object]) -> list[object]:
    """Run the calls at the same moment in threads; each result is a value or the exception."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], object]) -> object:
        barrier.wait()
        try:
            return call()
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def test_two_controllers_voting_at_once_settle_the_request_once(factory: Factory) -> None:
    request_id = factory.output_request()
    head = factory.audit_head()
    results = _race(lambda: factory.vote(request_id, "emma", A),
                    lambda: factory.vote(request_id, "farid", A))
    assert sorted(map(str, results)) == ["approved", "incomplete"]
    assert _request(factory, request_id).status == RequestStatus.APPROVED
    actions = sorted(e.action for e in factory.audit_events_after(head))
    assert actions == ["output.approved", "output.reviewed", "output.reviewed"]


def test_one_controller_voting_twice_at_once_is_counted_once(factory: Factory) -> None:
    request_id = factory.output_request()
    results = _race(lambda: factory.vote(request_id, "emma", A),
                    lambda: factory.vote(request_id, "emma", A))
    assert [r for r in results if isinstance(r, Exception)] != []
    assert _state(factory, request_id) == (ApprovalState.INCOMPLETE, ["emma"])
    assert _count(factory, Review, request_id=request_id) == 1


def test_two_controllers_releasing_at_once_release_once(factory: Factory) -> None:
    request_id = factory.output_request(RequestStatus.APPROVED)
    head = factory.audit_head()
    results = _race(lambda: _release(factory, "emma", request_id),
                    lambda: _release(factory, "farid", request_id))
    released = [r for r in results if isinstance(r, outputs.ReleasedPackage)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(released) == 1 and len(refused) == 1
    assert isinstance(refused[0], PermissionDenied), repr(refused[0])
    public = factory.enclave.keys.signer().public_hex()
    assert outputs.verify_package(released[0].path, public)
    assert _count(factory, Release, request_id=request_id) == 1
    assert [e.action for e in factory.audit_events_after(head)] == ["output.released"]
    releases = factory.enclave.settings.releases_dir
    assert [p.name for p in releases.iterdir() if p.name.startswith(".tmp-")] == []
