"""Load test of the portal on loopback (goal: p95 < 150 ms at 50 requests/s per page).

Builds a throwaway enclave holding 10,000 projects' worth of audit events (each project's life
written as the state machine writes it: created, submitted, in review, decided, agreements,
activated..., about 57,000 hash-linked events spread over a year, inserted directly), starts the
portal with uvicorn in a child process, and drives each main page at a fixed rate (open loop:
a request every 1/rate s whatever the answers) for a bounded number of requests. Prints p50,
p95 and max latency and the achieved throughput per page, and the ratio to a trivial route
(``healthz``) measured in the same run. "audit, new dates each" changes the date window at
every request, so nothing is reused from the previous one (the cold cost of a new filter). The
hub is replaced by a table of tokens (the portal's own session and policy code runs unchanged).

Usage: python benchmarks/bench_portal.py [--projects 10000] [--rate 50] [--requests 200]
                                         [--max-seconds 240] [--check] [--only register]
                                         [--compare-index]

``--compare-index`` drives the chosen pages twice in one run, first without the register's
indexes of migration 0006, then with them, so that both are measured under the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from sqlalchemy import Table, insert

from enclave.core import audit, catalogue, people, policy
from enclave.core.context import Enclave, initialise
from enclave.core.policy import Role
from enclave.core.settings import load_settings
from enclave.portal.sessions import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    CookieSealer,
    load_or_create_secret,
)

PREFIX = "/services/portal/"
TOKENS = {"bench-gaelle": "gaelle", "bench-alice": "alice", "bench-claire": "claire"}
PAGES = [  # (label, path, token)
    ("baseline healthz", "healthz", None),
    ("home (ethics)", "", "bench-gaelle"),
    ("home (researcher)", "", "bench-alice"),
    ("catalogue", "catalogue", "bench-alice"),
    ("dataset", "catalogue/eleves", "bench-alice"),
    ("account", "account", "bench-alice"),
    ("audit trail", "audit", "bench-gaelle"),
    ("audit, project filter", "audit?project=prj-04242", "bench-gaelle"),
    ("audit, action+dates", "audit?action=project.*&date_from={d1}&date_to={d2}",
     "bench-gaelle"),
    ("audit, new dates each", "audit?action=project.*&date_from={{d}}&date_to={d2}",
     "bench-gaelle"),
    ("audit, older page", "audit?before={mid}", "bench-gaelle"),
    ("activity charts", "activity", "bench-gaelle"),
    ("api audit events", "api/v1/audit/events?limit=50", "bench-gaelle"),
    ("my projects", "projects", "bench-alice"),
    ("application form", "apply", "bench-alice"),
    ("project page", "projects/prj-00000", "bench-alice"),
    ("register (ethics)", "register", "bench-gaelle"),
    ("register, page 100", "register?offset=4950", "bench-gaelle"),
    ("register, by status", "register?status=in_review", "bench-gaelle"),
    ("review queue (staff)", "review", "bench-claire"),
    ("review page (staff)", "review/{queued}", "bench-claire"),
    ("change requests", "requests", "bench-claire"),
    ("privacy budgets", "privacy", "bench-gaelle"),
    ("api register", "api/v1/register?limit=50", "bench-gaelle"),
]
#: One project in 500 has alice as its principal investigator ("my projects" lists 20).
ALICE_EVERY = 500
LIFE = [("submitted", "alice"), ("in_review", "claire"), ("approved", "claire"),
        ("active", "system"), ("suspended", "claire"), ("active", "claire"),
        ("revoked", "claire")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build(home: Path, projects: int, seed: int = 7) -> int:
    """Create the enclave and its history; return the number of audit events."""
    from enclave.demo_data import generate

    settings = load_settings(env={}, home=home)
    initialise(settings, env={})
    generate(settings.raw_dir, pupils=500, seed=seed, traces_per_pupil=2.0)
    enclave = Enclave.open(settings, env={})
    rng = random.Random(seed)  # benchmark data only, not security-relevant
    with enclave.db.transaction() as session:
        catalogue.load_catalogue(session, policy.SYSTEM, settings.raw_dir)
        for name, role in (("gaelle", Role.ETHICS_COMMITTEE), ("alice", Role.RESEARCHER),
                           ("claire", Role.DEPP_STAFF)):
            people.create_user(session, policy.SYSTEM, name, name.title(), roles=[role])
        people.record_accreditation(session, policy.SYSTEM, "alice",
                                    date.today() - timedelta(days=100))
        last_seq, prev = audit.head(session)
    rows = []
    finals: dict[str, str] = {}
    for p in range(projects):
        pid = f"prj-{p:05d}"
        steps = rng.choice([1, 2, 3, 4, 4, 4, 5, 7])
        rows.append(("alice", "project.created", pid, {"title": f"Étude {p}"}))
        state = "draft"
        for target, actor in LIFE[:steps]:
            if target == "approved" and rng.random() < 0.2:
                target = "rejected"
            rows.append((actor, f"project.{target}", pid,
                         {"from": state, "to": target, "reason": "revue"}))
            if target == "approved":
                for member in ("alice", "bruno"):
                    rows.append((member, "agreement.accepted", pid, {"agreement": "DUA-1"}))
            state = target
            if target == "rejected":
                break
        finals[pid] = state
    _project_rows(enclave, finals)
    start = datetime.now(UTC) - timedelta(days=365)
    step = timedelta(days=365) / max(len(rows), 1)
    table = insert(cast(Table, audit.AuditEvent.__table__))
    batch = []
    with enclave.db.transaction() as session:
        for i, (actor, action, pid, details) in enumerate(rows):
            seq = last_seq + i + 1
            at = (start + step * i).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            det = audit.canonical_json(details)
            doc = audit._event_document(seq, at, actor, action, "project", pid, pid, det)
            digest = audit.event_hash(prev, doc)
            batch.append({"seq": seq, "at": at, "actor": actor, "action": action,
                          "object_type": "project", "object_id": pid, "project_id": pid,
                          "details": det, "prev_hash": prev, "hash": digest})
            prev = digest
            if len(batch) == 5000:
                session.execute(table, batch)
                batch = []
        if batch:
            session.execute(table, batch)
    enclave.chain.checkpoint()
    with enclave.db.sessions() as session:
        total = audit.head(session)[0]
    enclave.close()
    return total


def _project_rows(enclave: Enclave, finals: dict[str, str]) -> None:
    """The projects' own rows (the register, queues and pages read them), each with its
    application's variables and members, inserted directly in bulk."""
    from access_requests.models import Membership, Project, RequestedVariable

    now = datetime.now(UTC)
    projects, members, variables = [], [], []
    for i, (pid, state) in enumerate(finals.items()):
        pi = "alice" if i % ALICE_EVERY == 0 else f"r{i:05d}"
        projects.append({"id": pid, "title": f"Étude {i}", "summary": "Résumé", "status": state,
                         "version": 3, "principal_investigator": pi,
                         "end_date": date.today() + timedelta(days=365),
                         "created_at": now - timedelta(minutes=len(finals) - i),
                         "submitted_at": None if state == "draft" else now, "review_round": 1})
        members.append({"project_id": pid, "username": pi, "role_in_project": "pi",
                        "institution": "Université"})
        for name, why in (("sexe", "Écarts"), ("niveau", "Par niveau"), ("boursier", "Effet")):
            variables.append({"project_id": pid, "dataset_id": "eleves", "variable": name,
                              "justification": why})
    with enclave.db.transaction() as session:
        for model, batch in ((Project, projects), (Membership, members),
                             (RequestedVariable, variables)):
            for start in range(0, len(batch), 5000):
                session.execute(insert(cast(Table, model.__table__)),
                                batch[start:start + 5000])


