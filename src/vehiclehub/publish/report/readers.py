"""The run report's readers: each one query of the store, its rows as the report's types."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, case, distinct, func, select

from vehiclehub.config import AGENCIES, Settings
from vehiclehub.publish.drops import holds_on
from vehiclehub.publish.report.model import (
    ExchangeProof,
    FeedTotals,
    FileRow,
    FindingRow,
    NotEvaluated,
    Outcome,
    RejectedRow,
    RuleStats,
    Signatures,
    UnfinishedRun,
    VerdictCount,
)
from vehiclehub.quality.completeness import Completeness, missing_evidence
from vehiclehub.results import RunStatus
from vehiclehub.rules.runner import FINDING_FIELDS
from vehiclehub.signing import hub_signing_key, keys_by_id
from vehiclehub.store.exchange_log import log_head
from vehiclehub.store.schema import (
    agency_intakes,
    expectation_results,
    file_signatures,
    findings,
    intake_files,
    not_evaluated,
    quality_validations,
    rejections,
    runs,
    verdict_history,
)
from vehiclehub.store.verdicts import verdict_holds_on

SIGNATURE_STATES = ("verified", "unsigned", "rejected")


def _row(kind: type[Any], row: Any) -> Any:
    """A query's row as the dataclass ``kind`` whose fields the query selects."""
    values = row._mapping
    return kind(**{f.name: values[f.name] for f in fields(kind) if f.name in values})


def intake_statuses(conn: Connection, day: date) -> dict[str, Any]:
    """Each agency's intake of the run for ``day`` (status, detail, files waiting)."""
    rows = conn.execute(select(agency_intakes).where(agency_intakes.c.run_date == day))
    return {str(r.agency): r for r in rows}


def run_files(conn: Connection, day: date) -> list[FileRow]:
    """The files taken by the run for ``day``, by agency and name, with their GX time."""
    rows = conn.execute(
        select(intake_files, quality_validations.c.seconds.label("gx_seconds"))
        .outerjoin(quality_validations, quality_validations.c.file_id == intake_files.c.id)
        .where(intake_files.c.run_date == day)
        .order_by(intake_files.c.agency, intake_files.c.name)
    )
    return [_row(FileRow, r) for r in rows]


def file_errors(conn: Connection, file_ids: Sequence[int]) -> dict[int, str]:
    """Why each of these files was rejected whole, for those that were."""
    rows = conn.execute(
        select(rejections.c.file_id, rejections.c.error).where(
            rejections.c.line.is_(None), rejections.c.file_id.in_(file_ids or [-1])
        )
    )
    return {int(file_id): str(error) for file_id, error in rows}


def outcomes(conn: Connection, file_ids: Sequence[int]) -> list[Outcome]:
    """Every expectation result of these files."""
    rows = conn.execute(
        select(expectation_results)
        .where(expectation_results.c.file_id.in_(file_ids or [-1]))
        .order_by(expectation_results.c.file_id)
    )
    return [_row(Outcome, r) for r in rows]


def rejection_samples(conn: Connection, file_ids: Sequence[int], shown: int) -> list[RejectedRow]:
    """The first ``shown`` rejected rows of each agency's files."""
    ranked = (
        select(
            rejections,
            func.row_number()
            .over(
                partition_by=rejections.c.agency,
                order_by=(
                    rejections.c.file,
                    rejections.c.line,
                    rejections.c.column,
                    rejections.c.id,
                ),
            )
            .label("n"),
        )
        .where(_of_rows(file_ids))
        .subquery()
    )
    rows = conn.execute(
        select(*(ranked.c[c.name] for c in rejections.columns))
        .where(ranked.c.n <= shown)
        .order_by(ranked.c.agency, ranked.c.n)
    )
    return [_row(RejectedRow, r) for r in rows]


def _of_rows(file_ids: Sequence[int]) -> Any:
    return and_(rejections.c.file_id.in_(file_ids or [-1]), rejections.c.line.is_not(None))


def rejected_rows(conn: Connection, file_ids: Sequence[int]) -> dict[str, int]:
    """Rejected rows of these files, per agency."""
    counts = conn.execute(
        select(rejections.c.agency, func.count())
        .where(_of_rows(file_ids))
        .group_by(rejections.c.agency)
    )
    return {str(agency): int(n) for agency, n in counts}


def signature_counts(conn: Connection, day: date) -> dict[str, Signatures]:
    """Per agency, its files taken by the run for ``day`` that came signed and verified,
    unsigned (no key configured for it) or rejected for their signature (ICD §6)."""
    rows = conn.execute(
        select(file_signatures.c.agency, file_signatures.c.state, func.count())
        .join(intake_files, intake_files.c.id == file_signatures.c.file_id)
        .where(intake_files.c.run_date == day)
        .group_by(file_signatures.c.agency, file_signatures.c.state)
    ).all()
    counts = {agency: dict.fromkeys(SIGNATURE_STATES, 0) for agency in AGENCIES}
    for agency, state, count in rows:
        counts.setdefault(str(agency), dict.fromkeys(SIGNATURE_STATES, 0))[str(state)] = int(count)
    return {agency: Signatures(**c) for agency, c in counts.items()}


