"""Run a template notebook under papermill against a project's current extract.

The run happens in a separate process with a scrubbed environment (no ``ENCLAVE_*`` secret,
no hub token), reading the published extract folder and writing only into the project's
outputs folder. The bubblewrap sandbox of the workspaces issue wraps this same call.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from enclave.core.exceptions import ValidationError

#: Environment variables a notebook run may inherit; everything else is dropped.
PASSED_ENV = ("LANG", "LC_ALL", "TZ")
NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"


@dataclass(frozen=True)
class NotebookRun:
    """The executed notebook and where its outputs went."""

    executed: Path
    outputs_dir: Path
    returncode: int
    log: str


def template(name: str) -> Path:
    """A template notebook of ``notebooks/`` by file name, refusing path tricks."""
    path = (NOTEBOOKS_DIR / name).resolve()
    if path.parent != NOTEBOOKS_DIR or path.suffix != ".ipynb" or not path.is_file():
        raise ValidationError(f"no template notebook {name!r} in {NOTEBOOKS_DIR}")
    return path


def run_notebook(notebook: Path, extract_dir: Path, outputs_dir: Path, executed: Path,
                 parameters: dict[str, object] | None = None, timeout: int = 600) -> NotebookRun:
    """Execute ``notebook`` with papermill; the executed copy is saved even if a cell fails."""
    outputs_dir.mkdir(parents=True, exist_ok=True)
    executed.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="enclave-nb-") as home:
        env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        env.update({"HOME": home, "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
                    "PYTHONNOUSERSITE": "1", "JUPYTER_CONFIG_DIR": f"{home}/.jupyter",
                    "JUPYTER_DATA_DIR": f"{home}/.local/share/jupyter",
                    "IPYTHONDIR": f"{home}/.ipython", "MPLCONFIGDIR": f"{home}/.mpl",
                    "ENCLAVE_OUTPUTS_DIR": str(outputs_dir),
                    "ENCLAVE_NOTEBOOK": notebook.name})
        args = [sys.executable, "-m", "papermill", str(notebook), str(executed),
                "--kernel", "python3", "--cwd", home, "--no-progress-bar",
                "-p", "extract_dir", str(extract_dir), "-p", "outputs_dir", str(outputs_dir)]
        for key, value in (parameters or {}).items():
            args += ["-p", key, str(value)]
        proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout,  # noqa: S603
                              check=False, cwd=home)
    return NotebookRun(executed, outputs_dir, proc.returncode, proc.stdout + proc.stderr)
