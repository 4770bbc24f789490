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
import sys
from datetime import date
from typing import Any

#: Loggers of the libraries the hub drives; kept at WARNING unless ``-vv``.
LIBRARY_LOGGERS = ("great_expectations", "airflow", "paramiko", "sqlalchemy", "pandera")

#: Exceptions that mean "the operator has something to fix" (message, exit 2), as
#: (module, class). Looked up among the modules already imported: an exception of a
#: module that was never imported cannot have been raised, and importing the store
#: only to print a configuration error would cost seconds.
OPERATOR_ERRORS = (
    ("vehiclehub.config", "ConfigError"),
    ("vehiclehub.store.db", "StoreUnavailable"),
    ("vehiclehub.review.auth", "UserError"),
)


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date YYYY-MM-DD") from exc


def _quality_lines(files: list[dict[str, Any]]) -> list[str]:
    """Files the quality gate rejected whole, and files loaded with warnings."""
    lines = []
    for f in files:
        if f["status"] == "rejected" and str(f.get("error") or "").startswith("data quality"):
            lines.append(f"    {f['name']}: REJECTED WHOLE, {f['error']}")
        elif f.get("warnings"):
            lines.append(f"    {f['name']}: quality warnings: {', '.join(f['warnings'])}")
    return lines


def _completeness_lines(completeness: dict[str, Any] | None) -> list[str]:
    """Expected feeds not (yet) received for the date, and missing file numbers."""
    if not completeness:
        return []
    lines = [
        f"  completeness: {completeness['received']} of {completeness['expected']} expected "
        "feeds received"
    ]
    for state, label in (
        ("not received", "not received"),
        ("rejected", "every file rejected"),
        ("waiting", "waiting for a manifest"),
    ):
        shown = [f"{f['agency']}/{f['feed']}" for f in completeness["feeds"] if f["state"] == state]
        if shown:
            lines.append(f"    {label}: {', '.join(shown)}")
    for gap in completeness["gaps"]:
        lines.append(f"    missing file number(s): {', '.join(gap['files'])}")
    return lines


def _calendar_lines(reconcile: dict[str, Any]) -> list[str]:
    """Records a rule could not evaluate and why, and the calendar years to configure."""
    skipped = reconcile.get("not_evaluated") or {}
    total = sum(n for reasons in skipped.values() for n in reasons.values())
    lines = [f"  WARNING: {w}" for w in reconcile.get("calendar_warnings") or []]
    if total:
        kept = sum((reconcile.get("kept_open") or {}).values())
        lines.append(
            f"  not evaluated: {total} record(s); {kept} earlier finding(s) on them kept open"
        )
        for rule_id, reasons in skipped.items():
            for reason, records in reasons.items():
                lines.append(f"    {rule_id:<8} {records} record(s): {reason}")
    return lines


def format_summary(summary: dict[str, Any]) -> str:
    """A few lines an operator reads at a glance after a run."""
    lines = [f"business date {summary['date']}", *_calendar_lines(summary["reconcile"])]
    for intake in summary["intake"]:
        files = intake["files"]
        if intake["status"] != "received":
            lines.append(f"  {intake['agency']:<9} NOT RECEIVED: {intake.get('detail', '')}")
            continue
        loaded = sum(f["loaded"] for f in files)
        rejected = sum(f["rejected"] for f in files)
        ignored = sum(f["ignored"] for f in files)
        whole = sum(1 for f in files if f["status"] == "rejected")
        dupes = sum(1 for f in files if f["status"] == "duplicate")
        note = (
            f", {len(intake.get('waiting', []))} waiting for a manifest"
            if intake.get("waiting")
            else ""
        )
        lines.append(
            f"  {intake['agency']:<9} {len(files)} files ({whole} rejected whole, {dupes} "
            f"already loaded): {loaded} rows loaded, {ignored} ignored, {rejected} rejected{note}"
        )
        lines += _quality_lines(files)
    lines += _completeness_lines(summary.get("completeness"))
    rec = summary["reconcile"]
    lines.append(f"  findings: {rec['findings']}")
    for rule_id, count in rec["per_rule"].items():
        lines.append(f"    {rule_id:<8} {count}")
    for report, counts in rec["verdicts"].items():
        shown = ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"
        lines.append(f"  {report}: {shown}")
    pub = summary["publish"]
    undelivered = {a: s for a, s in pub["delivered"].items() if s != "delivered"}
    for agency, status in undelivered.items():
        lines.append(f"  drops to {agency}: {status}")
    lines.append(f"  drops:  {pub['drops_dir']}")
    lines.append(f"  report: {pub['report']}")
    if summary.get("seconds"):
        took = ", ".join(f"{stage} {s:.1f} s" for stage, s in summary["seconds"].items())
        lines.append(f"  took:   {took}")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    from vehiclehub.config import load_settings

    settings = load_settings(args.config)  # a configuration error answers at once
    from vehiclehub.pipeline import run_cycle

    print(format_summary(run_cycle(settings, args.date)))
    return 0


def _health(args: argparse.Namespace) -> int:
    from vehiclehub.config import load_settings

    settings = load_settings(args.config)
    from vehiclehub.health import check_health

    report = check_health(settings)
    print("\n".join(check.line() for check in report.checks))
    return report.exit_code


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
    return 0


def _serve(args: argparse.Namespace) -> int:
    from vehiclehub.config import load_settings

    settings = load_settings(args.config)
    import uvicorn

    from vehiclehub.review.app import create_app

    print(f"review desk on http://{args.host}:{args.port}/ (Ctrl-C stops it)", flush=True)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning")
    return 0


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
    run.set_defaults(handler=_run)

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


def _for_the_operator(exc: Exception) -> bool:
    """Whether ``exc`` says what the operator must fix rather than reveal a defect."""
    for module, name in OPERATOR_ERRORS:
        kind = getattr(sys.modules.get(module), name, None)
        if isinstance(kind, type) and isinstance(exc, kind):
            return True
    return False


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
            if not _for_the_operator(exc):
                raise
            print(f"vhub: {exc}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
