"""Provenance re-run: a controller asks the enclave to run a request's notebooks again, in a
fresh sandbox on the same extract version, and compare what they produce with what was
submitted.

A sidecar is written by researcher code, so it can lie; the file's own cross-checks
(:func:`output_control.sidecar.cross_check`) catch numbers that contradict each other, not a
table that was made up whole. Running the recorded notebook again on the recorded extract
version and finding the same files is the evidence that the outputs come from that code and
those data.

**Layers.** This module is part of the review workflow but, unlike
:mod:`~output_control.review.workflow`, it orchestrates a sandboxed run: it imports
:mod:`enclave.workspaces.notebook_runs` (papermill inside bubblewrap), which the layer rules
allow a workflow (only the edges, hub/CLI/demo, are forbidden); the portal only calls
:func:`rerun_request`. The long run happens outside any transaction; the comparison is then
stored as a :class:`~output_control.review.models.Rerun` row with its ``output.rerun`` audit
event, in one transaction. It is a verdict on the request, not a move of its state machine.

**Which notebook, which data.** Each current file's sidecar records its notebook
(``provenance.notebook``) and its population (``population.extract_version``). The notebook
is the copy frozen with the file at submission (``.notebooks/`` of the request's round folder,
see :func:`output_control.review.checks.freeze_notebooks`), so later edits in the workspace
do not change what is re-run; failing that, the requester's work folder of the project
(``projects/<p>/work/<requester>/``, refusing links and paths leaving it), else the enclave's
template notebooks (each re-run records which, and the notebook's SHA-256). A readable copy
runs as the system batch account with the project's group, on ``projects/<p>/extract/v<N>``
of the recorded version, with a fresh, empty outputs folder. Files without a recorded notebook
or extract version are reported as not compared (REVIEW), never as passing.

**Comparison.** A regenerated file equal byte for byte passes. Otherwise a table passes when
its labels and counts are equal and every published value, total and top contribution is
within :data:`REL_TOLERANCE` (relative) or :data:`ABS_TOLERANCE` (absolute) of the submitted
one, since floating-point sums may differ in their last bits across runs; the rest of the
sidecar (but ``created_at`` and ``provenance``) must be equal. A figure must be byte-equal
(its drawing is deterministic). A differentially private result draws new noise at each run,
so it is not compared (REVIEW, with the reason). A missing or different file fails.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from access_requests import workflow as projects
from enclave.core import audit, policy
from enclave.core.db import Database, utcnow
from enclave.core.exceptions import NotFound, PermissionDenied, ValidationError
from enclave.core.files import sha256_file
from enclave.core.policy import Actor
from enclave.core.settings import Settings
from enclave.provisioning.models import Extract
from enclave.workspaces import notebook_runs
from output_control.analysis.charts import FIGURE_SUFFIX
from output_control.analysis.dp_outputs import is_dp_sidecar
from output_control.files import read_limited
from output_control.review import checks
from output_control.review.models import OutputRequest, Rerun
from output_control.review.workflow import (
    MAX_FILE_BYTES,
    SIDECAR_SUFFIX,
    RequestStatus,
    files_of,
    frozen_path,
)
from output_control.sidecar import read_output
from output_control.table import SidecarTable
from output_control.verdicts import Outcome

REL_TOLERANCE = 1e-9
ABS_TOLERANCE = 1e-12
RUN_TIMEOUT = 600
MAX_SIDECAR_READ = 8 * MAX_FILE_BYTES + (1 << 20)
#: Sidecar keys that legitimately differ between two runs of the same code on the same data.
VOLATILE_KEYS = ("created_at", "provenance")


@dataclass(frozen=True)
class FileComparison:
    """How one submitted file compares with its regenerated version."""

    name: str
    outcome: Outcome
    message: str

    def to_dict(self) -> dict[str, str]:
        """JSON form, as stored in the re-run's result."""
        return {"name": self.name, "outcome": self.outcome.value, "message": self.message}


