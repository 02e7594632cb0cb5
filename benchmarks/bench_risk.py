"""Benchmark: sdcMicro-style risk measures on a DEPP-sized extract, against a pandas baseline.

Builds in memory N pupils (default 1,000,000) with six key variables of realistic cardinality
and skew (sex 2, age band 20, département 101, school sector 2, grade 12, IPS decile 10) and a
sampling weight, then times in one process:

* ``measure_risk`` (``fk``, ``Fk`` and the Benedetti-Franconi individual risk; sdcMicro's
  ``freqCalc`` + ``indivRisk``), keys as integer codes / categoricals (as read from
  dictionary-encoded Parquet) and with the département as plain strings;
* the baseline: pandas ``groupby(keys).transform("size")`` and ``transform("sum")`` for ``fk``
  and ``Fk``, then the same risk formula, record by record;
* ``key_frequencies`` when 2 % of two keys are missing (the "missing matches anything" path);
* ``suda2`` on M records (default 10,000) with the same six keys.

Each figure is the best of ``--repeat`` runs, wall and CPU time (CPU time is the fairer figure
on a shared machine). Goal: frequencies + individual risk of 10^6 records x 6 keys well under
0.5 s. Figures only, no assertion.

    .venv/bin/python benchmarks/bench_risk.py [--records N] [--suda-records M] [--repeat R]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd

from anonymization.risk import individual_risk, key_frequencies, measure_risk, suda2

KEYS = ["sex", "age_band", "departement", "sector", "grade", "ips_decile"]
GOAL_SECONDS = 0.5

T = TypeVar("T")


@dataclass
class Timing:
    wall: float
    cpu: float


def best_of(repeat: int, action: Callable[[], T]) -> tuple[Timing, T]:
    """Run ``action`` ``repeat`` times; return the fastest wall time (with its CPU time)."""
    best: Timing | None = None
    result: T | None = None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = action()
        timing = Timing(time.perf_counter() - wall, time.process_time() - cpu)
        if best is None or timing.wall < best.wall:
            best = timing
    assert best is not None and result is not None
    return best, result


def departements() -> list[str]:
    """101 French départements: 01-95 without 20, 2A and 2B, and five overseas ones."""
    codes = [f"{d:02d}" for d in range(1, 96) if d != 20]
    return [*codes, "2A", "2B", "971", "972", "973", "974", "976"]


def pupils(n: int, seed: int = 0) -> pd.DataFrame:
    """Synthetic pupils with skewed key distributions and weights around 1 / 5 %."""
    rng = np.random.default_rng(seed)
    deps = departements()
    dep_share = rng.pareto(1.5, len(deps)) + 1  # a few large départements, many small ones
    age_share = np.exp(-0.5 * ((np.arange(20) - 8) / 3.0) ** 2) + 0.01
    return pd.DataFrame(
        {
            "sex": rng.integers(1, 3, n).astype(np.int8),
            "age_band": rng.choice(20, n, p=age_share / age_share.sum()).astype(np.int16),
            "departement": pd.Categorical.from_codes(
                rng.choice(len(deps), n, p=dep_share / dep_share.sum()), categories=deps
            ),
            "sector": rng.choice(2, n, p=[0.8, 0.2]).astype(np.int8),
            "grade": rng.integers(1, 13, n).astype(np.int16),
            "ips_decile": rng.integers(1, 11, n).astype(np.int16),
            "weight": rng.lognormal(np.log(20.0), 0.3, n),
        }
    )


def baseline(data: pd.DataFrame) -> np.ndarray:
    """pandas groupby for fk and Fk, then the same risk formula on every record."""
    grouped = data.groupby(KEYS, sort=False, observed=True)["weight"]
    fk = grouped.transform("size").to_numpy(dtype=np.float64)
    big_fk = grouped.transform("sum").to_numpy(dtype=np.float64)
    return individual_risk(fk, big_fk)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--suda-records", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    data = pupils(args.records)
    with_strings = data.assign(departement=data["departement"].astype(str))
    print(f"{args.records:,} records x {len(KEYS)} keys ({', '.join(KEYS)}), weights\n")

    ours, measured = best_of(args.repeat, lambda: measure_risk(data, KEYS, weight="weight"))
    strings, _ = best_of(args.repeat, lambda: measure_risk(with_strings, KEYS, weight="weight"))
    base, base_risk = best_of(args.repeat, lambda: baseline(data))
    same = np.allclose(measured.risk, base_risk, rtol=1e-12, atol=0)

    print("frequencies + individual risk (measure_risk)")
    print(f"  codes / categoricals   {ours.wall:7.3f} s wall {ours.cpu:7.3f} s CPU")
    print(f"  département as strings {strings.wall:7.3f} s wall {strings.cpu:7.3f} s CPU")
    print(f"  baseline pandas groupby {base.wall:6.3f} s wall {base.cpu:7.3f} s CPU")
    print(
        f"  speed-up over baseline  {base.wall / ours.wall:6.1f} x wall "
        f"{base.cpu / max(ours.cpu, 1e-9):5.1f} x CPU (same risks: {same})"
    )
    verdict = "met" if ours.wall < GOAL_SECONDS else "NOT met"
    print(f"  goal < {GOAL_SECONDS} s: {verdict}")
    frequencies = measured.frequencies
    expected = measured.global_risk.expected_reidentifications
    print(
        f"  {frequencies.n1:,} sample uniques, {frequencies.violations(3):,} records below "
        f"3-anonymity, expected re-identifications {expected:,.1f}"
    )

    rng = np.random.default_rng(1)
    missing = data.copy()
    for key in ("age_band", "departement"):
        rows = rng.choice(len(missing), len(missing) // 50, replace=False)
        if key == "departement":
            missing[key] = missing[key].astype(object)
        missing.loc[missing.index[rows], key] = None
    repeat_missing = max(1, args.repeat // 2)
    na_time, _ = best_of(repeat_missing, lambda: key_frequencies(missing, KEYS, weight="weight"))
    print(f"\nfrequencies with 2 % missing in two keys {na_time.wall:7.3f} s wall")

    sample = data.sample(args.suda_records, random_state=2)
    suda_time, suda = best_of(args.repeat, lambda: suda2(sample, KEYS))
    print(f"\nSUDA2 on {args.suda_records:,} records x {len(KEYS)} keys (every MSU size)")
    print(f"  {suda_time.wall:7.3f} s wall {suda_time.cpu:7.3f} s CPU")
    print(
        f"  {int((suda.scores > 0).sum()):,} records with an MSU, "
        f"{int(suda.msu_counts.sum()):,} MSUs, max score {suda.scores.max():.0f}, "
        f"max DIS-SUDA {suda.dis_scores.max():.4f}"
    )


if __name__ == "__main__":
    main()
