"""Synthetic pupils (dataset ``eleves``): grade, school, residence, birth date, IPS, aid, handicap.

Each pupil carries a latent ``ability`` (standard normal, correlated 0.35 with IPS), not
published, that drives grade repetition, evaluation scores, exam marks and trace results, so
the datasets are consistent with one another. Pupils live in their school's commune or
another commune of the same département, so ``code_commune``, ``code_departement``,
``academie`` and ``uai`` always agree.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from enclave.demo_data.metadata import ELEVES
from enclave.demo_data.school_year import (
    CYCLE_OF_NIVEAU,
    ECOLE,
    NIVEAU_CDF,
    NIVEAUX,
    NORMAL_BIRTH_YEAR_CP,
)
from enclave.demo_data.universe import Universe

FEMALE_SHARE = 0.488  # about 105 boys born for 100 girls
IPS_SCHOOL_CORRELATION = 0.35

HANDICAPS: tuple[str, ...] = ("troubles_cognitifs", "troubles_langage", "troubles_psychiques",
                              "TSA", "troubles_moteurs", "troubles_associes",
                              "troubles_auditifs", "troubles_visceraux", "troubles_visuels",
                              "polyhandicap")
_HANDICAP_RATE = np.array([0.012, 0.008, 0.006, 0.004, 0.0025, 0.0015, 0.0008, 0.0006, 0.0005,
                           0.0002])
_HANDICAP_CUM = np.cumsum(_HANDICAP_RATE)
# Probability of being a year behind, by grade, for an average pupil (vocational lycée: x2.5).
_LATE = np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.07, 0.08, 0.09, 0.10, 0.12, 0.13, 0.14])

SEXES = pa.array(["F", "M"])
SECTEURS = pa.array(["public", "prive"])
NIVEAU_NAMES = pa.array(NIVEAUX)
HANDICAP_NAMES = pa.array(HANDICAPS)


@dataclass(frozen=True, eq=False)
class PupilBlock:
    """A run of consecutive pupils as parallel arrays, published or latent."""

    index: npt.NDArray[np.int64]
    ine: npt.NDArray[np.uint64]
    niveau: npt.NDArray[np.int8]
    school: npt.NDArray[np.int32]
    dep: npt.NDArray[np.int16]
    commune: npt.NDArray[np.int32]
    female: npt.NDArray[np.bool_]
    birth: npt.NDArray[np.datetime64]
    ips: npt.NDArray[np.float64]
    ability: npt.NDArray[np.float64]
    boursier: npt.NDArray[np.bool_]
    handicap: npt.NDArray[np.int8]  # index in HANDICAPS, -1 for none

    def __len__(self) -> int:
        """Number of pupils."""
        return len(self.index)

    @classmethod
    def concat(cls, blocks: list[PupilBlock]) -> PupilBlock:
        """The pupils of several blocks, in order."""
        return cls(**{f.name: np.concatenate([getattr(b, f.name) for b in blocks])
                      for f in fields(cls)})


def _sigmoid(x: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]:
    return 1.0 / (1.0 + np.exp(-x))


def draw_pupils(index: npt.NDArray[np.int64], world: Universe,
                rng: np.random.Generator) -> PupilBlock:
    """Draw the pupils of global indexes ``index``; the same rng state gives the same pupils."""
    n = len(index)
    schools = world.schools
    niveau = np.minimum(np.searchsorted(NIVEAU_CDF, rng.random(n), side="right"),
                        len(NIVEAUX) - 1).astype(np.int8)
    cycle = CYCLE_OF_NIVEAU[niveau]
    school = schools.sample(cycle, rng.random(n))
    dep = schools.dep[school]
    female = rng.random(n) < FEMALE_SHARE

    ips = np.clip(schools.ips_mean[school] + rng.normal(0.0, 10.0, n), 45.0, 185.0)
    ips = np.round(ips, 1).astype(np.float64)
    r = IPS_SCHOOL_CORRELATION
    ability = r * (ips - 100.0) / 15.0 + np.sqrt(1.0 - r * r) * rng.normal(size=n)

    near_school = rng.random(n) < np.where(cycle == ECOLE, 0.8, 0.6)
    elsewhere = world.geo.sample_commune(dep, rng.random(n))
    commune = np.where(near_school, schools.commune[school], elsewhere).astype(np.int32)

    p_late = (_LATE[niveau] * np.where(schools.professionnel[school], 2.5, 1.0)
              * np.exp(-0.7 * ability - 0.245))
    late = rng.random(n) < np.minimum(p_late, 0.6)
    twice = late & (rng.random(n) < 0.12)
    ahead = ~late & (rng.random(n) < 0.008)
    year = (NORMAL_BIRTH_YEAR_CP - niveau.astype(np.int64) - late - twice + ahead)
    year_start = (year - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    year_days = ((year - 1969).astype("datetime64[Y]").astype("datetime64[D]")
                 - year_start).astype(np.int64)
    birth = year_start + np.floor(rng.random(n) * year_days).astype(np.int64)

    p_aid = _sigmoid(-1.15 - 0.09 * (ips - 100.0))
    boursier = (cycle != ECOLE) & (rng.random(n) < p_aid)

    u = rng.random(n) / np.where(female, 0.68, 1.3)  # boys are more often supported
    category = np.searchsorted(_HANDICAP_CUM, u, side="right")
    handicap = np.where(category < len(HANDICAPS), category, -1).astype(np.int8)

    return PupilBlock(np.asarray(index, dtype=np.int64), world.ine.numbers(index), niveau,
                      school, dep, commune, female, birth, ips, ability, boursier, handicap)


def eleves_table(pupils: PupilBlock, world: Universe) -> pa.Table:
    """The ``eleves`` rows of these pupils, in the declared schema."""
    none = pupils.handicap < 0
    handicap = HANDICAP_NAMES.take(pa.array(np.where(none, 0, pupils.handicap), mask=none))
    columns = [
        world.ine.strings(pupils.ine),
        SEXES.take(pa.array(np.where(pupils.female, 0, 1).astype(np.int8))),
        pa.array(pupils.birth, type=pa.date32()),
        world.commune_codes.take(pa.array(pupils.commune)),
        world.dep_codes.take(pa.array(pupils.dep)),
        world.academie_of_dep.take(pa.array(pupils.dep)),
        world.uai.take(pa.array(pupils.school)),
        SECTEURS.take(pa.array(world.schools.prive[pupils.school].astype(np.int8))),
        pa.array(pupils.ips, type=pa.float64()),
        NIVEAU_NAMES.take(pa.array(pupils.niveau)),
        pa.array(pupils.boursier, type=pa.bool_()),
        handicap,
    ]
    return pa.Table.from_arrays(columns, schema=ELEVES.schema)
