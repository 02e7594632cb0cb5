"""The ``enclave`` command line: an edge that parses arguments and calls workflows, nothing more."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from enclave.cli_extract import register as register_extract_commands
from enclave.core.exceptions import EnclaveError
from enclave.core.settings import Settings, load_settings

Handler = Callable[[argparse.Namespace, Settings], int]


def _open(settings: Settings):  # type: ignore[no-untyped-def]
    from enclave.core.context import Enclave

    return Enclave.open(settings)


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    """Create the home folders, demo keys and schema; then the demo accounts in demo mode."""
    from enclave.core.context import initialise

    for line in initialise(settings):
        print(line)
    if args.with_demo_accounts:
        from enclave import demo

        enclave = _open(settings)
        try:
            for line in demo.ensure_demo_accounts(enclave):
                print(line)
            print(f"\nJupyterHub will listen on {settings.hub_bind_url}/hub/login"
                  "\nDemo accounts (username, password, roles); passwords were generated at "
                  "first start and are kept in var/keys/demo-accounts.json:")
            for line in demo.describe_demo_accounts(enclave):
                print(line)
        finally:
            enclave.close()
    print(f"enclave home: {settings.home} (database {settings.effective_database_url})")
    return 0


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    """Migrate the database to the code's schema."""
    from enclave.core import db

    database = db.Database(settings.effective_database_url)
    try:
        before = db.current_revision(database)
        db.upgrade(database)
        print(f"database at {db.current_revision(database)} (was {before or 'empty'})")
    finally:
        database.dispose()
    return 0


def cmd_demo_data(args: argparse.Namespace, settings: Settings) -> int:
    """Generate synthetic DEPP data into the raw zone and load its catalogue."""
    from enclave import demo

    enclave = _open(settings)
    try:
        for line in demo.generate_demo_data(enclave, pupils=args.pupils, seed=args.seed,
                                            traces_per_pupil=args.traces_per_pupil):
            print(line, flush=True)
    finally:
        enclave.close()
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Run the walking skeleton end to end and print each step."""
    from enclave import demo

    enclave = _open(settings)
    try:
        result = demo.walking_skeleton(enclave, log=lambda line: print(line, flush=True))
    finally:
        enclave.close()
    return 0 if result.audit_ok else 1


def cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    """Verify the audit chain; exit 0 if OK, 2 with the first bad sequence number otherwise."""
    enclave = _open(settings)
    try:
        result = enclave.chain.verify()
    finally:
        enclave.close()
    print(result.describe())
    return 0 if result.ok else 2


def cmd_audit_checkpoint(args: argparse.Namespace, settings: Settings) -> int:
    """Write a signed checkpoint of the chain's head."""
    enclave = _open(settings)
    try:
        cp = enclave.chain.checkpoint()
    finally:
        enclave.close()
    print(f"checkpoint at #{cp.seq} {cp.head_hash}" if cp else "the chain is empty")
    return 0


def cmd_catalogue_load(args: argparse.Namespace, settings: Settings) -> int:
    """Reload the catalogue from the raw zone's metadata (checks every file)."""
    from enclave.core import catalogue, policy

    enclave = _open(settings)
    try:
        with enclave.db.transaction() as session:
            specs = catalogue.load_catalogue(session, policy.SYSTEM, settings.raw_dir)
        enclave.checkpoint_if_due()
    finally:
        enclave.close()
    for spec in specs:
        print(f"{spec.id}: {spec.rows} rows, {len(spec.variables)} variables")
    return 0


def cmd_tick(args: argparse.Namespace, settings: Settings) -> int:
    """The periodic work (run it from cron or a timer every few minutes): expire projects,
    finish interrupted destructions, warn expiring accreditations, send e-mail, checkpoint."""
    import os

    from access_requests import lifecycle, notifications, safe_people
    from enclave.core import policy

    enclave = _open(settings)
    try:
        expired = lifecycle.expire_due(enclave.db)
        cleaned = lifecycle.finish_pending_destruction(enclave.db)
        with enclave.db.transaction() as session:
            warned = safe_people.warn_expiring_accreditations(
                session, policy.SYSTEM, within_days=settings.accreditation_warning_days)
        print(f"expired projects: {len(expired)}; destructions finished: {len(cleaned)}; "
              f"accreditation warnings: {len(warned)}")
        if settings.smtp_host:
            report = notifications.deliver_email(
                enclave.db, host=settings.smtp_host, port=settings.smtp_port,
                sender=settings.smtp_sender, username=settings.smtp_username or None,
                password=os.environ.get("ENCLAVE_SMTP_PASSWORD") or None)
            print(f"e-mail: {report}")
        else:
            print("e-mail: no SMTP server configured (ENCLAVE_SMTP_HOST); in-app only")
        enclave.checkpoint_if_due()
    finally:
        enclave.close()
    return 0


