"""Run a template notebook under papermill against a project's current extract, sandboxed.

By default the run happens inside the enclave's bubblewrap sandbox (:mod:`enclave.sandbox`):
papermill runs as an unprivileged account with the project's group, sees the extract read-only
at ``/data``, writes only ``/outputs`` and a scratch ``/work``, has no network, and its kernel
runs in the nested kernel sandbox. The executed notebook is copied out by the host, refusing
symlinks. Where the sandbox cannot run (not root, no bubblewrap) the run is refused unless the
caller passes ``allow_unsandboxed=True`` (tests on such machines only); that fallback is a
scrubbed subprocess, not a sandbox.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from enclave.core.exceptions import ValidationError
from enclave.sandbox import accounts
from enclave.sandbox import run as sandbox_run
from enclave.sandbox.bwrap import GiB, SandboxSpec
from enclave.sandbox.exceptions import SandboxError, SandboxUnavailable

#: Environment variables an unsandboxed notebook run may inherit; everything else is dropped.
PASSED_ENV = ("LANG", "LC_ALL", "TZ")
NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
#: Limits of a sandboxed template run.
RUN_MEMORY_BYTES = 2 * GiB
RUN_NPROC = 256
RUN_CPU_CORES = 1.0


@dataclass(frozen=True)
class NotebookRun:
    """The executed notebook and where its outputs went."""

    executed: Path
    outputs_dir: Path
    returncode: int
    log: str
    sandboxed: bool = True


def template(name: str) -> Path:
    """A template notebook of ``notebooks/`` by file name, refusing path tricks."""
    path = (NOTEBOOKS_DIR / name).resolve()
    if path.parent != NOTEBOOKS_DIR or path.suffix != ".ipynb" or not path.is_file():
        raise ValidationError(f"no template notebook {name!r} in {NOTEBOOKS_DIR}")
    return path


def run_notebook(notebook: Path, extract_dir: Path, outputs_dir: Path, executed: Path,
                 parameters: dict[str, object] | None = None, timeout: int = 600, *,
                 user: str | None = None, project_id: str | None = None,
                 allow_unsandboxed: bool = False) -> NotebookRun:
    """Execute ``notebook`` with papermill; the executed copy is saved even if a cell fails.

    Runs as ``user``'s sandbox account, or as the system batch account when ``user`` is None;
    ``project_id`` defaults to the extract manifest's project. Raises
    :class:`SandboxUnavailable` when the sandbox cannot run here and ``allow_unsandboxed`` is
    false.
    """
    reason = sandbox_run.unavailable_reason()
    if reason is None:
        return _run_sandboxed(notebook, extract_dir, outputs_dir, executed, parameters,
                              timeout, user, project_id)
    if not allow_unsandboxed:
        raise SandboxUnavailable(f"refusing to run {notebook.name} outside the sandbox: "
                                 f"{reason}. Run the enclave as root on a machine with "
                                 "bubblewrap (deploy/bootstrap.sh installs it).")
    return _run_unsandboxed(notebook, extract_dir, outputs_dir, executed, parameters, timeout)


def _extract_project(extract_dir: Path) -> str:
    try:
        manifest = json.loads((extract_dir / "manifest.json").read_text(encoding="utf-8"))
        return str(manifest["project"])
    except (OSError, ValueError, KeyError, TypeError):
        raise ValidationError(f"{extract_dir} is not a published extract (no readable "
                              "manifest.json naming its project)") from None


def _run_sandboxed(notebook: Path, extract_dir: Path, outputs_dir: Path, executed: Path,
                   parameters: dict[str, object] | None, timeout: int, user: str | None,
                   project_id: str | None) -> NotebookRun:
    extract_dir, outputs_dir = extract_dir.resolve(), outputs_dir.resolve()
    group = accounts.ensure_project_group(project_id or _extract_project(extract_dir))
    account = (accounts.ensure_account(user) if user is not None
               else accounts.ensure_system_account("batch"))
    accounts.grant_extract(group, extract_dir)
    accounts.prepare_outputs(group, outputs_dir)
    inner_name = (executed.name if sandbox_run.plain_notebook_name(executed.name)
                  else "executed.ipynb")
    work = sandbox_run.scratch_dir(account.uid, account.gid)
    try:
        spec = SandboxSpec(account.name, account.uid, account.gid, ((group.name, group.gid),),
                           extract_dir, work, outputs_dir, memory_bytes=RUN_MEMORY_BYTES,
                           nproc=RUN_NPROC, cpu_seconds=2 * timeout, cpu_cores=RUN_CPU_CORES)
        result = sandbox_run.run_papermill(spec, notebook, inner_name,
                                           parameters=parameters, timeout=timeout)
        log = result.log + ("\n[sandbox] timed out and killed" if result.timed_out else "")
        try:
            sandbox_run.copy_out(work / inner_name, executed,
                                 owner=(account.uid, account.gid) if user is not None else None)
        except SandboxError as exc:
            if result.returncode == 0:
                raise
            log += f"\n[sandbox] no executed notebook: {exc}"
    finally:
        sandbox_run.remove_scratch(work)
    return NotebookRun(executed, outputs_dir, result.returncode, log, sandboxed=True)


def _run_unsandboxed(notebook: Path, extract_dir: Path, outputs_dir: Path, executed: Path,
                     parameters: dict[str, object] | None, timeout: int) -> NotebookRun:
    """The fallback for machines without the sandbox: a scrubbed subprocess (tests only)."""
    outputs_dir.mkdir(parents=True, exist_ok=True)
    executed.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="enclave-nb-") as home:
        env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        env.update({"HOME": home, "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
                    "PYTHONNOUSERSITE": "1", "JUPYTER_CONFIG_DIR": f"{home}/.jupyter",
                    "JUPYTER_DATA_DIR": f"{home}/.local/share/jupyter",
                    "IPYTHONDIR": f"{home}/.ipython", "MPLCONFIGDIR": f"{home}/.mpl",
                    "JUPYTER_PLATFORM_DIRS": "1",
                    "ENCLAVE_OUTPUTS_DIR": str(outputs_dir),
                    "ENCLAVE_NOTEBOOK": notebook.name, "JPY_SESSION_NAME": notebook.name})
        args = [sys.executable, "-m", "papermill", str(notebook), str(executed),
                "--kernel", "python3", "--cwd", home, "--no-progress-bar",
                "-p", "extract_dir", str(extract_dir), "-p", "outputs_dir", str(outputs_dir)]
        for key, value in (parameters or {}).items():
            args += ["-p", key, str(value)]
        proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout,  # noqa: S603 - fixed papermill argv, scrubbed environment
                              check=False, cwd=home)
    return NotebookRun(executed, outputs_dir, proc.returncode, proc.stdout + proc.stderr,
                       sandboxed=False)
