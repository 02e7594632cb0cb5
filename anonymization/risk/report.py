"""One table of every record's risk, and the file-level summary a disclosure controller reads.

`risk_table` gathers, per record, the measures of this package: ``fk`` and ``Fk``
(`key_frequencies`), the individual risk (`individual_risk`), the household risk when a
household id is given (`household_risk`), the SUDA and DIS-SUDA scores (`suda2`) and whether the
record violates k-anonymity (``fk < k``). `summarise_risk` reduces such a table to the figures
sdcMicro prints for an ``sdcMicroObj`` (``print(sdc, "kAnon")`` and ``print(sdc, "risk")``;
Templ, Kowarik & Meindl 2015, J. Stat. Softw. 67(4), section 3): records violating 2-, 3- and
5-anonymity, the expected number of re-identifications ``sum r_i`` and its percentage, the
household version, and the records whose risk stands out (``r_i > median + 2 MAD`` and
``r_i > 0.1``, MAD scaled by 1.4826 as R's ``mad``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from anonymization.exceptions import InvalidParameterError, UnknownVariableError
from anonymization.risk._inputs import check_frame, check_k
from anonymization.risk.individual import measure_risk
from anonymization.risk.suda import suda2

__all__ = ["RiskSummary", "risk_table", "summarise_risk"]

VIOLATION_COLUMN = "violates_k_anonymity"
"""Name of the flag column of `risk_table`; the ``k`` used is in ``table.attrs["k"]``."""

MAD_SCALE = 1.4826
"""R's ``mad`` constant: makes the median absolute deviation consistent for a normal sd."""


def risk_table(
    data: pd.DataFrame,
    keys: str | Iterable[str],
    *,
    weight: str | None = None,
    household: str | None = None,
    k: int = 3,
    alpha: float = 1.0,
    suda: bool = True,
    suda_max_size: int | None = None,
    dis_fraction: float = 0.01,
) -> pd.DataFrame:
    """Per-record risk measures of ``keys``, indexed like ``data``.

    Columns: ``fk``, ``Fk``, ``risk`` (Benedetti-Franconi individual risk, or ``1/fk`` without
    weights), ``household_risk`` when ``household`` is given (``1 - prod(1 - r_j)`` over the
    household), ``suda_score`` and ``dis_suda_score`` when ``suda`` (MSUs up to
    ``suda_max_size`` keys, sampling fraction ``dis_fraction``), and ``violates_k_anonymity``
    (``fk < k``). ``table.attrs`` records ``keys``, ``weight``, ``household`` and ``k``.
    """
    data = check_frame(data)
    k = check_k(k)
    measures = measure_risk(data, keys, weight=weight, household=household, alpha=alpha)
    names = measures.frequencies.keys
    columns: dict[str, np.ndarray] = {
        "fk": measures.frequencies.fk,
        "Fk": measures.frequencies.Fk,
        "risk": measures.risk,
    }
    if measures.household_risk is not None:
        columns["household_risk"] = measures.household_risk
    if suda:
        result = suda2(data, names, max_size=suda_max_size, dis_fraction=dis_fraction)
        columns["suda_score"] = result.scores
        columns["dis_suda_score"] = result.dis_scores
    columns[VIOLATION_COLUMN] = measures.frequencies.fk < k
    table = pd.DataFrame(columns, index=data.index)
    table.attrs.update({"keys": list(names), "weight": weight, "household": household, "k": k})
    return table


@dataclass(frozen=True)
class RiskSummary:
    """File-level risk figures of a `risk_table` (sdcMicro's ``kAnon`` and ``risk`` prints).

    ``expected_reidentifications = sum_i r_i``; ``global_risk_pct = 100 * sum_i r_i / n``;
    ``violations_k<j> = #{i: fk_i < j}``; the household fields are ``None`` without households.
    """

    records: int
    expected_reidentifications: float
    global_risk_pct: float
    max_risk: float
    high_risk_records: int
    violations_k2: int
    violations_k3: int
    violations_k5: int
    k: int | None
    violations_k: int | None
    household_expected_reidentifications: float | None = None
    household_risk_pct: float | None = None
    max_dis_suda_score: float | None = None

    def percent_violating(self, k: int) -> float:
        """Percentage of records violating ``k``-anonymity for ``k`` in 2, 3, 5."""
        counts = {2: self.violations_k2, 3: self.violations_k3, 5: self.violations_k5}
        if k not in counts:
            raise InvalidParameterError("k", "2, 3 or 5 (the k the summary holds)", k)
        return 100.0 * counts[k] / self.records


def _require(table: pd.DataFrame, column: str) -> np.ndarray:
    if column not in table.columns:
        raise UnknownVariableError(column, "risk table", [str(c) for c in table.columns])
    return table[column].to_numpy(dtype=np.float64)


def summarise_risk(table: pd.DataFrame) -> RiskSummary:
    """Reduce a `risk_table` (columns ``fk`` and ``risk`` at least) to a `RiskSummary`.

    High-risk records follow sdcMicro's ``print(sdc, "risk")``: ``r_i > median(r) + 2 mad(r)``
    and ``r_i > 0.1``, with ``mad(r) = 1.4826 median(|r - median(r)|)``.
    """
    check_frame(table)
    fk = _require(table, "fk")
    risk = _require(table, "risk")
    n = len(risk)
    median = float(np.median(risk))
    mad = MAD_SCALE * float(np.median(np.abs(risk - median)))
    high = int(np.count_nonzero((risk > median + 2 * mad) & (risk > 0.1)))
    expected = float(risk.sum())
    household_expected = household_pct = None
    if "household_risk" in table.columns:
        household_expected = float(_require(table, "household_risk").sum())
        household_pct = 100.0 * household_expected / n
    k = table.attrs.get("k")
    violations_k = None
    if VIOLATION_COLUMN in table.columns:
        violations_k = int(table[VIOLATION_COLUMN].sum())
    max_dis = None
    if "dis_suda_score" in table.columns:
        max_dis = float(_require(table, "dis_suda_score").max())
    return RiskSummary(
        records=n,
        expected_reidentifications=expected,
        global_risk_pct=100.0 * expected / n,
        max_risk=float(risk.max()),
        high_risk_records=high,
        violations_k2=int(np.count_nonzero(fk < 2)),
        violations_k3=int(np.count_nonzero(fk < 3)),
        violations_k5=int(np.count_nonzero(fk < 5)),
        k=int(k) if k is not None else None,
        violations_k=violations_k,
        household_expected_reidentifications=household_expected,
        household_risk_pct=household_pct,
        max_dis_suda_score=max_dis,
    )