@dataclass(frozen=True)
class RerunView:
    """A stored re-run as pages show it."""

    id: int
    review_round: int
    run_by: str
    run_at: Any
    outcome: str
    files: list[dict[str, str]]
    notebooks: list[dict[str, Any]]


def _get(session: Any, request_id: str) -> OutputRequest:
    request = session.get(OutputRequest, request_id)
    if request is None:
        raise NotFound(f"no output request {request_id!r}")
    return request


def _sidecar_doc(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(read_limited(path.with_name(path.name + SIDECAR_SUFFIX),
                                      MAX_SIDECAR_READ, "sidecar").decode("utf-8"))
    except Exception:  # an unreadable sidecar records nothing
        return {}
    return doc if isinstance(doc, dict) else {}


def resolve_notebook(settings: Settings, project_id: str, requester: str, name: str) -> Path:
    """The recorded notebook: in the requester's work folder of the project (no link, no path
    leaving it), else a template notebook of the enclave; ValidationError otherwise."""
    if not name.endswith(".ipynb") or "\x00" in name:
        raise ValidationError(f"{name[:80]!r} is not a notebook")
    work = (settings.projects_dir / project_id / "work" / requester).resolve()
    candidate = work / name
    try:
        resolved = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        resolved = None
    if resolved is not None:
        if (resolved.is_relative_to(work) and not candidate.is_symlink() and resolved.is_file()
                and resolved == candidate):
            return resolved
        raise ValidationError(f"the notebook {name[:80]!r} is not a plain file of the "
                              "requester's work folder")
    return notebook_runs.template(name)


def _extract_dir(session: Any, project_id: str, version: int) -> Path:
    extract = session.execute(select(Extract).where(
        Extract.project_id == project_id, Extract.version == version,
        Extract.status == "published")).scalar()
    if extract is None:
        raise ValidationError(f"extract v{version} of {project_id} is not published (any "
                              "more): the outputs cannot be regenerated on the same data")
    return Path(extract.path)


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) \
            and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(float(a), float(b), rel_tol=REL_TOLERANCE, abs_tol=ABS_TOLERANCE)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    return bool(a == b)


def _stable(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in VOLATILE_KEYS}


def _compare_tables(name: str, submitted: SidecarTable, fresh: SidecarTable) -> str | None:
    """None when the two tables agree (within tolerance), else what differs."""
    for what in ("index", "columns", "row_labels", "column_labels", "rows", "units", "kind",
                 "unit", "rounding", "structural_zeros"):
        if getattr(submitted, what) != getattr(fresh, what):
            return f"its {what.replace('_', ' ')} differ"
    if not _close(submitted.values, fresh.values):
        return (f"a published value differs beyond the tolerance (relative {REL_TOLERANCE:g}, "
                f"absolute {ABS_TOLERANCE:g})")
    for what in ("magnitude", "model"):
        a, b = getattr(submitted, what), getattr(fresh, what)
        if (a is None) != (b is None) or (a is not None and not _close(vars(a), vars(b))):
            return f"its {what} data differ beyond the tolerance"
    return None


