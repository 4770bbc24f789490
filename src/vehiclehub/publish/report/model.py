"""The run report's data, a typed tree: what :func:`~vehiclehub.publish.report.tree.gather`
reads back from the store, the page's template renders and the workbook reads."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any

from markupsafe import Markup

from vehiclehub.quality.completeness import Completeness
from vehiclehub.store.exchange_log import LogHead


@dataclass(frozen=True)
class Outcome:
    """One expectation's result on one file."""

    file_id: int
    expectation: str
    type: str
    column: str | None
    severity: str
    outcome: str
    observed: str | None
    unexpected_count: int | None
    element_count: int | None
    description: str | None


@dataclass(frozen=True)
class FileRow:
    """A file taken by the run, with its expectation results and its Data Docs page."""

    id: int
    agency: str
    feed: str | None
    name: str
    status: str
    seq: int | None
    rows_declared: int | None
    rows_read: int
    rows_loaded: int
    rows_ignored: int
    rows_rejected: int
    gx_seconds: float | None
    error: str | None = None
    expectations: tuple[Outcome, ...] = ()
    #: The file's Data Docs page, relative to the report.
    docs: str | None = None

    @property
    def expectations_passed(self) -> int:
        return sum(o.outcome == "passed" for o in self.expectations)

    @property
    def expectations_shown(self) -> list[Outcome]:
        """The expectations that did not pass, failed first."""
        return [o for o in self.expectations if o.outcome != "passed"]


@dataclass(frozen=True)
class FeedRow:
    """One feed of an agency: expected state, files, rows, rejections, expectations."""

    feed: str
    state: str
    state_detail: str | None
    file_count: int
    files_loaded: int
    files_rejected: int
    files_duplicate: int
    rows: int
    loaded: int
    ignored: int
    rejected_rows: int
    critical_failed: int
    warnings_failed: int


@dataclass(frozen=True)
class RejectedRow:
    """A rejected row of a file taken by the run."""

    id: int
    file_id: int
    agency: str
    file: str
    line: int | None
    column: str | None
    value: str | None
    error: str


@dataclass(frozen=True)
class Signatures:
    """An agency's files of the run: signed and verified, unsigned, rejected for it."""

    verified: int = 0
    unsigned: int = 0
    rejected: int = 0


@dataclass(frozen=True)
class AgencySection:
    name: str
    status: str
    state: str
    #: The state's CSS class: a partly received agency is flagged like one not received.
    state_class: str
    detail: str | None
    waiting: list[str]
    feeds: list[FeedRow]
    files: list[FileRow]
    rejection_samples: list[RejectedRow]
    rejections_total: int
    signatures: Signatures
    public_keys: int


@dataclass(frozen=True)
class FindingRow:
    rule_id: str
    severity: str
    vin: str | None
    agency: str
    record_key: str
    related: str
    detail: str


@dataclass(frozen=True)
class RuleStats:
    """A rule's findings open at the end of the run, their vehicles, how many are new
    (first seen by this run), and how many this run resolved."""

    open: int = 0
    vehicles: int = 0
    new: int = 0
    resolved: int = 0


@dataclass(frozen=True)
class RuleSection:
    id: str
    severity: str
    summary: str
    count: int
    vehicles: int
    new: int
    still_open: int
    resolved: int
    trend: Markup
    rows: list[FindingRow]
    more: int


@dataclass(frozen=True)
class FeedTotals:
    """Rows of the run's loaded files of one feed."""

    agency: str
    feed: str
    rows_read: int
    rows_loaded: int
    rows_ignored: int
    rows_rejected: int


@dataclass(frozen=True)
class VerdictCount:
    report: str
    verdict: str
    n: int


@dataclass(frozen=True)
class NotEvaluated:
    rule_id: str
    reason: str
    records: int


@dataclass(frozen=True)
class UnfinishedRun:
    """A run since the last one that completed which did not complete: failed part-way
    (with the stage and its message), or ended without a word (killed, or its store
    lost), recorded as failed by the next run that took the store over."""

    run_date: date
    started_at: datetime
    stage: str | None
    error: str | None


@dataclass(frozen=True)
class Totals:
    files: int
    rows: int
    loaded: int
    ignored: int
    rejected_rows: int
    rejected_files: int
    duplicates: int
    findings: int
    feeds_expected: int
    feeds_received: int
    not_received: int
    misconfigured: list[str]
    gaps: int
    critical_failed: int
    warnings_failed: int


@dataclass(frozen=True)
class ExchangeProof:
    """The key that signed the run's drops, the keys still accepted for earlier drops,
    the exchange log's head after the run and the agencies whose evidence is missing."""

    key_id: str
    public_key: str
    origin: str
    previous: list[str]
    log_head: LogHead
    missing_evidence: list[str]


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows."""

    calendar_warnings: list[str]
    not_evaluated: list[NotEvaluated]
    agencies: list[AgencySection]
    feeds_by_agency: dict[str, list[FeedRow]]
    completeness: Completeness
    per_feed: list[FeedTotals]
    rules: list[RuleSection]
    history_runs: int
    findings_chart: Markup
    rows_chart: Markup
    verdicts: list[VerdictCount]
    totals: Totals
    proof: ExchangeProof
    unfinished_runs: list[UnfinishedRun] = field(default_factory=list)

    @property
    def verdict_counts(self) -> dict[str, dict[str, int]]:
        """Per verification report, records per verdict holding on the day."""
        counted: dict[str, dict[str, int]] = {}
        for v in self.verdicts:
            counted.setdefault(v.report, {})[v.verdict] = v.n
        return counted

    def context(self) -> dict[str, Any]:
        """The template's variables: the tree's members by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
