"""The 2025-2026 school year: grade levels, their cohorts, the calendar and local clocks.

Grade levels are indexed 0 (CP) to 11 (Tle); a pupil at the normal age in grade ``g`` was born
in ``2019 - g``. The calendar weights days for learning-trace timestamps: school days weigh
most, Wednesdays and weekends less, holidays (all zones, metropolitan calendar) and public
holidays least.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

NIVEAUX: tuple[str, ...] = ("CP", "CE1", "CE2", "CM1", "CM2", "6e", "5e", "4e", "3e",
                            "2nde", "1re", "Tle")
NIVEAU_SLUGS: tuple[str, ...] = ("cp", "ce1", "ce2", "cm1", "cm2", "6e", "5e", "4e", "3e",
                                 "2nde", "1re", "tle")
CP, CE1, SIXIEME, TROISIEME, TERMINALE = 0, 1, 5, 8, 11

ECOLE, COLLEGE, LYCEE = 0, 1, 2
CYCLES: tuple[str, ...] = ("ecole", "college", "lycee")
CYCLE_OF_NIVEAU: npt.NDArray[np.int8] = np.array([0] * 5 + [1] * 4 + [2] * 3, dtype=np.int8)

# Relative cohort sizes (falling births in primary, vocational and drop-outs in lycée).
_COHORT = np.array([0.74, 0.76, 0.78, 0.80, 0.81, 0.83, 0.83, 0.83, 0.84, 0.75, 0.73, 0.72])
NIVEAU_SHARE: npt.NDArray[np.float64] = _COHORT / _COHORT.sum()
NIVEAU_CDF: npt.NDArray[np.float64] = np.cumsum(NIVEAU_SHARE)
CYCLE_SHARE: npt.NDArray[np.float64] = np.array(
    [NIVEAU_SHARE[c == CYCLE_OF_NIVEAU].sum() for c in range(3)])

RENTREE = 2025  # the school year 2025-2026, as "annee" / "session" of its evaluations
NORMAL_BIRTH_YEAR_CP = 2019

FIRST_DAY = np.datetime64("2025-09-01", "D")
END_DAY = np.datetime64("2026-07-01", "D")  # exclusive
START_US = int(FIRST_DAY.astype("datetime64[us]").astype(np.int64))
END_US = int(END_DAY.astype("datetime64[us]").astype(np.int64))  # exclusive
# Metropolitan summer time ends and starts again (the day it changes, local).
_WINTER_TIME = (np.datetime64("2025-10-26", "D"), np.datetime64("2026-03-29", "D"))

_HOLIDAYS = (  # (first, last) inclusive, with the weight of a day in them
    ("2025-10-18", "2025-11-02", 0.3),  # Toussaint
    ("2025-12-20", "2026-01-04", 0.2),  # Noël
    ("2026-02-07", "2026-03-08", 0.6),  # hiver, zones A, B and C one after the other
    ("2026-04-04", "2026-05-03", 0.6),  # printemps, zones A, B and C
    ("2026-05-14", "2026-05-17", 0.3),  # pont de l'Ascension
)
_PUBLIC_HOLIDAYS = ("2025-11-11", "2026-05-01", "2026-05-08", "2026-05-25")
_WEEKDAY_WEIGHT = np.array([1.0, 1.0, 0.55, 1.0, 1.0, 0.3, 0.25])  # Monday first


def _calendar() -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    days = np.arange(FIRST_DAY, END_DAY)
    epoch = days.astype(np.int64)
    weight = _WEEKDAY_WEIGHT[(epoch + 3) % 7]  # 1970-01-01 was a Thursday
    for first, last, w in _HOLIDAYS:
        m = (days >= np.datetime64(first)) & (days <= np.datetime64(last))
        weight[m] *= w
    for day in _PUBLIC_HOLIDAYS:
        weight[days == np.datetime64(day)] *= 0.2
    cdf = np.cumsum(weight) / weight.sum()
    cdf[-1] = 1.0
    return epoch, cdf


CALENDAR_DAYS, CALENDAR_CDF = _calendar()


def summer_time(epoch_day: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Whether metropolitan clocks are on summer time (UTC+2) on these days."""
    start, end = (int(d.astype(np.int64)) for d in _WINTER_TIME)
    return (epoch_day < start) | (epoch_day >= end)
