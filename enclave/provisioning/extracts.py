"""Build and publish a project's extract: approved variables only, the INE replaced by a pseudonym.

The build streams Arrow batches from the raw zone's Parquet files, keeps the approved columns,
replaces the pupil identifier by ``eleve = HMAC-SHA256(project key, INE)`` (see
:mod:`anonymization.pseudonyms`), writes into a hidden temporary folder, then renames it to
``projects/<p>/extract/v<N>/``; the extract becomes visible only when the database row holding
its manifest (files, rows, SHA-256, spec, key id, library versions) commits with its audit event.
A failed build leaves no folder and no row.

With an :class:`~enclave.provisioning.spec.ExtractSpec`, each batch is first filtered and
transformed (:mod:`enclave.provisioning.transforms`); once a pupil-level file is written, its
k-anonymity on the declared quasi-identifiers is measured and, where allowed, reached by local
suppression (:mod:`enclave.provisioning.risk_report`); ``risk_report.json`` and its SHA-256
join the manifest, with ``risk_report.html`` (:mod:`enclave.provisioning.risk_page`, the
same numbers with plots). An extract still below its target k is refused (nothing visible)
unless DEPP staff give an ``override_reason``, which the manifest, the report and the audit
event keep. A ``progress`` callback receives a :class:`BuildProgress` after every batch (the
command line shows it); it only observes.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select

from access_requests import agreements
from access_requests import workflow as projects
from anonymization.pseudonyms import Pseudonymiser
from enclave.core import audit, people, policy, statemachine
from enclave.core.catalogue import Dataset, DatasetUnit, dataset_spec
from enclave.core.db import Database, utcnow
from enclave.core.exceptions import PermissionDenied, ValidationError
from enclave.core.files import fsync_dir, sha256_bytes, sha256_file, write_atomic
from enclave.core.keystore import KeyStore, ProjectKey
from enclave.core.policy import Actor, Role
from enclave.core.settings import Settings
from enclave.provisioning.models import Extract
from enclave.provisioning.risk_page import render_page
from enclave.provisioning.risk_report import PAGE_NAME, REPORT_NAME, protect_table
from enclave.provisioning.spec import DatasetRules, ExtractSpec
from enclave.provisioning.transforms import RecodingStats, apply_rules

PUPIL_PSEUDONYM = "eleve"
BATCH_ROWS = 500_000


@dataclass(frozen=True)
class BuildProgress:
    """Where a build is: the dataset being streamed, batches and input rows read so far (in
    it and over all datasets), and the input rows the catalogue announces in total."""

    dataset: str
    stage: str
    batches: int
    rows_read: int
    total_rows_read: int
    total_rows: int


Progress = Callable[[BuildProgress], None]


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


class KAnonymityRefused(ValidationError):
    """The extract's k-anonymity is below target and no DEPP staff override was given."""


