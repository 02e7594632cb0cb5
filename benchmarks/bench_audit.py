"""Benchmark of the audit chain: append rate and verification time (goals: >= 2,000 appends/s,
verify 1,000,000 events in <= 10 s).

Prints, for SQLite and (when its binaries are installed) a throwaway PostgreSQL cluster:
- appends/s of ``audit.record`` with one event per transaction, from 1 and from 4 threads, and
  the baseline: a plain INSERT of the same row per transaction (no lock, no hashing), so the
  ratio shows what the chain costs;
- verification time of N events and the baseline: reading the same rows without hashing.

Usage: python benchmarks/bench_audit.py [--events 1000000] [--appends 5000] [--backend both]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import insert, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from enclave.core import audit
from enclave.core.context import Enclave, initialise
from enclave.core.settings import load_settings


def _append_rate(enclave: Enclave, n: int, threads: int) -> float:
    per = n // threads

    def work(k: int) -> None:
        for i in range(per):
            with enclave.db.transaction() as session:
                audit.record(session, actor="bench", action="bench.append", object_type="t",
                             object_id=f"{k}-{i}", project_id="prj-bench",
                             details={"i": i, "k": k})

    start = time.perf_counter()
    pool = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return per * threads / (time.perf_counter() - start)


def _baseline_insert_rate(enclave: Enclave, n: int) -> float:
    """Plain inserts into a scratch table of the same shape, one per transaction."""
    with enclave.db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE bench_plain (seq BIGINT PRIMARY KEY, at VARCHAR(32), "
                          "actor VARCHAR(200), action VARCHAR(100), details TEXT, "
                          "hash VARCHAR(64))"))
    start = time.perf_counter()
    for i in range(n):
        with enclave.db.transaction() as session:
            session.execute(text("INSERT INTO bench_plain VALUES (:s, :a, 'bench', "
                                 "'bench.append', :d, :h)"),
                            {"s": i, "a": "2026-01-01T00:00:00.000000Z", "d": '{"i":1}',
                             "h": "0" * 64})
    return n / (time.perf_counter() - start)


def _bulk_fill(enclave: Enclave, n: int, batch: int = 50_000) -> None:
    """Fill the chain quickly with valid events (same hashing code, bulk inserted)."""
    with enclave.db.sessions() as session:
        seq, prev = audit.head(session)
    table = audit.AuditEvent.__table__
    at = "2026-11-28T12:00:00.000000Z"
    while n > 0:
        rows = []
        for _ in range(min(batch, n)):
            seq += 1
            details = audit.canonical_json({"i": seq, "texte": "évaluation"})
            doc = audit._event_document(seq, at, "bench", "bench.fill", "thing", str(seq),
                                        "prj-bench", details)
            digest = audit.event_hash(prev, doc)
            rows.append({"seq": seq, "at": at, "actor": "bench", "action": "bench.fill",
                         "object_type": "thing", "object_id": str(seq),
                         "project_id": "prj-bench", "details": details, "prev_hash": prev,
                         "hash": digest})
            prev = digest
        with enclave.db.engine.begin() as conn:
            conn.execute(insert(table), rows)
        n -= len(rows)


def _read_only(enclave: Enclave) -> float:
    start = time.perf_counter()
    count = 0
    with enclave.db.sessions() as session:
        for _row in audit._iter_rows(session):
            count += 1
    return time.perf_counter() - start


def run_backend(name: str, url: str | None, home: Path, events: int, appends: int) -> None:
    """Measure one backend and print its figures."""
    settings = load_settings(env={}, home=home, **({"database_url": url} if url else {}))
    initialise(settings, env={})
    enclave = Enclave.open(settings, env={})
    try:
        rate1 = _append_rate(enclave, appends, 1)
        rate4 = _append_rate(enclave, appends, 4)
        base = _baseline_insert_rate(enclave, appends)
        print(f"[{name}] append, 1 thread : {rate1:9.0f} events/s  (goal >= 2000)")
        print(f"[{name}] append, 4 threads: {rate4:9.0f} events/s")
        print(f"[{name}] baseline plain INSERT: {base:9.0f} rows/s   chain/baseline = "
              f"{rate1 / base:.2f}")
        existing = 2 * appends
        _bulk_fill(enclave, max(events - existing, 0))
        read = _read_only(enclave)
        start = time.perf_counter()
        result = enclave.chain.verify()
        took = time.perf_counter() - start
        assert result.ok, result.describe()
        print(f"[{name}] verify {result.events} events: {took:6.2f} s  (goal <= 10 s for 1M; "
              f"{result.events / took:,.0f} events/s)")
        print(f"[{name}] baseline read without hashing: {read:6.2f} s   verify/read = "
              f"{took / read:.2f}")
    finally:
        enclave.close()


def main() -> None:
    """Parse arguments and run the chosen backends."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--appends", type=int, default=5_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        if args.backend in ("sqlite", "both"):
            run_backend("sqlite", None, Path(tmp) / "sqlite", args.events, args.appends)
        if args.backend in ("postgresql", "both"):
            from tests.support.pgcluster import find_bindir, start_cluster

            if find_bindir() is None:
                print("[postgresql] skipped: server binaries not installed")
                return
            cluster = start_cluster()
            try:
                cluster.psql("CREATE DATABASE bench")
                run_backend("postgresql", cluster.url("bench"), Path(tmp) / "pg", args.events,
                            args.appends)
            finally:
                cluster.stop()


if __name__ == "__main__":
    main()
