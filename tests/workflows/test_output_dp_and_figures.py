"""Submission checks by kind, on both backends: DP results charged to the privacy budget in the
submission's transaction (and the race for the last epsilon), figures proved to be the drawing
of their frozen table, and forged sidecars failing closed with the reason.
"""

from __future__ import annotations

import hashlib
import json
import threading
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from access_requests.workflow import ProjectStatus
from anonymization.dp import dp_count
from enclave.core.exceptions import PermissionDenied, ValidationError
from enclave.privacy_budget import BudgetExceeded, NoBudget, ledger, set_budget
from enclave.privacy_budget.models import PrivacySpend
from output_control.analysis import write_dp_result
from output_control.analysis.charts import figure_sidecar_path, histogram
from output_control.checked import pivot_table
from output_control.review import workflow as outputs
from output_control.review.models import OutputRequest
from output_control.review.workflow import Amendment, Decision, RequestStatus
from output_control.sidecar import sidecar_path
from output_control.verdicts import CheckResult
from tests.workflows.factories import STAFF, Factory, pupils_frame


def _dp_file(factory: Factory, project_id: str, name: str = "nb_traces",
             epsilon: float = 0.5, dataset: str = "eleves") -> str:
    data = pd.DataFrame({"eleve": [f"p{i % 30}" for i in range(90)]})
    result = dp_count(data, pupil="eleve", epsilon=epsilon, max_contributions=3)
    write_dp_result(result, name=name, dataset=dataset,
                    outputs_dir=factory.outputs_dir(project_id))
    return name + ".csv"


def _budget(factory: Factory, project_id: str, epsilon: float, dataset: str = "eleves") -> None:
    set_budget(factory.enclave.db, factory.actor(STAFF), project_id, dataset, epsilon=epsilon,
               reason="Budget du projet")


def _spent(factory: Factory, project_id: str, dataset: str = "eleves") -> Decimal:
    return ledger(factory.enclave.db, factory.actor(STAFF), project_id, dataset).spent_epsilon


def _spends(factory: Factory, project_id: str) -> int:
    with factory.enclave.db.sessions() as session:
        return int(session.execute(select(func.count()).select_from(PrivacySpend)
                                   .where(PrivacySpend.project_id == project_id)).scalar_one())


def _submit(factory: Factory, who: str, project_id: str, names: list[str]) -> str:
    return outputs.submit_request(factory.enclave.db, factory.enclave.settings,
                                  factory.actor(who), project_id,
                                  dict.fromkeys(names, "Résultat du projet"))


def _checks(factory: Factory, request_id: str) -> dict[str, CheckResult]:
    with factory.enclave.db.sessions() as session:
        return {f.name: CheckResult.from_dict(json.loads(f.check_result))
                for f in outputs.files_of(session, request_id)}


def _nothing_submitted(factory: Factory, project_id: str, head: int) -> None:
    with factory.enclave.db.sessions() as session:
        assert session.execute(select(func.count()).select_from(OutputRequest).where(
            OutputRequest.project_id == project_id)).scalar_one() == 0
    folder = factory.enclave.settings.projects_dir / project_id / "requests"
    assert not folder.exists() or list(folder.iterdir()) == []
    assert factory.audit_events_after(head) == []


# -- differential privacy -------------------------------------------------------------------

def test_a_dp_result_is_charged_with_the_request_and_passes_as_a_dp_output(
        factory: Factory) -> None:
    project_id = factory.active_project()
    _budget(factory, project_id, 1.0)
    first = _dp_file(factory, project_id, "a", 0.25)
    second = _dp_file(factory, project_id, "b", 0.5)
    head = factory.audit_head()
    request_id = _submit(factory, "alice", project_id, [first, second])
    assert _spent(factory, project_id) == Decimal("0.75")  # summed: one spend per dataset
    assert _spends(factory, project_id) == 1
    checks = _checks(factory, request_id)
    for name, epsilon in ((first, "0.25"), (second, "0.5")):
        assert checks[name].outcome.value == "pass"
        dp = next(v for v in checks[name].verdicts if v.rule == "differential_privacy")
        assert f"epsilon {epsilon}" in dp.message and "eleves" in dp.message
    events = factory.audit_events_after(head)
    assert [e.action for e in events] == ["privacy_budget.spent", "output.submitted"]
    submitted = json.loads(events[-1].details)
    assert submitted["privacy_spends"][0]["dataset"] == "eleves"
    assert submitted["privacy_spends"][0]["epsilon"] == "0.75"
    assert submitted["privacy_spends"][0]["files"] == [first, second]


