"""The lines an operator reads after a run, as ``vhub run`` and ``vhub demo`` print them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from vehiclehub.intake.take import FileOutcome, FileStatus
from vehiclehub.quality.completeness import Completeness
from vehiclehub.results import IntakeResult, PublishResult, RunResult
from vehiclehub.rules.engine import ReconcileResult


def _quality_lines(files: Sequence[FileOutcome]) -> list[str]:
    """Files the quality gate rejected whole, and files loaded with warnings."""
    lines = []
    for f in files:
        if f.status == FileStatus.REJECTED and (f.error or "").startswith("data quality"):
            lines.append(f"    {f.name}: REJECTED WHOLE, {f.error}")
        elif f.warnings:
            lines.append(f"    {f.name}: quality warnings: {', '.join(f.warnings)}")
    return lines


def _completeness_lines(completeness: Completeness | None) -> list[str]:
    """Expected feeds not (yet) received for the date, and missing file numbers."""
    if completeness is None:
        return []
    received = sum(f.state == "received" for f in completeness.feeds)
    lines = [f"  completeness: {received} of {len(completeness.feeds)} expected feeds received"]
    for state, label in (
        ("not received", "not received"),
        ("rejected", "every file rejected"),
        ("waiting", "waiting for a manifest"),
    ):
        shown = [f"{f.agency}/{f.feed}" for f in completeness.feeds if f.state == state]
        if shown:
            lines.append(f"    {label}: {', '.join(shown)}")
    for gap in completeness.gaps:
        lines.append(f"    missing file number(s): {', '.join(gap.names)}")
    return lines


def _calendar_lines(rules: ReconcileResult) -> list[str]:
    """Records a rule could not evaluate and why, and the calendar years to configure."""
    skipped = rules.not_evaluated
    total = sum(n for reasons in skipped.values() for n in reasons.values())
    lines = [f"  WARNING: {w}" for w in rules.calendar_warnings]
    if total:
        kept = sum(rules.kept_open.values())
        lines.append(
            f"  not evaluated: {total} record(s); {kept} earlier finding(s) on them kept open"
        )
        for rule_id, reasons in skipped.items():
            for reason, records in reasons.items():
                lines.append(f"    {rule_id:<8} {records} record(s): {reason}")
    return lines


def _signature_lines(files: Sequence[FileOutcome]) -> list[str]:
    """How the agency's files came signed (ICD §6), and those rejected for it."""
    states = [f.signature for f in files if f.signature]
    if not states:
        return []
    lines = [
        f"    signatures: {states.count('verified')} verified, {states.count('unsigned')} "
        f"unsigned, {states.count('rejected')} rejected"
    ]
    for f in files:
        if f.signature == "rejected":
            lines.append(f"    {f.name}: REJECTED WHOLE, {f.error}")
    return lines


def _proof_lines(publish: PublishResult) -> list[str]:
    """Which key signed the drops (saying so when it is derived), and the log's head."""
    key = publish.signing_key
    note = (
        " — set signing_key_file or VHUB_SIGNING_KEY to give the hub a key of its own"
        if key.origin == "derived from the pseudonym key"
        else ""
    )
    lines = [f"  signed: drops with key {key.key_id} ({key.origin}){note}"]
    if publish.missing_evidence:
        lines.append(f"  missing evidence: {', '.join(publish.missing_evidence)}")
    head = publish.log_head
    lines.append(f"  exchange log head: {head['seq']}:{head['hash']}")
    return lines


def intake_lines(intake: IntakeResult) -> list[str]:
    """One line for the agency's intake, then its files the operator looks at."""
    if not intake.received:
        # "NOT RECEIVED" or "CONFIGURATION ERROR", with why
        return [f"  {intake.agency:<9} {intake.status.upper()}: {intake.detail or ''}"]
    files = intake.files
    loaded = sum(f.loaded for f in files)
    rejected = sum(f.rejected for f in files)
    ignored = sum(f.ignored for f in files)
    whole = len(intake.files_with(FileStatus.REJECTED))
    dupes = len(intake.files_with(FileStatus.DUPLICATE))
    note = f", {len(intake.waiting)} waiting for a manifest" if intake.waiting else ""
    return [
        f"  {intake.agency:<9} {len(files)} files ({whole} rejected whole, {dupes} "
        f"already loaded): {loaded} rows loaded, {ignored} ignored, {rejected} rejected{note}",
        *_quality_lines(files),
        *_signature_lines(files),
    ]


def _findings_lines(rules: ReconcileResult) -> list[str]:
    """The findings per rule and the verdicts of a reconciliation."""
    lines = [f"  findings: {rules.findings}"]
    lines += [f"    {rule_id:<8} {count}" for rule_id, count in rules.per_rule.items()]
    for report, counts in rules.verdicts.items():
        shown = ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"
        lines.append(f"  {report}: {shown}")
    return lines


def reconciliation_summary(day: date, rules: ReconcileResult) -> str:
    """What ``vhub reconcile`` says: the date, records not evaluated, findings, verdicts."""
    lines = [f"business date {day.isoformat()}", *_calendar_lines(rules), *_findings_lines(rules)]
    return "\n".join(lines)


def format_summary(run: RunResult) -> str:
    """A few lines an operator reads at a glance after a run."""
    rules = run.reconcile.rules
    lines = [f"business date {run.day.isoformat()}", *_calendar_lines(rules)]
    for intake in run.intake:
        lines += intake_lines(intake)
    lines += _completeness_lines(run.completeness)
    lines += _findings_lines(rules)
    pub = run.publish
    for agency, status in pub.delivered.items():
        if status != "delivered":
            lines.append(f"  drops to {agency}: {status}")
    lines += _proof_lines(pub)
    lines.append(f"  drops:  {pub.drops_dir}")
    lines.append(f"  report: {pub.report}")
    if run.seconds:
        took = ", ".join(f"{stage} {s:.1f} s" for stage, s in run.seconds.items())
        lines.append(f"  took:   {took}")
    return "\n".join(lines)