def rule_stats(conn: Connection, day: date) -> dict[str, RuleStats]:
    """Per rule: findings open at the end of the run, their vehicles, and the new ones."""
    is_new = case((findings.c.first_seen == day, 1), else_=0)
    rows = conn.execute(
        select(
            findings.c.rule_id,
            func.count().label("open"),
            func.count(distinct(findings.c.vin)).label("vehicles"),
            func.sum(is_new).label("new"),
        )
        .where(holds_on(day))
        .group_by(findings.c.rule_id)
    )
    return {str(r.rule_id): RuleStats(int(r.open), int(r.vehicles), int(r.new or 0)) for r in rows}


def resolved_per_rule(conn: Connection, day: date) -> dict[str, int]:
    """Per rule, the findings this run resolved."""
    rows = conn.execute(
        select(findings.c.rule_id, func.count())
        .where(findings.c.resolved_on == day)
        .group_by(findings.c.rule_id)
    )
    return {str(rule_id): int(n) for rule_id, n in rows}


def rule_samples(conn: Connection, day: date, shown: int) -> list[FindingRow]:
    """The first ``shown`` open findings of each rule, by record."""
    ranked = (
        select(
            *(findings.c[c] for c in FINDING_FIELDS),
            func.row_number()
            .over(
                partition_by=findings.c.rule_id,
                order_by=(findings.c.record_key, findings.c.id),
            )
            .label("n"),
        )
        .where(holds_on(day))
        .subquery()
    )
    rows = conn.execute(
        select(*(ranked.c[c] for c in FINDING_FIELDS))
        .where(ranked.c.n <= shown)
        .order_by(ranked.c.rule_id, ranked.c.n)
    )
    return [_row(FindingRow, r) for r in rows]


def per_feed_totals(conn: Connection, day: date) -> list[FeedTotals]:
    """Rows of the run's loaded files, per agency and feed."""
    rows = conn.execute(
        select(
            intake_files.c.agency,
            intake_files.c.feed,
            *(
                func.sum(intake_files.c[c]).label(c)
                for c in ("rows_read", "rows_loaded", "rows_ignored", "rows_rejected")
            ),
        )
        .where(intake_files.c.run_date == day, intake_files.c.status == "loaded")
        .group_by(intake_files.c.agency, intake_files.c.feed)
        .order_by(intake_files.c.agency, intake_files.c.feed)
    )
    return [
        FeedTotals(str(r.agency), str(r.feed), *(int(v or 0) for v in tuple(r)[2:])) for r in rows
    ]


def verdicts_held(conn: Connection, day: date) -> list[VerdictCount]:
    """Per verification report and verdict, the records holding on the day."""
    rows = conn.execute(
        select(verdict_history.c.report, verdict_history.c.verdict, func.count())
        .where(verdict_holds_on(day))
        .group_by(verdict_history.c.report, verdict_history.c.verdict)
        .order_by(verdict_history.c.report, verdict_history.c.verdict)
    )
    return [VerdictCount(str(report), str(verdict), int(n)) for report, verdict, n in rows]


def not_evaluated_records(conn: Connection, day: date) -> list[NotEvaluated]:
    """Records a rule could not evaluate on the run, per rule and reason."""
    rows = conn.execute(
        select(not_evaluated.c.rule_id, not_evaluated.c.reason, not_evaluated.c.records)
        .where(not_evaluated.c.run_date == day)
        .order_by(not_evaluated.c.rule_id, not_evaluated.c.reason)
    )
    return [NotEvaluated(str(r), str(why), int(n)) for r, why, n in rows]


def unfinished_runs(conn: Connection, timezone: str) -> list[UnfinishedRun]:
    """The runs since the last completed one that failed or were killed, oldest first,
    their start in ``timezone``."""
    completed = (
        select(func.coalesce(func.max(runs.c.id), 0))
        .where(runs.c.status == RunStatus.COMPLETED)
        .scalar_subquery()
    )
    rows = conn.execute(
        select(runs.c.run_date, runs.c.started_at, runs.c.stage, runs.c.error)
        .where(runs.c.status == RunStatus.FAILED, runs.c.id > completed)
        .order_by(runs.c.id)
    )
    zone = ZoneInfo(timezone)
    return [
        UnfinishedRun(d, _aware(started).astimezone(zone), stage, error)
        for d, started, stage, error in rows
    ]


def _aware(moment: datetime) -> datetime:
    """A stored time with its zone: SQLite gives back the UTC it was given, without one."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def exchange_proof(
    conn: Connection, settings: Settings, completeness: Completeness
) -> ExchangeProof:
    """What proves the run's drops (see :class:`ExchangeProof`)."""
    key = hub_signing_key(settings)
    return ExchangeProof(
        key_id=key.key_id,
        public_key=key.public_text,
        origin=key.origin,
        previous=sorted(keys_by_id(list(settings.previous_signing_keys))),
        log_head=log_head(conn),
        missing_evidence=missing_evidence(completeness),
    )
