"""Charging the DP results of an output request to the project's privacy budget, in the
transaction that stores the request (see :func:`charge_dp`)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from enclave.core.exceptions import ValidationError
from enclave.core.policy import Actor
from enclave.privacy_budget.exceptions import BudgetExceeded
from enclave.privacy_budget.ledger import charge as charge_budget
from enclave.provisioning.models import Extract
from output_control.analysis.dp_outputs import DPOutput, total_spend


def extract_datasets(session: Session, project_id: str) -> set[str]:
    """The datasets of the project's latest published extract."""
    extract = session.execute(select(Extract).where(
        Extract.project_id == project_id, Extract.status == "published")
        .order_by(Extract.version.desc()).limit(1)).scalar()
    if extract is None:
        return set()
    try:
        datasets = json.loads(extract.manifest)["spec"]["datasets"]
    except (ValueError, KeyError, TypeError):
        return set()
    return {str(d) for d in datasets}


def charge_dp(session: Session, actor: Actor, project_id: str, request_id: str,
              review_round: int, declared: list[DPOutput]) -> list[dict[str, Any]]:
    """Charge the DP results ``declared`` (read from the request's frozen files) to the
    project's privacy budget, in the caller's transaction (the request's row and its charges
    commit together, or neither does); returns what was charged, for the audit event.

    Spends are summed per dataset (sequential composition, ``total_spend``) and charged in
    dataset order, so concurrent submissions lock budget rows in the same order; a charge over
    the remaining budget raises :class:`BudgetExceeded`, which rolls the submission back.

    A charge is **never refunded**, not when the request is withdrawn, returned or rejected:
    the ledger is append-only (its total is what an auditor checks against the budget), the
    review's outcome (a return, a rejection, a controller's comment) is itself information
    that depends on the noisy values and reaches the researcher, and a charge that a later
    state could undo would let a submit-then-withdraw loop spend nothing while showing the
    same values to controllers again and again.
    """
    if not declared:
        return []
    allowed = extract_datasets(session, project_id)
    for output in declared:
        if output.dataset not in allowed:
            raise ValidationError(
                f"{output.file_name} declares dataset {output.dataset!r}, which is not in the "
                f"project's extract ({', '.join(sorted(allowed)) or 'none'}): its epsilon "
                "cannot be charged, so it cannot be submitted")
    charged = []
    for dataset, (epsilon, delta) in sorted(total_spend(declared).items()):
        names = sorted(o.file_name for o in declared if o.dataset == dataset)
        try:
            spend = charge_budget(
                session, actor, project_id, dataset, epsilon=epsilon, delta=delta,
                description=f"output request {request_id} round {review_round}: "
                            + ", ".join(names))
        except BudgetExceeded as exc:
            raise BudgetExceeded(f"the request is refused: its differentially private results "
                                 f"on {dataset} ({', '.join(names)}) need epsilon {epsilon:g}, "
                                 f"delta {delta:g}; {exc}") from None
        charged.append({"dataset": dataset, "epsilon": str(spend.epsilon),
                        "delta": str(spend.delta), "spend_id": spend.spend_id,
                        "files": names})
    return charged
