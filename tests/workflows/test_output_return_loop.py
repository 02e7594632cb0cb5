"""The return loop of output review, on both backends: a controller returns a file with a
comment (private or shared), the researcher reads the shared comments, withdraws or amends and
resubmits, and a new blind round starts with the earlier votes kept as history. Also the
differencing check of new requests against the project's release ledger.

Members of the factory project: alice (requester), bruno, dora (staff), oscar (controller and
researcher); emma, farid and hugo are controllers outside it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from enclave.core.exceptions import InvalidTransition, PermissionDenied, ValidationError
from output_control.checked import crosstab
from output_control.review import workflow as outputs
from output_control.review.models import OutputFile, OutputRequest, ReleasedTable, Review
from output_control.review.workflow import Amendment, ApprovalState, Decision, RequestStatus
from tests.workflows.factories import OUTPUT_NAME, Factory

A, R, RET = Decision.APPROVE, Decision.REJECT, Decision.RETURN
SECOND = "effectifs.csv"
FILES = [OUTPUT_NAME, SECOND]


@pytest.fixture
def factory(shared_factory: Factory) -> Factory:
    """One enclave per backend for the module; each test builds its own project."""
    return shared_factory


def _request(factory: Factory, request_id: str) -> OutputRequest:
    with factory.enclave.db.sessions() as session:
        request = session.get(OutputRequest, request_id)
        assert request is not None
        return request


def _count(factory: Factory, model: type, **where: object) -> int:
    query = select(func.count()).select_from(model)
    for column, value in where.items():
        query = query.where(getattr(model, column) == value)
    with factory.enclave.db.sessions() as session:
        return int(session.execute(query).scalar_one())


def _vote(factory: Factory, who: str, request_id: str, decisions: list[Decision],
          shared: bool = False, names: list[str] = FILES) -> ApprovalState:
    return outputs.review(factory.enclave.db, factory.actor(who), request_id,
                          dict(zip(names, decisions, strict=True)),
                          {n: f"{who} : motif pour {n}" for n in names},
                          dict.fromkeys(names, "shared" if shared else "private"))


def _returned(factory: Factory, project_id: str | None = None) -> str:
    """A request of two files returned by emma (shared comment) and approved by farid."""
    request_id = factory.output_request(project_id=project_id, names=FILES)
    _vote(factory, "emma", request_id, [RET, A], shared=True)
    assert _vote(factory, "farid", request_id, [A, A]) == ApprovalState.RETURNED
    return request_id


def _resubmit(factory: Factory, who: str, request_id: str,
              amendment: Amendment | None = None) -> int:
    return outputs.resubmit(factory.enclave.db, factory.enclave.settings, factory.actor(who),
                            request_id, amendment)


# -- settling a round ---------------------------------------------------------------------------

#: (votes of emma then farid on the two files, approval state of the round).
ROUNDS = {
    "return-and-approve": ([RET, A], [A, A], ApprovalState.RETURNED),
    "return-and-reject": ([RET, A], [A, R], ApprovalState.RETURNED),
    "both-return": ([RET, RET], [RET, A], ApprovalState.RETURNED),
    "reject-and-approve": ([R, A], [A, A], ApprovalState.REJECTED),
    "all-approved": ([A, A], [A, A], ApprovalState.APPROVED),
}


@pytest.mark.parametrize(("first", "second", "state"), ROUNDS.values(), ids=ROUNDS.keys())
def test_any_return_returns_the_request_once_both_voted(
        factory: Factory, first: list[Decision], second: list[Decision],
        state: ApprovalState) -> None:
    request_id = factory.output_request(names=FILES)
    head = factory.audit_head()
    assert _vote(factory, "emma", request_id, first) == ApprovalState.INCOMPLETE
    assert _request(factory, request_id).status == RequestStatus.SUBMITTED
    assert _vote(factory, "farid", request_id, second) == state
    assert _request(factory, request_id).status == state.value
    assert [e.action for e in factory.audit_events_after(head)] == [
        "output.reviewed", "output.reviewed", f"output.{state.value}"]


@pytest.mark.parametrize(("comment", "visibility", "match"), [
    ("", "shared", "needs a comment"), ("  ", "private", "needs a comment"),
    ("À corriger", "public", "visibility")], ids=["empty", "blank", "unknown-visibility"])
def test_a_return_needs_a_comment_and_a_known_visibility(
        factory: Factory, comment: str, visibility: str, match: str) -> None:
    request_id = factory.output_request()
    head = factory.audit_head()
    with pytest.raises(ValidationError, match=match):
        outputs.review(factory.enclave.db, factory.actor("emma"), request_id,
                       {OUTPUT_NAME: RET}, {OUTPUT_NAME: comment}, {OUTPUT_NAME: visibility})
    assert _count(factory, Review, request_id=request_id) == 0
    assert factory.audit_events_after(head) == []


# -- what the researcher sees ---------------------------------------------------------------------

def test_the_researcher_sees_shared_comments_once_the_round_is_in_and_never_private_ones(
        factory: Factory) -> None:
    request_id = factory.output_request(names=FILES)
    _vote(factory, "emma", request_id, [RET, A], shared=True)
    alice = factory.actor("alice")
    assert outputs.view_request(factory.enclave.db, alice, request_id).comments == []
    _vote(factory, "farid", request_id, [A, A], shared=False)
    view = outputs.view_request(factory.enclave.db, alice, request_id)
    assert view.audience == "member" and view.votes == []
    assert {(c["file"], c["decision"]) for c in view.comments} == {
        (OUTPUT_NAME, "return"), (SECOND, "approve")}
    assert all("emma" in c["comment"] for c in view.comments)  # farid's were private
    assert all("reviewer" not in c for c in view.comments)
    assert view.may_resubmit and view.may_withdraw and not view.may_vote
    controller = outputs.view_request(factory.enclave.db, factory.actor("hugo"), request_id)
    assert controller.audience == "controller"
    assert {v["reviewer"] for v in controller.votes} == {"emma", "farid"}


@pytest.mark.parametrize(("who", "allowed"), [
    ("alice", True), ("bruno", True), ("oscar", True), ("dora", True), ("emma", True),
    ("gaelle", True), ("rita", False), ("claire", False), ("admin", False)])
def test_who_may_see_a_request(factory: Factory, who: str, allowed: bool) -> None:
    request_id = factory.output_request()
    if allowed:
        assert outputs.view_request(factory.enclave.db, factory.actor(who), request_id)
    else:
        with pytest.raises(PermissionDenied):
            outputs.view_request(factory.enclave.db, factory.actor(who), request_id)


# -- who may resubmit or withdraw a returned request -----------------------------------------------

RESUBMITTERS = {
    "requester": ("alice", True),
    "researcher-member": ("bruno", True),
    "controller-member-as-researcher": ("oscar", True),
    "researcher-non-member": ("rita", False),
    "controller-non-member": ("emma", False),
    "staff-member": ("dora", False),
    "staff-non-member": ("claire", False),
    "ethics-committee": ("gaelle", False),
    "platform-admin": ("admin", False),
    "system": ("system", False),
}


@pytest.mark.parametrize(("who", "allowed"), RESUBMITTERS.values(), ids=RESUBMITTERS.keys())
def test_only_a_researcher_member_may_resubmit(factory: Factory, who: str,
                                               allowed: bool) -> None:
    request_id = _returned(factory)
    head = factory.audit_head()
    if not allowed:
        with pytest.raises(PermissionDenied):
            _resubmit(factory, who, request_id)
        request = _request(factory, request_id)
        assert (request.status, request.review_round) == ("returned", 1)
        assert factory.audit_events_after(head) == []
        return
    assert _resubmit(factory, who, request_id) == 2
    request = _request(factory, request_id)
    assert (request.status, request.review_round) == ("submitted", 2)
    events = factory.audit_events_after(head)
    assert [(e.action, e.actor) for e in events] == [("output.resubmitted", who)]


@pytest.mark.parametrize("who", ["alice", "bruno"])
def test_a_member_may_withdraw_a_returned_request(factory: Factory, who: str) -> None:
    request_id = _returned(factory)
    outputs.withdraw(factory.enclave.db, factory.actor(who), request_id, "Plus utile")
    assert _request(factory, request_id).status == RequestStatus.WITHDRAWN


@pytest.mark.parametrize("who", ["rita", "emma", "claire", "gaelle"])
def test_a_non_member_may_not_withdraw_a_returned_request(factory: Factory, who: str) -> None:
    request_id = _returned(factory)
    head = factory.audit_head()
    with pytest.raises(PermissionDenied):
        outputs.withdraw(factory.enclave.db, factory.actor(who), request_id)
    assert _request(factory, request_id).status == RequestStatus.RETURNED
    assert factory.audit_events_after(head) == []


@pytest.mark.parametrize("status", [RequestStatus.SUBMITTED, RequestStatus.APPROVED,
                                    RequestStatus.REJECTED, RequestStatus.RELEASED,
                                    RequestStatus.WITHDRAWN], ids=lambda s: s.value)
def test_only_a_returned_request_may_be_resubmitted(factory: Factory,
                                                    status: RequestStatus) -> None:
    request_id = factory.output_request(status)
    head = factory.audit_head()
    with pytest.raises(InvalidTransition):
        _resubmit(factory, "alice", request_id)
    assert _request(factory, request_id).status == status
    assert factory.audit_events_after(head) == []


# -- the new round --------------------------------------------------------------------------------

def test_a_resubmitted_request_starts_a_blind_round_and_keeps_the_old_votes(
        factory: Factory) -> None:
    request_id = _returned(factory)
    _resubmit(factory, "alice", request_id)
    assert _count(factory, Review, request_id=request_id) == 4  # round 1 kept
    with factory.enclave.db.sessions() as session:
        assert outputs.approval_state(session, request_id) == (ApprovalState.INCOMPLETE, [])
    # The same controllers may vote again in the new round, once each.
    _vote(factory, "emma", request_id, [A, A])
    with pytest.raises(PermissionDenied, match="already reviewed"):
        _vote(factory, "emma", request_id, [A, A])
    seen = outputs.visible_votes(factory.enclave.db, factory.actor("farid"), request_id)
    assert {(v["reviewer"], v["round"]) for v in seen} == {("emma", 1), ("farid", 1)}
    assert _vote(factory, "farid", request_id, [A, A]) == ApprovalState.APPROVED
    seen = outputs.visible_votes(factory.enclave.db, factory.actor("farid"), request_id)
    assert {(v["reviewer"], v["round"]) for v in seen} == {
        ("emma", 1), ("farid", 1), ("emma", 2), ("farid", 2)}
    package = outputs.release(factory.enclave.db, factory.enclave.settings,
                              factory.enclave.keys.signer(), factory.actor("hugo"), request_id)
    assert package.manifest["review_rounds"] == 2
    assert {(r["reviewer"], r["round"]) for r in package.manifest["reviews"]} == {
        ("emma", 1), ("farid", 1), ("emma", 2), ("farid", 2)}


def test_a_controller_member_still_may_not_review_the_new_round(factory: Factory) -> None:
    request_id = _returned(factory)
    _resubmit(factory, "alice", request_id)
    for who in ("oscar", "alice", "dora", "gaelle"):
        with pytest.raises(PermissionDenied):
            _vote(factory, who, request_id, [A, A])


def test_an_amendment_replaces_removes_and_updates_files(factory: Factory) -> None:
    project_id = factory.active_project()
    request_id = _returned(factory, project_id)
    old = _request(factory, request_id)
    original = (Path(old.folder) / OUTPUT_NAME).read_bytes()
    factory.output_file(project_id, OUTPUT_NAME, per_cell=15)  # the corrected table
    head = factory.audit_head()
    _resubmit(factory, "bruno", request_id, Amendment(
        replace={OUTPUT_NAME: "Tableau corrigé"}, remove=(SECOND,),
        exception_requests={OUTPUT_NAME: "Exception demandée pour la cellule (F, CM2)"}))
    with factory.enclave.db.sessions() as session:
        current = outputs.files_of(session, request_id)
        history = outputs.file_history(session, request_id)
    assert [(f.name, f.review_round, f.justification) for f in current] == [
        (OUTPUT_NAME, 2, "Tableau corrigé")]
    assert current[0].exception_request.startswith("Exception demandée")
    assert sorted((f.name, f.review_round, f.retired_round) for f in history) == [
        (SECOND, 1, 2), (OUTPUT_NAME, 1, 2), (OUTPUT_NAME, 2, None)]
    assert (Path(old.folder) / OUTPUT_NAME).read_bytes() == original  # history kept
    new_bytes = (Path(old.folder) / "round-2" / OUTPUT_NAME).read_bytes()
    assert new_bytes != original
    details = json.loads(factory.audit_events_after(head)[0].details)
    assert (details["replaced"], details["removed"]) == ([OUTPUT_NAME], [SECOND])
    _vote(factory, "emma", request_id, [A], names=[OUTPUT_NAME])
    _vote(factory, "hugo", request_id, [A], names=[OUTPUT_NAME])
    package = outputs.release(factory.enclave.db, factory.enclave.settings,
                              factory.enclave.keys.signer(), factory.actor("farid"), request_id)
    assert sorted(p.name for p in (package.path / "files").iterdir()) == [OUTPUT_NAME]
    assert (package.path / "files" / OUTPUT_NAME).read_bytes() == new_bytes


BAD_AMENDMENTS = {
    "remove-unknown": (Amendment(remove=("absent.csv",)), "not in the request"),
    "remove-everything": (Amendment(remove=(OUTPUT_NAME, SECOND)), "at least one file"),
    "replace-and-remove": (Amendment(replace={SECOND: "x"}, remove=(SECOND,)), "both"),
    "replace-with-missing-file": (Amendment(replace={"absent.csv": "x"}), "regular file"),
    "replace-outside-outputs": (Amendment(replace={"../secret.csv": "x"}), "not an output"),
    "justify-unknown": (Amendment(justifications={"absent.csv": "x"}), "not in the amended"),
    "exception-for-removed": (Amendment(remove=(SECOND,), exception_requests={SECOND: "x"}),
                              "not in the amended"),
}


@pytest.mark.parametrize(("amendment", "match"), BAD_AMENDMENTS.values(),
                         ids=BAD_AMENDMENTS.keys())
def test_a_bad_amendment_changes_nothing(factory: Factory, amendment: Amendment,
                                         match: str) -> None:
    request_id = _returned(factory)
    folder = Path(_request(factory, request_id).folder)
    before = sorted(p.name for p in folder.iterdir())
    head = factory.audit_head()
    with pytest.raises(ValidationError, match=match):
        _resubmit(factory, "alice", request_id, amendment)
    request = _request(factory, request_id)
    assert (request.status, request.review_round, request.version) == ("returned", 1, 2)
    assert sorted(p.name for p in folder.iterdir()) == before
    assert _count(factory, OutputFile, request_id=request_id) == 2
    assert factory.audit_events_after(head) == []


# -- differencing against the release ledger -------------------------------------------------------

def _events(per_cell: dict[tuple[str, str], int], prefix: str) -> pd.DataFrame:
    records = [{"sexe": s, "niveau": n, "eleve": f"{prefix}{s}{n}{i:03d}"}
               for (s, n), count in per_cell.items() for i in range(count)]
    return pd.DataFrame.from_records(records)


LYON = {("F", "CM2"): 37, ("F", "6E"): 20, ("M", "CM2"): 25, ("M", "6E"): 12}
REST = {("F", "CM2"): 3, ("F", "6E"): 15, ("M", "CM2"): 13, ("M", "6E"): 18}


def _table(factory: Factory, project_id: str, name: str, frame: pd.DataFrame,
           filters: dict[str, object]) -> str:
    crosstab(frame, "sexe", "niveau", name=name.removesuffix(".csv"),
             outputs_dir=factory.outputs_dir(project_id),
             population={"dataset": "eleves", "extract_version": 1, "filters": filters})
    return name


def _check(factory: Factory, request_id: str, name: str) -> tuple[str, dict[str, object]]:
    with factory.enclave.db.sessions() as session:
        row = {f.name: f for f in outputs.files_of(session, request_id)}[name]
    verdicts = {v["rule"]: v for v in json.loads(row.check_result)["verdicts"]}
    return row.check_outcome, verdicts["differencing"]


def test_a_sub_population_table_after_the_total_table_goes_to_review(factory: Factory) -> None:
    project_id = factory.active_project()
    everyone = pd.concat([_events(LYON, "L"), _events(REST, "X")])
    _table(factory, project_id, "tous.csv", everyone, {})
    total_request = factory.output_request(RequestStatus.RELEASED, project_id=project_id,
                                           names=["tous.csv"])
    assert _count(factory, ReleasedTable, request_id=total_request) == 1
    _table(factory, project_id, "lyon.csv", _events(LYON, "L"), {"academie": ["Lyon"]})
    _table(factory, project_id, "nice.csv", _events(REST, "X"), {"academie": ["Nice"]})
    request_id = factory.output_request(project_id=project_id, names=["lyon.csv"])
    outcome, verdict = _check(factory, request_id, "lyon.csv")
    assert (outcome, verdict["outcome"]) == ("review", "review")
    assert f"{total_request}/tous.csv" in str(verdict["message"])
    assert "academie in {Lyon}" in str(verdict["message"])
    assert [(c["cell"], c["value"]) for c in verdict["cells"]] == [  # type: ignore[index]
        (["niveau=CM2", "sexe=F"], 3)]


def test_a_non_nested_table_passes_the_differencing_check(factory: Factory) -> None:
    project_id = factory.active_project()
    _table(factory, project_id, "lyon.csv", _events(LYON, "L"), {"academie": ["Lyon"]})
    factory.output_request(RequestStatus.RELEASED, project_id=project_id, names=["lyon.csv"])
    _table(factory, project_id, "nice.csv", _events({k: v + 20 for k, v in REST.items()}, "X"),
           {"academie": ["Nice"]})
    request_id = factory.output_request(project_id=project_id, names=["nice.csv"])
    outcome, verdict = _check(factory, request_id, "nice.csv")
    assert (outcome, verdict["outcome"]) == ("pass", "pass")
    assert "compared with 1" in str(verdict["message"])


def test_two_files_of_one_request_are_differenced_against_each_other(factory: Factory) -> None:
    project_id = factory.active_project()
    _table(factory, project_id, "tous.csv", pd.concat([_events(LYON, "L"), _events(REST, "X")]),
           {})
    _table(factory, project_id, "lyon.csv", _events(LYON, "L"), {"academie": "Lyon"})
    request_id = factory.output_request(project_id=project_id, names=["tous.csv", "lyon.csv"])
    for name in ("tous.csv", "lyon.csv"):
        outcome, verdict = _check(factory, request_id, name)
        assert outcome == "review"
        assert "tous.csv" in str(verdict["message"]) and "lyon.csv" in str(verdict["message"])


def test_removing_the_total_table_in_an_amendment_clears_the_hit(factory: Factory) -> None:
    project_id = factory.active_project()
    _table(factory, project_id, "tous.csv", pd.concat([_events(LYON, "L"), _events(REST, "X")]),
           {})
    _table(factory, project_id, "lyon.csv", _events(LYON, "L"), {"academie": "Lyon"})
    request_id = factory.output_request(project_id=project_id, names=["tous.csv", "lyon.csv"])
    _vote(factory, "emma", request_id, [RET, A], names=["lyon.csv", "tous.csv"])
    _vote(factory, "farid", request_id, [A, A], names=["lyon.csv", "tous.csv"])
    _resubmit(factory, "alice", request_id, Amendment(remove=("tous.csv",)))
    outcome, verdict = _check(factory, request_id, "lyon.csv")
    assert (outcome, verdict["outcome"]) == ("pass", "pass")


# -- download -------------------------------------------------------------------------------

@pytest.mark.parametrize(("who", "allowed"), [
    ("alice", True), ("bruno", False), ("emma", False), ("rita", False), ("gaelle", False)])
def test_only_the_requester_downloads_the_package_and_it_is_audited(
        factory: Factory, who: str, allowed: bool) -> None:
    request_id = factory.output_request(RequestStatus.RELEASED)
    head = factory.audit_head()
    if not allowed:
        with pytest.raises(PermissionDenied):
            outputs.download_package(factory.enclave.db, factory.actor(who), request_id)
        assert factory.audit_events_after(head) == []
        return
    name, data = outputs.download_package(factory.enclave.db, factory.actor(who), request_id)
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = sorted(archive.namelist())
    assert name == f"{request_id}.zip"
    assert names == [f"{request_id}/files/{OUTPUT_NAME}", f"{request_id}/manifest.json",
                     f"{request_id}/manifest.json.sig"]
    assert [(e.action, e.actor) for e in factory.audit_events_after(head)] == [
        ("output.downloaded", who)]


# -- races ------------------------------------------------------------------------------------

def test_two_members_resubmitting_at_once_start_one_round(factory: Factory) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    project_id = factory.active_project()
    request_id = _returned(factory, project_id)
    factory.output_file(project_id, OUTPUT_NAME, per_cell=14)
    barrier = threading.Barrier(2)

    def run(who: str) -> object:
        barrier.wait()
        try:
            return _resubmit(factory, who, request_id,
                             Amendment(replace={OUTPUT_NAME: f"corrigé par {who}"}))
        except Exception as exc:
            return exc

    head = factory.audit_head()
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, ["alice", "bruno"]))
    assert sorted(r for r in results if isinstance(r, int)) == [2]
    refused = [r for r in results if isinstance(r, Exception)]
    # refused cleanly: raced to the same round, or arrived once the request was resubmitted
    assert len(refused) == 1, refused
    assert isinstance(refused[0], (PermissionDenied, InvalidTransition)), refused
    request = _request(factory, request_id)
    assert (request.status, request.review_round) == ("submitted", 2)
    assert [e.action for e in factory.audit_events_after(head)] == ["output.resubmitted"]
    with factory.enclave.db.sessions() as session:
        assert [(f.name, f.review_round) for f in outputs.files_of(session, request_id)] == [
            (SECOND, 1), (OUTPUT_NAME, 2)]
    assert (Path(request.folder) / "round-2" / OUTPUT_NAME).is_file()
