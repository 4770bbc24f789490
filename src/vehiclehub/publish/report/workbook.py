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

import functools
import io
import pickle
import tempfile
import zipfile
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any

import pandas as pd
from sqlalchemy import Connection, func, select

from vehiclehub.config import AGENCIES
from vehiclehub.icd.codes import PoliceVerdict
from vehiclehub.icd.drops import (
    FINDING_COLUMNS,
    REJECTIONS_COLUMNS,
    REPORT_COLUMNS,
    reports_with_verdicts,
)
from vehiclehub.publish import drops
from vehiclehub.publish.drops import (
    concerns,
    drop_name,
    open_findings_query,
    rejections_query,
    verdict_parts,
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
    """A table sheet: its columns, the rows it lists (at most :data:`MAX_ROWS`) read a part
    at a time as the sheet is written, how many there are in all, and where all of them are
    when it lists fewer."""

    name: str
    holds: str
    columns: Sequence[str]
    #: The listed rows, a part at a time, read anew by each call.
    parts: Callable[[], Iterator[pd.DataFrame]]
    total: int
    numbers: Sequence[str] = ()
    more: str = "the drops carry all of them"
    #: Rows per agency, of all of them (not only those listed).
    per_agency: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Listed:
    """A section as its sheet was written: how many of its rows the sheet lists."""

    section: Section
    rows: int

    @property
    def truncated(self) -> bool:
        return self.rows < self.section.total


def _count(conn: Connection, query: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(query.subquery())).scalar() or 0)


def at_most(parts: Generator[pd.DataFrame, None, None], rows: int) -> Iterator[pd.DataFrame]:
    """The first ``rows`` rows of the parts, as parts; the rest is not read."""
    with closing(parts):
        for part in parts if rows > 0 else ():
            yield part.head(rows)
            rows -= len(part)
            if rows <= 0:
                return


def run_findings(found: pd.DataFrame, day: date) -> pd.DataFrame:
    """Findings holding at the end of the run, by rule and record, new or still open;
    ``found`` are those findings as the drops read them (:func:`findings_chunks`)."""
    names = ["agency", *FINDINGS_SHEET_COLUMNS[:-1]]
    new = found["first_seen"].astype("string").eq(day.isoformat())
    status = new.map({True: "new", False: "still open"}).astype("string")
    return found[names].assign(status=status)


class FindingsSheet:
    """The findings section, gathered a chunk of the run's findings at a time (:meth:`add`):
    every finding once, with the agencies whose findings drop carries it; all of them
    counted, the first :data:`MAX_ROWS` listed.

    The listed rows go to a temporary file as they come, so a publish that gathers them
    while it writes its drops does not hold them until the workbook is written. Closing
    the sheet (or leaving its ``with`` block) removes the file.
    """

    COLUMNS = (*FINDINGS_SHEET_COLUMNS, "agencies")

    def __init__(self, day: date) -> None:
        self.day = day
        self.total = 0
        self.listed = 0
        self.per_agency = dict.fromkeys(AGENCIES, 0)
        # Outlives this call: closed with the sheet.
        self._spool: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115

    def __enter__(self) -> FindingsSheet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._spool.close()

    def add(self, found: pd.DataFrame) -> None:
        """Take the next chunk of the findings holding at the end of the run."""
        found = run_findings(found, self.day)
        goes_to = pd.Series("", index=found.index, dtype="string")
        for agency in AGENCIES:
            concerned = concerns(agency, found)
            self.per_agency[agency] += int(concerned.sum())
            goes_to = goes_to.mask(concerned, goes_to + "; " + agency)
        room = MAX_ROWS - self.listed
        if room > 0 and not found.empty:
            frame = found[FINDINGS_SHEET_COLUMNS].assign(agencies=goes_to.str.removeprefix("; "))
            listed = frame.head(room)
            pickle.dump(listed, self._spool, protocol=pickle.HIGHEST_PROTOCOL)
            self.listed += len(listed)
        self.total += len(found)

    def _parts(self) -> Iterator[pd.DataFrame]:
        """The listed rows as they were added, read back from the temporary file."""
        end = self._spool.seek(0, io.SEEK_END)
        self._spool.seek(0)
        while self._spool.tell() < end:
            part: pd.DataFrame = pickle.load(self._spool)
            yield part

    def section(self) -> Section:
        return Section(
            "findings",
            "every finding holding at the end of the run; agencies: whose findings drop has it",
            list(self.COLUMNS),
            self._parts,
            self.total,
            more="each agency's findings drop lists every one of its own",
            per_agency=dict(self.per_agency),
        )


def findings_section(conn: Connection, day: date, sheet: FindingsSheet) -> Section:
    """The findings section of the run for ``day``, read from the store a chunk at a time
    into ``sheet``."""
    for held in read_frames(conn, open_findings_query(day), drops.CHUNK_ROWS):
        sheet.add(held)
    return sheet.section()