def _build_dataset(src_files: list[Path], columns: list[str], pupil_column: str,
                   pseudonymiser: Pseudonymiser, dst: Path,
                   rules: DatasetRules | None = None, stats: RecodingStats | None = None,
                   on_batch: Callable[[int], None] | None = None) -> tuple[int, list[str]]:
    """Stream one dataset's approved columns, filtered and transformed by ``rules``, through
    the pseudonymiser into ``dst``; return the rows written and the output variables.
    ``on_batch`` gets the input rows of each batch read."""
    rules = rules or DatasetRules()
    rows = 0
    writer: pq.ParquetWriter | None = None
    try:
        for src in src_files:
            # pre_buffer=False: read-ahead across row groups would make memory grow with the
            # file (889 MB instead of 321 MB reading 50 M events, bench_extract_build). The
            # identifier is read as plain strings: with hundreds of thousands of pupils a row
            # group's identifiers overflow the writer's dictionary page, and decoding them
            # into a dictionary then costs more than the pseudonymiser's own encoding.
            with pq.ParquetFile(src, pre_buffer=False) as f:
                for batch in f.iter_batches(batch_size=BATCH_ROWS,
                                            columns=[pupil_column, *columns]):
                    out = pseudonymiser.batch(apply_rules(batch, rules, stats))
                    if writer is None:
                        # min/max statistics of random pseudonyms are useless and costly
                        kept = [n for n in out.schema.names if n != PUPIL_PSEUDONYM]
                        writer = pq.ParquetWriter(dst, out.schema, compression="zstd",
                                                  write_statistics=kept or False)
                    writer.write_batch(out)
                    rows += out.num_rows
                    if on_batch is not None:
                        on_batch(batch.num_rows)
        if writer is None:  # no rows at all: still write a file with the right schema
            schema = pq.read_schema(src_files[0])
            source = pa.schema([schema.field(c) for c in [pupil_column, *columns]])
            empty = apply_rules(pa.RecordBatch.from_pylist([], schema=source), rules)
            fields = [pa.field(PUPIL_PSEUDONYM, pa.string()), *list(empty.schema)[1:]]
            pq.write_table(pa.Table.from_batches([], schema=pa.schema(fields)), dst)
            return rows, [f.name for f in fields]
    finally:
        if writer is not None:
            writer.close()
    return rows, pq.read_schema(dst).names


def _approved_specs(session: Any, settings: Settings, project_id: str,
                    spec: ExtractSpec | None) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """The project's approved variables and their datasets' catalogue entries, after checking
    ``spec`` against them (unknown, direct-identifier and unapproved names are refused)."""
    approved = projects.approved_variables(session, project_id)
    specs = {d: dataset_spec(session, settings.raw_dir, d) for d in approved}
    if spec is not None:
        known = frozenset(session.execute(select(Dataset.id)).scalars())
        spec.check_against(approved, {d: s.pupil_id_variable for d, s in specs.items()},
                           {d: s.unit == DatasetUnit.PUPIL for d, s in specs.items()},
                           {d: {v.name: str(v.kind) for v in s.variables}
                            for d, s in specs.items()}, known)
    return approved, specs


def check_spec(db: Database, settings: Settings, actor: Actor, project_id: str,
               spec: ExtractSpec) -> dict[str, list[str]]:
    """Check ``spec`` against the project as a build by ``actor`` would, without building;
    return the approved variables per dataset. Reads only."""
    with db.sessions() as session:
        facts = projects.facts(session, project_id)
        policy.check_build_extract(actor, facts["members"])
        approved, _ = _approved_specs(session, settings, project_id, spec)
    return approved


def actor_named(db: Database, username: str) -> Actor:
    """The policy's view of the account ``username`` (for a build on its behalf)."""
    with db.sessions() as session:
        return people.actor_for(session, username)


