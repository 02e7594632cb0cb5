"""``enclave extract check|build``: a spec file in, a published extract (or a clear refusal
that publishes nothing) out; progress on a terminal only; the staff override of a k refusal."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from access_requests.workflow import ProjectStatus
from enclave.cli import main
from enclave.cli_extract import ProgressDisplay
from enclave.provisioning.extracts import BuildProgress, extract_root
from enclave.provisioning.models import Extract
from tests.workflows.factories import STAFF, Factory

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "enclave" / "provisioning" / "examples"
VARIABLES = {
    "eleves": [(v, "x") for v in ("sexe", "niveau", "date_naissance", "code_commune", "ips",
                                  "secteur")],
    "evaluations_reperes": [("domaine", "x"), ("score", "x")],
}
TOML = """
[datasets.eleves]
filters = [{ variable = "secteur", equals = "public" }]
transforms = [
    { variable = "date_naissance", op = "year" },
    { variable = "code_commune", op = "departement" },
    { variable = "ips", op = "round", base = 10 },
    { variable = "secteur", op = "drop" },
]
quasi_identifiers = ["sexe", "date_naissance", "code_commune"]
k = %(k)d
local_suppression = %(suppression)s
sensitive = ["niveau"]
"""


@pytest.fixture
def factory(sqlite_factory: Factory, monkeypatch: pytest.MonkeyPatch) -> Factory:
    """An enclave on SQLite whose home the command line finds through ENCLAVE_HOME."""
    for key in list(os.environ):
        if key.startswith("ENCLAVE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("ENCLAVE_HOME", str(sqlite_factory.enclave.settings.home))
    return sqlite_factory


def _spec(tmp_path: Path, name: str = "spec.toml", k: int = 3, suppression: bool = True,
          text: str | None = None) -> Path:
    path = tmp_path / name
    path.write_text(text if text is not None else TOML % {
        "k": k, "suppression": str(suppression).lower()}, encoding="utf-8")
    return path


def _published(factory: Factory, project_id: str) -> tuple[int, list[str]]:
    with factory.enclave.db.sessions() as session:
        rows = len(session.execute(select(Extract.id).where(
            Extract.project_id == project_id)).all())
    root = extract_root(factory.enclave.settings, project_id)
    return rows, sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_build_publishes_and_prints_the_manifest_and_the_risk_report(
        factory: Factory, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project_id = factory.project(ProjectStatus.APPROVED, variables=VARIABLES)
    code = main(["extract", "build", project_id, str(_spec(tmp_path)), "--as", STAFF])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert err == ""  # stderr is not a terminal: no progress display
    folder = extract_root(factory.enclave.settings, project_id) / "v1"
    assert f"extract v1 of {project_id} published in {folder}" in out
    assert f"risk report: {folder / 'risk_report.json'}" in out
    assert f"risk page:   {folder / 'risk_report.html'}" in out
    manifest = json.loads((folder / "manifest.json").read_text())
    for f in manifest["files"]:
        assert f"{f['name']}: {f['rows']:,} rows" in out
    report = json.loads((folder / "risk_report.json").read_text())
    eleves = report["tables"]["eleves"]
    assert (f"eleves: k = 3, records with fk < k: {eleves['violations_before']} before, "
            f"0 after") in out
    assert set(eleves["l_diversity"]) == {"niveau"}
    assert (folder / "risk_report.html").read_text().startswith("<!DOCTYPE html>")
    assert _published(factory, project_id) == (1, ["v1"])


@pytest.mark.parametrize("example", ["extract_spec.toml", "extract_spec.json"])
def test_the_documented_examples_are_valid_for_a_project_approved_for_their_variables(
        factory: Factory, tmp_path: Path, example: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    # The examples name the sensitive variable 'handicap', whose approval needs an ethics
    # opinion this factory does not give: the copy checked here leaves that one line out.
    project_id = factory.project(ProjectStatus.APPROVED, variables=VARIABLES)
    text = (EXAMPLES / example).read_text(encoding="utf-8")
    if example.endswith(".toml"):
        assert 'sensitive = ["handicap"]\n' in text
        text = text.replace('sensitive = ["handicap"]\n', "")
    else:
        doc = json.loads(text)
        assert doc["datasets"]["eleves"].pop("sensitive") == ["handicap"]
        text = json.dumps(doc)
    code = main(["extract", "check", project_id, str(_spec(tmp_path, example, text=text)),
                 "--as", STAFF])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"valid for project {project_id}" in out
    assert "eleves: 6 approved variables, 1 filters, 5 transformations; k = 5" in out
    assert _published(factory, project_id) == (0, [])


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("unknown dataset", {"datasets": {"inconnu": {}}},
     "datasets.inconnu: unknown dataset 'inconnu'"),
    ("not approved dataset", {"datasets": {"examens": {}}},
     "datasets.examens: dataset not approved for this project"),
    ("unknown variable", {"datasets": {"eleves": {"transforms": [
        {"variable": "pointure", "op": "drop"}]}}},
     "datasets.eleves.transforms[0].variable: unknown variable 'pointure'"),
    ("direct identifier", {"datasets": {"eleves": {"quasi_identifiers": ["ine"], "k": 3}}},
     "datasets.eleves.quasi_identifiers[0]: 'ine' is a direct identifier"),
    ("unapproved variable", {"datasets": {"eleves": {"quasi_identifiers": ["uai"], "k": 3}}},
     "datasets.eleves.quasi_identifiers[0]: 'uai' is not an approved (kept) variable"),
    ("bad transformation", {"datasets": {"eleves": {"transforms": [
        {"variable": "sexe", "op": "hash"}]}}},
     "datasets.eleves.transforms[0].op: must be one of"),
    ("transformation on the wrong type", {"datasets": {"eleves": {"transforms": [
        {"variable": "sexe", "op": "round", "base": 5}]}}},
     "transform 'round' does not apply to 'sexe'"),
]


@pytest.mark.parametrize(("doc", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_bad_spec_is_refused_naming_the_problem_and_publishes_nothing(
        factory: Factory, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        doc: dict[str, Any], message: str) -> None:
    project_id = factory.project(ProjectStatus.APPROVED, variables=VARIABLES)
    path = _spec(tmp_path, "spec.json", text=json.dumps(doc))
    code = main(["extract", "build", project_id, str(path), "--as", STAFF])
    out, err = capsys.readouterr()
    assert code == 2
    assert message in err
    assert out == ""
    assert _published(factory, project_id) == (0, [])


@pytest.mark.parametrize(("name", "text", "message"), [
    ("spec.toml", "[datasets.eleves\n", "invalid TOML"),
    ("spec.json", "{", "invalid JSON"),
    ("spec.yaml", "datasets: {}", "must end in .toml or .json"),
    ("absent.toml", None, "no such file"),
])
def test_an_unreadable_spec_file_is_a_clear_error(
        factory: Factory, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str,
        text: str | None, message: str) -> None:
    project_id = factory.project(ProjectStatus.APPROVED, variables=VARIABLES)
    path = tmp_path / name
    if text is not None:
        path.write_text(text, encoding="utf-8")
    assert main(["extract", "build", project_id, str(path), "--as", STAFF]) == 2
    assert message in capsys.readouterr().err
    assert _published(factory, project_id) == (0, [])


def test_below_target_k_exits_3_then_staff_override_publishes_with_the_reason(
        factory: Factory, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project_id = factory.project(ProjectStatus.APPROVED, variables=VARIABLES)
    spec = str(_spec(tmp_path, suppression=False))
    assert main(["extract", "build", project_id, spec, "--as", STAFF]) == 3
    err = capsys.readouterr().err
    assert "k-anonymity below target for eleves" in err
    assert "--override-reason" in err
    assert _published(factory, project_id) == (0, [])
    # a researcher may not build (nor override) at all
    assert main(["extract", "build", project_id, spec, "--as", "alice",
                 "--override-reason", "needed"]) == 2
    assert "DEPP staff" in capsys.readouterr().err
    code = main(["extract", "build", project_id, spec, "--as", STAFF, "--override-reason",
                 "cellules publiées seulement agrégées"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"override by {STAFF}: cellules publiées seulement agrégées" in out
    assert _published(factory, project_id) == (1, ["v1"])


def _build_on_a_terminal(factory: Factory, project_id: str, spec: Path,
                         *extra: str) -> tuple[int, str]:
    """Run the command with stderr on a pseudo-terminal; return its code and that output."""
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    env["ENCLAVE_HOME"] = str(factory.enclave.settings.home)
    proc = subprocess.Popen(
        [sys.executable, "-m", "enclave.cli", "extract", "build", project_id, str(spec),
         "--as", STAFF, *extra], stdout=subprocess.DEVNULL, stderr=follower, env=env,
        cwd=ROOT)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closes with the child
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return proc.wait(timeout=300), b"".join(chunks).decode()


def test_progress_shows_on_a_terminal_and_not_with_quiet(factory: Factory,
                                                          tmp_path: Path) -> None:
    project_id = factory.project(ProjectStatus.APPROVED, variables=VARIABLES)
    code, shown = _build_on_a_terminal(factory, project_id, _spec(tmp_path))
    assert code == 0, shown
    assert "eleves: 1 batches" in shown
    assert "rows/s, ETA" in shown
    assert "measuring risk" in shown
    code, shown = _build_on_a_terminal(factory, project_id, _spec(tmp_path), "--quiet")
    assert code == 0, shown
    assert shown == ""


def test_progress_line_gives_the_rate_and_the_time_left() -> None:
    display = ProgressDisplay(sys.stderr)
    event = BuildProgress("traces", "stream", 3, 1_500_000, 2_000_000, 10_000_000)
    # 2 M rows in 4 s: 500,000 rows/s; 8 M rows left: 16 s.
    line = display.line(event, display.started + 4.0)
    assert line == ("traces: 3 batches, 1,500,000 rows; total 2,000,000/10,000,000 (20%), "
                    "500,000 rows/s, ETA 0:00:16")
