"""Build and publish a project's extract: approved variables only, the INE replaced by a pseudonym.

The build streams Arrow batches from the raw zone's Parquet files, keeps the approved columns,
replaces the pupil identifier by ``eleve = HMAC-SHA256(project key, INE)`` (see
:mod:`anonymization.pseudonyms`), writes into a hidden temporary folder, then renames it to
``projects/<p>/extract/v<N>/``; the extract becomes visible only when the database row holding
its manifest (files, rows, SHA-256, spec, key id, library versions) commits with its audit event.
A failed build leaves no folder and no row.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select

from access_requests import workflow as projects
from anonymization.pseudonyms import Pseudonymiser
from enclave.core import audit, policy, statemachine
from enclave.core.catalogue import dataset_spec
from enclave.core.db import Database, utcnow
from enclave.core.exceptions import ValidationError
from enclave.core.files import fsync_dir, sha256_bytes, sha256_file, write_atomic
from enclave.core.keystore import KeyStore, ProjectKey
from enclave.core.policy import Actor
from enclave.core.settings import Settings
from enclave.provisioning.models import Extract

PUPIL_PSEUDONYM = "eleve"
BATCH_ROWS = 500_000


@dataclass(frozen=True)
class BuiltExtract:
    """What a build produced: the version, its folder and its manifest."""

    project_id: str
    version: int
    path: Path
    manifest: dict[str, Any]


def extract_root(settings: Settings, project_id: str) -> Path:
    """``projects/<p>/extract``: the parent of every version of the project's extract."""
    return settings.projects_dir / project_id / "extract"


def current_extract(db: Database, project_id: str) -> Extract | None:
    """The latest published extract of a project, if any."""
    with db.sessions() as session:
        return session.execute(select(Extract).where(
            Extract.project_id == project_id, Extract.status == "published")
            .order_by(Extract.version.desc()).limit(1)).scalar()


def _library_versions() -> dict[str, str]:
    out = {}
    for name in ("depp-enclave", "pyarrow", "cryptography"):
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            out[name] = "unknown"
    return out


def _build_dataset(src_files: list[Path], columns: list[str], pupil_column: str,
                   pseudonymiser: Pseudonymiser, dst: Path) -> int:
    """Stream one dataset's approved columns through the pseudonymiser into ``dst``."""
    rows = 0
    writer: pq.ParquetWriter | None = None
    try:
        for src in src_files:
            for batch in pq.ParquetFile(src).iter_batches(batch_size=BATCH_ROWS,
                                                          columns=[pupil_column, *columns]):
                out = pseudonymiser.batch(batch)
                if writer is None:
                    writer = pq.ParquetWriter(dst, out.schema, compression="zstd")
                writer.write_batch(out)
                rows += out.num_rows
        if writer is None:  # no rows at all: still write a file with the right schema
            schema = pq.read_schema(src_files[0])
            fields = [pa.field(PUPIL_PSEUDONYM, pa.string())]
            fields += [schema.field(c) for c in columns]
            pq.write_table(pa.Table.from_batches([], schema=pa.schema(fields)), dst)
    finally:
        if writer is not None:
            writer.close()
    return rows


def build_extract(db: Database, settings: Settings, keys: KeyStore, actor: Actor,
                  project_id: str) -> BuiltExtract:
    """Build the next extract version of an approved project and publish it, audited."""
    with db.transaction() as session:
        facts = projects.facts(session, project_id)
        policy.check_build_extract(actor, facts["members"])
        approved = projects.approved_variables(session, project_id)
        specs = {d: dataset_spec(session, settings.raw_dir, d) for d in approved}
        # Under the project's row lock, so that concurrent builds agree on the key below.
        statemachine.lock(session, projects.get_project(session, project_id))
        last = session.execute(select(Extract.version).where(Extract.project_id == project_id)
                               .order_by(Extract.version.desc()).limit(1)).scalar()
        # Reuse the project's key whenever one exists (not only once an extract exists): a key
        # left by a failed or concurrent first build must not be replaced by another, or the
        # versions of one project would carry different pseudonyms.
        has_key = session.execute(select(ProjectKey.key_id).where(
            ProjectKey.project_id == project_id).limit(1)).first() is not None
        key = keys.project_key(session, project_id) if has_key else \
            keys.create_project_key(session, project_id, actor.username)
    version = (last or 0) + 1
    root = extract_root(settings, project_id)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"v{version}"
    if final.exists():
        raise ValidationError(f"{final} exists without a published row; remove the leftover "
                              "folder after checking it")
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-v{version}-", dir=root))
    try:
        files = []
        for dataset_id, variables in approved.items():
            spec = specs[dataset_id]
            pupil = spec.pupil_id_variable
            columns = [v for v in variables if v != pupil]
            pseudonymiser = Pseudonymiser(key.material, {pupil: PUPIL_PSEUDONYM})
            dst = tmp / f"{dataset_id}.parquet"
            rows = _build_dataset(spec.part_paths(), columns, pupil, pseudonymiser, dst)
            os.chmod(dst, 0o440)
            files.append({"name": dst.name, "dataset": dataset_id, "rows": rows,
                          "sha256": sha256_file(dst),
                          "variables": [PUPIL_PSEUDONYM, *columns]})
        manifest = {"format": "enclave-extract-manifest/1", "project": project_id,
                    "version": version, "key_id": key.key_id, "key_version": key.version,
                    "spec": {"datasets": approved, "pseudonym": {
                        "variable": PUPIL_PSEUDONYM, "method": "HMAC-SHA256/128 base32"}},
                    "files": files, "libraries": _library_versions(),
                    "built_by": actor.username, "built_at": utcnow().isoformat()}
        manifest_bytes = (audit.canonical_json(manifest) + "\n").encode()
        write_atomic(tmp / "manifest.json", manifest_bytes, mode=0o440)
        fsync_dir(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if final.exists():  # a concurrent build of the same version got there first
                raise ValidationError(f"extract v{version} of {project_id} is being built by "
                                      "someone else; build again once it is published") \
                    from None
            raise
        fsync_dir(root)
        try:
            with db.transaction() as session:
                session.add(Extract(project_id=project_id, version=version, status="published",
                                    path=str(final), key_id=key.key_id,
                                    manifest=json.dumps(manifest),
                                    manifest_sha256=sha256_bytes(manifest_bytes),
                                    built_by=actor.username, built_at=utcnow()))
                audit.record(session, actor=actor.username, action="extract.published",
                             object_type="extract", object_id=f"{project_id}/v{version}",
                             project_id=project_id,
                             details={"files": [{k: f[k] for k in ("name", "rows", "sha256")}
                                                for f in files], "key_id": key.key_id})
        except BaseException:
            shutil.rmtree(final, ignore_errors=True)
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return BuiltExtract(project_id, version, final, manifest)



def try_activate(db: Database, project_id: str) -> bool:
    """Activate an approved project once every member agreed and an extract is published."""
    published = current_extract(db, project_id) is not None
    with db.transaction() as session:
        project = projects.get_project(session, project_id)
        if project.status != projects.ProjectStatus.APPROVED:
            return False
        facts = projects.facts(session, project_id, extract_published=published)
        if not policy.can_transition(policy.SYSTEM, projects.PROJECT_MACHINE,
                                     projects.ProjectStatus.APPROVED,
                                     projects.ProjectStatus.ACTIVE, facts):
            return False
        projects.transition(session, policy.SYSTEM, project_id, projects.ProjectStatus.ACTIVE,
                            extract_published=published)
        return True
