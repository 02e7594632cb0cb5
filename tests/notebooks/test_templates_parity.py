"""The template notebooks come in French and English with the same cells: the same code (except
the release request's justifications, written in the notebook's language) and the same
parameters, so a run in one language proves the other's code too."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from enclave.workspaces.notebook_runs import NOTEBOOKS_DIR

STEMS = sorted({p.name.rsplit("_", 1)[0] for p in NOTEBOOKS_DIR.glob("*.ipynb")})
#: Code cells that hold prose in the notebook's language.
LOCALISED_MARK = "requested = {"


def _cells(path: Path) -> list[nbformat.NotebookNode]:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    return list(notebook.cells)


def test_every_template_exists_in_french_and_english() -> None:
    assert {"getting_started", "descriptive_statistics", "regression", "dp_learning_traces",
            "asking_for_release"} <= set(STEMS)
    for stem in STEMS:
        assert (NOTEBOOKS_DIR / f"{stem}_fr.ipynb").is_file()
        assert (NOTEBOOKS_DIR / f"{stem}_en.ipynb").is_file()


@pytest.mark.parametrize("stem", STEMS)
def test_french_and_english_templates_run_the_same_code(stem: str) -> None:
    fr, en = _cells(NOTEBOOKS_DIR / f"{stem}_fr.ipynb"), _cells(NOTEBOOKS_DIR / f"{stem}_en.ipynb")
    assert [c.cell_type for c in fr] == [c.cell_type for c in en]
    for a, b in zip(fr, en, strict=True):
        if a.cell_type != "code":
            continue
        assert a.metadata.get("tags", []) == b.metadata.get("tags", [])
        if LOCALISED_MARK in a.source:
            assert LOCALISED_MARK in b.source
            continue
        assert a.source == b.source
    parameters = [c for c in fr if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1 and 'outputs_dir = "/outputs"' in parameters[0].source


@pytest.mark.parametrize("stem", STEMS)
def test_templates_are_saved_without_outputs(stem: str) -> None:
    for language in ("fr", "en"):
        for cell in _cells(NOTEBOOKS_DIR / f"{stem}_{language}.ipynb"):
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None