def cmd_keys_new_master(args: argparse.Namespace, settings: Settings) -> int:
    """Print a new random master key for the operator's secret store (not stored anywhere)."""
    from enclave.core.keystore import generate_master_key_text

    print(generate_master_key_text())
    return 0


def cmd_hub(args: argparse.Namespace, settings: Settings) -> int:
    """Start JupyterHub with the enclave's configuration (foreground)."""
    from enclave.hub import launcher

    return launcher.run_hub(settings)


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    """Initialise, create demo accounts and data if absent, then serve the hub until Ctrl-C."""
    from enclave import demo
    from enclave.core.context import initialise
    from enclave.hub import launcher

    for line in initialise(settings):
        print(line)
    enclave = _open(settings)
    try:
        for line in demo.ensure_demo_accounts(enclave):
            print(line)
        if not (settings.raw_dir / "eleves" / "metadata.json").exists():
            for line in demo.generate_demo_data(enclave):
                print(line, flush=True)
        from enclave.workspaces.demo_project import ensure_demo_project

        ensure_demo_project(enclave, log=lambda line: print(line, flush=True))
        banner = demo.welcome_banner(enclave)
    finally:
        enclave.close()
    log_file = settings.run_dir / "jupyterhub.log"
    print(f"starting JupyterHub (logs: {log_file}) ...", flush=True)
    code = launcher.serve_hub(settings, lambda: print(banner, flush=True), log_file)
    if code:
        print(f"enclave: JupyterHub stopped with code {code}; see {log_file}", file=sys.stderr)
    return code


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="enclave", description="DEPP secure research data enclave: operate and demonstrate.")
    parser.add_argument("--config", type=Path, help="TOML settings file (else ENCLAVE_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("init", help="create folders, demo keys and the database schema")
    p.add_argument("--with-demo-accounts", action="store_true",
                   help="also create the demo accounts (demo mode only)")
    p.set_defaults(handler=cmd_init)

    p = sub.add_parser("db", help="database maintenance")
    dsub = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    dsub.add_parser("upgrade", help="migrate the schema to this code's version").set_defaults(
        handler=cmd_db_upgrade)

    p = sub.add_parser("demo-data", help="generate synthetic DEPP data into the raw zone")
    p.add_argument("--pupils", type=int, default=None, help="number of pupils (default: setting)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: setting)")
    p.add_argument("--traces-per-pupil", type=float, default=20.0,
                   help="mean learning-trace events per pupil")
    p.set_defaults(handler=cmd_demo_data)

    p = sub.add_parser("demo", help="run the walking skeleton: project to signed release")
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser("audit", help="the tamper-evident audit chain")
    asub = p.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    asub.add_parser("verify", help="verify every link and the last signed checkpoint") \
        .set_defaults(handler=cmd_audit_verify)
    asub.add_parser("checkpoint", help="sign a checkpoint of the current head") \
        .set_defaults(handler=cmd_audit_checkpoint)

    p = sub.add_parser("catalogue", help="the dataset catalogue")
    csub = p.add_subparsers(dest="catalogue_command", required=True, metavar="ACTION")
    csub.add_parser("load", help="reload it from the raw zone's metadata") \
        .set_defaults(handler=cmd_catalogue_load)

    p = sub.add_parser("tick", help="periodic work: expiry, warnings, e-mail, checkpoints")
    p.set_defaults(handler=cmd_tick)

    p = sub.add_parser("keys", help="key management")
    ksub = p.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    ksub.add_parser("new-master", help="print a new master key for ENCLAVE_MASTER_KEY") \
        .set_defaults(handler=cmd_keys_new_master)

    p = sub.add_parser("up", help="initialise the demo if needed and serve it (make run)")
    p.set_defaults(handler=cmd_up)

    p = sub.add_parser("hub", help="start JupyterHub (node proxy) in the foreground")
    p.set_defaults(handler=cmd_hub)
    register_extract_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``enclave`` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(config_file=args.config)
        return int(args.handler(args, settings))
    except EnclaveError as exc:
        print(f"enclave: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