def serve(home: Path, port: int) -> None:
    """Child process: the portal over ``home`` with a token table instead of the hub."""
    import uvicorn
    from jupyterhub.services.auth import HubOAuth

    from enclave.portal.app import create_app
    from enclave.portal.identity import HubIdentity, HubUser

    class TokenTable(HubIdentity):
        async def user_for_token(self, token: str) -> HubUser | None:
            name = TOKENS.get(token)
            return HubUser(name, "user", frozenset({"access:services!service=portal"})) \
                if name else None

    identity = TokenTable(HubOAuth(api_token="bench-service-token",  # noqa: S106 - no hub
                                   base_url=PREFIX,
                                   oauth_client_id="service-portal",
                                   access_scopes={"access:services!service=portal"}))
    settings = load_settings(env={}, home=home)
    enclave = Enclave.open(settings, env={})
    app = create_app(enclave, identity,
                     secret=load_or_create_secret(settings.run_dir / "portal_cookie_secret"),
                     prime_activity=True, on_close=enclave.close)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def drive(base: str, path: str, cookies: dict[str, str], headers: dict[str, str],
                rate: float, count: int, deadline: float) -> tuple[list[float], float, int]:
    """Send ``count`` requests at ``rate``/s (open loop); latencies in ms, elapsed, errors.

    A ``{d}`` in ``path`` becomes a different day for each request (nothing can be reused
    from the previous one: the cold cost of a new filter).
    """
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
    async with httpx.AsyncClient(base_url=base, cookies=cookies, headers=headers,
                                 limits=limits, timeout=30) as client:
        async def one(i: int) -> None:
            nonlocal errors
            target = path.replace("{d}", (date.today() - timedelta(days=61 + i)).isoformat())
            began = time.perf_counter()
            try:
                response = await client.get(target)
                if response.status_code != 200:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append((time.perf_counter() - began) * 1000)

        tasks = []
        start = time.perf_counter()
        for i in range(count):
            if time.monotonic() > deadline:
                break
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        return latencies, time.perf_counter() - start, errors


