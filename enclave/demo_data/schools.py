"""Synthetic schools: écoles, collèges and lycées with UAI, sector, social intake and size.

The number of schools follows the real ratios (about 130 pupils per école, 500 per collège,
550 per lycée), capped at the real counts and floored at one school of each kind per
département, so even a small demonstration covers the whole map. Sizes are log-normal with a
few very small schools (rural single-class écoles, small private schools): with pupils drawn in
proportion to size, some UAIs hold only a handful of pupils, as in the real files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from enclave.demo_data.geography import Geography, uai_prefix
from enclave.demo_data.identifiers import uai
from enclave.demo_data.school_year import CYCLE_SHARE

_MEAN_SIZE = (130.0, 500.0, 550.0)
_REAL_COUNT = (48_000, 7_000, 4_200)
_PRIVATE_SHARE = (0.14, 0.24, 0.26)
_SIZE_SIGMA = (0.6, 0.45, 0.5)
_TINY_SHARE = (0.07, 0.03, 0.04)
_COMMUNE_PULL = (0.5, 0.9, 1.3)  # larger: schools concentrate in populous communes
_VOCATIONAL_SHARE = 0.45  # of lycées; they are smaller than general and technological ones


@dataclass(frozen=True, eq=False)
class Schools:
    """Schools as parallel arrays; pupils are drawn into a school of their cycle by size."""

    uai: tuple[str, ...]
    cycle: npt.NDArray[np.int8]  # 0 école, 1 collège, 2 lycée
    professionnel: npt.NDArray[np.bool_]  # lycée professionnel
    dep: npt.NDArray[np.int16]
    commune: npt.NDArray[np.int32]
    prive: npt.NDArray[np.bool_]
    ips_mean: npt.NDArray[np.float64]
    _members: tuple[npt.NDArray[np.int32], ...]
    _cdf: tuple[npt.NDArray[np.float64], ...]

    def sample(self, cycle: npt.NDArray[np.integer],
               u: npt.NDArray[np.float64]) -> npt.NDArray[np.int32]:
        """Pick for each pupil a school of its cycle, with probability proportional to size."""
        out = np.zeros(len(u), dtype=np.int32)
        for c, (members, cdf) in enumerate(zip(self._members, self._cdf, strict=True)):
            m = cycle == c
            k = np.minimum(np.searchsorted(cdf, u[m], side="right"), len(cdf) - 1)
            out[m] = members[k]
        return out


def _school_count(pupils: int, cycle: int, departements: int) -> int:
    wanted = math.ceil(pupils * CYCLE_SHARE[cycle] / _MEAN_SIZE[cycle])
    return min(_REAL_COUNT[cycle], max(departements, wanted))


def build_schools(geo: Geography, pupils: int, rng: np.random.Generator) -> Schools:
    """Draw the schools of a country scaled to ``pupils`` pupils."""
    ndep = len(geo.dep_codes)
    first_commune = np.searchsorted(geo.commune_dep, np.arange(ndep + 1))
    youth_share = geo.dep_youth / geo.dep_youth.sum()
    gap = geo.dep_ips_gap - np.average(geo.dep_ips_gap, weights=geo.dep_youth)

    cycles, deps, communes, weights, private, vocational = [], [], [], [], [], []
    for c in range(3):
        n = _school_count(pupils, c, ndep)
        per_dep = 1 + rng.multinomial(n - ndep, youth_share)
        dep = np.repeat(np.arange(ndep, dtype=np.int16), per_dep)
        commune = np.empty(n, dtype=np.int32)
        at = 0
        for d, k in enumerate(per_dep):
            lo, hi = first_commune[d], first_commune[d + 1]
            p = geo.commune_pop[lo:hi] ** _COMMUNE_PULL[c]
            commune[at:at + k] = lo + rng.choice(hi - lo, size=k, p=p / p.sum())
            at += k
        weight = rng.lognormal(0.0, _SIZE_SIGMA[c], size=n)
        tiny = rng.random(n) < _TINY_SHARE[c]
        weight[tiny] *= rng.uniform(0.01, 0.05, size=int(tiny.sum()))
        prive = rng.random(n) < _PRIVATE_SHARE[c]
        weight[prive] *= 0.8
        pro = np.zeros(n, dtype=bool)
        if c == 0:  # village schools are small
            weight *= np.clip((geo.commune_pop[commune] / 5000.0) ** 0.25, 0.3, 3.0)
        if c == 2:
            pro = rng.random(n) < _VOCATIONAL_SHARE
            weight *= np.where(pro, 0.75, 1.4)
        cycles.append(np.full(n, c, dtype=np.int8))
        deps.append(dep)
        communes.append(commune)
        weights.append(weight)
        private.append(prive)
        vocational.append(pro)

    cycle = np.concatenate(cycles)
    dep = np.concatenate(deps)
    prive = np.concatenate(private)
    weight = np.concatenate(weights)
    ips_mean = (100.0 + gap[dep] + rng.normal(0.0, 8.0, size=len(dep))
                + np.where(prive, 11.0, -2.5))

    codes = [""] * len(dep)
    for d in range(ndep):
        idx = np.flatnonzero(dep == d)
        serials = rng.choice(10_000, size=len(idx), replace=False)
        prefix = uai_prefix(geo.dep_codes[d])
        for i, s in zip(idx, serials, strict=True):
            codes[i] = uai(prefix, int(s))

    members: list[npt.NDArray[np.int32]] = []
    cdfs: list[npt.NDArray[np.float64]] = []
    for c in range(3):
        member = np.flatnonzero(cycle == c).astype(np.int32)
        cdf = np.cumsum(weight[member]) / weight[member].sum()
        cdf[-1] = 1.0
        members.append(member)
        cdfs.append(cdf)
    return Schools(tuple(codes), cycle, np.concatenate(vocational), dep,
                   np.concatenate(communes), prive, ips_mean, tuple(members), tuple(cdfs))
