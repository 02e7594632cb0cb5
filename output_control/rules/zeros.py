"""Zeros and structural zeros.

A published zero (an empty cell) tells that *nobody* in that group has that attribute, which is
itself a disclosure about everyone in the group (ACRO ``zeros_are_disclosive``; GSS/Eurostat
output-checking guidance on "disclosive zeros"). Each empty cell of a frequency or magnitude
table is therefore sent for REVIEW (or FAIL, as the policy says), unless it is a *structural*
zero, empty by construction (e.g. no "CP" pupils in a "collège"): declared in the sidecar by
the researcher or matched by a pattern of the policy's ``structural_zeros``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from output_control.rules.common import cells_word, verdict
from output_control.rules.registry import Parameter, RuleSpec, outcome_choice
from output_control.table import SidecarTable
from output_control.verdicts import CellFinding, Outcome, RuleVerdict

NAME = "zeros"


def check_zeros(table: SidecarTable, parameters: Mapping[str, Any]) -> RuleVerdict:
    """Flag every empty cell that is not a declared structural zero."""
    outcome = Outcome(parameters["outcome"])
    params = {"outcome": outcome.value}
    findings = [
        CellFinding(
            rule=NAME,
            cell=cell.labels,
            value=0,
            message="empty cell: discloses that no pupil of this group has this attribute",
        )
        for cell in table.cells
        if cell.units == 0 and not cell.structural
    ]
    structural = sum(1 for cell in table.cells if cell.structural)
    n = len(findings)
    declared = "is empty and not declared a structural zero" if n == 1 else (
        "are empty and not declared structural zeros"
    )
    return verdict(
        NAME,
        findings,
        outcome=outcome,
        flagged=(
            f"{cells_word(n)} {declared}; a controller must judge whether the absence is "
            "disclosive"
        ),
        passed=(
            "no empty cell"
            if not structural
            else f"the only empty cells ({structural}) are declared structural zeros"
        ),
        parameters=params,
    )


RULE = RuleSpec(
    name=NAME,
    description=__doc__.strip().splitlines()[0] if __doc__ else NAME,
    check=check_zeros,
    parameters=(
        Parameter(
            "outcome", "outcome for a non-structural empty cell", outcome_choice, default="review"
        ),
    ),
)
