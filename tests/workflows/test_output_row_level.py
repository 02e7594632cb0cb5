"""Row-level content at submission and resubmission, on both backends: a file carrying a pupil
pseudonym of the project's extract fails with the reason (tables, labels hiding one, DP
results, figures), ordinary tables pass, the pseudonym index is built beside the extract
(never inside what the sandbox binds) and reused, and the controller's page shows the verdict
without echoing the pseudonym.
"""

from __future__ import annotations

import json
import os
import stat

import pandas as pd
import pyarrow.parquet as pq
import pytest

from anonymization.dp import dp_category_counts
from output_control.analysis import write_dp_result
from output_control.analysis.charts import bar_chart
from output_control.checked import crosstab
from output_control.review import pseudonym_index
from output_control.review import workflow as outputs
from output_control.review.workflow import Amendment, Decision
from output_control.row_level import RULE
from output_control.sidecar import sidecar_path
from output_control.verdicts import CheckResult, Outcome, RuleVerdict
from tests.workflows.factories import OUTPUT_NAME, Factory, pupils_frame


@pytest.fixture(autouse=True)
def _fresh_memory_cache() -> None:
    pseudonym_index.clear_cache()


def _extract_pupils(factory: Factory, project_id: str, version: int = 1) -> list[str]:
    folder = factory.enclave.settings.projects_dir / project_id / "extract" / f"v{version}"
    return sorted(set(pq.read_table(folder / "eleves.parquet", columns=["eleve"])
                      .column(0).to_pylist()))


def _submit(factory: Factory, project_id: str, names: list[str]) -> str:
    return outputs.submit_request(factory.enclave.db, factory.enclave.settings,
                                  factory.actor("alice"), project_id,
                                  dict.fromkeys(names, "Résultat du projet"))


def _checks(factory: Factory, request_id: str) -> dict[str, CheckResult]:
    with factory.enclave.db.sessions() as session:
        return {f.name: CheckResult.from_dict(json.loads(f.check_result))
                for f in outputs.files_of(session, request_id)}


def _row_level(result: CheckResult) -> RuleVerdict:
    (verdict,) = [v for v in result.verdicts if v.rule == RULE]
    return verdict


def _labelled_table(factory: Factory, project_id: str, label: str, name: str) -> str:
    """A table that passes every count rule (12 pupils a cell) with ``label`` as a level."""
    frame = pupils_frame().replace({"niveau": {"6E": label}})
    crosstab(frame, "sexe", "niveau", name=name, outputs_dir=factory.outputs_dir(project_id))
    return name + ".csv"


def test_a_frequency_table_of_pupil_pseudonyms_is_blocked_at_submission_with_the_reason(
        factory: Factory) -> None:
    project_id = factory.active_project()
    pupils = _extract_pupils(factory, project_id)
    # The checked crosstab refuses the pupil column as a variable; a copy of it goes through.
    frame = pd.DataFrame({"eleve": pupils[:20], "ident": pupils[:20], "sexe": ["F", "M"] * 10})
    crosstab(frame, "ident", "sexe", name="par_eleve", outputs_dir=factory.outputs_dir(project_id))
    head = factory.audit_head()
    request_id = _submit(factory, project_id, ["par_eleve.csv"])
    result = _checks(factory, request_id)["par_eleve.csv"]
    verdict = _row_level(result)
    assert result.outcome is Outcome.FAIL and verdict.outcome is Outcome.FAIL
    assert "20 distinct pseudonyms" in verdict.message and "row-level content" in verdict.message
    assert verdict.cells[0].cell[0] == "column 1 (sexe)"  # the row labels' column
    # Only 4-character prefixes are stored, in this rule's findings and in the other rules'
    # (minimum_count quotes its cells' labels, redacted once pseudonyms are found).
    stored = json.dumps(result.to_dict(), ensure_ascii=False)
    assert not any(p in stored for p in pupils)
    minimum = next(v for v in result.verdicts if v.rule == "minimum_count")
    assert minimum.outcome is Outcome.FAIL
    assert minimum.cells[0].cell[0] == pupils[0][:4] + "…"
    submitted = [e for e in factory.audit_events_after(head) if e.action == "output.submitted"]
    assert json.loads(submitted[0].details)["files"][0]["check"] == "fail"


