"""Individual, global and household (hierarchical) re-identification risk, as sdcMicro rates it.

The individual risk of a record is the Benedetti-Franconi estimate ``r_k = E(1 / F_k | f_k)``
of the chance that a record whose key combination occurs ``f_k`` times in the sample is
re-identified in a population where it occurs ``F_k`` times, ``F_k | f_k`` being negative
binomial with success probability ``p_k = f_k / F_k`` (Franconi & Polettini 2004, "Individual
risk estimation in mu-Argus: a review", PSD 2004, LNCS 3050, 262-272). sdcMicro's default
approximation (reference manual, ``indivRisk(method = "approx")``, used by ``measure_risk``;
Templ, Kowarik & Meindl 2015, J. Stat. Softw. 67(4), section 3.2) is::

    f_k = 1:  r_k = p_k / (1 - p_k) * log(1 / p_k)
    f_k = 2:  r_k = p_k / (1 - p_k) - (p_k / (1 - p_k))^2 * log(1 / p_k)
    f_k > 2:  r_k = p_k / (f_k - (1 - p_k))
    F_k = f_k (every weight 1): r_k = 1 / f_k

times a correction factor ``qual`` (default 1). Unweighted data is a population: ``r_k = 1/f_k``
(sdcMicro's ``survey = FALSE``). The same formula with ``1 - p_k`` computed as
``(F_k - f_k) / F_k`` and ``log(1 / p_k)`` as ``-log1p(-(1 - p_k))`` keeps full precision when
``F_k`` is close to ``f_k``, where the textbook form cancels catastrophically.

The global risk is the expected number of re-identifications ``ER = sum_i r_i``, also given per
record (``ER / n``) and in percent (sdcMicro ``measure_risk``: ``global_risk_ER``,
``global_risk``, ``global_risk_pct``). The household risk of a record is the chance that at
least one member of its household is re-identified, ``1 - prod_{i in h} (1 - r_i)``, assigned to
every member; its global version sums it over records, ``hier_risk_ER = sum_i hr_i`` (and
``/ n``, and in percent), as sdcMicro's ``measure_risk(hid = ...)`` does with ``fast_hier``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from anonymization.exceptions import EmptyDataError, InvalidParameterError
from anonymization.risk._inputs import check_frame, check_households
from anonymization.risk.frequencies import KeyFrequencies, key_frequencies

__all__ = [
    "GlobalRisk",
    "RiskMeasures",
    "global_risk",
    "household_risk",
    "individual_risk",
    "measure_risk",
]


@dataclass(frozen=True)
class GlobalRisk:
    """Expected re-identifications ``ER = sum r_i`` over ``records``, per record and in percent."""

    expected_reidentifications: float
    records: int

    @property
    def risk(self) -> float:
        """``ER / n``: the mean individual risk (sdcMicro ``global_risk``)."""
        return self.expected_reidentifications / self.records

    @property
    def percent(self) -> float:
        """``100 * ER / n`` (sdcMicro ``global_risk_pct``)."""
        return 100.0 * self.risk


def _check_qual(qual: float) -> float:
    if isinstance(qual, bool) or not isinstance(qual, int | float) or not qual > 0:
        raise InvalidParameterError("qual", "a number > 0 (a final correction factor)", qual)
    return float(qual)


def individual_risk(
    fk: ArrayLike, Fk: ArrayLike, *, weighted: bool = True, qual: float = 1.0
) -> np.ndarray:
    """Benedetti-Franconi individual risk of each record from its ``fk`` and ``Fk``.

    The approximation of sdcMicro's ``indivRisk(method = "approx", qual, survey = weighted)``
    written in the module docstring: ``p = fk / Fk``; ``fk = 1``: ``p/(1-p) log(1/p)``;
    ``fk = 2``: ``p/(1-p) - (p/(1-p))^2 log(1/p)``; ``fk > 2``: ``p / (fk - (1 - p))``;
    ``Fk = fk``: ``1/fk``; all times ``qual``. ``weighted=False`` (a population) gives ``1/fk``.
    A fractional ``1 < fk < 2`` (from ``alpha < 1``) is rated with the ``fk = 1`` formula, where
    sdcMicro returns 0. With weights >= 1 the risk lies in (0, 1].
    """
    f = np.asarray(fk, dtype=np.float64)
    big_f = np.asarray(Fk, dtype=np.float64)
    if f.shape != big_f.shape:
        raise InvalidParameterError("Fk", f"an array of the shape of fk {f.shape}", big_f.shape)
    if f.size and not (np.all(f >= 1) and np.all(np.isfinite(big_f)) and np.all(big_f > 0)):
        raise InvalidParameterError(
            "fk, Fk", "frequencies with fk >= 1 and finite Fk > 0", "other values"
        )
    if not weighted:
        return 1.0 / f
    qual = _check_qual(qual)
    risk = np.empty_like(f)
    exact = f == big_f
    risk[exact] = 1.0 / f[exact]
    rest = ~exact
    fr, big_fr = f[rest], big_f[rest]
    p = fr / big_fr
    q = (big_fr - fr) / big_fr  # 1 - p without cancellation; q < 1 because Fk > 0
    log_inv_p = -np.log1p(-q)  # log(1 / p)
    ratio = p / q
    value = np.empty_like(fr)
    one = fr < 2
    two = fr == 2
    more = fr > 2
    value[one] = ratio[one] * log_inv_p[one]
    value[two] = ratio[two] - ratio[two] ** 2 * log_inv_p[two]
    value[more] = p[more] / (fr[more] - q[more])
    risk[rest] = value
    return risk * qual


def global_risk(risk: ArrayLike) -> GlobalRisk:
    """Expected number of re-identifications ``ER = sum_i r_i`` (sdcMicro ``global_risk_ER``)."""
    values = np.asarray(risk, dtype=np.float64)
    if values.size == 0:
        raise EmptyDataError("the risk array is empty")
    return GlobalRisk(float(values.sum()), int(values.size))


def household_risk(risk: ArrayLike, households: ArrayLike) -> np.ndarray:
    """Household risk ``1 - prod_{j in h(i)} (1 - r_j)`` of each record's household ``h(i)``.

    The chance that at least one member is re-identified when members' re-identifications are
    independent (sdcMicro ``measure_risk(hid = ...)``, ``fast_hier = TRUE``; Templ et al. 2015,
    section 3.3). ``households`` holds one identifier a record, of any hashable type.
    """
    values = np.asarray(risk, dtype=np.float64)
    codes, uniques = pd.factorize(np.asarray(households), use_na_sentinel=True)
    if len(codes) != len(values):
        raise InvalidParameterError(
            "households", f"one identifier per record ({len(values)})", len(codes)
        )
    if np.any(codes < 0):
        raise InvalidParameterError("households", "identifiers without missing values", "NA")
    return _household_risk(values, np.asarray(codes, dtype=np.int64), len(uniques))


def _household_risk(risk: np.ndarray, codes: np.ndarray, n_households: int) -> np.ndarray:
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    survive = np.multiply.reduceat(1.0 - risk[order], starts)
    per_household = np.empty(n_households)
    per_household[sorted_codes[starts]] = 1.0 - survive
    return per_household[codes]


@dataclass(frozen=True, eq=False)
class RiskMeasures:
    """sdcMicro ``measure_risk``: per-record risk, ``fk``, ``Fk`` (and household risk), globals."""

    frequencies: KeyFrequencies
    risk: np.ndarray
    global_risk: GlobalRisk
    household: str | None = None
    household_risk: np.ndarray | None = None
    household_global_risk: GlobalRisk | None = None

    def to_frame(self) -> pd.DataFrame:
        """sdcMicro's ``Res`` matrix: columns ``risk``, ``fk``, ``Fk`` (and ``hier_risk``)."""
        columns: dict[str, np.ndarray] = {
            "risk": self.risk,
            "fk": self.frequencies.fk,
            "Fk": self.frequencies.Fk,
        }
        if self.household_risk is not None:
            columns["hier_risk"] = self.household_risk
        return pd.DataFrame(columns)


