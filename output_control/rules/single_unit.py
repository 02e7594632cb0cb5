"""Minima, maxima and percentiles are single-unit values.

The minimum or maximum of a cell is one pupil's own value, and a median (a percentile) is one
pupil's value or the average of two: publishing it discloses that value, however many pupils
the cell counts (GSS/Eurostat output-checking guidance: maxima and minima are "unsafe" unless
they are shown to be non-disclosive; Hundepool et al. 2012, section 4.2). Every non-empty cell
of a min or max table is flagged with the ``extremes`` outcome, of a median or quantile table
with the ``percentiles`` outcome (FAIL or REVIEW, from the policy). A quantile table states the
level of each column, so a finding names it: "the 10th percentile of 40 pupils".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from output_control.rules.common import cells_word, not_applicable, verdict
from output_control.rules.registry import Parameter, RuleSpec, outcome_choice
from output_control.table import SidecarTable, Statistic, TableKind
from output_control.verdicts import CellFinding, Outcome, RuleVerdict
from output_control.words import percentile_words

NAME = "single_unit_values"


def check_single_unit_values(table: SidecarTable, parameters: Mapping[str, Any]) -> RuleVerdict:
    """Flag every non-empty cell of a min, max, median or quantile table."""
    extremes = Outcome(parameters["extremes"])
    percentiles = Outcome(parameters["percentiles"])
    params = {"extremes": extremes.value, "percentiles": percentiles.value}
    mag = table.magnitude
    if mag is None or not mag.statistic.single_unit:
        shown = mag.statistic.value if mag else table.kind.words
        return not_applicable(NAME, f"the table shows a {shown}", params)
    statistic = mag.statistic
    what = {Statistic.MIN: "minimum", Statistic.MAX: "maximum", Statistic.MEDIAN: "median",
            Statistic.QUANTILE: "percentile"}[statistic]
    n_columns = len(table.column_labels)
    findings = []
    for position, cell in enumerate(table.cells):
        if cell.units <= 0:
            continue
        if statistic is Statistic.QUANTILE and mag.levels is not None:
            named = percentile_words(mag.levels[position % n_columns])
            message = (f"the {named} of {cell.units} pupils is one pupil's own value (or "
                       "interpolated between two)")
        else:
            message = f"the {what} of {cell.units} pupils is one pupil's own value"
        findings.append(CellFinding(rule=NAME, cell=cell.labels, value=cell.units,
                                    message=message))
    single = statistic in (Statistic.MIN, Statistic.MAX)
    outcome = extremes if single else percentiles
    n = len(findings)
    return verdict(
        NAME,
        findings,
        outcome=outcome,
        flagged=f"{cells_word(n)} {'shows' if n == 1 else 'show'} a {what}, a single pupil's value",
        passed="no non-empty cell",
        parameters=params,
    )


RULE = RuleSpec(
    name=NAME,
    description=__doc__.strip().splitlines()[0] if __doc__ else NAME,
    check=check_single_unit_values,
    parameters=(
        Parameter("extremes", "outcome for a minimum or maximum", outcome_choice, "fail"),
        Parameter("percentiles", "outcome for a median or another quantile", outcome_choice,
                  "review"),
    ),
    kinds=frozenset({TableKind.MAGNITUDE_TABLE}),
)
