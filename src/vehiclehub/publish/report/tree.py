"""The run report's tree, put together from its readers (:mod:`.readers`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date

from sqlalchemy import Connection

from vehiclehub.config import AGENCIES, Settings
from vehiclehub.exchange.base import MISCONFIGURED
from vehiclehub.publish.report.charts import (
    SEVERITY_COLOURS,
    svg_feed_volumes,
    svg_new_resolved,
    svg_sparkline,
)
from vehiclehub.publish.report.history import (
    feed_volumes,
    findings_history,
    findings_news,
    rows_history,
    run_dates,
)
from vehiclehub.publish.report.model import (
    AgencySection,
    FeedRow,
    FileRow,
    Outcome,
    ReportData,
    RuleSection,
    RuleStats,
    Totals,
)
from vehiclehub.publish.report.readers import (
    exchange_proof,
    file_errors,
    intake_statuses,
    not_evaluated_records,
    outcomes,
    per_feed_totals,
    rejected_rows,
    rejection_samples,
    resolved_per_rule,
    rule_samples,
    rule_stats,
    run_files,
    signature_counts,
    unfinished_runs,
    verdicts_held,
)
from vehiclehub.quality.completeness import Completeness, feed_completeness
from vehiclehub.rules import RULES
from vehiclehub.workdays import WorkingDays

SHOWN_PER_RULE = 200
SHOWN_REJECTIONS = 50
_OUTCOME_ORDER = {"failed": 0, "error": 1, "skipped": 2, "passed": 3}


def _with_outcomes(
    files: list[FileRow], found: list[Outcome], errors: Mapping[int, str], docs: Mapping[int, str]
) -> list[FileRow]:
    """The files with their whole-file rejection, expectation results (failed first) and
    Data Docs page."""
    by_file: dict[int, list[Outcome]] = {}
    for o in found:
        by_file.setdefault(o.file_id, []).append(o)
    return [
        replace(
            f,
            error=errors.get(f.id),
            expectations=tuple(
                sorted(
                    by_file.get(f.id, []),
                    key=lambda o: (_OUTCOME_ORDER.get(o.outcome, 9), o.severity != "critical"),
                )
            ),
            docs=docs.get(f.id),
        )
        for f in files
    ]


def _counted(files: Sequence[FileRow]) -> dict[str, int]:
    """Rows of the loaded ``files`` (received, loaded, ignored, rejected) and their failed
    critical and warning expectations, by the names the feed rows and totals share."""
    loaded = [f for f in files if f.status == "loaded"]
    failed = [o for f in files for o in f.expectations if o.outcome == "failed"]
    return {
        "rows": sum(f.rows_read for f in loaded),
        "loaded": sum(f.rows_loaded for f in loaded),
        "ignored": sum(f.rows_ignored for f in loaded),
        "rejected_rows": sum(f.rows_rejected for f in loaded),
        "critical_failed": sum(o.severity == "critical" for o in failed),
        "warnings_failed": sum(o.severity == "warning" for o in failed),
    }


def feed_rows(files: Sequence[FileRow], completeness: Completeness) -> dict[str, list[FeedRow]]:
    """Per agency, one row per feed: expected state, files, rows, rejections, expectations."""
    by_agency: dict[str, list[FeedRow]] = {a: [] for a in AGENCIES}
    expected = {(f.agency, f.feed): f for f in completeness.feeds}
    sent = {(f.agency, str(f.feed)) for f in files if f.feed}
    for agency, feed in sorted(set(expected) | sent):
        mine = [f for f in files if (f.agency, f.feed) == (agency, feed)]
        state = expected.get((agency, feed))
        by_agency[agency].append(
            FeedRow(
                feed=feed,
                state=state.state if state else "not expected",
                state_detail=state.detail if state else None,
                file_count=len(mine),
                files_loaded=sum(f.status == "loaded" for f in mine),
                files_rejected=sum(f.status == "rejected" for f in mine),
                files_duplicate=sum(f.status == "duplicate" for f in mine),
                **_counted(mine),
            )
        )
    return by_agency


def agency_state(status: str, feeds: Sequence[FeedRow]) -> str:
    """What heads an agency's section: true of every expected feed under it.

    An agency whose exchange was reached has "received" only when every feed expected
    of it was received; otherwise the heading counts them ("1 of 3 expected feeds
    received"). An agency not reached keeps its intake status ("not received",
    "configuration error").
    """
    if status != "received":
        return status
    expected = [f for f in feeds if f.state != "not expected"]
    received = sum(f.state == "received" for f in expected)
    if received == len(expected):
        return "received"
    return f"{received} of {len(expected)} expected feeds received"


def agency_sections(
    conn: Connection,
    settings: Settings,
    day: date,
    files: list[FileRow],
    feeds: Mapping[str, list[FeedRow]],
) -> list[AgencySection]:
    """Per agency: its intake, feeds, files, rejected rows (a sample) and signatures."""
    statuses = intake_statuses(conn, day)
    file_ids = [f.id for f in files]
    samples = rejection_samples(conn, file_ids, SHOWN_REJECTIONS)
    rejected = rejected_rows(conn, file_ids)
    signatures = signature_counts(conn, day)
    sections = []
    for agency in AGENCIES:
        intake = statuses.get(agency)
        status = str(intake.status) if intake is not None else "not run"
        state = agency_state(status, feeds[agency])
        waiting = intake.waiting if intake is not None else None
        sections.append(
            AgencySection(
                name=agency,
                status=status,
                state=state,
                state_class=state if state in (status, "received") else "partly-received",
                detail=intake.detail if intake is not None else None,
                waiting=json.loads(waiting) if isinstance(waiting, str) else [],
                feeds=feeds[agency],
                files=[f for f in files if f.agency == agency],
                rejection_samples=[r for r in samples if r.agency == agency],
                rejections_total=rejected.get(agency, 0),
                signatures=signatures[agency],
                public_keys=len(settings.agencies[agency].public_keys),  # type: ignore[index]
            )
        )
    return sections


def rule_sections(
    conn: Connection, day: date, dates: list[date], stats: Mapping[str, RuleStats]
) -> list[RuleSection]:
    """Per rule: its findings open, new, still open and resolved, a trend over the last
    runs, and the first :data:`SHOWN_PER_RULE` findings."""
    columns = [d.isoformat() for d in dates]
    per_rule = findings_history(conn, dates).groupby("rule_id")[columns].sum()
    trends = {
        str(r): [int(v) for v in row]
        for r, row in zip(per_rule.index, per_rule.to_numpy(), strict=True)
    }
    resolved = resolved_per_rule(conn, day)
    shown = rule_samples(conn, day, SHOWN_PER_RULE)
    sections = []
    for rule_id, rule in sorted(RULES.items()):
        counts = stats.get(rule_id, RuleStats())
        rows = [f for f in shown if f.rule_id == rule_id]
        sections.append(
            RuleSection(
                id=rule_id,
                severity=rule.severity,
                summary=rule.summary,
                count=counts.open,
                vehicles=counts.vehicles,
                new=counts.new,
                still_open=counts.open - counts.new,
                resolved=resolved.get(rule_id, 0),
                trend=svg_sparkline(
                    trends.get(rule_id, [0] * len(columns)),
                    SEVERITY_COLOURS.get(rule.severity, "#57606a"),
                ),
                rows=rows,
                more=max(0, counts.open - len(rows)),
            )
        )
    return sections


def totals(
    files: Sequence[FileRow],
    stats: Mapping[str, RuleStats],
    completeness: Completeness,
    agencies: Sequence[AgencySection],
) -> Totals:
    """The run at a glance: files, rows, feeds, findings and failed expectations."""
    return Totals(
        files=len(files),
        **_counted(files),
        rejected_files=sum(f.status == "rejected" for f in files),
        duplicates=sum(f.status == "duplicate" for f in files),
        findings=sum(s.open for s in stats.values()),
        feeds_expected=len(completeness.feeds),
        feeds_received=sum(f.state == "received" for f in completeness.feeds),
        not_received=sum(f.state == "not received" for f in completeness.feeds),
        misconfigured=sorted(a.name for a in agencies if a.status == MISCONFIGURED),
        gaps=sum(len(g.missing) for g in completeness.gaps),
    )


def gather(
    conn: Connection, settings: Settings, day: date, docs: Mapping[int, str] | None = None
) -> ReportData:
    """Everything the report shows, read back from the store; ``docs`` are the run's Data
    Docs pages by file id, relative to the report."""
    listed = run_files(conn, day)
    file_ids = [f.id for f in listed]
    files = _with_outcomes(
        listed, outcomes(conn, file_ids), file_errors(conn, file_ids), docs or {}
    )
    completeness = feed_completeness(conn, settings, day)
    feeds = feed_rows(files, completeness)
    agencies = agency_sections(conn, settings, day, files, feeds)
    dates = run_dates(conn, day)
    columns = [d.isoformat() for d in dates]
    stats = rule_stats(conn, day)
    rules = rule_sections(conn, day, dates, stats)
    first_found, resolved = findings_news(conn, dates)
    names, tonight, usual = feed_volumes(rows_history(conn, dates))
    return ReportData(
        calendar_warnings=WorkingDays(settings.calendar).warnings(day),
        not_evaluated=not_evaluated_records(conn, day),
        agencies=agencies,
        feeds_by_agency=feeds,
        completeness=completeness,
        per_feed=per_feed_totals(conn, day),
        rules=rules,
        history_runs=len(columns),
        findings_chart=svg_new_resolved(
            f"Findings first found and resolved by each run (last {len(columns)} runs)",
            columns,
            first_found,
            resolved,
        ),
        rows_chart=svg_feed_volumes(
            f"Rows received per feed on {day}, against the median of the earlier runs",
            names,
            tonight,
            usual,
        ),
        verdicts=verdicts_held(conn, day),
        totals=totals(files, stats, completeness, agencies),
        proof=exchange_proof(conn, settings, completeness),
        unfinished_runs=unfinished_runs(conn, settings.timezone),
    )
