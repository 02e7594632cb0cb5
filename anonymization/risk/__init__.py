"""Disclosure risk measures for categorical key variables, after R's sdcMicro.

A statistician's toolbox, pure functions over pandas DataFrames (one row a record): sample and
population frequencies of key combinations and k-anonymity (`frequencies`, sdcMicro
``freqCalc``), individual, global and household re-identification risk (`individual`,
``indivRisk`` and ``measure_risk``), l-diversity of sensitive variables (`ldiversity`,
``ldiversity``), special uniques with SUDA and DIS-SUDA scores (`suda`, ``suda2``), and a
per-record risk table with its summary (`report`). Each docstring states its formula and
source. Missing key values follow sdcMicro, which treats them differently per measure: they
match any value in ``fk``/``Fk``, are a value of their own for l-diversity classes, and are no
value at all for SUDA. Errors are those of `anonymization.exceptions`.
"""

from anonymization.risk.frequencies import KeyFrequencies, k_anonymity_violations, key_frequencies
from anonymization.risk.individual import (
    GlobalRisk,
    RiskMeasures,
    global_risk,
    household_risk,
    individual_risk,
    measure_risk,
)
from anonymization.risk.ldiversity import l_diversity
from anonymization.risk.report import RiskSummary, risk_table, summarise_risk
from anonymization.risk.suda import SudaResult, dis_score_table, msu_weight, suda2

__all__ = [
    "GlobalRisk",
    "KeyFrequencies",
    "RiskMeasures",
    "RiskSummary",
    "SudaResult",
    "dis_score_table",
    "global_risk",
    "household_risk",
    "individual_risk",
    "k_anonymity_violations",
    "key_frequencies",
    "l_diversity",
    "measure_risk",
    "msu_weight",
    "risk_table",
    "suda2",
    "summarise_risk",
]
