"""Extract builds on both backends: approved variables only, stable per-project pseudonyms,
increasing versions, read-only files matching their manifest, and builds that fail or are
refused leave nothing behind (no folder, no temporary folder, no row, no audit event).
"""

from __future__ import annotations

import json
import shutil
import stat
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from access_requests.workflow import ProjectStatus
from anonymization.exceptions import NullIdentifierError
from enclave.core import catalogue, policy
from enclave.core.exceptions import (
    CatalogueError,
    EnclaveError,
    KeyStoreError,
    PermissionDenied,
    ValidationError,
)
from enclave.core.files import sha256_bytes, sha256_file
from enclave.core.keystore import ProjectKey
from enclave.provisioning.extracts import BuiltExtract, current_extract, extract_root
from enclave.provisioning.models import Extract
from tests.workflows.factories import Factory


@pytest.fixture
def factory(shared_factory: Factory) -> Factory:
    """One enclave per backend for this module: each test builds and observes its own
    project (the tests that break the raw zone use ``fresh_factory``)."""
    return shared_factory


VARIABLES = {
    "eleves": [("sexe", "x"), ("niveau", "x"), ("ips", "x")],
    "evaluations_reperes": [("domaine", "x"), ("score", "x")],
}


def _approved(factory: Factory) -> str:
    return factory.project(ProjectStatus.APPROVED, variables=VARIABLES)


def _versions(factory: Factory, project_id: str) -> list[int]:
    with factory.enclave.db.sessions() as session:
        return list(session.execute(select(Extract.version).where(
            Extract.project_id == project_id).order_by(Extract.version)).scalars())


def _folders(factory: Factory, project_id: str) -> list[str]:
    root = extract_root(factory.enclave.settings, project_id)
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def _pseudonyms(path: Path, dataset: str = "eleves") -> list[str]:
    return pq.read_table(path / f"{dataset}.parquet", columns=["eleve"]) \
        .column("eleve").to_pylist()


# -- content ------------------------------------------------------------------------------------

def test_extract_holds_only_approved_variables_and_the_pseudonym(factory: Factory) -> None:
    project_id = _approved(factory)
    built = factory.extract(project_id)
    raw = factory.enclave.settings.raw_dir
    assert sorted(p.name for p in built.path.iterdir()) == [
        "eleves.parquet", "evaluations_reperes.parquet", "manifest.json"]
    for dataset, wanted in VARIABLES.items():
        table = pq.read_table(built.path / f"{dataset}.parquet")
        assert table.column_names == ["eleve", *(name for name, _ in wanted)]
        source = pq.read_table(raw / dataset / "part-00000.parquet")
        assert table.num_rows == source.num_rows
        assert not set(source.column("ine").to_pylist()) & set(table.column("eleve").to_pylist())
    manifest_files = {f["dataset"]: f["variables"] for f in built.manifest["files"]}
    assert manifest_files == {d: ["eleve", *(n for n, _ in v)] for d, v in VARIABLES.items()}


def test_a_pupil_has_one_pseudonym_across_the_datasets_of_a_project(factory: Factory) -> None:
    built = factory.extract(_approved(factory))
    raw = factory.enclave.settings.raw_dir
    ine_to_eleve = dict(zip(
        pq.read_table(raw / "eleves" / "part-00000.parquet").column("ine").to_pylist(),
        _pseudonyms(built.path), strict=True))
    evaluations = zip(
        pq.read_table(raw / "evaluations_reperes" / "part-00000.parquet").column("ine")
        .to_pylist(), _pseudonyms(built.path, "evaluations_reperes"), strict=True)
    assert all(ine_to_eleve[ine] == eleve for ine, eleve in evaluations)


def test_pseudonyms_are_stable_across_builds_and_differ_across_projects(
        factory: Factory) -> None:
    first, other = _approved(factory), _approved(factory)
    v1, v2 = factory.extract(first), factory.extract(first)
    elsewhere = factory.extract(other)
    assert _pseudonyms(v1.path) == _pseudonyms(v2.path)
    assert v1.manifest["key_id"] == v2.manifest["key_id"]
    assert elsewhere.manifest["key_id"] != v1.manifest["key_id"]
    assert not set(_pseudonyms(v1.path)) & set(_pseudonyms(elsewhere.path))


def test_versions_increase_and_the_latest_is_current(factory: Factory) -> None:
    project_id = _approved(factory)
    head = factory.audit_head()
    built = [factory.extract(project_id) for _ in range(2)]
    assert [b.version for b in built] == [1, 2]
    assert [b.path.name for b in built] == ["v1", "v2"]
    assert _versions(factory, project_id) == [1, 2]
    assert _folders(factory, project_id) == ["v1", "v2"]
    current = current_extract(factory.enclave.db, project_id)
    assert current is not None and current.version == 2
    events = [(e.action, e.object_id) for e in factory.audit_events_after(head)]
    assert events == [("key.created", events[0][1]),
                      ("extract.published", f"{project_id}/v1"),
                      ("extract.published", f"{project_id}/v2")]


