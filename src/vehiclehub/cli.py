"""The ``vhub`` command.

Answering ``--help`` or a wrong argument must not wait for pandas, pandera,
SQLAlchemy or Great Expectations: this module imports only the standard library,
and each subcommand's handler imports what it needs when it runs. A new subcommand
is a handler ``_<name>(args) -> int`` with its imports inside, and its parser added
in ``build_parser``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import date, datetime
from zoneinfo import ZoneInfo

from vehiclehub.errors import ExitCode, exit_code_of

#: Loggers of the libraries the hub drives; kept at WARNING unless ``-vv``.
LIBRARY_LOGGERS = ("great_expectations", "airflow", "paramiko", "sqlalchemy", "pandera")


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date YYYY-MM-DD") from exc


def _run(args: argparse.Namespace) -> int:
    from vehiclehub.config import load_settings

    settings = load_settings(args.config)  # a configuration error answers at once
    from vehiclehub.pipeline import run_cycle

    # Another run holding the store (StoreBusy) and a run failed part-way (RunFailed)
    # end the command with their exit codes (vehiclehub.errors).
    summary = run_cycle(settings, args.date, full=args.full)
    from vehiclehub.summary import format_summary

    print(format_summary(summary))
    return ExitCode.COMPLETED


_FULL_HELP = (
    "evaluate every rule over everything stored, not only what changed since the last "
    "reconciliation (recovery; the findings and verdicts are the same)"
)


def _reconcile(args: argparse.Namespace) -> int:
    from vehiclehub.config import load_settings

    settings = load_settings(args.config)
    from vehiclehub.pipeline import hold_store, reconcile, this_process

    # Another run holding the store (StoreBusy) ends the command with its exit code.
    with hold_store(settings, this_process()):
        result = reconcile(settings, args.date, full=args.full)
    from vehiclehub.summary import reconciliation_summary

    print(reconciliation_summary(args.date, result.rules))
    return ExitCode.COMPLETED


def _health(args: argparse.Namespace) -> int:
    from vehiclehub.config import load_settings

    settings = load_settings(args.config)
    from vehiclehub.health import check_health

    report = check_health(settings)
    print("\n".join(check.line() for check in report.checks))
    return report.exit_code


def _prune(args: argparse.Namespace) -> int:
    from vehiclehub.config import load_settings
    from vehiclehub.pipeline import prune

    settings = load_settings(args.config)
    day = args.date or datetime.now(ZoneInfo(settings.timezone)).date()
    print(f"prune, counted back from {day}:")
    for line in prune(settings, day).summary:
        print(f"  {line}")
    return ExitCode.COMPLETED


def _demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from vehiclehub.demo import run_demo

    return run_demo(Path(args.dir).resolve(), days=args.days, sftp=args.sftp)


def _users_add(args: argparse.Namespace) -> int:
    import getpass

    from vehiclehub.config import load_settings

    settings = load_settings(args.config)
    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {args.name}: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    from vehiclehub.review.auth import add_user
    from vehiclehub.store import connect

    engine = connect(settings.database_url)
    with engine.begin() as conn:
        user = add_user(conn, args.name, args.role, args.agency or [], password)
    engine.dispose()
    scope = ", ".join(user.agencies) or "all agencies"
    print(f"user {user.name}: {user.role}, {scope}")
    return ExitCode.COMPLETED


def _serve(args: argparse.Namespace) -> int:
    from vehiclehub.config import load_settings

    settings = load_settings(args.config)
    import uvicorn

    from vehiclehub.review.app import create_app

    print(f"review desk on http://{args.host}:{args.port}/ (Ctrl-C stops it)", flush=True)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning")
    return ExitCode.COMPLETED


def _keys_generate(args: argparse.Namespace) -> int:
    from vehiclehub.signing import new_private_key_pem

    pem, key = new_private_key_pem()
    try:
        # Created with mode 0600 and never over an existing file: it is a private key.
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        print(f"vhub keys generate: {args.out} exists; not overwriting it", file=sys.stderr)
        return ExitCode.FAILED
    with os.fdopen(fd, "wb") as target:
        target.write(pem)
    print(f"wrote {args.out} (PKCS#8 PEM, mode 0600); set signing_key_file to it")
    print(f"key_id {key.key_id}")
    print(key.public_text)
    return ExitCode.COMPLETED


def _keys_public(args: argparse.Namespace) -> int:
    from vehiclehub.config import load_settings
    from vehiclehub.signing import hub_signing_key

    key = hub_signing_key(load_settings(args.config))
    print(f"key_id {key.key_id} ({key.origin})")
    print(key.public_text)
    return ExitCode.COMPLETED


def _audit_verify(args: argparse.Namespace) -> int:
    from vehiclehub.config import load_settings
    from vehiclehub.store import connect
    from vehiclehub.store.exchange_log import log_entries, parse_head, verify_chain

    try:
        head = parse_head(args.head) if args.head else None
    except ValueError as exc:
        print(f"vhub audit verify: --head {exc}", file=sys.stderr)
        return ExitCode.CANNOT_START
    settings = load_settings(args.config)
    with connect(settings.database_url).connect() as conn:
        check = verify_chain(log_entries(conn))
    if not check.intact:
        print(f"exchange log BROKEN after {check.entries} intact entries: {check.problem}")
        return ExitCode.FAILED
    print(f"exchange log intact: {check.entries} entries, head {check.head}")
    if head is not None:
        if not check.holds(head):
            print(f"log_head {head} is NOT on the chain: the log was rewritten")
            return ExitCode.FAILED
        print(f"log_head {head} is on the chain")
    return ExitCode.COMPLETED


def _audit_export(args: argparse.Namespace) -> int:
    from vehiclehub.config import AGENCIES, load_settings

    if args.agency is not None and args.agency not in AGENCIES:
        print(f"vhub audit export: --agency must be one of {', '.join(AGENCIES)}", file=sys.stderr)
        return ExitCode.CANNOT_START
    settings = load_settings(args.config)
    from vehiclehub.signing import canonical_json
    from vehiclehub.store import connect
    from vehiclehub.store.exchange_log import log_entries

    with connect(settings.database_url).connect() as conn:
        for entry in log_entries(conn, agency=args.agency, since=args.since):
            sys.stdout.write(canonical_json(entry).decode("utf-8") + "\n")
    return ExitCode.COMPLETED


def _db_upgrade(args: argparse.Namespace) -> int:
    if args.start is not None and not args.sql:
        print(
            "vhub db upgrade: --from goes with --sql (a store knows its revision)", file=sys.stderr
        )
        return ExitCode.CANNOT_START
    url = args.url
    if url is None:
        from vehiclehub.config import load_settings

        url = load_settings(args.config).database_url
    if args.sql:
        from vehiclehub.store.migrate import upgrade_sql

        sys.stdout.write(upgrade_sql(url, start=args.start))
        return ExitCode.COMPLETED
    from vehiclehub.store.db import upgrade

    for line in upgrade(url).lines():
        print(line)
    return ExitCode.COMPLETED


def _verbosity(parser: argparse.ArgumentParser, dest: str) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        dest=dest,
        help="log the hub's steps; -vv also the libraries' (Great Expectations, Airflow, ...)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The command line; ``-v`` is accepted before and after the subcommand."""
    parser = argparse.ArgumentParser(
        prog="vhub",
        description="vehiclehub: the inter-agency data exchange and reconciliation hub",
    )
    _verbosity(parser, "verbose")
    # Each subcommand counts its own -v (its namespace would otherwise overwrite the
    # count given before it); main adds the two.
    common = argparse.ArgumentParser(add_help=False)
    _verbosity(common, "verbose_after")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", parents=[common], help="run one nightly cycle for a business date")
    run.add_argument("--config", help="TOML configuration (default: $VHUB_CONFIG)")
    run.add_argument("--date", type=_date, required=True, help="business date YYYY-MM-DD")
    run.add_argument("--full", action="store_true", help=_FULL_HELP)
    run.set_defaults(handler=_run)

    again = sub.add_parser(
        "reconcile",
        parents=[common],
        help="reconcile a business date again: findings and verdicts, no intake or drops",
    )
    again.add_argument("--config", help="TOML configuration (default: $VHUB_CONFIG)")
    again.add_argument("--date", type=_date, required=True, help="business date YYYY-MM-DD")
    again.add_argument("--full", action="store_true", help=_FULL_HELP)
    again.set_defaults(handler=_reconcile)

    health = sub.add_parser(
        "health",
        help="check that the store, the work dir and every agency's exchange can be used",
        description="Checks for probes: the store is reachable and at the latest schema, the "
        "work dir is writable, each agency's exchange answers. Exit codes: 0 healthy; 1 the "
        "store or the work dir is not; 2 the configuration is unusable; 3 only agency "
        "exchanges are unreachable.",
    )
    health.add_argument("--config", help="TOML configuration (default: $VHUB_CONFIG)")
    health.set_defaults(handler=_health)

    prune = sub.add_parser(
        "prune",
        parents=[common],
        help="remove archived files, drops and reports older than [retention]",
    )
    prune.add_argument("--config", help="TOML configuration (default: $VHUB_CONFIG)")
    prune.add_argument("--date", type=_date, help="count back from this date (default: today)")
    prune.set_defaults(handler=_prune)

    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="make sample agency files for a few days and run the cycle on each",
    )
    demo.add_argument("--dir", default="demo", help="where to put everything (default ./demo)")
    demo.add_argument("--days", type=int, default=3, help="business days to simulate")
    demo.add_argument("--sftp", action="store_true", help="exchange over a local OpenSSH server")
    demo.set_defaults(handler=_demo)

    users = sub.add_parser("users", help="users of the review desk")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    add = users_sub.add_parser(
        "add",
        help="add a user (or change one's role, agencies and password); the password is "
        "read from standard input",
    )
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=["viewer", "operator", "supervisor"])
    add.add_argument(
        "--agency",
        action="append",
        choices=["commerce", "police", "customs", "tax"],
        help="scope the user to this agency's cases (repeat for several; default: all)",
    )
    add.add_argument("--config", help="TOML configuration (default: $VHUB_CONFIG)")
    add.set_defaults(handler=_users_add)

    serve = sub.add_parser("serve", parents=[common], help="run the review desk")
    serve.add_argument("--config", help="TOML configuration (default: $VHUB_CONFIG)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8800, help="port (default 8800)")
    serve.set_defaults(handler=_serve)

    keys = sub.add_parser("keys", help="the hub's Ed25519 signing key (ICD §6)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    generate = keys_sub.add_parser("generate", help="write a new private key (PKCS#8 PEM, 0600)")
    generate.add_argument("--out", required=True, help="file to create")
    generate.set_defaults(handler=_keys_generate)
    public = keys_sub.add_parser(
        "public", help="print the key_id and the public key to publish (last line)"
    )
    public.add_argument("--config", help="TOML configuration (default: $VHUB_CONFIG)")
    public.set_defaults(handler=_keys_public)

    db = sub.add_parser("db", help="the store's schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_upgrade = db_sub.add_parser(
        "upgrade",
        parents=[common],
        help="bring the store to this release's schema (vhub run does it first)",
        description="Applies the store's migrations not yet applied, in order, and says "
        "which. A new store is created; a store of the release before migrations is "
        "upgraded from it. With --sql nothing is connected to: the SQL is printed for a "
        "DBA, in the dialect of the store's URL.",
    )
    db_upgrade.add_argument("--config", help="TOML configuration (default: $VHUB_CONFIG)")
    db_upgrade.add_argument("--url", help="the store's URL instead of the configuration's")
    db_upgrade.add_argument(
        "--sql", action="store_true", help="print the SQL of the upgrade instead of running it"
    )
    db_upgrade.add_argument(
        "--from",
        dest="start",
        metavar="REVISION",
        help="with --sql: the store's revision (default: an empty database)",
    )
    db_upgrade.set_defaults(handler=_db_upgrade)

    audit = sub.add_parser("audit", help="the exchange log (ICD §6)")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser(
        "verify", help="recompute the hash chain; exit 0 when intact, 1 naming the first break"
    )
    verify.add_argument("--config", help="TOML configuration (default: $VHUB_CONFIG)")
    verify.add_argument(
        "--head", metavar="SEQ:HASH", help="also check that a drop's log_head lies on the chain"
    )
    verify.set_defaults(handler=_audit_verify)
    export = audit_sub.add_parser("export", help="write the entries as JSON lines to stdout")
    export.add_argument("--config", help="TOML configuration (default: $VHUB_CONFIG)")
    export.add_argument("--agency", help="only this agency's entries")
    export.add_argument("--since", type=_date, help="only entries from this UTC date on")
    export.set_defaults(handler=_audit_export)
    return parser


def configure_logging(verbosity: int) -> None:
    """0: warnings only; 1: the hub's steps; 2 and more: the libraries' too, and debug."""
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    hub = logging.getLogger("vehiclehub")
    hub.setLevel(logging.WARNING if verbosity < 1 else logging.INFO)
    libraries = logging.WARNING
    if verbosity >= 2:
        hub.setLevel(logging.DEBUG)
        libraries = logging.INFO
        logging.getLogger().setLevel(logging.INFO)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(libraries)


def main(argv: list[str] | None = None) -> int:
    from vehiclehub.progress import shown_on

    args = build_parser().parse_args(argv)
    # The progress display (on a terminal only) starts first: log lines then print
    # above its bars instead of through them.
    with shown_on(sys.stderr):
        configure_logging(args.verbose + getattr(args, "verbose_after", 0))
        try:
            return int(args.handler(args))
        except Exception as exc:
            code = exit_code_of(exc)
            if code is None:  # a defect: its traceback is what to report
                raise
            print(f"vhub: {exc}", file=sys.stderr)
            return code


if __name__ == "__main__":
    sys.exit(main())
