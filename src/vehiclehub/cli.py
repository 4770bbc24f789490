"""The ``vhub`` command."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import date
from pathlib import Path
from typing import Any

from vehiclehub.config import ConfigError, load_settings
from vehiclehub.store import StoreUnavailable


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


def format_summary(summary: dict[str, Any]) -> str:
    """A few lines an operator reads at a glance after a run."""
    lines = [f"business date {summary['date']}"]
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
    from vehiclehub.pipeline import run_cycle

    settings = load_settings(args.config)
    print(format_summary(run_cycle(settings, args.date)))
    return 0


def _health(args: argparse.Namespace) -> int:
    from vehiclehub.health import check_health

    report = check_health(load_settings(args.config))
    print("\n".join(check.line() for check in report.checks))
    return report.exit_code


def _demo(args: argparse.Namespace) -> int:
    from vehiclehub.demo import run_demo

    return run_demo(Path(args.dir).resolve(), days=args.days, sftp=args.sftp)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vhub", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run one nightly cycle for a business date")
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
        "demo", help="make sample agency files for a few days and run the cycle on each"
    )
    demo.add_argument("--dir", default="demo", help="where to put everything (default ./demo)")
    demo.add_argument("--days", type=int, default=3, help="business days to simulate")
    demo.add_argument("--sftp", action="store_true", help="exchange over a local OpenSSH server")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.handler(args))
    except (ConfigError, StoreUnavailable) as exc:
        print(f"vhub: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
