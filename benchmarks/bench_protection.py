"""Benchmark: local suppression to k-anonymity at scale, against a naive per-record greedy.

Builds, in memory, N synthetic pupil records (default 1,000,000) with six key variables of
realistic cardinality and skew: sex (2), age band (20, bell-shaped, tied to the grade),
département (101, Zipf-like sizes), sector (2, 20 % private), grade (12) and IPS decile (10,
higher in the private sector). Then, in one process, it times:

* `local_suppression` to k = 3 on all N records (goal: under 60 s), with the suppressions
  per key, and a check of the result (NA-aware frequencies, timed apart);
* the baseline, a naive per-record greedy close to sdcMicro's loop (every pass counts each
  unsafe record's matches by comparing it with every record, O(n^2) a pass, then
  suppresses, record after record, the least important key whose suppression raises that
  record's count), measured on a random SAMPLE of 20,000 records, next to our algorithm on
  the same sample (like-for-like ratio) and extrapolated quadratically to N;
* MDAV microaggregation (k = 3) of 100,000 records x 3 numeric variables;
* PRAM of two variables of the N records (sdcMicro's default invariant matrices), and
  once more within strata (one invariant matrix per département).

It prints figures only (no assertions); the whole run takes a few minutes.

    .venv/bin/python benchmarks/bench_protection.py [--records N] [--sample S]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd

from anonymization.protection import local_suppression, microaggregation, pram
from anonymization.protection._frequencies import na_aware_frequencies
from anonymization.risk import key_frequencies

KEYS = ["sex", "age_band", "departement", "sector", "grade", "ips_decile"]
K = 3
GOAL_SECONDS = 60.0

T = TypeVar("T")


@dataclass
class Timing:
    wall: float
    cpu: float


def timed(action: Callable[[], T]) -> tuple[Timing, T]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = action()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu), result


def pupils(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Synthetic pupils: six keys with realistic cardinalities, skew and dependence."""
    sizes = 1.0 / np.arange(1, 102) ** 0.8
    departement = rng.choice(101, n, p=sizes / sizes.sum())
    sector = (rng.random(n) < 0.2).astype(np.int64)
    grade = rng.integers(0, 12, n)
    bell = np.exp(-0.5 * ((np.arange(20) - 7) / 3.0) ** 2)
    age_band = np.clip(rng.choice(20, n, p=bell / bell.sum()) + (grade - 6) // 3, 0, 19)
    ips_decile = np.clip(rng.integers(0, 10, n) + 2 * sector - rng.integers(0, 2, n), 0, 9)
    return pd.DataFrame(
        {
            "sex": rng.integers(0, 2, n),
            "age_band": age_band,
            "departement": departement,
            "sector": sector,
            "grade": grade,
            "ips_decile": ips_decile,
        }
    )


def naive_greedy(frame: pd.DataFrame, keys: Sequence[str], k: int, order: Sequence[int]) -> int:
    """The baseline: sdcMicro-like passes, one record and one count at a time.

    Returns the number of suppressions. ``order`` lists key positions from the least
    important (suppressed first) to the most important.
    """
    values = np.stack([pd.factorize(frame[key], use_na_sentinel=True)[0] for key in keys]).astype(
        np.int64
    )
    n = values.shape[1]

    def count(i: int) -> int:  # matches of record i, comparing it with every record
        same = np.ones(n, dtype=bool)
        for j in range(len(keys)):
            mine = values[j, i]
            if mine >= 0:
                same &= (values[j] == mine) | (values[j] < 0)
        return int(same.sum())

    suppressed = 0
    while True:
        unsafe = [i for i in range(n) if count(i) < k]
        if not unsafe:
            return suppressed
        for i in unsafe:
            current = count(i)
            if current >= k:  # made safe by earlier suppressions of this pass
                continue
            present = [j for j in order if values[j, i] >= 0]
            chosen = present[0]
            for j in present:
                kept = values[j, i]
                values[j, i] = -1
                gain = count(i) > current
                values[j, i] = kept
                if gain:
                    chosen = j
                    break
            values[chosen, i] = -1
            suppressed += 1


def suppression_line(label: str, timing: Timing, counts: pd.Series) -> str:
    per_key = ", ".join(f"{key} {int(value):,}" for key, value in counts.items())
    return f"{label:44s} {timing.wall:8.2f} {timing.cpu:8.2f}  {int(counts.sum()):>9,} ({per_key})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=20_000, help="records for the baseline")
    parser.add_argument("--mdav-records", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20_240_901)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    n = args.records
    data = pupils(n, rng)
    print(
        f"input: {n:,} synthetic pupils, keys "
        + ", ".join(f"{key} ({data[key].nunique()})" for key in KEYS)
        + f"; k = {K}"
    )

    # -- local suppression, the whole data
    full, result = timed(lambda: local_suppression(data, KEYS, K))
    check, frequencies = timed(lambda: na_aware_frequencies(result.data, KEYS))
    # the risk module's freqCalc must count alike (records missing every key included)
    risk_check, risk_frequencies = timed(lambda: key_frequencies(result.data, KEYS))
    unsafe_before = int((na_aware_frequencies(data, KEYS) < K).sum())

    # -- the same on a sample, against the naive baseline
    sample = data.sample(n=min(args.sample, n), random_state=args.seed).reset_index(drop=True)
    ours_sample, sample_result = timed(lambda: local_suppression(sample, KEYS, K))
    order = [KEYS.index(str(key)) for key in sample_result.suppression_order]
    base, base_count = timed(lambda: naive_greedy(sample, KEYS, K, order))
    scale = (n / len(sample)) ** 2
    base_full = Timing(base.wall * scale, base.cpu * scale)

    print()
    print(f"{'local suppression to k = 3':44s} {'wall s':>8s} {'cpu s':>8s}  suppressions")
    print(suppression_line(f"local_suppression, {n:,} records", full, result.suppressions))
    print(
        f"  {unsafe_before:,} records unsafe before, {result.rounds} rounds; after: smallest "
        f"NA-aware frequency {int(frequencies.min())} (check took {check.wall:.2f} s); "
        f"risk module's freqCalc: smallest fk {int(risk_frequencies.fk.min())}, "
        f"{risk_frequencies.violations(K):,} records below k ({risk_check.wall:.2f} s), "
        f"counts {'equal' if np.array_equal(risk_frequencies.fk, frequencies) else 'DIFFER'}"
    )
    print(
        suppression_line(
            f"local_suppression, SAMPLE of {len(sample):,}", ours_sample, sample_result.suppressions
        )
    )
    print(
        f"{'baseline naive greedy, SAMPLE of ' + format(len(sample), ','):44s} "
        f"{base.wall:8.2f} {base.cpu:8.2f}  {base_count:>9,}"
    )
    print(
        f"{'baseline extrapolated to ' + format(n, ',') + ' (n^2)':44s} "
        f"{base_full.wall:8.0f} {base_full.cpu:8.0f}"
    )
    print(
        f"ratios (cpu): on the same sample {base.cpu / max(ours_sample.cpu, 1e-9):,.0f}x; "
        f"{n:,} records against the extrapolated baseline "
        f"{base_full.cpu / max(full.cpu, 1e-9):,.0f}x"
    )
    verdict = "met" if full.wall < GOAL_SECONDS else "NOT met"
    print(f"goal: {n:,} records x {len(KEYS)} keys at k = {K} in < {GOAL_SECONDS:.0f} s: {verdict}")

    # -- MDAV
    m = args.mdav_records
    numeric = pd.DataFrame(
        {
            "score_french": rng.normal(250, 50, m),
            "score_maths": rng.normal(250, 50, m),
            "ips": rng.gamma(9.0, 12.0, m),
        }
    )
    numeric["score_maths"] += 0.6 * (numeric["score_french"] - 250)
    mdav, aggregated = timed(lambda: microaggregation(numeric, list(numeric.columns), k=3))
    sizes = aggregated.group_sizes
    print()
    print(
        f"MDAV k = 3 on {m:,} x 3: {mdav.wall:.2f} s wall, {mdav.cpu:.2f} s cpu; "
        f"{len(sizes):,} groups of {sizes.min()} to {sizes.max()} records"
    )

    # -- PRAM
    prammed, prammed_result = timed(
        lambda: pram(data, ["ips_decile", "grade"], np.random.default_rng())
    )
    stratified, _ = timed(
        lambda: pram(data, ["ips_decile"], np.random.default_rng(), strata="departement")
    )
    changes = ", ".join(f"{key} {int(value):,}" for key, value in prammed_result.changes.items())
    print(
        f"PRAM of 2 variables on {n:,} records: {prammed.wall:.2f} s wall, "
        f"{prammed.cpu:.2f} s cpu (changed: {changes})"
    )
    print(
        f"PRAM of ips_decile within 101 départements: {stratified.wall:.2f} s wall, "
        f"{stratified.cpu:.2f} s cpu"
    )


if __name__ == "__main__":
    main()
