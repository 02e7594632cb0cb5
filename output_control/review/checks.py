"""The automatic check of one frozen file, by kind: a table with its sidecar, a figure drawn
from a checked table, or a differentially private result. Anything else fails closed.

Every check reads the **frozen copy** in the request's folder, never the outputs area the
sandbox can still write to, so what is checked is what is reviewed and released.

- **Table** (``.csv`` with an ``enclave-output-sidecar`` sidecar): read fail-closed
  (:func:`output_control.sidecar.read_output`, which also cross-checks the sidecar's numbers
  against the published ones) and judged by the policy.
- **Figure** (``.png`` with an ``enclave-figure-sidecar/1`` record): its table (the CSV the
  record names, with that CSV's sidecar) is **frozen beside it** by :func:`freeze_companions`,
  whether or not the researcher also asks for the CSV's release. We freeze rather than require
  the CSV in the request because the figure shows exactly the table's published counts
  (proved below), so releasing the figure alone discloses nothing the table would not, and
  forcing the CSV out too would release more than asked; the frozen table keeps the proof
  reproducible at review and release. :func:`output_control.analysis.charts.check_figure`
  then draws the figure again from the frozen table and requires the same bytes: a PNG that is
  not the drawing of its table fails closed; the table is judged by the policy.
- **DP result** (``enclave-dp-output/1`` sidecar): read with
  :func:`~output_control.analysis.dp_outputs.read_dp_output`; count rules do not apply to
  noisy values, the privacy budget does: the workflow charges the declared spend when the
  request is stored, and the verdict says what was charged.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from output_control.analysis.charts import FIGURE_SUFFIX, check_figure
from output_control.analysis.dp_outputs import DPOutput, is_dp_sidecar, read_dp_output
from output_control.exceptions import OutputRejected
from output_control.files import read_limited
from output_control.policy import Policy
from output_control.rules import check_table
from output_control.sidecar import INTEGRITY_RULE, check_output, read_output
from output_control.table import SidecarTable
from output_control.verdicts import CheckResult, Outcome, RuleVerdict

SIDECAR_SUFFIX = ".sidecar.json"
#: Sub-folder of a request's (round) folder holding the notebooks its files record.
NOTEBOOKS_FOLDER = ".notebooks"
MAX_NOTEBOOK_BYTES = 16 * 1024 * 1024
DP_RULE = "differential_privacy"
MAX_RECORD_BYTES = 1 << 20
MAX_COMPANION_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class FileCheck:
    """The automatic check of a frozen file, and what the workflow needs besides the verdicts:
    the DP declaration to charge (DP results), the table differencing compares (tables and
    figures)."""

    result: CheckResult
    dp: DPOutput | None = None
    table: SidecarTable | None = None


def _regular(path: Path) -> bool:
    return not path.is_symlink() and path.is_file()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def figure_data_name(record: Path) -> str | None:
    """The CSV a figure record names (a plain file name beside it), or None if unreadable."""
    try:
        doc = json.loads(read_limited(record, MAX_RECORD_BYTES, "figure record").decode("utf-8"))
        name = doc["data"]["name"]
    except (OutputRejected, UnicodeDecodeError, ValueError, TypeError, KeyError):
        return None
    if (not isinstance(name, str) or "/" in name or "\\" in name or ".." in name
            or not name.endswith(".csv") or name.startswith(".")):
        return None
    return name


def freeze_companions(source: Path, dest: Path, name: str) -> list[str]:
    """For a figure, copy the CSV its record names and that CSV's sidecar from ``source``
    into ``dest`` (read-only, regular files only, unless already frozen); returns what was
    copied. A missing or unreadable companion is not an error here: the figure's check then
    fails closed, saying why."""
    if not name.endswith(FIGURE_SUFFIX):
        return []
    data = figure_data_name(source / (name + SIDECAR_SUFFIX))
    if data is None:
        return []
    copied = []
    for companion in (data, data + SIDECAR_SUFFIX):
        src, target = source / companion, dest / companion
        if target.exists() or not _regular(src) or src.stat().st_size > MAX_COMPANION_BYTES * 9:
            continue
        shutil.copyfile(src, target)
        target.chmod(0o440)
        copied.append(companion)
    return copied


def _result(verdicts: tuple[RuleVerdict, ...], policy: Policy) -> CheckResult:
    return CheckResult.from_verdicts(verdicts, policy.name, policy.version, policy.sha256)


def _failed(reason: str, policy: Policy) -> FileCheck:
    return FileCheck(_result((RuleVerdict(INTEGRITY_RULE, Outcome.FAIL, reason),), policy))


def check_frozen(path: Path, policy: Policy, *, max_bytes: int) -> FileCheck:
    """The automatic check of the frozen file ``path`` (see the module's docstring)."""
    if path.name.endswith(FIGURE_SUFFIX):
        return _check_figure(path, policy)
    sidecar = _sidecar(path)
    try:
        dp = (_regular(sidecar) and is_dp_sidecar(read_limited(sidecar, MAX_RECORD_BYTES,
                                                               "sidecar")))
    except OutputRejected:
        dp = False
    if dp:
        return _check_dp(path, policy, max_bytes)
    result = check_output(path, policy, max_bytes=max_bytes)
    table = None
    if not _integrity_failed(result):
        try:
            _, table = read_output(path, max_bytes=max_bytes)
        except Exception:  # the integrity verdict above already says why
            table = None
    return FileCheck(result, table=table)


def _integrity_failed(result: CheckResult) -> bool:
    return any(v.rule == INTEGRITY_RULE and v.outcome is not Outcome.PASS
               for v in result.verdicts)


def _check_figure(path: Path, policy: Policy) -> FileCheck:
    try:
        table, _spec = check_figure(path)
    except OutputRejected as exc:
        return _failed(exc.reason, policy)
    except Exception as exc:  # fail closed on the unforeseen, with the reason
        return _failed(f"the figure could not be verified ({type(exc).__name__}: {exc})",
                       policy)
    integrity = RuleVerdict(
        INTEGRITY_RULE, Outcome.PASS,
        f"the figure is the drawing of its checked table {table.file_name} (SHA-256 "
        f"{table.sha256}): drawn again from the frozen table, the bytes are the same; the "
        "rules below judge that table")
    return FileCheck(_result((integrity, *check_table(table, policy).verdicts), policy),
                     table=table)


def _check_dp(path: Path, policy: Policy, max_bytes: int) -> FileCheck:
    try:
        declared = read_dp_output(path, max_bytes=max_bytes)
    except OutputRejected as exc:
        return _failed(exc.reason, policy)
    except Exception as exc:  # fail closed on the unforeseen, with the reason
        return _failed(f"the DP result could not be read ({type(exc).__name__}: {exc})", policy)
    integrity = RuleVerdict(INTEGRITY_RULE, Outcome.PASS,
                            f"the CSV matches its DP sidecar (SHA-256 {declared.sha256})")
    charged = RuleVerdict(
        DP_RULE, Outcome.PASS,
        f"a differentially private result: epsilon {declared.epsilon:g}, delta "
        f"{declared.delta:g} charged to the project's privacy budget on {declared.dataset} "
        "when the request was submitted (count rules do not apply to noisy values; the "
        "guarantee is the epsilon charged)",
        parameters={"dataset": declared.dataset, "epsilon": declared.epsilon,
                    "delta": declared.delta})
    return FileCheck(_result((integrity, charged), policy), dp=declared)


def _sidecar_doc(path: Path) -> dict[str, object]:
    try:
        doc = json.loads(read_limited(_sidecar(path), 9 * MAX_COMPANION_BYTES,
                                      "sidecar").decode("utf-8"))
    except (OutputRejected, UnicodeDecodeError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def recorded_provenance(path: Path) -> tuple[str | None, int | None]:
    """(notebook, extract version) that a file's sidecar records (for a figure, its table's
    sidecar); None for what it does not record."""
    doc = _sidecar_doc(path)
    if path.name.endswith(FIGURE_SUFFIX):
        name = figure_data_name(_sidecar(path))
        doc = _sidecar_doc(path.with_name(name)) if name is not None else {}
    provenance, population = doc.get("provenance"), doc.get("population")
    notebook = provenance.get("notebook") if isinstance(provenance, dict) else None
    version = population.get("extract_version") if isinstance(population, dict) else None
    return (notebook if isinstance(notebook, str) and notebook else None,
            version if type(version) is int else None)


def frozen_notebook_name(notebook: str) -> str:
    """The file name under :data:`NOTEBOOKS_FOLDER` of a recorded notebook path."""
    return notebook.replace("/", "__")


def freeze_notebooks(dest: Path, names: list[str], work_dir: Path) -> list[str]:
    """Copy the notebooks the frozen files ``names`` of ``dest`` record, from the requester's
    ``work_dir``, into ``dest/.notebooks`` (read-only), so that a re-run runs the code as it
    was when the request was submitted. Only regular files inside ``work_dir`` are copied (no
    link, no path leaving it); a notebook not found there is not frozen (a re-run then says
    so). Returns the notebook paths frozen."""
    root = work_dir.resolve() if work_dir.is_dir() else None
    copied: list[str] = []
    if root is None:
        return copied
    for name in names:
        notebook, _version = recorded_provenance(dest / name)
        if notebook is None or notebook in copied or not notebook.endswith(".ipynb") \
                or "\x00" in notebook:
            continue
        candidate = root / notebook
        try:
            resolved = candidate.resolve(strict=True)
        except (OSError, RuntimeError):
            continue
        if (resolved != candidate or not resolved.is_relative_to(root)
                or not _regular(candidate) or candidate.stat().st_size > MAX_NOTEBOOK_BYTES):
            continue
        folder = dest / NOTEBOOKS_FOLDER
        folder.mkdir(exist_ok=True)
        target = folder / frozen_notebook_name(notebook)
        shutil.copyfile(candidate, target)
        target.chmod(0o440)
        copied.append(notebook)
    return copied
