"""(n, k) dominance rule for magnitude tables (sums and means).

A cell is sensitive when its ``n`` largest contributions exceed ``k`` percent of its total:

    x1 + ... + xn > k/100 * X

(Hundepool et al. 2012, *Statistical Disclosure Control*, section 4.2.2; tau-ARGUS "dominance
rule"). Several pairs may apply at once: ACRO's default is (n=2, k=90%); French statistical
secrecy for business data adds (n=1, k=85%): no single unit may make up more than 85% of a
cell. At equality the cell is safe. Contributions are each pupil's values added up within the
cell; a cell with fewer than ``n`` contributors is sensitive unless its total is 0; a cell with
negative contributions has no defined dominance and is sent for REVIEW.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from output_control.rules.common import cells_word, not_applicable, percent, verdict
from output_control.rules.registry import Parameter, RuleSpec, nk_pairs, to_nk_pairs
from output_control.table import SidecarTable, TableKind
from output_control.verdicts import CellFinding, Outcome, RuleVerdict

NAME = "nk_dominance"


def is_nk_sensitive(total: float, top: tuple[float, ...], n: int, k: float) -> bool:
    """``sum(n largest) > k/100 * X``; ``top`` must hold the n largest (or all) contributions
    (computed as ``100 sum > k X``, exact for whole numbers)."""
    return 100.0 * sum(top[:n]) > k * total


def check_nk_dominance(table: SidecarTable, parameters: Mapping[str, Any]) -> RuleVerdict:
    """Flag every non-empty cell of a sum or mean table dominated under any (n, k) pair."""
    pairs: tuple[tuple[int, float], ...] = tuple(parameters["pairs"])
    params = {"pairs": [{"n": n, "k": k} for n, k in pairs]}
    mag = table.magnitude
    if mag is None or not mag.statistic.linear:
        shown = mag.statistic.value if mag else table.kind.words
        return not_applicable(NAME, f"the table shows a {shown}, not a sum or mean", params)
    needed = max(n for n, _ in pairs)
    sensitive: list[CellFinding] = []
    undefined: list[CellFinding] = []
    for cell in table.cells:
        if cell.units == 0:
            continue
        if cell.negative:
            undefined.append(
                CellFinding(
                    rule=NAME,
                    cell=cell.labels,
                    value=None,
                    message="negative contributions: dominance is undefined",
                )
            )
            continue
        if cell.units > len(cell.top) and len(cell.top) < needed:
            return RuleVerdict(
                rule=NAME,
                outcome=Outcome.FAIL,
                message=(
                    f"the sidecar records only the {len(cell.top)} largest contributions per "
                    f"cell but the policy needs {needed}; write the table again"
                ),
                parameters=params,
            )
        assert cell.total is not None  # noqa: S101 (magnitude cells carry totals)
        fired = [(n, k) for n, k in pairs if is_nk_sensitive(cell.total, cell.top, n, k)]
        if fired:
            n, k = fired[0]
            share = percent(sum(cell.top[:n]) / cell.total) if cell.total else 100.0
            largest = "largest contribution makes" if n == 1 else f"{n} largest contributions make"
            sensitive.append(
                CellFinding(
                    rule=NAME,
                    cell=cell.labels,
                    value=share,
                    message=f"the {largest} up {share}% of the cell, more than {k:g}%",
                )
            )
    parts = []
    rules = ", ".join(f"(n={n}, k={k:g}%)" for n, k in pairs)
    if sensitive:
        parts.append(f"{cells_word(len(sensitive))} dominated under {rules}")
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
        passed=f"no cell is dominated under {rules}",
        parameters=params,
    )


RULE = RuleSpec(
    name=NAME,
    description=__doc__.strip().splitlines()[0] if __doc__ else NAME,
    check=check_nk_dominance,
    parameters=(
        Parameter(
            "pairs",
            "list of {n, k}: the n largest contributions may not exceed k% of a cell",
            nk_pairs,
            convert=to_nk_pairs,
        ),
    ),
    kinds=frozenset({TableKind.MAGNITUDE_TABLE}),
)
