"""Files blocked by the automatic checks (the issue's "fail closed": a file that cannot be
trusted, or one carrying row-level content) can be rejected or returned, never approved nor
released, whatever the controllers vote; on both backends."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select, update

from enclave.core.exceptions import ValidationError
from output_control.checked import crosstab
from output_control.review import pseudonym_index
from output_control.review import workflow as outputs
from output_control.review.models import OutputFile, Review
from output_control.review.workflow import Decision, RequestStatus
from output_control.sidecar import INTEGRITY_RULE
from output_control.verdicts import CheckResult, Outcome, RuleVerdict
from tests.workflows.factories import OUTPUT_NAME, Factory


@pytest.fixture(autouse=True)
def _fresh_memory_cache() -> None:
    pseudonym_index.clear_cache()


def _submit(factory: Factory, project_id: str, names: list[str]) -> str:
    return outputs.submit_request(factory.enclave.db, factory.enclave.settings,
                                  factory.actor("alice"), project_id,
                                  dict.fromkeys(names, "Résultat du projet"))


def _vote(factory: Factory, who: str, request_id: str, name: str, decision: Decision) -> None:
    outputs.review(factory.enclave.db, factory.actor(who), request_id, {name: decision},
                   {name: "Motif du contrôleur"})


def _row_level_request(factory: Factory) -> tuple[str, str]:
    project_id = factory.active_project()
    folder = factory.enclave.settings.projects_dir / project_id / "extract" / "v1"
    pupils = sorted(set(pq.read_table(folder / "eleves.parquet", columns=["eleve"])
                        .column(0).to_pylist()))
    frame = pd.DataFrame({"eleve": pupils[:20], "ident": pupils[:20], "sexe": ["F", "M"] * 10})
    crosstab(frame, "ident", "sexe", name="par_eleve", outputs_dir=factory.outputs_dir(project_id))
    return project_id, _submit(factory, project_id, ["par_eleve.csv"])


def test_a_file_with_row_level_content_cannot_be_approved_and_nothing_is_recorded(
        factory: Factory) -> None:
    _, request_id = _row_level_request(factory)
    head = factory.audit_head()
    with pytest.raises(ValidationError, match=r"par_eleve\.csv is blocked .*row_level_content"):
        _vote(factory, "emma", request_id, "par_eleve.csv", Decision.APPROVE)
    assert factory.audit_events_after(head) == []
    with factory.enclave.db.sessions() as session:
        assert session.execute(select(Review).where(Review.request_id == request_id)).first() \
            is None
    _vote(factory, "emma", request_id, "par_eleve.csv", Decision.REJECT)  # rejecting is fine
    assert [e.action for e in factory.audit_events_after(head)] == ["output.reviewed"]


def test_a_file_that_failed_closed_cannot_be_approved_but_can_be_returned(
        factory: Factory) -> None:
    project_id = factory.active_project()
    outputs_dir = factory.outputs_dir(project_id)
    outputs_dir.mkdir(parents=True, exist_ok=True)
    (outputs_dir / "brut.csv").write_text("classe,n\n6A,3\n")  # no sidecar: fails closed
    request_id = _submit(factory, project_id, ["brut.csv"])
    with pytest.raises(ValidationError, match=rf"brut\.csv is blocked .*{INTEGRITY_RULE}"):
        _vote(factory, "emma", request_id, "brut.csv", Decision.APPROVE)
    _vote(factory, "emma", request_id, "brut.csv", Decision.RETURN)
    _vote(factory, "farid", request_id, "brut.csv", Decision.RETURN)
    with factory.enclave.db.sessions() as session:
        assert outputs._get(session, request_id).status == RequestStatus.RETURNED


def test_release_refuses_a_file_whose_stored_check_blocks_it(factory: Factory) -> None:
    """Defence in depth: even an approved request is not packaged with a blocked file."""
    request_id = factory.output_request()
    for who in ("emma", "farid"):
        _vote(factory, who, request_id, OUTPUT_NAME, Decision.APPROVE)
    blocked = CheckResult.from_verdicts(
        (RuleVerdict(rule=INTEGRITY_RULE, outcome=Outcome.FAIL, message="altered"),),
        "default", "test", "0" * 64)
    with factory.enclave.db.transaction() as session:
        session.execute(update(OutputFile).where(OutputFile.request_id == request_id)
                        .values(check_result=json.dumps(blocked.to_dict())))
    head = factory.audit_head()
    with pytest.raises(ValidationError, match="cannot be released"):
        outputs.release(factory.enclave.db, factory.enclave.settings,
                        factory.enclave.keys.signer(), factory.actor("emma"), request_id)
    assert factory.audit_events_after(head) == []
    assert not list(factory.enclave.settings.releases_dir.iterdir())
