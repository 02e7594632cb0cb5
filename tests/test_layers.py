"""The layers of DESIGN.md hold: imports only point downwards."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Pure libraries: no enclave, no workflow, no database, no web.
PURE = ["anonymization", "output_control/rules", "output_control/verdicts.py",
        "output_control/policy.py", "output_control/sidecar.py", "output_control/checked.py",
        "output_control/table.py", "output_control/labels.py", "output_control/files.py",
        "output_control/analysis", "output_control/suppression", "output_control/row_level.py",
        "enclave/demo_data", "anonymization/dp"]
PURE_FORBIDDEN = ("enclave.core", "enclave.provisioning", "enclave.hub", "enclave.cli",
                  "enclave.demo", "access_requests", "output_control.review", "sqlalchemy",
                  "alembic", "jupyterhub", "fastapi", "tornado", "psycopg")
#: The core knows no workflow and no edge.
CORE_FORBIDDEN = ("access_requests", "output_control", "enclave.provisioning", "enclave.hub",
                  "enclave.cli", "enclave.demo", "enclave.workspaces")
#: Workflows never import edges.
WORKFLOWS = ["access_requests", "output_control/review", "enclave/provisioning",
             "enclave/privacy_budget"]
EDGE_MODULES = ("enclave.hub", "enclave.cli", "enclave.demo")


def _python_files(rel: str) -> list[Path]:
    path = ROOT / rel
    return [path] if path.is_file() else sorted(path.rglob("*.py"))


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _violations(rels: list[str], forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for rel in rels:
        for path in _python_files(rel):
            for name in _imports(path):
                if any(name == f or name.startswith(f + ".") for f in forbidden):
                    found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


def test_pure_libraries_import_nothing_from_the_enclave_or_a_database() -> None:
    assert _violations(PURE, PURE_FORBIDDEN) == []


def test_core_imports_no_workflow_and_no_edge() -> None:
    assert _violations(["enclave/core"], CORE_FORBIDDEN) == []


def test_workflows_import_no_edge() -> None:
    assert _violations(WORKFLOWS, EDGE_MODULES) == []


@pytest.mark.parametrize("module", ["anonymization", "output_control.checked",
                                    "output_control.rules", "enclave.demo_data"])
def test_importing_a_pure_library_loads_no_database_or_web_module(module: str) -> None:
    code = (f"import sys, {module}; bad = [m for m in sys.modules if m.split('.')[0] in "
            "('sqlalchemy', 'jupyterhub', 'tornado', 'psycopg', 'alembic') or "
            "m.startswith('enclave.core')]; print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