def test_a_submission_over_the_remaining_budget_is_refused_and_leaves_nothing(
        factory: Factory) -> None:
    project_id = factory.active_project()
    _budget(factory, project_id, 0.4)
    name = _dp_file(factory, project_id, epsilon=0.5)
    head = factory.audit_head()
    with pytest.raises(BudgetExceeded, match=r"refused.*nb_traces.csv.*epsilon 0\.5"):
        _submit(factory, "alice", project_id, [name])
    _nothing_submitted(factory, project_id, head)
    assert _spent(factory, project_id) == 0


def test_a_dp_result_on_a_dataset_outside_the_extract_is_refused(factory: Factory) -> None:
    project_id = factory.active_project()
    _budget(factory, project_id, 5.0, dataset="traces_xapi")
    name = _dp_file(factory, project_id, dataset="traces_xapi")
    head = factory.audit_head()
    with pytest.raises(ValidationError, match="not in the project's extract"):
        _submit(factory, "alice", project_id, [name])
    _nothing_submitted(factory, project_id, head)


def test_a_dp_result_without_a_budget_is_refused(factory: Factory) -> None:
    project_id = factory.active_project()
    name = _dp_file(factory, project_id)
    head = factory.audit_head()
    with pytest.raises(NoBudget):
        _submit(factory, "alice", project_id, [name])
    _nothing_submitted(factory, project_id, head)


@pytest.mark.parametrize(("who", "allowed"), [("alice", True), ("bruno", True),
                                              ("rita", False), ("dora", False),
                                              ("emma", False), ("claire", False)])
def test_only_members_who_may_ask_for_outputs_charge_the_budget(
        factory: Factory, who: str, allowed: bool) -> None:
    project_id = factory.active_project()
    _budget(factory, project_id, 1.0)
    name = _dp_file(factory, project_id)
    if allowed:
        _submit(factory, who, project_id, [name])
        assert _spent(factory, project_id) == Decimal("0.5")
    else:
        with pytest.raises(PermissionDenied):
            _submit(factory, who, project_id, [name])
        assert _spent(factory, project_id) == 0


def test_a_withdrawn_request_keeps_its_charge(factory: Factory) -> None:
    project_id = factory.active_project()
    _budget(factory, project_id, 1.0)
    request_id = _submit(factory, "alice", project_id, [_dp_file(factory, project_id)])
    outputs.withdraw(factory.enclave.db, factory.actor("alice"), request_id, "Plus utile")
    assert _spent(factory, project_id) == Decimal("0.5")


def test_a_forged_dp_sidecar_fails_closed_and_charges_nothing(factory: Factory) -> None:
    project_id = factory.active_project()
    _budget(factory, project_id, 1.0)
    name = _dp_file(factory, project_id)
    side = sidecar_path(factory.outputs_dir(project_id) / name)
    doc = json.loads(side.read_text())
    doc["epsilon"] = 0.001  # claims less than its accounting record spent
    side.write_text(json.dumps(doc))
    request_id = _submit(factory, "alice", project_id, [name])
    verdict = _checks(factory, request_id)[name].verdicts[0]
    assert (verdict.rule, verdict.outcome.value) == ("file_integrity", "fail")
    assert "accounting" in verdict.message
    assert _spent(factory, project_id) == 0


def test_two_submissions_racing_for_the_last_epsilon_one_wins(factory: Factory) -> None:
    project_id = factory.active_project()
    _budget(factory, project_id, 1.0)
    names = [_dp_file(factory, project_id, f"course{i}", 0.6) for i in range(2)]
    barrier = threading.Barrier(2)
    results: list[object] = [None, None]

    def submit(i: int) -> None:
        barrier.wait()
        try:
            results[i] = _submit(factory, "alice", project_id, [names[i]])
        except Exception as exc:  # the loser's exception is the observation
            results[i] = exc

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    winners = [r for r in results if isinstance(r, str)]
    losers = [r for r in results if isinstance(r, BudgetExceeded)]
    assert len(winners) == 1 and len(losers) == 1, results
    assert _spent(factory, project_id) == Decimal("0.6")
    assert _spends(factory, project_id) == 1
    folder = factory.enclave.settings.projects_dir / project_id / "requests"
    assert sorted(p.name for p in folder.iterdir()) == winners


