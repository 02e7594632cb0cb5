"""Every template notebook (French and English) runs under papermill inside the sandbox, as a
person's account, against a real extract of the synthetic data, and leaves in ``/outputs``
the files and sidecars it promises, with the automatic checks passing or flagging as designed.

One extract (pupils, evaluations, learning traces) is built per module; each language runs its
four templates in order in its own outputs area, the release notebook last. Needs root and
bubblewrap (skips otherwise; ``ENCLAVE_REQUIRE_SANDBOX=1`` makes that fail).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from access_requests import decisions
from access_requests.workflow import ProjectStatus
from enclave.core.context import Enclave, initialise
from enclave.core.settings import load_settings
from enclave.demo_data import generate
from enclave.sandbox import accounts
from enclave.workspaces.notebook_runs import NotebookRun, run_notebook, template
from output_control.analysis import check_figure, read_dp_output
from output_control.policy import load_policy
from output_control.request_manifest import read_request_manifest
from output_control.sidecar import check_output, read_output, sidecar_path
from output_control.verdicts import Outcome
from tests.sandbox.conftest import ALICE, sandbox_ready
from tests.workflows.factories import Factory

__all__ = ["sandbox_ready"]
pytestmark = pytest.mark.usefixtures("sandbox_ready")

TEMPLATES = ("descriptive_statistics", "regression", "dp_learning_traces", "asking_for_release")
#: The ``prefix`` parameter of each template: the release notebook asks for the descriptive
#: notebook's outputs, so it gets the same prefix.
PREFIXES = {"descriptive_statistics": "desc", "regression": "reg", "dp_learning_traces": "dp",
            "asking_for_release": "desc"}
VARIABLES = {
    "eleves": [("sexe", "Écarts filles-garçons"), ("niveau", "Analyse par niveau"),
               ("secteur", "Public/privé")],
    "evaluations_reperes": [("niveau", "Niveau évalué"), ("domaine", "Domaine"),
                            ("score", "Score"), ("groupe_maitrise", "Maîtrise")],
    "traces_xapi": [("matiere", "Matière"), ("duree_s", "Durée"), ("succes", "Réussite"),
                    ("horodatage", "Calendrier")],
}
EPSILON = 0.5


@dataclass(frozen=True)
class Built:
    """The module's enclave, project and extract."""

    enclave: Enclave
    project_id: str
    extract_dir: Path


@dataclass(frozen=True)
class LanguageRun:
    """One language's runs of every template, and the outputs area they shared."""

    language: str
    runs: dict[str, NotebookRun]
    outputs: Path

    def path(self, name: str) -> Path:
        return self.outputs / name


