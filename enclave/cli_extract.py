"""``enclave extract``: check and build a project's extract from a specification file.

An edge: it parses arguments, reads the specification (:meth:`ExtractSpec.from_file`, TOML or
JSON; example in ``enclave/provisioning/examples/``), and calls the provisioning workflow
(:func:`enclave.provisioning.extracts.build_extract`), which checks the policy, the spec and
k-anonymity. The build is done on behalf of the DEPP staff account given with ``--as`` (the
audit event names it). Progress (batches and rows done, rate, ETA) goes to stderr when stderr
is a terminal and ``--quiet`` is not given; the manifest summary and the risk report's
location go to stdout. Exit codes: 0 built (or spec valid), 2 refused or invalid (the
message names the problem), 3 k-anonymity below target (DEPP staff may override with
``--override-reason``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from enclave.core.settings import Settings

if TYPE_CHECKING:
    from enclave.provisioning.extracts import BuildProgress

EXIT_BELOW_K = 3
_REFRESH_SECONDS = 0.2


def _duration(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class ProgressDisplay:
    """One status line on ``stream``, rewritten in place at most every 0.2 s.

    The rate is input rows per second since the start; the ETA divides the input rows left
    (the catalogue's row count minus the rows read) by that rate.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.started = time.monotonic()
        self.last = 0.0
        self.shown = False

    def line(self, event: BuildProgress, now: float) -> str:
        """The status text for ``event`` at time ``now`` (monotonic seconds)."""
        elapsed = max(now - self.started, 1e-9)
        rate = event.total_rows_read / elapsed
        if event.stage == "risk":
            return (f"{event.dataset}: {event.rows_read:,} rows streamed; measuring risk and "
                    "protecting (k-anonymity)...")
        left = max(event.total_rows - event.total_rows_read, 0)
        eta = _duration(left / rate) if rate > 0 else "?"
        share = (f" ({100 * event.total_rows_read / event.total_rows:.0f}%)"
                 if event.total_rows else "")
        return (f"{event.dataset}: {event.batches} batches, {event.rows_read:,} rows; total "
                f"{event.total_rows_read:,}/{event.total_rows:,}{share}, {rate:,.0f} rows/s, "
                f"ETA {eta}")

    def __call__(self, event: BuildProgress) -> None:
        now = time.monotonic()
        if event.stage == "stream" and now - self.last < _REFRESH_SECONDS:
            return
        self.last = now
        self.stream.write("\r\033[K" + self.line(event, now))
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()
            self.shown = False


def _open(settings: Settings):  # type: ignore[no-untyped-def]
    from enclave.core.context import Enclave

    return Enclave.open(settings)


def cmd_extract_check(args: argparse.Namespace, settings: Settings) -> int:
    """Validate a specification against the project without building anything."""
    from enclave.provisioning import extracts
    from enclave.provisioning.spec import ExtractSpec

    spec = ExtractSpec.from_file(args.spec)
    enclave = _open(settings)
    try:
        actor = extracts.actor_named(enclave.db, args.as_user)
        approved = extracts.check_spec(enclave.db, settings, actor, args.project, spec)
    finally:
        enclave.close()
    print(f"{args.spec}: valid for project {args.project}")
    for dataset_id, variables in approved.items():
        rules = spec.rules(dataset_id)
        detail = (f"; k = {rules.k} on {', '.join(rules.quasi_identifiers)}"
                  if rules.quasi_identifiers else "")
        print(f"  {dataset_id}: {len(variables)} approved variables, {len(rules.filters)} "
              f"filters, {len(rules.transforms)} transformations{detail}")
    return 0


def cmd_extract_build(args: argparse.Namespace, settings: Settings) -> int:
    """Build and publish the next extract version from a specification file."""
    from enclave.provisioning import extracts
    from enclave.provisioning.risk_report import PAGE_NAME, REPORT_NAME
    from enclave.provisioning.spec import ExtractSpec

    spec = ExtractSpec.from_file(args.spec)
    display = (ProgressDisplay(sys.stderr)
               if not args.quiet and sys.stderr.isatty() else None)
    enclave = _open(settings)
    try:
        actor = extracts.actor_named(enclave.db, args.as_user)
        try:
            built = extracts.build_extract(enclave.db, settings, enclave.keys, actor,
                                           args.project, spec=spec,
                                           override_reason=args.override_reason,
                                           progress=display)
        except extracts.KAnonymityRefused as exc:
            if display is not None:
                display.close()  # end the status line before the message
            print(f"enclave: refused: {exc}", file=sys.stderr)
            print("enclave: nothing was published; DEPP staff may build it anyway with "
                  "--override-reason TEXT, which the manifest and the audit trail keep",
                  file=sys.stderr)
            return EXIT_BELOW_K
        finally:
            if display is not None:
                display.close()
        enclave.checkpoint_if_due()
    finally:
        enclave.close()
    manifest = built.manifest
    print(f"extract v{built.version} of {built.project_id} published in {built.path}")
    print(f"  key {manifest['key_id']} (version {manifest['key_version']}), built by "
          f"{manifest['built_by']} at {manifest['built_at']}")
    for f in manifest["files"]:
        print(f"  {f['name']}: {f['rows']:,} rows, {len(f['variables'])} variables, "
              f"sha256 {f['sha256'][:16]}…")
    if manifest.get("risk_report"):
        print(f"risk report: {built.path / REPORT_NAME}")
        print(f"risk page:   {built.path / PAGE_NAME}")
        report = json.loads((built.path / REPORT_NAME).read_text(encoding="utf-8"))
        for name, section in report["tables"].items():
            suppressed = sum(section["suppressions"].values())
            print(f"  {name}: k = {section['k']}, records with fk < k: "
                  f"{section['violations_before']} before, {section['violations_after']} "
                  f"after; {suppressed} values suppressed")
    if manifest.get("override"):
        print(f"override by {manifest['override']['by']}: {manifest['override']['reason']}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``extract check`` and ``extract build`` to the ``enclave`` parser."""
    p = sub.add_parser("extract", help="check and build project extracts from a spec file")
    esub = p.add_subparsers(dest="extract_command", required=True, metavar="ACTION")
    for name, handler, text in (
            ("check", cmd_extract_check, "validate a specification, build nothing"),
            ("build", cmd_extract_build, "build and publish the next extract version")):
        q = esub.add_parser(name, help=text, description=text)
        q.add_argument("project", help="project id, e.g. P-2026-0001")
        q.add_argument("spec", type=Path,
                       help="extract specification, .toml or .json (see "
                            "enclave/provisioning/examples/)")
        q.add_argument("--as", dest="as_user", required=True, metavar="USERNAME",
                       help="the DEPP staff account the build is done for (audited)")
        if name == "build":
            q.add_argument("--override-reason", metavar="TEXT", default=None,
                           help="DEPP staff only: publish even if k-anonymity stays below "
                                "target, for this reason (kept in the manifest and audit)")
            q.add_argument("--quiet", action="store_true",
                           help="no progress display (it is off anyway when stderr is not "
                                "a terminal)")
        q.set_defaults(handler=handler)