def build_extract(db: Database, settings: Settings, keys: KeyStore, actor: Actor,
                  project_id: str, *, spec: ExtractSpec | None = None,
                  override_reason: str | None = None,
                  progress: Progress | None = None) -> BuiltExtract:
    """Build the next extract version of an approved project and publish it, audited.

    ``spec`` filters and transforms the approved variables and declares quasi-identifiers
    with a target k per pupil-level dataset; the build then measures k-anonymity, applies
    local suppression where allowed, and writes ``risk_report.json``. An extract still below
    its target k is refused, unless DEPP staff give ``override_reason``.
    """
    if override_reason is not None:
        if not override_reason.strip():
            raise ValidationError("override_reason must not be empty")
        if not actor.has(Role.DEPP_STAFF):
            raise PermissionDenied("only DEPP staff may override the k-anonymity target")
    with db.transaction() as session:
        facts = projects.facts(session, project_id)
        policy.check_build_extract(actor, facts["members"])
        approved, specs = _approved_specs(session, settings, project_id, spec)
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
    total_rows = sum(s.rows for s in specs.values())
    done = {"batches": 0, "rows": 0, "total": 0}

    def notify(dataset_id: str, stage: str) -> None:
        if progress is not None:
            progress(BuildProgress(dataset_id, stage, done["batches"], done["rows"],
                                   done["total"], total_rows))

    try:
        files = []
        risk: dict[str, dict[str, Any]] = {}
        for dataset_id, variables in approved.items():
            done["batches"] = done["rows"] = 0

            def on_batch(rows: int, dataset_id: str = dataset_id) -> None:
                done["batches"] += 1
                done["rows"] += rows
                done["total"] += rows
                notify(dataset_id, "stream")

            raw_spec = specs[dataset_id]
            pupil = raw_spec.pupil_id_variable
            columns = [v for v in variables if v != pupil]
            pseudonymiser = Pseudonymiser(key.material, {pupil: PUPIL_PSEUDONYM})
            dst = tmp / f"{dataset_id}.parquet"
            rules = spec.rules(dataset_id) if spec else DatasetRules()
            stats = RecodingStats()
            rows, variables_out = _build_dataset(raw_spec.part_paths(), columns, pupil,
                                                 pseudonymiser, dst, rules, stats, on_batch)
            if rules.quasi_identifiers:
                notify(dataset_id, "risk")
                risk[dataset_id] = {"file": dst.name, **protect_table(dst, rules),
                                    "recodings": stats.to_dict(rules)}
            os.chmod(dst, 0o440)
            files.append({"name": dst.name, "dataset": dataset_id, "rows": rows,
                          "sha256": sha256_file(dst), "variables": variables_out})
        below = {d: r["violations_after"] for d, r in risk.items() if r["violations_after"]}
        if below and override_reason is None:
            raise KAnonymityRefused(
                "extract refused: k-anonymity below target for " + ", ".join(
                    f"{d} ({n} records with fk < {risk[d]['k']})" for d, n in below.items())
                + "; DEPP staff may override with a reason")
        override = None if not below else {"reason": override_reason, "by": actor.username,
                                           "violations": below}
        report_entry = None
        if spec is not None:
            report = {"format": "enclave-risk-report/1", "project": project_id,
                      "version": version, "tables": risk, "override": override}
            report_bytes = (audit.canonical_json(report) + "\n").encode()
            write_atomic(tmp / REPORT_NAME, report_bytes, mode=0o440)
            page_bytes = render_page(json.loads(report_bytes)).encode()
            write_atomic(tmp / PAGE_NAME, page_bytes, mode=0o440)
            report_entry = {"name": REPORT_NAME, "sha256": sha256_bytes(report_bytes),
                            "page": {"name": PAGE_NAME, "sha256": sha256_bytes(page_bytes)}}
        manifest = {"format": "enclave-extract-manifest/1", "project": project_id,
                    "version": version, "key_id": key.key_id, "key_version": key.version,
                    "spec": {"datasets": approved, "pseudonym": {
                        "variable": PUPIL_PSEUDONYM, "method": "HMAC-SHA256/128 base32"}},
                    "files": files, "libraries": _library_versions(),
                    "built_by": actor.username, "built_at": utcnow().isoformat()}
        if spec is not None:
            manifest["extract_spec"] = spec.to_dict()
            manifest["risk_report"] = report_entry
        if override is not None:
            manifest["override"] = override
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
                                                for f in files], "key_id": key.key_id,
                                      **({"risk_report": report_entry} if report_entry
                                         else {}),
                                      **({"override": override} if override else {})})
        except BaseException:
            shutil.rmtree(final, ignore_errors=True)
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return BuiltExtract(project_id, version, final, manifest)



def accept_agreement_and_activate(db: Database, actor: Actor, project_id: str,
                                  version: str | None = None) -> bool:
    """A member accepts the data-use agreement (its own audited transaction), then the project
    activates if that was the last thing missing; True if it did. Activation is a separate
    transaction because it also needs the published extract, which this module owns."""
    with db.transaction() as session:
        agreements.accept_agreement(session, actor, project_id, version)
    return try_activate(db, project_id)


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
