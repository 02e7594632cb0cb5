"""Benchmark: peak memory of building an extract from a large learning-trace Parquet input.

Writes, in a temp folder, a Parquet file of N learning-trace events (default 50 million) over
M pupils (default 500,000), generated chunk by chunk so that the generator itself streams
(its own peak RSS is printed). Then, each in a fresh child process that reports its RSS
high-water mark (``resource.getrusage(RUSAGE_SELF).ru_maxrss``):

* ``imports``: the interpreter with pyarrow and the enclave modules loaded, nothing read;
* ``read`` (the baseline): the same Parquet read in the same batches the way the build reads
  it (no read-ahead), nothing else;
* ``read-defaults``: the same with pyarrow's default reader (``pre_buffer`` on), for
  information: its read-ahead makes memory grow with the file;
* ``build``: the extract build's streaming step (``enclave.provisioning.extracts``'
  ``_build_dataset``, the function ``build_extract`` runs for every dataset): a row filter,
  the timestamp to year-month, a score rounded, a column dropped, the INE replaced by its
  HMAC pseudonym, zstd Parquet written.

It prints each peak, the build's peak over the read's and the build's extra memory over the
read's, with wall and CPU time (CPU time is the fairer figure on a shared machine). Memory
must not grow with N: run with ``--events`` at two sizes and the same ``--pupils`` to see it
(the pseudonym memo grows with the distinct pupils, up to its bound, not with the events).
The database steps of ``build_extract`` (manifest, audit event) and the risk step
(pupil-level tables only; learning traces take no quasi-identifiers) are not in this measure.

    .venv/bin/python benchmarks/bench_extract_build.py [--events N] [--pupils M]
"""

from __future__ import annotations

import argparse
import json
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

GENERATION_CHUNK = 1_000_000
COLUMNS = ["ts", "verb", "ressource", "score", "duree_s"]
SPEC = {"datasets": {"traces": {
    "filters": [{"variable": "verb", "in": ["answered", "completed", "attempted"]}],
    "transforms": [{"variable": "ts", "op": "year_month"},
                   {"variable": "score", "op": "round", "base": 5},
                   {"variable": "duree_s", "op": "drop"}]}}}


def peak_rss_mb() -> float:
    """This process's RSS high-water mark (ru_maxrss is in kB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(path: Path, events: int, pupils: int, seed: int) -> None:
    """Write the events chunk by chunk: memory is one chunk plus the pupil identifiers."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    numbers = rng.choice(10**10, size=pupils, replace=False)
    letters = rng.integers(ord("A"), ord("Z") + 1, size=pupils)
    ids = pa.array([f"{n:010d}{chr(c)}" for n, c in zip(numbers, letters, strict=True)])
    verbs = pa.array(["answered", "attempted", "completed", "experienced", "viewed"])
    schema = pa.schema([("ine", pa.string()), ("ts", pa.timestamp("ms", tz="UTC")),
                        ("verb", pa.string()), ("ressource", pa.int32()),
                        ("score", pa.int16()), ("duree_s", pa.int32())])
    start_ms = 1_725_000_000_000
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for offset in range(0, events, GENERATION_CHUNK):
            rows = min(GENERATION_CHUNK, events - offset)
            times = start_ms + offset * 600 + np.cumsum(rng.integers(0, 1200, size=rows))
            writer.write_table(pa.table({
                "ine": ids.take(pa.array(rng.integers(0, pupils, size=rows))),
                "ts": pa.array(times, schema.field("ts").type),
                "verb": verbs.take(pa.array(rng.integers(0, len(verbs), size=rows))),
                "ressource": pa.array(rng.integers(0, 20_000, size=rows), pa.int32()),
                "score": pa.array(rng.integers(0, 101, size=rows), pa.int16()),
                "duree_s": pa.array(rng.integers(1, 3600, size=rows), pa.int32()),
            }, schema=schema))