def test_extract_files_are_read_only_and_match_their_manifest(factory: Factory) -> None:
    project_id = _approved(factory)
    built = factory.extract(project_id)
    for path in built.path.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o440, path.name
    manifest_bytes = (built.path / "manifest.json").read_bytes()
    manifest = json.loads(manifest_bytes)
    assert manifest == built.manifest
    for entry in manifest["files"]:
        assert sha256_file(built.path / entry["name"]) == entry["sha256"]
        assert pq.read_metadata(built.path / entry["name"]).num_rows == entry["rows"]
    row = current_extract(factory.enclave.db, project_id)
    assert row is not None
    assert row.manifest_sha256 == sha256_bytes(manifest_bytes)
    assert json.loads(row.manifest) == manifest
    assert row.path == str(built.path)


# -- who may build ------------------------------------------------------------------------------

#: Who may build the extract of alice's project (members: alice, bruno, dora, oscar).
BUILDERS = {
    "staff-non-member": ("claire", True),
    "another-staff-non-member": ("david", True),
    "system": ("system", True),
    "staff-member": ("dora", False),
    "principal-investigator": ("alice", False),
    "researcher-non-member": ("rita", False),
    "output-checker": ("emma", False),
    "controller-member": ("oscar", False),
    "ethics-committee": ("gaelle", False),
    "platform-admin": ("admin", False),
}


def _assert_nothing_built(factory: Factory, project_id: str, versions: list[int],
                          head: int) -> None:
    assert _versions(factory, project_id) == versions
    assert _folders(factory, project_id) == [f"v{v}" for v in versions]  # no v<N>, no .tmp-*
    assert "extract.published" not in [e.action for e in factory.audit_events_after(head)]


@pytest.mark.parametrize(("who", "allowed"), BUILDERS.values(), ids=BUILDERS.keys())
def test_only_depp_staff_outside_the_project_may_build(
        factory: Factory, who: str, allowed: bool) -> None:
    project_id = _approved(factory)
    head = factory.audit_head()
    if allowed:
        built = factory.extract(project_id, by=who)
        assert built.manifest["built_by"] == who
        assert _versions(factory, project_id) == [1]
        return
    with pytest.raises(PermissionDenied):
        factory.extract(project_id, by=who)
    _assert_nothing_built(factory, project_id, [], head)
    assert factory.audit_events_after(head) == []  # not even a key


@pytest.mark.parametrize("status", [ProjectStatus.DRAFT, ProjectStatus.SUBMITTED,
                                    ProjectStatus.IN_REVIEW, ProjectStatus.CHANGES_REQUESTED,
                                    ProjectStatus.REJECTED, ProjectStatus.SUSPENDED,
                                    ProjectStatus.REVOKED, ProjectStatus.EXPIRED,
                                    ProjectStatus.CLOSED],
                         ids=lambda s: s.value)
def test_an_unapproved_or_stopped_project_gets_no_extract(
        factory: Factory, status: ProjectStatus) -> None:
    project_id = factory.project(status, variables=VARIABLES)
    versions, folders = _versions(factory, project_id), _folders(factory, project_id)
    head = factory.audit_head()
    with pytest.raises(PermissionDenied):
        factory.extract(project_id)
    assert (_versions(factory, project_id), _folders(factory, project_id)) == (versions, folders)
    assert factory.audit_events_after(head) == []


# -- failed builds leave nothing ----------------------------------------------------------------

def _part(factory: Factory, dataset: str = "evaluations_reperes") -> Path:
    return factory.enclave.settings.raw_dir / dataset / "part-00000.parquet"


def _delete_part(factory: Factory) -> None:
    _part(factory).unlink()


def _alter_part(factory: Factory) -> None:
    part = _part(factory)
    part.chmod(0o600)
    part.write_bytes(part.read_bytes() + b"\0")


def _deposit_null_identifier(factory: Factory) -> None:
    """Re-deposit a part whose first INE is null, with matching metadata, and re-catalogue it:
    the catalogue accepts it and the build only fails while pseudonymising."""
    part = _part(factory)
    table = pq.read_table(part)
    ine = table.column("ine").to_pylist()
    table = table.set_column(table.schema.get_field_index("ine"), table.schema.field("ine"),
                             pa.array([None, *ine[1:]], type=pa.string()))
    part.chmod(0o600)
    pq.write_table(table, part)
    meta_path = part.parent / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["files"][0]["sha256"] = sha256_file(part)
    meta_path.chmod(0o600)
    meta_path.write_text(json.dumps(meta))
    with factory.enclave.db.transaction() as session:
        catalogue.load_catalogue(session, policy.SYSTEM, factory.enclave.settings.raw_dir)


