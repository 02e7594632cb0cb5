"""Provenance re-run, on both backends and in the real sandbox: a controller outside the
project has the enclave run the request's recorded notebook again on the recorded extract
version, and the comparison is stored and audited; a forged output is caught; members, the
ethics committee and everyone else are refused and nothing is recorded. Needs root and
bubblewrap (skips otherwise, as the sandbox tests do).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nbformat
import pytest
from sqlalchemy import func, select

from enclave.core.exceptions import PermissionDenied
from enclave.workspaces.notebook_runs import run_notebook
from output_control.review import workflow as outputs
from output_control.review.models import Rerun
from output_control.review.rerun import compare_file, rerun_request, reruns_of
from output_control.sidecar import sidecar_path
from tests.sandbox.conftest import sandbox_ready
from tests.workflows.factories import Factory

__all__ = ["sandbox_ready"]
pytestmark = pytest.mark.usefixtures("sandbox_ready")

NOTEBOOK = "tableau.ipynb"
CODE = """\
import json
from pathlib import Path
import pandas as pd
from output_control.checked import crosstab
data = Path(extract_dir)
version = json.loads((data / "manifest.json").read_text())["version"]
eleves = pd.read_parquet(data / "eleves.parquet")
crosstab(eleves, "niveau", "sexe", name="niveau_sexe", outputs_dir=outputs_dir,
         population={"dataset": "eleves", "extract_version": version, "filters": {}})
