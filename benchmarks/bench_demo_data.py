"""Benchmark of the synthetic data generator: rows/s per dataset, peak memory, chunk-size ratio.

After a small warm-up run, generates the same data twice in this process, first with chunks
10x smaller than asked (the baseline), then with the asked chunk size, and prints throughput
per dataset, the peak resident memory after each run and the ratio of the two wall times.
Time is attributed to a dataset from the progress callback: the time since the previous report
went into the rows just reported (the first eleves report also carries building the schools
and communes).

    .venv/bin/python benchmarks/bench_demo_data.py [--pupils 200000] [--chunk 200000]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from enclave.demo_data import generate


def _peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _run(raw: Path, pupils: int, traces: float, chunk: int) -> tuple[float, dict[str, float],
                                                                       dict[str, int]]:
    """Generate once; return wall time, seconds attributed per dataset and rows per dataset."""
    seconds: dict[str, float] = defaultdict(float)
    rows: dict[str, int] = {}
    start = last = time.perf_counter()

    def progress(dataset: str, written: int) -> None:
        nonlocal last
        now = time.perf_counter()
        seconds[dataset] += now - last
        rows[dataset] = written
        last = now

    generate(raw, pupils=pupils, traces_per_pupil=traces, chunk_pupils=chunk, progress=progress)
    wall = time.perf_counter() - start
    seconds["(publish)"] = time.perf_counter() - last
    return wall, dict(seconds), rows


def _read(folder: Path) -> pa.Table:
    return pa.concat_tables([pq.read_table(p) for p in sorted(folder.glob("part-*.parquet"))])


def _report(title: str, wall: float, seconds: dict[str, float], rows: dict[str, int]) -> None:
    print(f"\n{title}: {wall:.2f} s wall, peak RSS so far {_peak_rss_mib():.0f} MiB")
    print(f"  {'dataset':<22}{'rows':>12}{'seconds':>10}{'rows/s':>14}")
    for dataset, n in rows.items():
        s = seconds[dataset]
        print(f"  {dataset:<22}{n:>12,}{s:>10.2f}{n / s if s else float('inf'):>14,.0f}")
    total = sum(rows.values())
    print(f"  {'all rows':<22}{total:>12,}{wall:>10.2f}{total / wall:>14,.0f}"
          f"   (publish: {seconds['(publish)']:.2f} s)")


def main() -> None:
    """Run the baseline (small chunks) then the asked chunk size and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pupils", type=int, default=200_000)
    parser.add_argument("--traces-per-pupil", type=float, default=20.0)
    parser.add_argument("--chunk", type=int, default=200_000)
    args = parser.parse_args()
    small = max(1, args.chunk // 10)
    print(f"pupils={args.pupils:,} traces_per_pupil={args.traces_per_pupil} "
          f"chunk={args.chunk:,} baseline chunk={small:,}")
    with tempfile.TemporaryDirectory(prefix="bench-demo-data-") as tmp:
        generate(Path(tmp) / "warm-up", pupils=2048, traces_per_pupil=args.traces_per_pupil)
        base_raw, raw = Path(tmp) / "baseline", Path(tmp) / "asked"
        base = _run(base_raw, args.pupils, args.traces_per_pupil, small)
        _report(f"baseline, chunk_pupils={small:,}", *base)
        asked = _run(raw, args.pupils, args.traces_per_pupil, args.chunk)
        _report(f"asked, chunk_pupils={args.chunk:,}", *asked)
        print(f"\nwall time ratio baseline / asked: {base[0] / asked[0]:.2f} "
              f"(> 1: the larger chunks are faster)")
        same = all(_read(base_raw / d).equals(_read(raw / d)) for d in asked[2])
        print(f"same data with both chunk sizes: {'yes' if same else 'NO'}")
        size = sum(p.stat().st_size for p in raw.rglob("*.parquet"))
        print(f"parquet size on disk: {size / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