#: How the raw zone is broken, the error, and whether the build got as far as its temporary
#: folder (checks of the raw files fail before it; pseudonymisation fails inside it).
FAILURES: dict[str, tuple[Callable[[Factory], None], type[Exception], bool]] = {
    "part-file-deleted": (_delete_part, CatalogueError, False),
    "part-file-altered": (_alter_part, CatalogueError, False),
    "null-identifier-while-pseudonymising": (_deposit_null_identifier, NullIdentifierError,
                                             True),
}


@pytest.mark.parametrize(("break_raw", "error", "reaches_tmp"), FAILURES.values(),
                         ids=FAILURES.keys())
@pytest.mark.parametrize("previous", [0, 1], ids=["first-build", "rebuild"])
def test_a_failed_build_leaves_no_folder_row_or_event(
        fresh_factory: Factory, break_raw: Callable[[Factory], None], error: type[Exception],
        reaches_tmp: bool, previous: int) -> None:
    factory = fresh_factory
    project_id = _approved(factory)
    for _ in range(previous):
        factory.extract(project_id)
    versions = _versions(factory, project_id)
    break_raw(factory)
    head = factory.audit_head()
    with pytest.raises(error):
        factory.extract(project_id)
    _assert_nothing_built(factory, project_id, versions, head)
    root = extract_root(factory.enclave.settings, project_id)
    assert root.exists() is bool(reaches_tmp or previous)
    if previous:  # the published version is untouched
        current = current_extract(factory.enclave.db, project_id)
        assert current is not None and current.version == previous
        assert Path(current.path).is_dir()


def test_a_leftover_version_folder_blocks_the_build(factory: Factory) -> None:
    project_id = _approved(factory)
    leftover = extract_root(factory.enclave.settings, project_id) / "v1"
    leftover.mkdir(parents=True)
    head = factory.audit_head()
    with pytest.raises(ValidationError, match="exists without a published row"):
        factory.extract(project_id)
    assert _versions(factory, project_id) == []
    assert _folders(factory, project_id) == ["v1"]
    assert list(leftover.iterdir()) == []
    assert "extract.published" not in [e.action for e in factory.audit_events_after(head)]


# -- crypto-shredding ---------------------------------------------------------------------------

def test_a_project_whose_key_was_destroyed_cannot_be_rebuilt(factory: Factory) -> None:
    project_id = _approved(factory)
    factory.extract(project_id)
    with factory.enclave.db.transaction() as session:
        destroyed = factory.enclave.keys.destroy_project_keys(
            session, project_id, factory.actor("claire"), "projet clos")
    assert len(destroyed) == 1
    head = factory.audit_head()
    with pytest.raises(KeyStoreError, match="destroyed"):
        factory.extract(project_id)
    _assert_nothing_built(factory, project_id, [1], head)
    assert factory.audit_events_after(head) == []


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


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_first_builds_agree_on_one_key(factory: Factory, round_: int) -> None:
    project_id = _approved(factory)
    results = _race(lambda: factory.extract(project_id), lambda: factory.extract(project_id),
                    lambda: factory.extract(project_id, by="david"))
    built = [r for r in results if isinstance(r, BuiltExtract)]
    assert built, results
    for failure in (r for r in results if isinstance(r, Exception)):
        assert isinstance(failure, EnclaveError | IntegrityError), repr(failure)
    later = factory.extract(project_id)
    versions = _versions(factory, project_id)
    assert _folders(factory, project_id) == [f"v{v}" for v in versions]  # no .tmp-* left
    assert later.version == max(versions)
    reference = _pseudonyms(later.path)
    for version in versions:
        path = extract_root(factory.enclave.settings, project_id) / f"v{version}"
        assert _pseudonyms(path) == reference, f"v{version} has other pseudonyms"


def test_the_key_of_a_failed_first_build_is_the_one_later_builds_use(
        fresh_factory: Factory, raw_zone: Path) -> None:
    factory = fresh_factory
    project_id = _approved(factory)
    _deposit_null_identifier(factory)
    with pytest.raises(NullIdentifierError):
        factory.extract(project_id)
    # The provider re-deposits the good data; DEPP staff reload the catalogue and rebuild.
    dataset = factory.enclave.settings.raw_dir / "evaluations_reperes"
    shutil.rmtree(dataset)
    shutil.copytree(raw_zone / "evaluations_reperes", dataset)
    with factory.enclave.db.transaction() as session:
        catalogue.load_catalogue(session, policy.SYSTEM, factory.enclave.settings.raw_dir)
    built = factory.extract(project_id)
    with factory.enclave.db.sessions() as session:
        keys = list(session.execute(select(ProjectKey.key_id).where(
            ProjectKey.project_id == project_id)).scalars())
    assert keys == [built.manifest["key_id"]]
