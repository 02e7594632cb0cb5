"""The fixed world of one generation (geography, schools, INE keys) and its random streams.

Every random draw comes from a numpy ``Generator`` whose ``SeedSequence`` is keyed by
``(seed, stream, block)``: the world uses blocks 0 of its own streams, pupils and their events
use one stream per dataset and one block per :data:`BLOCK_PUPILS` pupils. The data is thus a
function of the arguments only, never of the chunk size or of the order of work.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from enclave.demo_data.geography import Geography, build_geography
from enclave.demo_data.identifiers import IneCodec
from enclave.demo_data.schools import Schools, build_schools

BLOCK_PUPILS = 2048

STREAM_GEOGRAPHY = 0
STREAM_SCHOOLS = 1
STREAM_INE = 2
STREAM_PUPILS = 10
STREAM_EVALUATIONS = 11
STREAM_EXAMS = 12
STREAM_TRACES = 13


def rng_for(seed: int, stream: int, block: int = 0) -> np.random.Generator:
    """The independent random generator of one stream and block of a seeded generation."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed,
                                                                      spawn_key=(stream, block))))


@dataclass(frozen=True, eq=False)
class Universe:
    """Geography, schools and INE keys, with their codes as Arrow arrays ready to ``take``."""

    geo: Geography
    schools: Schools
    ine: IneCodec
    commune_codes: pa.Array
    dep_codes: pa.Array
    academie_of_dep: pa.Array
    uai: pa.Array


def build_universe(seed: int, pupils: int) -> Universe:
    """Build the world of a generation: the same for the same seed and number of pupils."""
    geo = build_geography(rng_for(seed, STREAM_GEOGRAPHY))
    schools = build_schools(geo, pupils, rng_for(seed, STREAM_SCHOOLS))
    ine = IneCodec(rng_for(seed, STREAM_INE))
    academie_of_dep = pa.array([geo.academies[a] for a in geo.dep_academie], type=pa.string())
    return Universe(geo, schools, ine, pa.array(geo.commune_codes, type=pa.string()),
                    pa.array(geo.dep_codes, type=pa.string()), academie_of_dep,
                    pa.array(schools.uai, type=pa.string()))
