"""The template notebooks run under papermill inside the sandbox against a real extract.

The extract comes from the walking skeleton (synthetic data, approval, extract build), whose
own notebook step already runs sandboxed as the batch account; the templates then run again as
a person's account. Needs root and bubblewrap (skips otherwise; ``ENCLAVE_REQUIRE_SANDBOX=1``
makes that fail).
"""

from __future__ import annotations

import grp
import json
import pwd
import stat
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from enclave import demo
from enclave.core.context import Enclave
from enclave.sandbox import accounts
from enclave.workspaces.notebook_runs import run_notebook, template
from output_control.sidecar import read_output, sidecar_path
from tests.sandbox.conftest import ALICE

pytestmark = pytest.mark.usefixtures("sandbox_ready")


@pytest.fixture
def skeleton(sqlite_enclave: Enclave) -> Iterator[demo.SkeletonResult]:
    demo.generate_demo_data(sqlite_enclave, pupils=400, traces_per_pupil=3)
    result = demo.walking_skeleton(sqlite_enclave, log=lambda _line: None)
    yield result
    accounts.remove_project_group(result.project_id)  # the group of a test project goes too


def _cells(executed: Path) -> list[nbformat.NotebookNode]:
    notebook = nbformat.read(executed, as_version=4)
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_skeleton_notebook_ran_sandboxed_as_the_batch_account(
        sqlite_enclave: Enclave, skeleton: demo.SkeletonResult) -> None:
    projects = sqlite_enclave.settings.projects_dir / skeleton.project_id
    outputs = projects / "outputs"
    batch = pwd.getpwnam(accounts.SYSTEM_PREFIX + "batch")
    group = grp.getgrnam(accounts.project_group_name(skeleton.project_id))
    csv = outputs / "niveau_par_sexe.csv"
    assert csv.stat().st_uid == batch.pw_uid  # written from inside the sandbox
    assert csv.stat().st_gid == group.gr_gid
    assert stat.S_IMODE(outputs.stat().st_mode) == 0o2770
    executed = projects / "work" / "alice" / "getting_started_en.ipynb"
    assert executed.stat().st_uid == 0 and not executed.is_symlink()  # copied out by the host
    cells = _cells(executed)
    assert all(cell.get("execution_count") for cell in cells)
    assert not any(o.get("output_type") == "error" for c in cells for o in c.outputs)
    injected = next(c for c in cells if "injected-parameters" in c.metadata.get("tags", []))
    assert 'extract_dir = "/data"' in injected.source  # the sandbox's paths, not the host's


def test_extract_is_readable_by_its_project_group_only(
        sqlite_enclave: Enclave, skeleton: demo.SkeletonResult) -> None:
    group = grp.getgrnam(accounts.project_group_name(skeleton.project_id))
    folder = skeleton.extract_dir
    assert (folder.stat().st_uid, folder.stat().st_gid) == (0, group.gr_gid)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o750
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o440
        assert path.stat().st_gid == group.gr_gid


@pytest.mark.parametrize("name", ["getting_started_en.ipynb", "getting_started_fr.ipynb"])
def test_template_runs_in_a_persons_sandbox_and_writes_checked_outputs(
        sqlite_enclave: Enclave, skeleton: demo.SkeletonResult, name: str) -> None:
    projects = sqlite_enclave.settings.projects_dir / skeleton.project_id
    outputs = projects / "outputs"
    for old in outputs.iterdir():
        old.unlink()
    executed = projects / "work" / ALICE / name
    run = run_notebook(template(name), skeleton.extract_dir, outputs, executed,
                       parameters={"table_name": "niveau_sexe_" + name[16:18]}, user=ALICE)
    assert run.returncode == 0, run.log[-3000:]
    assert run.sandboxed
    alice = accounts.ensure_account(ALICE)
    assert executed.stat().st_uid == alice.uid
    table = outputs / f"niveau_sexe_{name[16:18]}.csv"
    assert table.stat().st_uid == alice.uid
    frame, checked = read_output(table)  # the CSV and its sidecar agree (fails closed)
    assert not frame.empty and checked.index == ("niveau",)
    sidecar = json.loads(sidecar_path(table).read_text())
    assert sidecar["population"]["extract_version"] == 1