@pytest.fixture(scope="module")
def built(sandbox_ready: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """An approved project on pupils, evaluations and traces, with its first extract."""
    base = tmp_path_factory.mktemp("templates")
    generate(base / "raw", pupils=1500, traces_per_pupil=6)
    settings = load_settings(env={}, home=base / "var")
    initialise(settings, env={})
    enclave = Enclave.open(settings, env={})
    factory = Factory(enclave).setup(base / "raw")
    project_id = factory.project(ProjectStatus.APPROVED, members=(), variables=VARIABLES)
    if factory.project_row(project_id)[0] != ProjectStatus.APPROVED:
        # Learning traces need an enhanced review: an ethics opinion and a second approval.
        with enclave.db.transaction() as session:
            decisions.record_ethics_opinion(session, factory.actor("gaelle"), project_id,
                                            verdict="favourable")
        factory.move(project_id, "david", ProjectStatus.APPROVED)
    extract = factory.extract(project_id)
    try:
        yield Built(enclave, project_id, extract.path)
    finally:
        enclave.close()
        accounts.remove_project_group(project_id)


@pytest.fixture(scope="module", params=["fr", "en"])
def language_run(request: pytest.FixtureRequest, built: Built) -> LanguageRun:
    """The four templates of one language, run in order as alice's sandboxed account."""
    language = request.param
    project = built.enclave.settings.projects_dir / built.project_id
    outputs = project / f"outputs-{language}"
    runs = {}
    for name in TEMPLATES:
        notebook = f"{name}_{language}.ipynb"
        runs[name] = run_notebook(template(notebook), built.extract_dir, outputs,
                                  project / "work" / ALICE / notebook, user=ALICE,
                                  parameters={"prefix": f"{language}-{PREFIXES[name]}"})
    return LanguageRun(language, runs, outputs)


def _outcome(path: Path, rule: str | None = None) -> Outcome:
    result = check_output(path, load_policy("default"))
    if rule is None:
        return result.outcome
    return next(v.outcome for v in result.verdicts if v.rule == rule)


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_runs_sandboxed_to_the_end_without_error(
        language_run: LanguageRun, name: str) -> None:
    run = language_run.runs[name]
    assert run.returncode == 0, run.log[-3000:]
    assert run.sandboxed
    cells = [c for c in nbformat.read(run.executed, as_version=4).cells
             if c.cell_type == "code"]
    assert all(cell.get("execution_count") for cell in cells)
    assert not any(o.get("output_type") == "error" for c in cells for o in c.outputs)
    injected = next(c for c in cells if "injected-parameters" in c.metadata.get("tags", []))
    assert 'outputs_dir = "/outputs"' in injected.source


def test_descriptive_statistics_pass_and_flag_as_designed(language_run: LanguageRun) -> None:
    out = language_run.path
    p = f"{language_run.language}-desc"
    frame, table = read_output(out(f"{p}_niveau_sexe.csv"))
    assert table.index == ("niveau",) and not frame.empty
    assert json.loads(sidecar_path(out(f"{p}_niveau_sexe.csv")).read_text())[
        "population"]["extract_version"] == 1
    assert _outcome(out(f"{p}_niveau_sexe.csv")) is Outcome.PASS
    for statistic in ("count", "mean", "std"):
        assert _outcome(out(f"{p}_francais_score_{statistic}.csv")) is Outcome.PASS
    assert _outcome(out(f"{p}_score_quantiles.csv"), "single_unit_values") is Outcome.REVIEW
    # Fine bins leave few pupils in the tails (flagged); merged tails pass.
    assert _outcome(out(f"{p}_score_hist.csv"), "minimum_count") is Outcome.FAIL
    assert _outcome(out(f"{p}_score_hist_coarse.csv")) is Outcome.PASS
    for chart in ("score_hist", "score_hist_coarse", "secteur_sexe"):
        drawn, _ = check_figure(out(f"{p}_{chart}.png"))  # the PNG is its table's drawing
        assert drawn.file_name == f"{p}_{chart}.csv"


def test_survival_table_flags_exactly_its_small_cells(language_run: LanguageRun) -> None:
    out = language_run.path
    p = f"{language_run.language}-desc"
    _, counts = read_output(out(f"{p}_premiere_reussite.csv"))
    small = {cell.labels for cell in counts.cells if 0 < cell.units < 10}
    result = check_output(out(f"{p}_premiere_reussite.csv"), load_policy("default"))
    minimum = next(v for v in result.verdicts if v.rule == "minimum_count")
    assert {c.cell for c in minimum.cells} == small
    assert _outcome(out(f"{p}_premiere_reussite_km.csv"),
                    "residual_degrees_of_freedom") is Outcome.PASS


def test_regressions_pass_and_the_small_model_fails(language_run: LanguageRun) -> None:
    out = language_run.path
    p = f"{language_run.language}-reg"
    assert _outcome(out(f"{p}_ols.csv")) is Outcome.PASS
    assert _outcome(out(f"{p}_logit.csv")) is Outcome.PASS
    assert _outcome(out(f"{p}_ols_small.csv"), "residual_degrees_of_freedom") is Outcome.FAIL


def test_dp_results_declare_the_budget_to_charge(language_run: LanguageRun) -> None:
    out = language_run.path
    p = f"{language_run.language}-dp"
    for name in ("duree_moyenne", "evenements_matiere"):
        declared = read_dp_output(out(f"{p}_{name}.csv"))
        assert (declared.dataset, declared.epsilon) == ("traces_xapi", EPSILON)
        assert declared.accounting["max_contributions"] == 20
        assert declared.population["extract_version"] == 1


def test_release_request_names_the_outputs_with_an_exception(language_run: LanguageRun) -> None:
    p = f"{language_run.language}-desc"
    request = read_request_manifest(language_run.outputs)
    assert [f.name for f in request.files] == [
        f"{p}_niveau_sexe.csv", f"{p}_score_hist_coarse.csv", f"{p}_score_hist_coarse.png",
        f"{p}_score_quantiles.csv"]
    exception = request.files[-1].exception
    assert exception is not None and exception.rules == ("single_unit_values",)
    files, _ = request.submission()
    assert "single_unit_values" in files[f"{p}_score_quantiles.csv"]
