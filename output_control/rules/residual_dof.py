"""Minimum residual degrees of freedom for model outputs (regressions).

A model fitted with few residual degrees of freedom (observations minus estimated parameters)
is close to a lookup table: its estimates can reveal individual values. ACRO's
``safe_dof_threshold`` is 10 and the GSS/Eurostat output-checking guidance asks for "at least
10 residual degrees of freedom". A model output fails when ``dof < threshold``; exactly at the
threshold it passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from output_control.rules.registry import Parameter, RuleSpec, positive_int
from output_control.table import SidecarTable, TableKind
from output_control.verdicts import Outcome, RuleVerdict

NAME = "residual_degrees_of_freedom"


def check_residual_dof(table: SidecarTable, parameters: Mapping[str, Any]) -> RuleVerdict:
    """FAIL a model with fewer than ``threshold`` residual degrees of freedom."""
    threshold = int(parameters["threshold"])
    params = {"threshold": threshold}
    model = table.model
    if model is None:
        return RuleVerdict(
            rule=NAME,
            outcome=Outcome.FAIL,
            message="the output records no residual degrees of freedom",
            parameters=params,
        )
    if model.dof < threshold:
        return RuleVerdict(
            rule=NAME,
            outcome=Outcome.FAIL,
            message=(
                f"the {model.estimator} model has {model.dof} residual degrees of freedom "
                f"({model.n_obs} observations), fewer than {threshold}"
            ),
            parameters=params,
        )
    return RuleVerdict(
        rule=NAME,
        outcome=Outcome.PASS,
        message=(
            f"the {model.estimator} model has {model.dof} residual degrees of freedom, at least "
            f"{threshold}"
        ),
        parameters=params,
    )


RULE = RuleSpec(
    name=NAME,
    description=__doc__.strip().splitlines()[0] if __doc__ else NAME,
    check=check_residual_dof,
    parameters=(
        Parameter("threshold", "smallest allowed residual degrees of freedom", positive_int),
    ),
    kinds=frozenset({TableKind.MODEL_OUTPUT}),
)