def _rejections_parts(conn: Connection, day: date) -> Generator[pd.DataFrame, None, None]:
    """The rejections of the files taken by the run, agency by agency, a part at a time;
    at most :data:`MAX_ROWS` of each agency are read."""
    for agency in AGENCIES:
        query = rejections_query(agency, day).limit(MAX_ROWS)
        for part in read_frames(conn, query, drops.CHUNK_ROWS):
            line = part["line"].astype("Int64")
            yield part.assign(line=line, agency=agency)[["agency", *REJECTIONS_COLUMNS]]


def rejections_section(conn: Connection, day: date) -> Section:
    """The rejections of every file taken by the run, agency by agency."""
    per_agency = {agency: _count(conn, rejections_query(agency, day)) for agency in AGENCIES}
    return Section(
        "rejections",
        "every rejected row or file of the files taken by the run",
        ["agency", *REJECTIONS_COLUMNS],
        lambda: at_most(_rejections_parts(conn, day), MAX_ROWS),
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


def to_act_on(conn: Connection, report: str, day: date) -> Iterator[pd.DataFrame]:
    """The first :data:`MAX_ROWS` records holding on the day whose verdict is not verified,
    a part at a time."""
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
    return verdict_parts(conn, query, report)


def feeds_section(feeds: Mapping[str, Sequence[FeedRow]]) -> Section:
    """Each agency's feeds as the report's tree has them."""
    rows = [
        [agency, f.feed, f.state, f.file_count, f.rows, f.loaded, f.rejected_rows,
         f.critical_failed, f.warnings_failed]
        for agency in AGENCIES
        for f in feeds.get(agency, [])
    ]  # fmt: skip
    columns = ["agency", *FEED_COLUMNS]
    frame = pd.DataFrame(rows, columns=columns, dtype=object)
    return Section(
        "feeds",
        "each agency's feeds: expected state, files, rows, failed expectations",
        columns,
        lambda: iter([frame]),
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
                    REPORT_COLUMNS[report],
                    functools.partial(to_act_on, conn, report, day),
                    sum(per_verdict.values()) - per_verdict.get(VERIFIED, 0),
                    more=f"{drop_name(agency, report, day)} carries the verdicts new or changed "
                    "since the previous drop",
                )
            )
    return sections


def _write_summary(
    sheet: Sheet,
    day: date,
    feeds: Mapping[str, Sequence[FeedRow]],
    listed: list[Listed],
    counted: Mapping[str, Mapping[str, int]],
) -> None:
    """The cover sheet: per agency at a glance, records per verdict, and the other sheets."""
    by_name = {s.section.name: s.section for s in listed}
    sheet.open(["sheet", "what it holds", "rows listed", "rows in all", "rejections"])
    sheet.line(f"vehiclehub — run of business date {day.isoformat()}", style=TITLE)
    sheet.line("business date", day)
    sheet.skip()
    sheet.line("agency", "feeds expected", "feeds received", "findings", "rejections", style=HEADER)
    for agency in AGENCIES:
        expected = [f for f in feeds.get(agency, []) if f.state != "not expected"]
        sheet.line(
            agency,
            len(expected),
            sum(f.state == "received" for f in expected),
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
    for written in listed:
        sheet.line(written.section.name, written.section.holds, written.rows, written.section.total)
    for written in listed:
        if written.truncated:
            section = written.section
            sheet.line(
                f"{section.name} lists its first {written.rows:,} of {section.total:,} "
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
    already. The sheets are written one after the other, each read a part at a time, so
    the workbook holds one part of one sheet at a time; the summary, which counts what
    the others list, is written last. Returns the sheets that list fewer rows than
    there are.
    """
    counted = verdict_counts(conn, day) if counted is None else counted
    with ExitStack() as stack:
        if findings is None:
            findings = findings_section(conn, day, stack.enter_context(FindingsSheet(day)))
        sections = [
            feeds_section(feeds),
            findings,
            rejections_section(conn, day),
            *verdict_sections(conn, day, counted),
        ]
        listed = _write_book(target, day, feeds, sections, counted)
    return [s.section.name for s in listed if s.truncated]


def _write_book(
    target: Path,
    day: date,
    feeds: Mapping[str, Sequence[FeedRow]],
    sections: list[Section],
    counted: Mapping[str, Mapping[str, int]],
) -> list[Listed]:
    """The workbook's package: a sheet per section, then the summary as its first sheet."""
    filters: dict[int, str] = {}
    listed = []
    with (
        written_whole(target) as partial,
        zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as book,
    ):
        for n, section in enumerate(sections, start=2):
            with book.open(f"xl/worksheets/sheet{n}.xml", "w", force_zip64=True) as stream:
                sheet = Sheet(stream)
                rows = sheet.table_in_parts(section.columns, section.parts(), section.numbers)
                filters[n - 1] = sheet.filter_ref(absolute=True)
            listed.append(Listed(section, rows))
        with book.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as stream:
            _write_summary(Sheet(stream), day, feeds, listed, counted)
        for name, text in package_parts(["summary", *(s.name for s in sections)], filters).items():
            book.writestr(name, text)
    return listed
