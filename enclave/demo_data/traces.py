"""Learning traces (dataset ``traces_xapi``): xAPI statements from an ENT learning platform.

Events per pupil are negative binomial (a Poisson whose mean is gamma distributed with shape
0.8): mean ``traces_per_pupil``, heavy tail, about 7 % of pupils with none at mean 20.
Statements are sorted by pupil, then time. Timestamps fall on weighted calendar days (see
:mod:`school_year`) at local school or evening hours, converted to UTC with the pupil's
département clock (overseas offsets, metropolitan summer time). Verbs without a result
(experienced, attempted) have null ``score_brut`` and ``succes``; ``passed``/``failed`` follow
the score; success is a score of at least 0.5.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from enclave.demo_data.identifiers import IneCodec, uuid4_strings
from enclave.demo_data.metadata import TIMESTAMP_UTC, TRACES_XAPI
from enclave.demo_data.pupils import NIVEAU_NAMES, PupilBlock
from enclave.demo_data.school_year import (
    CALENDAR_CDF,
    CALENDAR_DAYS,
    CYCLE_OF_NIVEAU,
    ECOLE,
    END_US,
    NIVEAU_SLUGS,
    NIVEAUX,
    START_US,
    summer_time,
)
from enclave.demo_data.universe import Universe

XAPI_VERBS = "http://adlnet.gov/expapi/verbs/"
VERBS: tuple[str, ...] = ("experienced", "attempted", "answered", "completed", "passed",
                          "failed")
EXPERIENCED, ATTEMPTED, ANSWERED, COMPLETED, PASSED, FAILED = range(6)
# Thresholds between experienced, attempted, answered, completed and "assessed" (10 %).
_VERB_THRESHOLDS = np.array([0.30, 0.48, 0.78, 0.90])
_MEDIAN_DURATION_S = np.array([60.0, 120.0, 45.0, 300.0, 600.0, 600.0])

MATIERES: tuple[str, ...] = ("mathematiques", "francais", "histoire_geographie", "sciences",
                             "langues")
_MATIERE_SLUGS = ("maths", "francais", "histoire-geo", "sciences", "langues")
_MATIERE_CDF = (np.cumsum([0.38, 0.42, 0.06, 0.08, 0.06]),  # école
                np.cumsum([0.28, 0.26, 0.14, 0.16, 0.16]))  # collège and lycée
ACTIVITIES_PER_LEVEL = 120
ACTIVITY_BASE = "https://ent.example.fr/activites/"
NEGATIVE_BINOMIAL_SHAPE = 0.8
MAX_DURATION_S = 3 * 3600
_DAY_US = 86_400_000_000

VERB_IRIS = pa.array([XAPI_VERBS + v for v in VERBS])
MATIERE_NAMES = pa.array(MATIERES)
OBJECT_IRIS = pa.array([f"{ACTIVITY_BASE}{m}-{n}-{k:03d}" for m in _MATIERE_SLUGS
                        for n in NIVEAU_SLUGS for k in range(1, ACTIVITIES_PER_LEVEL + 1)])


def object_index(matiere: npt.NDArray[np.integer], niveau: npt.NDArray[np.integer],
                 activity: npt.NDArray[np.integer]) -> npt.NDArray[np.int32]:
    """Index in OBJECT_IRIS of activity number ``activity`` (1-based) of a subject and level."""
    return ((matiere.astype(np.int32) * len(NIVEAUX) + niveau) * ACTIVITIES_PER_LEVEL
            + activity - 1).astype(np.int32)


def _local_seconds(rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
    """Local time of day in seconds: school hours, evening homework, or any waking hour."""
    kind = rng.random(n)
    school = rng.uniform(8.25, 16.75, n)
    evening = np.clip(rng.normal(18.75, 1.3, n), 16.5, 22.5)
    anytime = rng.uniform(6.5, 23.5, n)
    hours = np.where(kind < 0.62, school, np.where(kind < 0.92, evening, anytime))
    return hours * 3600.0


def draw_traces(pupils: PupilBlock, world: Universe, rng: np.random.Generator,
                traces_per_pupil: float) -> dict[str, np.ndarray]:
    """Draw the statements of these pupils, sorted by pupil then timestamp."""
    n = len(pupils)
    if traces_per_pupil > 0:
        k = NEGATIVE_BINOMIAL_SHAPE
        counts = rng.poisson(rng.gamma(k, traces_per_pupil / k, size=n))
    else:
        counts = np.zeros(n, dtype=np.int64)
    who = np.repeat(np.arange(n), counts)
    m = len(who)

    kind = np.searchsorted(_VERB_THRESHOLDS, rng.random(m), side="right")
    has_result = kind >= ANSWERED
    score = 1.0 / (1.0 + np.exp(-(0.5 + 0.9 * pupils.ability[who] + rng.normal(0.0, 1.1, m))))
    score = np.round(score, 2)
    succes = score >= 0.5
    verb = np.where(kind == PASSED, np.where(succes, PASSED, FAILED), kind).astype(np.int8)

    own = pupils.niveau[who].astype(np.int8)
    shift = np.searchsorted(np.array([0.10, 0.95]), rng.random(m), side="right") - 1
    niveau_objet = np.clip(own + shift, 0, len(NIVEAUX) - 1).astype(np.int8)
    primary = CYCLE_OF_NIVEAU[own] == ECOLE
    u = rng.random(m)
    matiere = np.where(primary, np.searchsorted(_MATIERE_CDF[0], u, side="right"),
                       np.searchsorted(_MATIERE_CDF[1], u, side="right"))
    matiere = np.minimum(matiere, len(MATIERES) - 1)
    activity = 1 + np.floor(ACTIVITIES_PER_LEVEL * rng.random(m) ** 2.2).astype(np.int32)

    day = CALENDAR_DAYS[np.minimum(np.searchsorted(CALENDAR_CDF, rng.random(m), side="right"),
                                   len(CALENDAR_DAYS) - 1)]
    local_us = (day * _DAY_US + (_local_seconds(rng, m) * 1e6).astype(np.int64)
                + rng.integers(0, 1_000_000, m))
    dep = pupils.dep[who]
    offset_s = world.geo.dep_utc_offset_s[dep] + np.where(
        world.geo.dep_summer_time[dep] & summer_time(day), 3600, 0)
    horodatage = local_us - offset_s * 1_000_000
    # a few overseas evenings of 30 June (or mornings of 1 September) fall outside the year in
    # UTC: move them one day inside rather than piling them up on the bound
    horodatage = np.where(horodatage >= END_US, horodatage - _DAY_US, horodatage)
    horodatage = np.where(horodatage < START_US, horodatage + _DAY_US, horodatage)

    log_median = np.log(_MEDIAN_DURATION_S[verb])
    duree = np.clip(np.round(rng.lognormal(log_median, 0.9)), 1, MAX_DURATION_S).astype(np.int32)

    order = np.lexsort((horodatage, who))
    raw_uuid = np.frombuffer(rng.bytes(16 * m), dtype=np.uint8).reshape(m, 16)
    return {"uuid": raw_uuid, "ine": pupils.ine[who][order], "verbe": verb[order],
            "objet": object_index(matiere, niveau_objet, activity)[order],
            "matiere": matiere[order].astype(np.int8), "niveau_objet": niveau_objet[order],
            "horodatage": horodatage[order], "duree_s": duree[order],
            "score_brut": score[order], "has_result": has_result[order],
            "succes": succes[order]}


def traces_table(rows: dict[str, np.ndarray]) -> pa.Table:
    """The ``traces_xapi`` table of drawn statements, in the declared schema."""
    no_result = ~rows["has_result"]
    columns = [
        uuid4_strings(rows["uuid"]),
        IneCodec.strings(rows["ine"]),
        VERB_IRIS.take(pa.array(rows["verbe"])),
        OBJECT_IRIS.take(pa.array(rows["objet"])),
        MATIERE_NAMES.take(pa.array(rows["matiere"])),
        NIVEAU_NAMES.take(pa.array(rows["niveau_objet"])),
        pa.array(rows["horodatage"], type=TIMESTAMP_UTC),
        pa.array(rows["duree_s"], type=pa.int32()),
        pa.array(rows["score_brut"], type=pa.float64(), mask=no_result),
        pa.array(rows["succes"], type=pa.bool_(), mask=no_result),
    ]
    return pa.Table.from_arrays(columns, schema=TRACES_XAPI.schema)
