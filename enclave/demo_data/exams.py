"""Exam results (dataset ``examens``): DNB for 3e pupils, baccalauréat for terminale pupils.

The mark out of 20 is ``mean + sd * (0.8 * ability + 0.6 * noise)``, rounded to the hundredth,
clipped to [0, 20]; a candidate is admitted from 10 (the oral second round is not modelled) and
the mention follows the rounded mark: AB from 12, B from 14, TB from 16, TBF (félicitations,
baccalauréat only) from 18. Lycée professionnel pupils sit the professional baccalauréat; the
others the general one, or the technological one more often when their ability is lower.
About 1.5 % of pupils did not sit and have no row.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from enclave.demo_data.metadata import EXAMENS
from enclave.demo_data.pupils import PupilBlock
from enclave.demo_data.school_year import RENTREE, TERMINALE, TROISIEME
from enclave.demo_data.universe import Universe

EXAMS = pa.array(["DNB", "BAC"])
SERIES = pa.array(["generale", "technologique", "professionnelle"])
MENTIONS = pa.array(["AB", "B", "TB", "TBF"])
DNB, BAC = 0, 1
GENERALE, TECHNOLOGIQUE, PROFESSIONNELLE, NO_SERIE = 0, 1, 2, -1
ABSENCE = 0.015
# (mean, sd) of the mark: DNB, then BAC by serie
_DNB_MARK = (13.0, 2.7)
_BAC_MARK = ((13.0, 2.2), (13.5, 2.1), (12.9, 2.2))


def mention(note: npt.NDArray[np.float64], examen: npt.NDArray[np.integer]
            ) -> npt.NDArray[np.int8]:
    """Index in MENTIONS of each mark's mention, -1 for none (TBF only at the baccalauréat)."""
    m = np.searchsorted(np.array([12.0, 14.0, 16.0, 18.0]), note, side="right") - 1
    m = np.where((m == 3) & (examen == DNB), 2, m)
    return m.astype(np.int8)


def draw_exams(pupils: PupilBlock, world: Universe,
               rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Draw the exam rows of the 3e and Tle pupils among these, in pupil order."""
    sat = (np.isin(pupils.niveau, (TROISIEME, TERMINALE))
           & (rng.random(len(pupils)) >= ABSENCE))
    who = np.flatnonzero(sat)
    ability = pupils.ability[who]
    examen = np.where(pupils.niveau[who] == TERMINALE, BAC, DNB).astype(np.int8)
    general = rng.random(len(who)) < 1.0 / (1.0 + np.exp(-(1.2 + 1.2 * ability)))
    serie = np.where(world.schools.professionnel[pupils.school[who]], PROFESSIONNELLE,
                     np.where(general, GENERALE, TECHNOLOGIQUE))
    serie = np.where(examen == BAC, serie, NO_SERIE).astype(np.int8)
    mean = np.where(examen == DNB, _DNB_MARK[0], np.choose(np.maximum(serie, 0),
                                                            [m for m, _ in _BAC_MARK]))
    sd = np.where(examen == DNB, _DNB_MARK[1], np.choose(np.maximum(serie, 0),
                                                          [s for _, s in _BAC_MARK]))
    raw = mean + sd * (0.8 * ability + 0.6 * rng.normal(size=len(who)))
    note = np.round(np.clip(raw, 0.0, 20.0), 2).astype(np.float64)
    return {"ine": pupils.ine[who], "examen": examen, "serie": serie, "note": note,
            "mention": mention(note, examen)}


def exams_table(rows: dict[str, np.ndarray], world: Universe) -> pa.Table:
    """The ``examens`` table of drawn rows, in the declared schema."""
    n = len(rows["ine"])
    no_serie, no_mention = rows["serie"] < 0, rows["mention"] < 0
    columns = [
        world.ine.strings(rows["ine"]),
        pa.array(np.full(n, RENTREE, dtype=np.int16)),
        EXAMS.take(pa.array(rows["examen"])),
        SERIES.take(pa.array(np.maximum(rows["serie"], 0), mask=no_serie)),
        pa.array(rows["note"], type=pa.float64()),
        pa.array(rows["note"] >= 10.0, type=pa.bool_()),
        MENTIONS.take(pa.array(np.maximum(rows["mention"], 0), mask=no_mention)),
    ]
    return pa.Table.from_arrays(columns, schema=EXAMENS.schema)