# -- figures ----------------------------------------------------------------------------------

def _scores(per_bin: int = 12) -> pd.DataFrame:
    values = np.repeat([5.0, 15.0], per_bin)
    return pd.DataFrame({"eleve": [f"e{i}" for i in range(len(values))], "score": values})


def _figure(factory: Factory, project_id: str, per_bin: int = 12) -> str:
    histogram(_scores(per_bin), "score", 2, range=(0, 20), name="scores",
              outputs_dir=factory.outputs_dir(project_id))
    return "scores.png"


def test_a_figure_is_frozen_with_its_table_and_judged_by_the_policy(factory: Factory) -> None:
    project_id = factory.active_project()
    png = _figure(factory, project_id)
    request_id = _submit(factory, "alice", project_id, [png])
    folder = Path(outputs.view_request(factory.enclave.db, factory.actor("alice"),
                                       request_id).request.folder)
    assert {"scores.png", "scores.png.sidecar.json", "scores.csv",
            "scores.csv.sidecar.json"} <= {p.name for p in folder.iterdir()}
    checks = _checks(factory, request_id)[png]
    integrity = checks.verdicts[0]
    assert integrity.outcome.value == "pass" and "drawing of its checked table" in \
        integrity.message
    assert "minimum_count" in {v.rule for v in checks.verdicts}
    assert checks.outcome.value == "pass"


def test_a_figure_of_small_counts_is_flagged_by_the_rules_on_its_table(
        factory: Factory) -> None:
    project_id = factory.active_project()
    png = _figure(factory, project_id, per_bin=3)
    checks = _checks(factory, _submit(factory, "alice", project_id, [png]))[png]
    assert checks.outcome.value == "fail"
    assert next(v for v in checks.verdicts if v.rule == "minimum_count").outcome.value == "fail"


def test_a_png_that_is_not_the_drawing_of_its_table_fails_closed(factory: Factory) -> None:
    project_id = factory.active_project()
    png = _figure(factory, project_id)
    path = factory.outputs_dir(project_id) / png
    forged = path.read_bytes() + b"\x00hidden"  # extra bytes, record updated to match
    path.write_bytes(forged)
    record = figure_sidecar_path(path)
    doc = json.loads(record.read_text())
    doc["figure"]["sha256"] = hashlib.sha256(forged).hexdigest()
    record.write_text(json.dumps(doc))
    verdict = _checks(factory, _submit(factory, "alice", project_id, [png]))[png].verdicts[0]
    assert (verdict.rule, verdict.outcome.value) == ("file_integrity", "fail")
    assert "not the drawing of its checked table" in verdict.message


def test_a_figure_whose_table_is_missing_fails_closed(factory: Factory) -> None:
    project_id = factory.active_project()
    png = _figure(factory, project_id)
    (factory.outputs_dir(project_id) / "scores.csv").unlink()
    verdict = _checks(factory, _submit(factory, "alice", project_id, [png]))[png].verdicts[0]
    assert (verdict.rule, verdict.outcome.value) == ("file_integrity", "fail")


# -- forged sidecars --------------------------------------------------------------------------

def test_a_csv_whose_counts_disagree_with_its_sidecar_fails_closed(factory: Factory) -> None:
    project_id = factory.active_project()
    name = factory.output_file(project_id)
    side = sidecar_path(factory.outputs_dir(project_id) / name)
    doc = json.loads(side.read_text())
    doc["table"]["rows"][0][0] += 30  # the sidecar claims more rows than the CSV publishes
    doc["table"]["units"][0][0] += 30
    side.write_text(json.dumps(doc))
    verdict = _checks(factory, _submit(factory, "alice", project_id, [name]))[name].verdicts[0]
    assert (verdict.rule, verdict.outcome.value) == ("file_integrity", "fail")
    assert "cell" in verdict.message and "sidecar" in verdict.message