def _queued(home: Path) -> str:
    """A project waiting in the review queue (for the staff's review page)."""
    from sqlalchemy import select

    from access_requests.models import Project

    enclave = Enclave.open(load_settings(env={}, home=home), env={})
    try:
        with enclave.db.sessions() as session:
            return str(session.execute(select(Project.id).where(
                Project.status.in_(["submitted", "in_review"])).limit(1)).scalar_one())
    finally:
        enclave.close()


#: The register's indexes added by migration 0006 (name, columns).
REGISTER_INDEXES = (("ix_projects_created_at_id", "created_at, id"),
                    ("ix_projects_status_created_at_id", "status, created_at, id"))


def _register_indexes(home: Path, *, present: bool) -> None:
    """Drop or re-create the register's indexes in the benchmark's own database (the running
    portal's SQLite connections see the schema change at their next statement)."""
    from sqlalchemy import text

    enclave = Enclave.open(load_settings(env={}, home=home), env={})
    try:
        with enclave.db.transaction() as session:
            for name, columns in REGISTER_INDEXES:
                session.execute(text(f"DROP INDEX IF EXISTS {name}"))
                if present:
                    session.execute(text(f"CREATE INDEX {name} ON projects ({columns})"))
    finally:
        enclave.close()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second")
    parser.add_argument("--requests", type=int, default=200, help="requests per page")
    parser.add_argument("--max-seconds", type=float, default=240.0, help="overall time bound")
    parser.add_argument("--check", action="store_true", help="exit 1 if a p95 misses 150 ms")
    parser.add_argument("--only", default="", help="drive only the pages whose label "
                        "contains this text (the baseline always runs)")
    parser.add_argument("--compare-index", action="store_true",
                        help="drive the pages twice in the same run: first without the "
                        "register's indexes of migration 0006, then with them")
    parser.add_argument("--serve", nargs=2, metavar=("HOME", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), int(args.serve[1]))
        return 0
    deadline = time.monotonic() + args.max_seconds
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the server on the way out
    with tempfile.TemporaryDirectory(prefix="bench-portal-") as tmp:
        home = Path(tmp) / "var"
        began = time.perf_counter()
        events = build(home, args.projects)
        print(f"setup: {args.projects:,} projects, {events:,} audit events in "
              f"{time.perf_counter() - began:.1f} s")
        settings = load_settings(env={}, home=home)
        sealer = CookieSealer(load_or_create_secret(settings.run_dir / "portal_cookie_secret"))
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
        server = subprocess.Popen(  # noqa: S603 - this very script, as the server
            [sys.executable, __file__, "--serve", str(home), str(port)], env=env,
            start_new_session=True)
        base = f"http://127.0.0.1:{port}{PREFIX}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(base + "healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            today = date.today()
            fmt = {"d1": (today - timedelta(days=60)).isoformat(),
                   "d2": (today - timedelta(days=30)).isoformat(), "mid": events // 2,
                   "queued": _queued(home)}
            results = []
            passes: list[tuple[str, bool | None]] = [("", None)]
            if args.compare_index:
                passes = [(" [no 0006]", False), (" [0006]", True)]
            plan: list[tuple[str, bool | None, str, str, str | None]] = [
                (suffix, with_index, label, path, token) for suffix, with_index in passes
                    for label, path, token in PAGES]
            current: bool | None = None
            for suffix, with_index, label, path, token in plan:
                if args.only and args.only not in label and label != PAGES[0][0]:
                    continue
                if with_index is not None and with_index != current:
                    _register_indexes(home, present=with_index)
                    current = with_index
                label += suffix
                path = path.format(**fmt)
                cookies, headers = {}, {}
                if token and path.startswith("api/"):
                    headers = {"Authorization": f"Bearer {token}"}
                elif token:
                    sid = f"bench-session-{token}"
                    cookies = {SESSION_COOKIE: sealer.seal(
                        "session", {"t": token, "sid": sid, "u": TOKENS[token]}, 3600),
                        CSRF_COOKIE: sealer.csrf_token(sid)}
                warm = httpx.get(base + path.replace("{d}", str(fmt["d1"])), cookies=cookies,
                                 headers=headers, timeout=60)
                if warm.status_code != 200:
                    raise RuntimeError(f"{label}: {warm.status_code} {warm.text[:300]}")
                lat, elapsed, errors = asyncio.run(drive(base, path, cookies, headers,
                                                         args.rate, args.requests, deadline))
                if not lat:
                    print(f"{label}: skipped (time bound reached)")
                    continue
                results.append((label, _pct(lat, 0.5), _pct(lat, 0.95), max(lat),
                                len(lat) / elapsed, errors, len(lat)))
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
    base_p50, base_p95 = results[0][1], results[0][2]
    print(f"\nrate {args.rate:g} req/s, {args.requests} requests per page "
          f"(goal: p95 < 150 ms)\n")
    print(f"{'page':<24}{'p50 ms':>8}{'p95 ms':>8}{'max ms':>8}{'req/s':>8}{'errors':>7}"
          f"{'p50 x':>7}{'p95 x':>7}  goal")
    missed = 0
    for label, p50, p95, worst, tput, errors, _n in results:
        ok = p95 < 150 and errors == 0
        missed += not ok
        print(f"{label:<24}{p50:>8.1f}{p95:>8.1f}{worst:>8.1f}{tput:>8.1f}{errors:>7}"
              f"{p50 / base_p50:>7.1f}{p95 / base_p95:>7.1f}  {'ok' if ok else 'MISSED'}")
    print(json.dumps({"events": events, "results": [
        dict(zip(("page", "p50_ms", "p95_ms", "max_ms", "rps", "errors", "n"), r, strict=True))
        for r in results]}))
    return 1 if (args.check and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