def test_an_ordinary_table_passes_the_row_level_check(factory: Factory) -> None:
    project_id = factory.active_project()
    request_id = _submit(factory, project_id, [factory.output_file(project_id)])
    result = _checks(factory, request_id)[OUTPUT_NAME]
    verdict = _row_level(result)
    assert verdict.outcome is Outcome.PASS and result.outcome is Outcome.PASS
    count = len(_extract_pupils(factory, project_id))
    assert f"extract v1 ({count:,} pupils)" in verdict.message


def test_a_pseudonym_hidden_inside_a_label_is_caught_and_is_the_only_failure(
        factory: Factory) -> None:
    project_id = factory.active_project()
    hidden = _extract_pupils(factory, project_id)[7]
    name = _labelled_table(factory, project_id, f"6E-{hidden}x", "cache")
    result = _checks(factory, _submit(factory, project_id, [name]))[name]
    failing = {v.rule for v in result.verdicts if v.outcome is not Outcome.PASS}
    assert failing == {RULE}
    cell = _row_level(result).cells[0]
    assert cell.value == hidden[:4] + "…" and cell.cell[1] == "header"


def test_a_dp_result_carrying_a_pseudonym_is_caught(factory: Factory) -> None:
    project_id = factory.active_project()
    from enclave.privacy_budget import set_budget

    set_budget(factory.enclave.db, factory.actor("claire"), project_id, "eleves", epsilon=1.0,
               reason="Budget du projet")
    pupils = _extract_pupils(factory, project_id)
    data = pd.DataFrame({"eleve": pupils[:40], "groupe": ["a"] * 39 + [pupils[3]]})
    result = dp_category_counts(data, "groupe", pupil="eleve", categories=["a", pupils[3]],
                                epsilon=0.5)
    write_dp_result(result, name="groupes", dataset="eleves",
                    outputs_dir=factory.outputs_dir(project_id))
    checked = _checks(factory, _submit(factory, project_id, ["groupes.csv"]))["groupes.csv"]
    assert checked.outcome is Outcome.FAIL
    assert "differential_privacy" in {v.rule for v in checked.verdicts}
    assert _row_level(checked).outcome is Outcome.FAIL


def test_a_figure_whose_table_shows_a_pseudonym_is_caught(factory: Factory) -> None:
    project_id = factory.active_project()
    hidden = _extract_pupils(factory, project_id)[11]
    frame = pupils_frame().replace({"niveau": {"6E": f"groupe {hidden}"}})
    bar_chart(frame, "niveau", name="barres", outputs_dir=factory.outputs_dir(project_id))
    checked = _checks(factory, _submit(factory, project_id, ["barres.png"]))["barres.png"]
    verdict = _row_level(checked)
    assert verdict.outcome is Outcome.FAIL
    assert verdict.cells[0].cell[0] == "in barres.csv"
    assert checked.verdicts[0].outcome is Outcome.PASS  # the figure is its table's drawing


def test_a_pseudonym_brought_in_by_an_amendment_is_caught_at_resubmission(
        factory: Factory) -> None:
    project_id = factory.active_project()
    table = factory.output_file(project_id)
    request_id = _submit(factory, project_id, [table])
    factory.vote(request_id, "emma", Decision.RETURN, [table])
    factory.vote(request_id, "farid", Decision.APPROVE, [table])
    hidden = _extract_pupils(factory, project_id)[0]
    name = _labelled_table(factory, project_id, hidden, "nouveau")
    outputs.resubmit(factory.enclave.db, factory.enclave.settings, factory.actor("alice"),
                     request_id, Amendment(replace={name: "Nouveau tableau"}))
    checks = _checks(factory, request_id)
    assert _row_level(checks[name]).outcome is Outcome.FAIL
    assert _row_level(checks[table]).outcome is Outcome.PASS  # kept, checked again


def test_a_sidecar_naming_an_unpublished_extract_version_fails_closed(
        factory: Factory) -> None:
    project_id = factory.active_project()
    name = factory.output_file(project_id)
    side = sidecar_path(factory.outputs_dir(project_id) / name)
    doc = json.loads(side.read_text())
    doc.setdefault("population", {})["extract_version"] = 9
    side.write_text(json.dumps(doc))
    verdict = _row_level(_checks(factory, _submit(factory, project_id, [name]))[name])
    assert verdict.outcome is Outcome.FAIL and "extract v9" in verdict.message