def compare_file(name: str, submitted: Path, regenerated: Path) -> FileComparison:
    """Compare one submitted (frozen) file with the file of the same name a re-run wrote."""
    if not regenerated.is_file() or regenerated.is_symlink():
        return FileComparison(name, Outcome.FAIL, "the re-run did not produce this file")
    side_sub = submitted.with_name(name + SIDECAR_SUFFIX)
    side_new = regenerated.with_name(name + SIDECAR_SUFFIX)
    try:
        dp = is_dp_sidecar(read_limited(side_sub, MAX_SIDECAR_READ, "sidecar"))
    except Exception:  # not a readable DP sidecar: compared as a table
        dp = False
    if dp:
        return FileComparison(name, Outcome.REVIEW,
                              "a differentially private result draws new noise at each run: "
                              "the re-run cannot reproduce it, so it is not compared")
    same_bytes = sha256_file(submitted) == sha256_file(regenerated)
    if name.endswith(FIGURE_SUFFIX):
        if same_bytes:
            return FileComparison(name, Outcome.PASS, "regenerated byte for byte")
        return FileComparison(name, Outcome.FAIL, "the regenerated figure differs (a figure is "
                                                  "drawn deterministically from its table)")
    doc_sub, doc_new = _sidecar_doc(submitted), _sidecar_doc(regenerated)
    if same_bytes and side_new.is_file() and _stable(doc_sub) == _stable(doc_new):
        return FileComparison(name, Outcome.PASS, "regenerated byte for byte (sidecar equal "
                                                  "but for its time and provenance)")
    try:
        _, table_sub = read_output(submitted, max_bytes=MAX_FILE_BYTES)
        _, table_new = read_output(regenerated, max_bytes=MAX_FILE_BYTES)
    except Exception as exc:  # a table that cannot be read cannot match
        return FileComparison(name, Outcome.FAIL, f"the files differ and cannot be compared "
                                                  f"as tables ({exc})")
    problem = _compare_tables(name, table_sub, table_new)
    if problem is None:
        rest_sub = {k: v for k, v in _stable(doc_sub).items() if k not in ("file", "table")}
        rest_new = {k: v for k, v in _stable(doc_new).items() if k not in ("file", "table")}
        if not _close(rest_sub, rest_new):
            problem = "its sidecar differs (population, checks or policy)"
    if problem is not None:
        return FileComparison(name, Outcome.FAIL, f"the regenerated table differs: {problem}")
    return FileComparison(name, Outcome.PASS,
                          f"regenerated within the tolerance (relative {REL_TOLERANCE:g}, "
                          f"absolute {ABS_TOLERANCE:g}); the bytes differ only in float digits")


def _worst(outcomes: list[Outcome]) -> Outcome:
    if Outcome.FAIL in outcomes:
        return Outcome.FAIL
    if Outcome.REVIEW in outcomes or not outcomes:
        return Outcome.REVIEW
    return Outcome.PASS