def child(mode: str, src: Path, dst: Path, batch_size: int) -> dict[str, float]:
    """One measured step, run in its own process; returns rows, seconds and peak RSS."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from anonymization.pseudonyms import Pseudonymiser
    from enclave.provisioning import extracts
    from enclave.provisioning.spec import ExtractSpec

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    extracts.BATCH_ROWS = batch_size
    rows = 0
    started, cpu = time.perf_counter(), time.process_time()
    if mode in ("read", "read-defaults"):
        options = {"pre_buffer": False} if mode == "read" else {}
        with pq.ParquetFile(src, **options) as source:
            for batch in source.iter_batches(batch_size=batch_size,
                                             columns=["ine", *COLUMNS]):
                rows += batch.num_rows
    elif mode == "build":
        rules = ExtractSpec.from_dict(SPEC).rules("traces")
        pseudonymiser = Pseudonymiser(secrets.token_bytes(32), {"ine": "eleve"})
        rows, _ = extracts._build_dataset([src], COLUMNS, "ine", pseudonymiser, dst, rules)
    elif mode == "generate":
        generate(src, batch_size, int(dst.name), 1)  # batch_size: events, dst.name: pupils
    return {"rows": rows, "seconds": time.perf_counter() - started,
            "cpu_seconds": time.process_time() - cpu, "peak_rss_mb": peak_rss_mb()}


def run_child(mode: str, src: Path, dst: Path, batch_size: int) -> dict[str, float]:
    """Run `child` in a fresh interpreter (its ru_maxrss is its own) and read its result."""
    out = subprocess.run(  # noqa: S603
        [sys.executable, __file__, "--child", mode, str(src), str(dst), str(batch_size)],
        capture_output=True, text=True, check=True, cwd=ROOT)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, mode, src, dst, size = sys.argv
        print(json.dumps(child(mode, Path(src), Path(dst), int(size))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000_000)
    parser.add_argument("--pupils", type=int, default=500_000)
    parser.add_argument("--batch-size", type=int, default=500_000,
                        help="rows per batch (the build's BATCH_ROWS)")
    args = parser.parse_args()
    if not 1 <= args.pupils <= args.events:
        parser.error("need 1 <= pupils <= events")
    with tempfile.TemporaryDirectory(prefix="bench_extract_build_") as folder:
        src = Path(folder) / "traces.parquet"
        generated = run_child("generate", src, Path(folder) / str(args.pupils), args.events)
        print(f"input: {args.events:,} learning-trace events, {args.pupils:,} pupils, "
              f"{src.stat().st_size / 1e6:,.0f} MB Parquet (zstd), generated in "
              f"{generated['seconds']:.1f} s with a peak RSS of "
              f"{generated['peak_rss_mb']:.0f} MB (chunks of {GENERATION_CHUNK:,} rows)")
        imports = run_child("imports", src, Path(folder) / "none", args.batch_size)
        read = run_child("read", src, Path(folder) / "none", args.batch_size)
        defaults = run_child("read-defaults", src, Path(folder) / "none", args.batch_size)
        dst = Path(folder) / "traces_extract.parquet"
        build = run_child("build", src, dst, args.batch_size)
        print(f"batches of {args.batch_size:,} rows, one Arrow thread, each step in a fresh "
              "process\n")
        print(f"{'step':58s} {'peak RSS MB':>12s} {'wall s':>7s} {'cpu s':>7s} "
              f"{'events/cpu-s':>13s}")
        for label, r in (("imports only (interpreter, pyarrow, enclave)", imports),
                         ("baseline: read in batches as the build does", read),
                         ("read in batches, pyarrow defaults (pre_buffer on)", defaults),
                         ("extract build: filter, recode, pseudonymise, write", build)):
            speed = (f"{args.events / r['cpu_seconds'] / 1e6:.2f} M/s"
                     if r["rows"] and r["cpu_seconds"] else "")
            print(f"{label:58s} {r['peak_rss_mb']:12.0f} {r['seconds']:7.1f} "
                  f"{r['cpu_seconds']:7.1f} {speed:>13s}")
        print(f"\nbuild written: {build['rows']:,} rows kept of {args.events:,}, "
              f"{dst.stat().st_size / 1e6:,.0f} MB")
        extra_read = read["peak_rss_mb"] - imports["peak_rss_mb"]
        extra_build = build["peak_rss_mb"] - imports["peak_rss_mb"]
        print(f"peak RSS, build / read: {build['peak_rss_mb'] / read['peak_rss_mb']:.2f}x; "
              f"above the imports: read {extra_read:.0f} MB, build {extra_build:.0f} MB "
              f"({extra_build / max(extra_read, 1):.2f}x)")


if __name__ == "__main__":
    main()