"""


def _notebook(factory: Factory, project_id: str) -> Path:
    """The researcher's notebook in alice's work folder of the project."""
    cell = nbformat.v4.new_code_cell('extract_dir = "/data"\noutputs_dir = "/outputs"')
    cell.metadata["tags"] = ["parameters"]
    book = nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_code_cell(CODE)])
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                   "language": "python"}
    work = factory.enclave.settings.projects_dir / project_id / "work" / "alice"
    work.mkdir(parents=True, exist_ok=True)
    path = work / NOTEBOOK
    nbformat.write(book, path)
    return path


def _transpose(notebook: Path) -> None:
    """Edit the notebook so that it writes the transposed table."""
    book = nbformat.read(notebook, as_version=4)
    source = book.cells[1].source
    assert '"niveau", "sexe"' in source
    book.cells[1].source = source.replace('"niveau", "sexe"', '"sexe", "niveau"')
    nbformat.write(book, notebook)


def _submitted(factory: Factory) -> tuple[str, str]:
    """An active project whose outputs the notebook wrote in the sandbox, submitted."""
    project_id = factory.active_project()
    notebook = _notebook(factory, project_id)
    extract = factory.enclave.settings.projects_dir / project_id / "extract" / "v1"
    run = run_notebook(notebook, extract, factory.outputs_dir(project_id),
                       factory.enclave.settings.run_dir / f"{project_id}.ipynb",
                       project_id=project_id, timeout=300)
    assert run.returncode == 0, run.log
    request_id = outputs.submit_request(
        factory.enclave.db, factory.enclave.settings, factory.actor("alice"), project_id,
        {"niveau_sexe.csv": "Tableau 1"})
    return project_id, request_id


def _reruns(factory: Factory, request_id: str) -> int:
    with factory.enclave.db.sessions() as session:
        return int(session.execute(select(func.count()).select_from(Rerun)
                                   .where(Rerun.request_id == request_id)).scalar_one())


def test_a_controller_reruns_the_notebook_and_the_outputs_match(factory: Factory) -> None:
    project_id, request_id = _submitted(factory)
    # The workspace's notebook changes after submission: the re-run runs the frozen copy.
    work = factory.enclave.settings.projects_dir / project_id / "work" / "alice" / NOTEBOOK
    _transpose(work)
    head = factory.audit_head()
    view = rerun_request(factory.enclave.db, factory.enclave.settings, factory.actor("emma"),
                         request_id, timeout=300)
    assert view.outcome == "pass", view.files
    assert view.files == [{"name": "niveau_sexe.csv", "outcome": "pass",
                           "message": view.files[0]["message"]}]
    assert "regenerated" in view.files[0]["message"]
    assert view.notebooks[0]["notebook"] == NOTEBOOK
    assert view.notebooks[0]["frozen"] is True
    assert view.notebooks[0]["extract_version"] == 1
    events = factory.audit_events_after(head)
    assert [e.action for e in events] == ["output.rerun"]
    assert json.loads(events[0].details)["files"] == {"niveau_sexe.csv": "pass"}
    assert [r.outcome for r in reruns_of(factory.enclave.db, factory.actor("farid"),
                                         request_id)] == ["pass"]


def test_a_forged_table_is_caught_by_the_rerun(factory: Factory) -> None:
    project_id = factory.active_project()
    notebook = _notebook(factory, project_id)
    outputs_dir = factory.outputs_dir(project_id)
    extract = factory.enclave.settings.projects_dir / project_id / "extract" / "v1"
    run = run_notebook(notebook, extract, outputs_dir,
                       factory.enclave.settings.run_dir / f"{project_id}.ipynb",
                       project_id=project_id, timeout=300)
    assert run.returncode == 0, run.log
    # Forge a consistent pair: every count of the first row grows by 40 in the CSV and the
    # sidecar, hashes and sizes recomputed, so that the file's own checks pass.
    csv = outputs_dir / "niveau_sexe.csv"
    side = sidecar_path(csv)
    doc = json.loads(side.read_text())
    lines = csv.read_text().splitlines()
    header = len(lines) - len(doc["table"]["row_labels"])
    fields = lines[header].split(",")
    k = len(doc["table"]["index"])
    fields[k:] = [str(int(v) + 40) for v in fields[k:]]
    lines[header] = ",".join(fields)
    forged = ("\n".join(lines) + "\n").encode()
    csv.write_bytes(forged)
    doc["table"]["rows"][0] = [v + 40 for v in doc["table"]["rows"][0]]
    doc["table"]["units"][0] = [v + 40 for v in doc["table"]["units"][0]]
    doc["file"]["sha256"] = hashlib.sha256(forged).hexdigest()
    doc["file"]["bytes"] = len(forged)
    side.write_text(json.dumps(doc))
    request_id = outputs.submit_request(
        factory.enclave.db, factory.enclave.settings, factory.actor("alice"), project_id,
        {"niveau_sexe.csv": "Tableau 1"})
    view = rerun_request(factory.enclave.db, factory.enclave.settings, factory.actor("emma"),
                         request_id, timeout=300)
    assert view.outcome == "fail"
    assert "differs" in view.files[0]["message"] and "rows" in view.files[0]["message"]


@pytest.mark.parametrize("who", ["alice", "bruno", "oscar", "gaelle", "claire", "admin"])
def test_only_a_controller_outside_the_project_may_rerun(factory: Factory, who: str) -> None:
    project_id = factory.active_project()
    factory.output_file(project_id)
    request_id = outputs.submit_request(
        factory.enclave.db, factory.enclave.settings, factory.actor("alice"), project_id,
        {"niveau_par_sexe.csv": "Tableau"})
    head = factory.audit_head()
    with pytest.raises(PermissionDenied):
        rerun_request(factory.enclave.db, factory.enclave.settings, factory.actor(who),
                      request_id)
    assert _reruns(factory, request_id) == 0
    assert factory.audit_events_after(head) == []


def test_a_request_no_longer_under_review_is_not_rerun(factory: Factory) -> None:
    project_id = factory.active_project()
    factory.output_file(project_id)
    request_id = outputs.submit_request(
        factory.enclave.db, factory.enclave.settings, factory.actor("alice"), project_id,
        {"niveau_par_sexe.csv": "Tableau"})
    outputs.withdraw(factory.enclave.db, factory.actor("alice"), request_id)
    with pytest.raises(PermissionDenied, match="not under review"):
        rerun_request(factory.enclave.db, factory.enclave.settings, factory.actor("emma"),
                      request_id)
    assert _reruns(factory, request_id) == 0


def test_without_a_frozen_copy_the_current_workspace_notebook_is_rerun(
        factory: Factory) -> None:
    project_id, request_id = _submitted(factory)
    request = outputs.view_request(factory.enclave.db, factory.actor("emma"),
                                   request_id).request
    frozen = Path(request.folder) / ".notebooks" / NOTEBOOK
    frozen.unlink()
    work = factory.enclave.settings.projects_dir / project_id / "work" / "alice" / NOTEBOOK
    _transpose(work)
    view = rerun_request(factory.enclave.db, factory.enclave.settings, factory.actor("emma"),
                         request_id, timeout=300)
    assert view.notebooks[0]["frozen"] is False
    assert view.outcome == "fail"  # the edited notebook transposes the table


def test_a_file_without_a_recorded_notebook_is_not_passed(factory: Factory) -> None:
    # The factory's table is written outside any notebook: nothing to re-run, so REVIEW.
    project_id = factory.active_project()
    factory.output_file(project_id)
    request_id = outputs.submit_request(
        factory.enclave.db, factory.enclave.settings, factory.actor("alice"), project_id,
        {"niveau_par_sexe.csv": "Tableau"})
    view = rerun_request(factory.enclave.db, factory.enclave.settings, factory.actor("emma"),
                         request_id)
    assert view.outcome == "review"
    assert "records no notebook" in view.files[0]["message"]


def test_a_missing_regenerated_file_fails(tmp_path: Path) -> None:
    submitted = tmp_path / "a.csv"
    submitted.write_text("x\n")
    result = compare_file("a.csv", submitted, tmp_path / "absent" / "a.csv")
    assert (result.outcome.value, result.message) == ("fail",
                                                      "the re-run did not produce this file")