def measure_risk(
    data: pd.DataFrame,
    keys: str | Iterable[str],
    *,
    weight: str | None = None,
    household: str | None = None,
    alpha: float = 1.0,
    qual: float = 1.0,
) -> RiskMeasures:
    """Individual, global and (with ``household``) hierarchical risk of categorical keys.

    ``fk``, ``Fk`` by `key_frequencies` (missing keys match anything), ``r_i`` by
    `individual_risk` (weighted when ``weight`` is given, else ``1/fk``), ``ER = sum r_i``, and,
    for a household id column, ``hr_i = 1 - prod_{j in h(i)} (1 - r_j)`` with
    ``hier_risk_ER = sum_i hr_i`` (sdcMicro ``measure_risk(data, keyVars, w, hid)``). The risk
    is computed once per distinct key pattern and broadcast to its records.
    """
    data = check_frame(data)
    frequencies = key_frequencies(data, keys, weight=weight, alpha=alpha)
    per_group = individual_risk(
        frequencies.group_fk, frequencies.group_Fk, weighted=weight is not None, qual=qual
    )
    risk = per_group[frequencies.group]
    result_household = None
    household_global = None
    if household is not None:
        codes = check_households(data, household)
        result_household = _household_risk(risk, codes, int(codes.max()) + 1)
        household_global = global_risk(result_household)
    return RiskMeasures(
        frequencies=frequencies,
        risk=risk,
        global_risk=global_risk(risk),
        household=household,
        household_risk=result_household,
        household_global_risk=household_global,
    )
