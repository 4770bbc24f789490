"""The run workbook for operators who work in Excel: ``reports/<date>/vehiclehub_<date>.xlsx``.

A ``summary`` sheet first (per agency: feeds received, findings, rejections, verdicts to
act on; records per verdict; what each other sheet holds), then one sheet per section,
each a single table whose header row is frozen and filtered so that it sorts and filters
as handed over: ``feeds``, ``findings`` (every finding holding at the end of the run;
``agencies`` names every agency it goes to), ``rejections`` (of the files taken by the
run), and per verification report the records that need action — every verdict but
``verified``, which are counted on the summary. The agencies' drops carry the full
verification lists. A sheet lists at most :data:`MAX_ROWS` rows (so it never reaches
Excel's 1,048,576); when it lists fewer than there are, the summary says so and names
the drops that have them all.

The sheets are written by :mod:`vehiclehub.xlsx`.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Connection, func, select

from vehiclehub.config import AGENCIES
from vehiclehub.icd.codes import PoliceVerdict
from vehiclehub.icd.drops import FINDING_COLUMNS, REJECTIONS_COLUMNS, reports_with_verdicts
from vehiclehub.publish import drops
from vehiclehub.publish.drops import (
    columns_of,
    concerns,
    drop_name,
    open_findings_query,
    rejections_query,
    verdict_rows,
)
from vehiclehub.publish.report.model import FeedRow
from vehiclehub.rules.base import read_frames
from vehiclehub.store.schema import verdict_history
from vehiclehub.store.verdicts import verdict_holds_on
from vehiclehub.workfiles import written_whole
from vehiclehub.xlsx import HEADER, TITLE, Sheet, package_parts

#: Rows listed per section at most; the drops carry all of them.
MAX_ROWS = 200_000
#: The verdict reports of each agency (ICD §4).
VERDICT_REPORTS = reports_with_verdicts()
#: The verdict that needs no action: counted on the sheet, not listed.
VERIFIED = PoliceVerdict.VERIFIED.value
#: The findings sheet: an ICD §4 finding, when it was first seen and whether it is new.
FINDINGS_SHEET_COLUMNS = [*FINDING_COLUMNS, "first_seen", "status"]
FEED_COLUMNS = [
    "feed", "state", "files", "rows", "loaded", "rejected rows", "critical failed",
    "warnings failed",
]  # fmt: skip


@dataclass(frozen=True)
class Section:
    """A table sheet: its rows (at most :data:`MAX_ROWS`), how many there are, and where
    all of them are when the sheet lists fewer."""

    name: str
    holds: str
    frame: pd.DataFrame
    total: int
    numbers: Sequence[str] = ()
    more: str = "the drops carry all of them"
    #: Rows per agency, of all of them (not only those listed).
    per_agency: Mapping[str, int] = field(default_factory=dict)

    @property
    def truncated(self) -> bool:
        return len(self.frame) < self.total


def _count(conn: Connection, query: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(query.subquery())).scalar() or 0)


def run_findings(found: pd.DataFrame, day: date) -> pd.DataFrame:
    """Findings holding at the end of the run, by rule and record, new or still open;
    ``found`` are those findings as the drops read them (:func:`findings_chunks`)."""
    names = ["agency", *FINDINGS_SHEET_COLUMNS[:-1]]
    new = found["first_seen"].astype("string").eq(day.isoformat())
    status = new.map({True: "new", False: "still open"}).astype("string")
    return found[names].assign(status=status)


@dataclass
class FindingsSheet:
    """The findings section, gathered a chunk of the run's findings at a time (:meth:`add`):
    every finding once, with the agencies whose findings drop carries it; the first
    :data:`MAX_ROWS` listed, all of them counted."""

    day: date
    listed: list[pd.DataFrame] = field(default_factory=list)
    total: int = 0
    per_agency: dict[str, int] = field(default_factory=lambda: dict.fromkeys(AGENCIES, 0))

    def add(self, found: pd.DataFrame) -> None:
        """Take the next chunk of the findings holding at the end of the run."""
        found = run_findings(found, self.day)
        goes_to = pd.Series("", index=found.index, dtype="string")
        for agency in AGENCIES:
            concerned = concerns(agency, found)
            self.per_agency[agency] += int(concerned.sum())
            goes_to = goes_to.mask(concerned, goes_to + "; " + agency)
        room = MAX_ROWS - sum(map(len, self.listed))
        if room > 0:
            frame = found[FINDINGS_SHEET_COLUMNS].assign(agencies=goes_to.str.removeprefix("; "))
            self.listed.append(frame.head(room))
        self.total += len(found)

    def section(self) -> Section:
        columns = [*FINDINGS_SHEET_COLUMNS, "agencies"]
        listed = [f for f in self.listed if not f.empty]
        frame = pd.concat(listed, ignore_index=True) if listed else pd.DataFrame(columns=columns)
        return Section(
            "findings",
            "every finding holding at the end of the run; agencies: whose findings drop has it",
            frame,
            self.total,
            more="each agency's findings drop lists every one of its own",
            per_agency=dict(self.per_agency),
        )


def findings_section(conn: Connection, day: date) -> Section:
    """The findings section of the run for ``day``, read from the store a chunk at a time."""
    sheet = FindingsSheet(day)
    for held in read_frames(conn, open_findings_query(day), drops.CHUNK_ROWS):
        sheet.add(held)
    return sheet.section()


def rejections_section(conn: Connection, day: date) -> Section:
    """The rejections of every file taken by the run, agency by agency."""
    frames, per_agency = [], {}
    for agency in AGENCIES:
        query = rejections_query(agency, day)
        frame = columns_of(conn, query.limit(MAX_ROWS), REJECTIONS_COLUMNS)
        per_agency[agency] = _count(conn, query) if len(frame) == MAX_ROWS else len(frame)
        frames.append(frame.assign(line=frame["line"].astype("Int64")).assign(agency=agency))
    rejected = pd.concat(frames, ignore_index=True)[["agency", *REJECTIONS_COLUMNS]]
    return Section(
        "rejections",
        "every rejected row or file of the files taken by the run",
        rejected.head(MAX_ROWS),
        sum(per_agency.values()),
        numbers=["line"],
        more="each agency's rejections drop lists every one of its own",
        per_agency=per_agency,
    )


def verdict_counts(conn: Connection, day: date) -> dict[str, dict[str, int]]:
    """Per verification report, records per verdict holding on the day."""
    query = (
        select(verdict_history.c.report, verdict_history.c.verdict, func.count())
        .where(verdict_holds_on(day))
        .group_by(verdict_history.c.report, verdict_history.c.verdict)
    )
    counts: dict[str, dict[str, int]] = {}
    for report, verdict, n in conn.execute(query):
        counts.setdefault(str(report), {})[str(verdict)] = int(n)
    return counts


def to_act_on(conn: Connection, report: str, day: date) -> pd.DataFrame:
    """The first :data:`MAX_ROWS` records holding on the day whose verdict is not verified."""
    query = (
        select(verdict_history.c.row_json)
        .where(
            verdict_history.c.report == report,
            verdict_holds_on(day),
            verdict_history.c.verdict != VERIFIED,
        )
        .order_by(verdict_history.c.record_key)
        .limit(MAX_ROWS)
    )
    return verdict_rows(conn, query, report)


def feeds_section(feeds: Mapping[str, Sequence[FeedRow]]) -> Section:
    """Each agency's feeds as the report's tree has them."""
    rows = [
        [agency, f.feed, f.state, f.file_count, f.rows, f.loaded, f.rejected_rows,
         f.critical_failed, f.warnings_failed]
        for agency in AGENCIES
        for f in feeds.get(agency, [])
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["agency", *FEED_COLUMNS], dtype=object)
    return Section(
        "feeds",
        "each agency's feeds: expected state, files, rows, failed expectations",
        frame,
        len(frame),
        numbers=FEED_COLUMNS[2:],
    )


def verdict_sections(
    conn: Connection, day: date, counted: Mapping[str, Mapping[str, int]]
) -> list[Section]:
    """Per verification report, the records whose verdict needs action."""
    sections = []
    for agency, reports in VERDICT_REPORTS.items():
        for report in reports:
            per_verdict = counted.get(report, {})
            sections.append(
                Section(
                    report,
                    f"{agency}: every record whose verdict is not {VERIFIED} (those are counted "
                    "on this sheet)",
                    to_act_on(conn, report, day),
                    sum(per_verdict.values()) - per_verdict.get(VERIFIED, 0),
                    more=f"{drop_name(agency, report, day)} carries the verdicts new or changed "
                    "since the previous drop",
                )
            )
    return sections


def _write_summary(
    sheet: Sheet,
    day: date,
    sections: list[Section],
    counted: Mapping[str, Mapping[str, int]],
) -> None:
    """The cover sheet: per agency at a glance, records per verdict, and the other sheets."""
    by_name = {s.name: s for s in sections}
    sheet.open(["sheet", "what it holds", "rows listed", "rows in all", "rejections"])
    sheet.line(f"vehiclehub — run of business date {day.isoformat()}", style=TITLE)
    sheet.line("business date", day)
    sheet.skip()
    sheet.line("agency", "feeds expected", "feeds received", "findings", "rejections", style=HEADER)
    feeds = by_name["feeds"].frame
    for agency in AGENCIES:
        mine = feeds[feeds["agency"] == agency]
        expected = mine[mine["state"] != "not expected"]
        sheet.line(
            agency,
            len(expected),
            int((expected["state"] == "received").sum()),
            by_name["findings"].per_agency.get(agency, 0),
            by_name["rejections"].per_agency.get(agency, 0),
        )
    sheet.skip()
    sheet.line("verification report", "verdict", "records", style=HEADER)
    for report in [r for reports in VERDICT_REPORTS.values() for r in reports]:
        per_verdict = dict(sorted(counted.get(report, {}).items())) or {"(none)": 0}
        for verdict, n in per_verdict.items():
            sheet.line(report, verdict, n)
    sheet.skip()
    sheet.line("sheet", "what it holds", "rows listed", "rows in all", style=HEADER)
    for section in sections:
        sheet.line(section.name, section.holds, len(section.frame), section.total)
    for section in sections:
        if section.truncated:
            sheet.line(
                f"{section.name} lists its first {len(section.frame):,} of {section.total:,} "
                f"rows (at most {MAX_ROWS:,} per sheet); {section.more}."
            )
    sheet.close()


def write_workbook(
    conn: Connection,
    day: date,
    target: Path,
    feeds: Mapping[str, Sequence[FeedRow]],
    counted: Mapping[str, Mapping[str, int]] | None = None,
    findings: Section | None = None,
) -> list[str]:
    """Write the run's workbook; ``feeds`` are the report's per-agency feed rows
    (:attr:`~vehiclehub.publish.report.model.ReportData.feeds_by_agency`).

    ``counted`` are the day's records per verification report and verdict
    (:func:`verdict_counts`), ``findings`` the findings section (:class:`FindingsSheet`,
    gathered as the publish wrote the findings drops), each when the caller has them
    already. Returns the sheets
    that list fewer rows than there are.
    """
    counted = verdict_counts(conn, day) if counted is None else counted
    findings = findings_section(conn, day) if findings is None else findings
    sections = [
        feeds_section(feeds),
        findings,
        rejections_section(conn, day),
        *verdict_sections(conn, day, counted),
    ]
    filters: dict[int, str] = {}
    with (
        written_whole(target) as partial,
        zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as book,
    ):
        with book.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as stream:
            _write_summary(Sheet(stream), day, sections, counted)
        for n, section in enumerate(sections, start=2):
            with book.open(f"xl/worksheets/sheet{n}.xml", "w", force_zip64=True) as stream:
                sheet = Sheet(stream)
                sheet.table(section.frame, section.numbers)
                filters[n - 1] = sheet.filter_ref(absolute=True)
        for name, text in package_parts(["summary", *(s.name for s in sections)], filters).items():
            book.writestr(name, text)
    return [s.name for s in sections if s.truncated]