def test_the_index_is_written_beside_the_extract_read_only_and_reused(
        factory: Factory) -> None:
    project_id = factory.active_project()
    root = factory.enclave.settings.projects_dir / project_id / "extract"
    before = sorted(p.name for p in (root / "v1").iterdir())
    _submit(factory, project_id, [factory.output_file(project_id)])
    index = root / ".pseudonym-index" / "v1.idx"
    assert index.is_file() and stat.S_IMODE(index.stat().st_mode) == 0o440
    assert sorted(p.name for p in (root / "v1").iterdir()) == before  # v1 untouched
    header, _, body = index.read_bytes().partition(b"\n")
    pupils = _extract_pupils(factory, project_id)
    assert header.split(b" ")[2] == str(len(pupils)).encode()
    assert body == "".join(pupils).encode()  # sorted, fixed width
    written = index.stat().st_mtime_ns
    pseudonym_index.clear_cache()
    _submit(factory, project_id, [factory.output_file(project_id, "autre.csv")])
    assert index.stat().st_mtime_ns == written  # opened, not rebuilt


def test_a_damaged_index_is_rebuilt(factory: Factory) -> None:
    project_id = factory.active_project()
    _submit(factory, project_id, [factory.output_file(project_id)])
    index = factory.enclave.settings.projects_dir / project_id / "extract" / \
        ".pseudonym-index" / "v1.idx"
    os.chmod(index, 0o640)
    index.write_bytes(index.read_bytes()[:-5])  # truncated
    pseudonym_index.clear_cache()
    hidden = _extract_pupils(factory, project_id)[-1]
    name = _labelled_table(factory, project_id, hidden, "dernier")
    assert _row_level(_checks(factory, _submit(factory, project_id, [name]))[name]).outcome \
        is Outcome.FAIL
    assert (len(index.read_bytes()) - index.read_bytes().index(b"\n") - 1) % 26 == 0


def test_the_request_page_shows_the_row_level_verdict_without_the_pseudonym(
        factory: Factory) -> None:
    from tests.portal.factories import Portal

    project_id = factory.active_project()
    hidden = _extract_pupils(factory, project_id)[5]
    name = _labelled_table(factory, project_id, f"6E {hidden}", "page")
    normal = factory.output_file(project_id)
    request_id = _submit(factory, project_id, [name, normal])
    portal = Portal(factory.enclave)
    for who in ("emma", "alice"):  # a controller, and the requester
        html = portal.client(who).get(f"outputs/{request_id}").text
        assert RULE in html and "row-level content" in html, who
        assert hidden[:4] + "…" in html, who
        assert hidden not in html, who  # neither in the verdicts, the grid nor the summary
    controller = portal.client("emma").get(f"outputs/{request_id}").text
    # files in name order: niveau_par_sexe.csv has its grid, page.csv none
    assert 'id="tableau-0"' in controller and 'id="tableau-1"' not in controller


def test_an_extract_whose_pseudonyms_cannot_be_read_fails_the_file_closed(
        factory: Factory) -> None:
    project_id = factory.active_project()
    parquet = factory.enclave.settings.projects_dir / project_id / "extract" / "v1" / \
        "eleves.parquet"
    os.chmod(parquet, 0o640)
    parquet.write_bytes(b"not parquet")
    name = factory.output_file(project_id)
    verdict = _row_level(_checks(factory, _submit(factory, project_id, [name]))[name])
    assert verdict.outcome is Outcome.FAIL
    assert "could not be read" in verdict.message and "eleves.parquet" in verdict.message


def test_the_indexes_of_a_project_can_be_removed_with_its_extract(factory: Factory) -> None:
    project_id = factory.active_project()
    _submit(factory, project_id, [factory.output_file(project_id)])
    root = factory.enclave.settings.projects_dir / project_id / "extract"
    assert pseudonym_index.remove_indexes(root) is True
    assert not (root / ".pseudonym-index").exists()
    assert pseudonym_index.remove_indexes(root) is False
