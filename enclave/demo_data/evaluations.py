"""National "repères" evaluations (dataset ``evaluations_reperes``) for CP, CE1 and 6e pupils.

Score on the national scale: ``250 + 50 * (0.8 * ability + 0.6 * noise)`` plus a small gap by
sex (girls ahead in French, boys in mathematics), so the mean is about 250, the standard
deviation about 50 and the correlation with IPS about 0.28 (through the latent ability).
The mastery group is 1 below 150, then one more per 50 points, 6 from 350. About 1.5 % of
pupils were absent and have no row.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from enclave.demo_data.metadata import EVALUATIONS_REPERES
from enclave.demo_data.pupils import NIVEAU_NAMES, PupilBlock
from enclave.demo_data.school_year import CE1, CP, RENTREE, SIXIEME
from enclave.demo_data.universe import Universe

DOMAINES = pa.array(["francais", "mathematiques"])
GROUP_THRESHOLDS = np.array([150.0, 200.0, 250.0, 300.0, 350.0])
EVALUATED = (CP, CE1, SIXIEME)
ABSENCE = 0.015
_SEX_GAP = np.array([[6.0, -5.0], [-6.0, 5.0]])  # [girl, boy] x [francais, mathematiques]


def mastery_group(score: npt.NDArray[np.float64]) -> npt.NDArray[np.int8]:
    """The mastery group (1..6) of scores, by 50-point thresholds from 150 to 350."""
    return (np.searchsorted(GROUP_THRESHOLDS, score, side="right") + 1).astype(np.int8)


def draw_evaluations(pupils: PupilBlock, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Draw the evaluation rows of these pupils: per present pupil, French then mathematics."""
    evaluated = np.isin(pupils.niveau, EVALUATED) & (rng.random(len(pupils)) >= ABSENCE)
    who = np.repeat(np.flatnonzero(evaluated), 2)
    domaine = np.tile(np.array([0, 1], dtype=np.int8), len(who) // 2)
    noise = rng.normal(size=len(who))
    sex_gap = _SEX_GAP[np.where(pupils.female[who], 0, 1), domaine]
    score = 250.0 + 50.0 * (0.8 * pupils.ability[who] + 0.6 * noise) + sex_gap
    score = np.round(np.clip(score, 0.0, 500.0), 1)
    return {"ine": pupils.ine[who], "niveau": pupils.niveau[who], "domaine": domaine,
            "score": score, "groupe_maitrise": mastery_group(score)}


def evaluations_table(rows: dict[str, np.ndarray], world: Universe) -> pa.Table:
    """The ``evaluations_reperes`` table of drawn rows, in the declared schema."""
    n = len(rows["ine"])
    columns = [
        world.ine.strings(rows["ine"]),
        pa.array(np.full(n, RENTREE, dtype=np.int16)),
        NIVEAU_NAMES.take(pa.array(rows["niveau"])),
        DOMAINES.take(pa.array(rows["domaine"])),
        pa.array(rows["score"], type=pa.float64()),
        pa.array(rows["groupe_maitrise"], type=pa.int8()),
    ]
    return pa.Table.from_arrays(columns, schema=EVALUATIONS_REPERES.schema)