def rerun_request(db: Database, settings: Settings, actor: Actor, request_id: str, *,
                  timeout: int = RUN_TIMEOUT, allow_unsandboxed: bool = False) -> RerunView:
    """Re-run the notebooks of a request under review and record the comparison (audited).

    Only a disclosure controller outside the project (policy ``rerun_output``) asks, and only
    while the request is under review. Raises ``SandboxUnavailable`` where the sandbox cannot
    run (unless ``allow_unsandboxed``, for machines without it in tests).
    """
    with db.sessions() as session:
        request = _get(session, request_id)
        members = projects.facts(session, request.project_id)["members"]
        policy.check_rerun_output(actor, members)
        if request.status != RequestStatus.SUBMITTED:
            raise PermissionDenied(f"request {request_id} is {request.status}, not under "
                                   "review: there is nothing to re-run")
        project_id, requester, review_round = (request.project_id, request.requester,
                                               request.review_round)
        current = files_of(session, request_id)
        frozen = {f.name: frozen_path(request, f) for f in current}
        groups: dict[tuple[Path, int], list[str]] = {}
        origin: dict[Path, tuple[str, bool]] = {}
        extracts: dict[int, Path] = {}
        comparisons: list[FileComparison] = []
        for row in current:
            notebook, version = checks.recorded_provenance(frozen[row.name])
            if notebook is None or version is None:
                comparisons.append(FileComparison(
                    row.name, Outcome.REVIEW, "its sidecar records no notebook or no extract "
                    "version: it cannot be regenerated"))
                continue
            kept = (frozen[row.name].parent / checks.NOTEBOOKS_FOLDER
                    / checks.frozen_notebook_name(notebook))
            try:
                path = kept if kept.is_file() and not kept.is_symlink() else \
                    resolve_notebook(settings, project_id, requester, notebook)
                extract_dir = _extract_dir(session, project_id, version)
            except ValidationError as exc:
                comparisons.append(FileComparison(row.name, Outcome.REVIEW, f"not re-run: {exc}"))
                continue
            origin[path] = (notebook, path == kept)
            groups.setdefault((path, version), []).append(row.name)
            extracts[version] = extract_dir
    notebooks = []
    for (path, version), names in sorted(groups.items()):
        notebook, was_frozen = origin[path]
        scratch = Path(tempfile.mkdtemp(prefix=f"rerun-{request_id}-", dir=settings.run_dir))
        try:
            # A copy the sandbox account can read (the frozen copy is root's, 0440; a work
            # folder is its owner's alone), under its recorded base name.
            scratch.chmod(0o711)
            (scratch / "nb").mkdir(mode=0o711)
            copy = scratch / "nb" / Path(notebook).name
            shutil.copyfile(path, copy)
            copy.chmod(0o444)
            fresh, executed = scratch / "outputs", scratch / "executed.ipynb"
            run = notebook_runs.run_notebook(copy, extracts[version], fresh, executed,
                                             timeout=timeout, project_id=project_id,
                                             allow_unsandboxed=allow_unsandboxed)
            notebooks.append({"notebook": notebook, "sha256": sha256_file(path),
                              "frozen": was_frozen, "extract_version": version,
                              "returncode": run.returncode, "sandboxed": run.sandboxed,
                              "files": names})
            for name in names:
                comparisons.append(compare_file(name, frozen[name], fresh / name))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    comparisons.sort(key=lambda c: c.name)
    outcome = _worst([c.outcome for c in comparisons])
    result = {"files": [c.to_dict() for c in comparisons], "notebooks": notebooks,
              "tolerance": {"relative": REL_TOLERANCE, "absolute": ABS_TOLERANCE}}
    with db.transaction() as session:
        _get(session, request_id)
        policy.check_rerun_output(actor, projects.facts(session, project_id)["members"])
        record = Rerun(request_id=request_id, review_round=review_round,
                       run_by=actor.username, run_at=utcnow(), outcome=outcome.value,
                       result=json.dumps(result, sort_keys=True))
        session.add(record)
        session.flush()
        audit.record(session, actor=actor.username, action="output.rerun",
                     object_type="output_request", object_id=request_id,
                     project_id=project_id,
                     details={"outcome": outcome.value, "round": review_round,
                              "files": {c.name: c.outcome.value for c in comparisons},
                              "notebooks": [{k: n[k] for k in ("notebook", "sha256",
                                                               "frozen", "extract_version",
                                                               "returncode")}
                                            for n in notebooks]})
        return _view(record)


def _view(row: Rerun) -> RerunView:
    result = json.loads(row.result)
    return RerunView(row.id, row.review_round, row.run_by, row.run_at, row.outcome,
                     result.get("files", []), result.get("notebooks", []))


def may_rerun(db: Database, actor: Actor, request_id: str) -> bool:
    """Whether ``actor`` may ask for a re-run of this request now (for pages)."""
    with db.sessions() as session:
        request = _get(session, request_id)
        members = projects.facts(session, request.project_id)["members"]
        return (request.status == RequestStatus.SUBMITTED
                and policy.can_rerun_output(actor, members))


def reruns_of(db: Database, actor: Actor, request_id: str) -> list[RerunView]:
    """The re-runs of a request, oldest first: for those who read its reviews (controllers
    outside the project, the ethics committee)."""
    with db.sessions() as session:
        request = _get(session, request_id)
        policy.check_read_reviews(actor, projects.facts(session, request.project_id)["members"])
        rows = session.execute(select(Rerun).where(Rerun.request_id == request_id)
                               .order_by(Rerun.id)).scalars()
        return [_view(row) for row in rows]
