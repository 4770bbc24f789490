"""The lines an operator reads after a run, as ``vhub run`` and ``vhub demo`` print them."""

from __future__ import annotations

from typing import Any


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


def _signature_lines(files: list[dict[str, Any]]) -> list[str]:
    """How the agency's files came signed (ICD §6), and those rejected for it."""
    states = [f.get("signature") for f in files if f.get("signature")]
    if not states:
        return []
    lines = [
        f"    signatures: {states.count('verified')} verified, {states.count('unsigned')} "
        f"unsigned, {states.count('rejected')} rejected"
    ]
    for f in files:
        if f.get("signature") == "rejected":
            lines.append(f"    {f['name']}: REJECTED WHOLE, {f['error']}")
    return lines


def _proof_lines(publish: dict[str, Any]) -> list[str]:
    """Which key signed the drops (saying so when it is derived), and the log's head."""
    lines = []
    key = publish.get("signing_key")
    if key:
        note = (
            " — set signing_key_file or VHUB_SIGNING_KEY to give the hub a key of its own"
            if key["origin"] == "derived from the pseudonym key"
            else ""
        )
        lines.append(f"  signed: drops with key {key['key_id']} ({key['origin']}){note}")
    if publish.get("missing_evidence"):
        lines.append(f"  missing evidence: {', '.join(publish['missing_evidence'])}")
    head = publish.get("log_head")
    if head:
        lines.append(f"  exchange log head: {head['seq']}:{head['hash']}")
    return lines


def format_summary(summary: dict[str, Any]) -> str:
    """A few lines an operator reads at a glance after a run."""
    lines = [f"business date {summary['date']}", *_calendar_lines(summary["reconcile"])]
    for intake in summary["intake"]:
        files = intake["files"]
        if intake["status"] != "received":
            # "NOT RECEIVED" or "CONFIGURATION ERROR", with why
            lines.append(
                f"  {intake['agency']:<9} {intake['status'].upper()}: {intake.get('detail', '')}"
            )
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
        lines += _signature_lines(files)
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
    lines += _proof_lines(pub)
    lines.append(f"  drops:  {pub['drops_dir']}")
    lines.append(f"  report: {pub['report']}")
    if summary.get("seconds"):
        took = ", ".join(f"{stage} {s:.1f} s" for stage, s in summary["seconds"].items())
        lines.append(f"  took:   {took}")
    return "\n".join(lines)