def test_a_mean_that_its_sidecar_contributions_do_not_give_fails_closed(
        factory: Factory) -> None:
    project_id = factory.active_project()
    frame = pupils_frame().assign(score=1.0)
    pivot_table(frame, "score", "sexe", "niveau", aggfunc="mean", name="moyennes",
                outputs_dir=factory.outputs_dir(project_id))
    side = sidecar_path(factory.outputs_dir(project_id) / "moyennes.csv")
    doc = json.loads(side.read_text())
    doc["table"]["magnitude"]["totals"][0][0] = 100.0  # dominance would read a false total
    side.write_text(json.dumps(doc))
    name = "moyennes.csv"
    verdict = _checks(factory, _submit(factory, "alice", project_id, [name]))[name].verdicts[0]
    assert (verdict.rule, verdict.outcome.value) == ("file_integrity", "fail")
    assert "contributions give" in verdict.message


def test_a_released_figure_puts_its_table_in_the_ledger_and_only_the_png_in_the_package(
        factory: Factory) -> None:
    project_id = factory.active_project()
    png = _figure(factory, project_id)
    request_id = _submit(factory, "alice", project_id, [png])
    for controller in ("emma", "farid"):
        factory.vote(request_id, controller, Decision.APPROVE, [png])
    package = outputs.release(factory.enclave.db, factory.enclave.settings,
                              factory.enclave.keys.signer(), factory.actor("emma"), request_id)
    assert sorted(p.name for p in (package.path / "files").iterdir()) == [png]
    with factory.enclave.db.sessions() as session:
        ledger_rows = outputs.released_tables(session, project_id)
        assert [t.file_name for t in ledger_rows] == [png]
        assert outputs.view_request(factory.enclave.db, factory.actor("alice"),
                                    request_id).request.status == RequestStatus.RELEASED


def test_a_dp_result_brought_in_by_an_amendment_is_charged_then(factory: Factory) -> None:
    project_id = factory.active_project()
    _budget(factory, project_id, 1.0)
    table = factory.output_file(project_id)
    request_id = _submit(factory, "alice", project_id, [table])
    factory.vote(request_id, "emma", Decision.RETURN, [table])
    factory.vote(request_id, "farid", Decision.APPROVE, [table])
    name = _dp_file(factory, project_id, epsilon=0.75)
    outputs.resubmit(factory.enclave.db, factory.enclave.settings, factory.actor("alice"),
                     request_id, Amendment(replace={name: "Compte bruité"}))
    assert _spent(factory, project_id) == Decimal("0.75")
    factory.vote(request_id, "emma", Decision.RETURN, [table, name])
    factory.vote(request_id, "farid", Decision.APPROVE, [table, name])
    head = factory.audit_head()
    with pytest.raises(BudgetExceeded):  # the replacement would be charged again: 0.25 left
        outputs.resubmit(factory.enclave.db, factory.enclave.settings, factory.actor("alice"),
                         request_id, Amendment(replace={name: "Compte bruité, nouvelle "
                                                              "version"}))
    assert factory.audit_events_after(head) == []
    assert _spent(factory, project_id) == Decimal("0.75")


def test_a_refused_charge_on_one_dataset_rolls_back_the_others(factory: Factory) -> None:
    project_id = factory.project(ProjectStatus.ACTIVE, variables={
        "eleves": [("sexe", "Écarts filles-garçons"), ("niveau", "Analyse par niveau")],
        "evaluations_reperes": [("domaine", "x"), ("score", "x")]})
    _budget(factory, project_id, 1.0)
    _budget(factory, project_id, 0.1, dataset="evaluations_reperes")
    names = [_dp_file(factory, project_id, "sur_eleves", 0.5),
             _dp_file(factory, project_id, "sur_evaluations", 0.5,
                      dataset="evaluations_reperes")]
    head = factory.audit_head()
    with pytest.raises(BudgetExceeded, match="evaluations_reperes"):
        _submit(factory, "alice", project_id, names)
    # eleves sorts first and was charged in the transaction, then rolled back with it
    assert _spent(factory, project_id) == 0
    _nothing_submitted(factory, project_id, head)
