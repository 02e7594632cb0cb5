"""p% rule for magnitude tables (sums and means).

A cell is sensitive when the second-largest contributor could estimate the largest one to
within p percent: with ``X`` the cell total and ``x1 >= x2`` the two largest contributions,

    X - x1 - x2 < p/100 * x1

(Hundepool et al. 2012, *Statistical Disclosure Control*, section 4.2.2; ACRO ``safe_pratio_p``
= 10%). At equality the cell is safe. Contributions are each pupil's values added up within the
cell. A cell with a single contributor is always sensitive unless its total is 0; a cell with
negative contributions has no defined dominance and is sent for REVIEW.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from output_control.rules.common import cells_word, not_applicable, percent, verdict
from output_control.rules.registry import Parameter, RuleSpec, percentage
from output_control.table import Cell, SidecarTable, TableKind
from output_control.verdicts import CellFinding, Outcome, RuleVerdict

NAME = "p_percent"


def is_p_sensitive(total: float, x1: float, x2: float, p: float) -> bool:
    """``X - x1 - x2 < p/100 * x1``: the rest of the cell hides the largest contributor by less
    than p percent (computed as ``100 (X - x1 - x2) < p x1``, exact for whole numbers)."""
    return 100.0 * (total - x1 - x2) < p * x1


def check_p_percent(table: SidecarTable, parameters: Mapping[str, Any]) -> RuleVerdict:
    """Flag every non-empty cell of a sum or mean table that the p% rule finds sensitive."""
    p = float(parameters["p"])
    params = {"p": p}
    mag = table.magnitude
    if mag is None or not mag.statistic.linear:
        shown = mag.statistic.value if mag else table.kind.words
        return not_applicable(NAME, f"the table shows a {shown}, not a sum or mean", params)
    sensitive: list[CellFinding] = []
    undefined: list[CellFinding] = []
    for cell in table.cells:
        if cell.units == 0:
            continue
        if cell.negative:
            undefined.append(_undefined(cell))
            continue
        assert cell.total is not None  # noqa: S101 (magnitude cells carry totals)
        x1 = cell.top[0]
        x2 = cell.top[1] if len(cell.top) > 1 else 0.0
        if is_p_sensitive(cell.total, x1, x2, p):
            rest = cell.total - x1 - x2
            share = percent(rest / x1) if x1 else 0.0
            sensitive.append(
                CellFinding(
                    rule=NAME,
                    cell=cell.labels,
                    value=share,
                    message=(
                        f"the contributions other than the two largest add up to {share}% of the "
                        f"largest, less than {p:g}%"
                    ),
                )
            )
    parts = []
    if sensitive:
        verb = "fails" if len(sensitive) == 1 else "fail"
        parts.append(f"{cells_word(len(sensitive))} {verb} the p% rule (p = {p:g}%)")
    if undefined:
        parts.append(
            f"{cells_word(len(undefined))} with negative contributions, where dominance is "
            "undefined, need a controller"
        )
    return verdict(
        NAME,
        [*sensitive, *undefined],
        outcome=Outcome.FAIL if sensitive else Outcome.REVIEW,
        flagged="; ".join(parts),
        passed=f"no cell is dominated by its largest contributor (p = {p:g}%)",
        parameters=params,
    )


def _undefined(cell: Cell) -> CellFinding:
    return CellFinding(
        rule=NAME,
        cell=cell.labels,
        value=None,
        message="negative contributions: the p% rule is undefined",
    )


RULE = RuleSpec(
    name=NAME,
    description=__doc__.strip().splitlines()[0] if __doc__ else NAME,
    check=check_p_percent,
    parameters=(
        Parameter("p", "percentage within which no contributor may be estimated", percentage),
    ),
    kinds=frozenset({TableKind.MAGNITUDE_TABLE}),
)
