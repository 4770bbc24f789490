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

Excel turns 18-digit ids into ``5.30E+17``: every identifier is written as a text
cell with the text number format ``@`` (and every column is formatted as text), so
it stays exactly as sent; counts are numbers and dates (:data:`DATE_COLUMNS`) real
dates.

The sheets are written as SpreadsheetML — the XML openpyxl's write-only mode writes,
inline strings and one style per cell — but produced a chunk of rows at a time from
whole columns rather than one Python cell object per value: at a million vehicles
that is seconds instead of minutes.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any

import pandas as pd
from sqlalchemy import Connection, func, select

from vehiclehub.config import AGENCIES
from vehiclehub.publish.drops import (
    REJECTIONS_COLUMNS,
    columns_of,
    concerns,
    drop_name,
    holds_on,
    rejections_query,
    verdict_rows,
)
from vehiclehub.store.schema import findings, verdict_history
from vehiclehub.store.verdicts import verdict_holds_on
from vehiclehub.workfiles import written_whole

#: Rows listed per section at most; the drops carry all of them.
MAX_ROWS = 200_000
#: Excel's rows per sheet.
SHEET_ROWS = 1_048_576
#: Rows turned into XML at a time.
CHUNK_ROWS = 20_000
#: Characters an Excel cell holds; a longer value (a garbled rejected field) is cut, marked.
CELL_CHARS = 32_767
CUT = " … [cut: longer than an Excel cell holds]"
#: The verdict reports of each agency (ICD §4).
VERDICT_REPORTS = {"police": ["export_verification"], "tax": ["refund_verification"]}
#: The verdict that needs no action: counted on the sheet, not listed.
VERIFIED = "verified"
FINDING_COLUMNS = [
    "rule_id", "severity", "vin", "record_key", "related", "detail", "first_seen", "status"
]  # fmt: skip
#: Columns holding dates (ISO text in the store and the drops), written as Excel dates.
DATE_COLUMNS = frozenset({"first_seen", "exported_at"})
#: Excel's day 0 (its serial 1 is 1900-01-01, counting the 1900 leap day Lotus invented).
EXCEL_EPOCH = pd.Timestamp("1899-12-30")
FEED_COLUMNS = [
    "feed", "state", "files", "rows", "loaded", "rejected rows", "critical failed",
    "warnings failed",
]  # fmt: skip

# Cell formats, indexes into ``cellXfs`` of the styles part below.
GENERAL, TEXT, HEADING, HEADER, TITLE, DATE = range(6)
#: Column widths (characters) by column name; others get DEFAULT_WIDTH.
WIDTHS = {
    "agency": 11, "agencies": 16, "feed": 16, "state": 13, "rule_id": 9, "severity": 9,
    "vin": 20, "record_key": 36, "related": 40, "detail": 60, "first_seen": 12,
    "status": 10, "file": 38, "line": 7, "column": 16, "value": 30, "error": 60,
    "verdict": 14, "rule_ids": 18, "what it holds": 70,
}  # fmt: skip
DEFAULT_WIDTH = 20

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_STYLES = (
    f'{_DECL}<styleSheet xmlns="{_MAIN}">'
    '<numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy-mm-dd"/></numFmts>'
    '<fonts count="3">'
    '<font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="13"/><name val="Calibri"/><family val="2"/></font>'
    "</fonts>"
    '<fills count="3"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill>'
    '<fill><patternFill patternType="solid"><fgColor rgb="FFDDE3EA"/><bgColor indexed="64"/>'
    "</patternFill></fill></fills>"
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="6">'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="49" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="49" fontId="1" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"'
    ' applyFont="1"/>'
    '<xf numFmtId="49" fontId="1" fillId="2" borderId="0" xfId="0" applyNumberFormat="1"'
    ' applyFont="1" applyFill="1"/>'
    '<xf numFmtId="49" fontId="2" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"'
    ' applyFont="1"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    "</cellXfs>"
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)
# Characters XML 1.0 cannot carry (and CR, which XML readers turn into LF) are written as
# SpreadsheetML's ``_xHHHH_``; a literal ``_xHHHH_`` in a value is itself escaped.
# The pattern reads the same to Python's re and to Arrow's RE2 (which has no ``\u``).
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f" + "\ufffe\uffff" + r"]|_x[0-9A-Fa-f]{4}_")


def _unsafe(match: re.Match[str]) -> str:
    found = match.group(0)
    return "_x005F" + found if len(found) > 1 else f"_x{ord(found):04X}_"


def _fit(value: str) -> str:
    """A value cut to what a cell holds, saying so."""
    return value[: CELL_CHARS - len(CUT)] + CUT if len(value) > CELL_CHARS else value


def _escape_one(value: str) -> str:
    """A value as the text of an XML element."""
    text = _UNSAFE.sub(_unsafe, _fit(value))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape(text: pd.Series) -> pd.Series:
    """Values as the text of XML elements, as :func:`_escape_one` but column-wise."""
    long = text.str.len() > CELL_CHARS
    if long.any():
        text = text.mask(long, text[long].map(_fit))
    unsafe = text.str.contains(_UNSAFE.pattern, regex=True)
    if unsafe.any():
        text = text.mask(unsafe, text[unsafe].map(lambda v: _UNSAFE.sub(_unsafe, v)))
    return (
        text.str.replace("&", "&amp;", regex=False)
        .str.replace("<", "&lt;", regex=False)
        .str.replace(">", "&gt;", regex=False)
    )


def _letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _as_text(values: pd.Series) -> pd.Series:
    """Values as strings (dates ISO), missing values as missing."""
    return values.astype("string")


def _serials(values: pd.Series) -> pd.Series:
    """ISO dates as Excel date serials (text of the number), missing or invalid as missing."""
    days = pd.to_datetime(_as_text(values), format="%Y-%m-%d", errors="coerce")
    return (days - EXCEL_EPOCH).dt.days.astype("Int64").astype("string")


@dataclass
class _Sheet:
    """One worksheet, written top to bottom, a row number at a time.

    A table sheet (:meth:`table`) has its header in row 1, frozen, and an autofilter
    over the header and every row written.
    """

    stream: IO[bytes]
    row: int = 0
    #: The filtered range's last column and row, once the sheet is a table.
    filtered: tuple[str, int] | None = None

    def open(self, columns: Sequence[str], *, frozen: bool = False) -> None:
        """The sheet's start: frozen first row or not, and its columns (text by default)."""
        views = (
            '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" '
            'activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft" '
            'activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
            if frozen
            else ""
        )
        cols = "".join(
            f'<col min="{i}" max="{i}" width="{WIDTHS.get(name, DEFAULT_WIDTH)}" '
            f'customWidth="1" style="{TEXT}"/>'
            for i, name in enumerate(columns, start=1)
        )
        self._write(f'{_DECL}<worksheet xmlns="{_MAIN}">{views}<cols>{cols}</cols><sheetData>')

    def close(self) -> None:
        tail = f'<autoFilter ref="{self.filter_ref()}"/>' if self.filtered else ""
        self._write(f"</sheetData>{tail}</worksheet>")

    def filter_ref(self, absolute: bool = False) -> str:
        """The filtered range, ``A1:H20`` (or ``$A$1:$H$20``)."""
        assert self.filtered is not None
        column, row = self.filtered
        return f"$A$1:${column}${row}" if absolute else f"A1:{column}{row}"

    def _write(self, text: str) -> None:
        self.stream.write(text.encode("utf-8"))

    def _take(self, rows: int) -> int:
        """The number of the first of ``rows`` next rows; a sheet never overflows."""
        if self.row + rows > SHEET_ROWS:
            raise OverflowError(f"a sheet holds at most {SHEET_ROWS:,} rows")
        first = self.row + 1
        self.row += rows
        return first

    def line(self, *values: str | int | date | None, style: int = TEXT) -> None:
        """One row of a few cells: text in ``style``, ints as numbers, dates as dates."""
        r = self._take(1)
        cells = []
        for i, value in enumerate(values):
            ref = f"{_letter(i)}{r}"
            if value is None:
                continue
            if isinstance(value, date):
                serial = (pd.Timestamp(value) - EXCEL_EPOCH).days
                cells.append(f'<c r="{ref}" s="{DATE}"><v>{serial}</v></c>')
            elif isinstance(value, int):
                cells.append(f'<c r="{ref}" t="n"><v>{value}</v></c>')
            else:
                cells.append(
                    f'<c r="{ref}" s="{style}" t="inlineStr">'
                    f'<is><t xml:space="preserve">{_escape_one(value)}</t></is></c>'
                )
        self._write(f'<row r="{r}">{"".join(cells)}</row>')

    def skip(self) -> None:
        """An empty row."""
        self._take(1)

    def rows(self, frame: pd.DataFrame, numbers: Sequence[str] = ()) -> None:
        """The frame's rows, a chunk at a time: text cells, but for the ``numbers`` columns
        and the :data:`DATE_COLUMNS`."""
        for start in range(0, len(frame), CHUNK_ROWS):
            part = frame.iloc[start : start + CHUNK_ROWS]
            first = self._take(len(part))
            refs = pd.Series(range(first, first + len(part))).astype("string")
            xml = '<row r="' + refs + '">'
            for i, name in enumerate(part.columns):
                column = part[name].reset_index(drop=True)
                ref = '<c r="' + _letter(i) + refs
                if name in numbers:
                    cell = ref + '" t="n"><v>' + _as_text(column) + "</v></c>"
                elif name in DATE_COLUMNS:
                    cell = ref + f'" s="{DATE}"><v>' + _serials(column) + "</v></c>"
                else:
                    cell = (
                        ref
                        + f'" s="{TEXT}" t="inlineStr"><is><t xml:space="preserve">'
                        + _escape(_as_text(column))
                        + "</t></is></c>"
                    )
                xml = xml + cell.fillna("")
            self._write((xml + "</row>").str.cat())

    def table(self, frame: pd.DataFrame, numbers: Sequence[str] = ()) -> None:
        """The whole sheet as one table: header row frozen, autofilter over every row."""
        self.open(list(frame.columns), frozen=True)
        self.line(*frame.columns, style=HEADER)
        self.rows(frame, numbers)
        self.filtered = (_letter(len(frame.columns) - 1), max(self.row, 2))
        self.close()


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


def run_findings(conn: Connection, day: date) -> pd.DataFrame:
    """Every finding holding at the end of the run, by rule and record, new or still open."""
    names = ["agency", *FINDING_COLUMNS[:-1]]
    query = (
        select(*(findings.c[c] for c in names))
        .where(holds_on(day))
        .order_by(findings.c.rule_id, findings.c.record_key)
    )
    found = columns_of(conn, query, names)
    new = found["first_seen"].astype("string").eq(day.isoformat())
    found["status"] = new.map({True: "new", False: "still open"}).astype("string")
    return found


def findings_section(found: pd.DataFrame, day: date) -> Section:
    """Every finding once, with the agencies whose findings drop carries it."""
    goes_to = pd.Series("", index=found.index, dtype="string")
    for agency in AGENCIES:
        goes_to = goes_to.mask(concerns(agency, found), goes_to + "; " + agency)
    frame = found[FINDING_COLUMNS].assign(agencies=goes_to.str.removeprefix("; "))
    return Section(
        "findings",
        "every finding holding at the end of the run; agencies: whose findings drop has it",
        frame.head(MAX_ROWS),
        len(frame),
        more="each agency's findings drop lists every one of its own",
        per_agency={a: int(concerns(a, found).sum()) for a in AGENCIES},
    )


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


def feeds_section(feeds: Mapping[str, list[dict[str, Any]]]) -> Section:
    keys = [
        "feed", "state", "file_count", "rows", "loaded", "rejected_rows", "critical_failed",
        "warnings_failed",
    ]  # fmt: skip
    rows = [[agency] + [f[k] for k in keys] for agency in AGENCIES for f in feeds.get(agency, [])]
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
    sheet: _Sheet,
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


def _package(names: Sequence[str], filters: Mapping[int, str]) -> dict[str, str]:
    """Every part of the workbook but the sheets; ``filters`` are the filtered ranges by
    sheet index (Excel keeps each as the sheet's hidden ``_FilterDatabase`` name)."""
    sheets = len(names)
    overrides = "".join(
        f'<Override PartName="/xl/worksheets/sheet{n}.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        for n in range(1, sheets + 1)
    )
    relations = "".join(
        f'<Relationship Id="rId{n}" Type="{_REL}/worksheet" Target="worksheets/sheet{n}.xml"/>'
        for n in range(1, sheets + 1)
    )
    listed = "".join(
        f'<sheet name="{name}" sheetId="{n}" r:id="rId{n}"/>'
        for n, name in enumerate(names, start=1)
    )
    defined = "".join(
        f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">'
        f"'{names[i]}'!{ref}</definedName>"
        for i, ref in sorted(filters.items())
    )
    return {
        "[Content_Types].xml": (
            f'{_DECL}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            f'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/styles.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"'
            f"/>{overrides}</Types>"
        ),
        "_rels/.rels": (
            f'{_DECL}<Relationships xmlns="{_PKG_REL}"><Relationship Id="rId1" '
            f'Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            f'{_DECL}<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><sheets>{listed}</sheets>'
            + (f"<definedNames>{defined}</definedNames>" if defined else "")
            + "</workbook>"
        ),
        "xl/_rels/workbook.xml.rels": (
            f'{_DECL}<Relationships xmlns="{_PKG_REL}">{relations}<Relationship '
            f'Id="rId{sheets + 1}" Type="{_REL}/styles" Target="styles.xml"/></Relationships>'
        ),
        "xl/styles.xml": _STYLES,
    }


def write_workbook(
    conn: Connection,
    day: date,
    target: Path,
    feeds: dict[str, list[dict[str, Any]]],
    counted: Mapping[str, Mapping[str, int]] | None = None,
) -> list[str]:
    """Write the run's workbook; ``feeds`` are the report's per-agency feed rows.

    ``counted`` are the day's records per verification report and verdict when the
    caller has them already (:func:`verdict_counts`). Returns the sheets that list
    fewer rows than there are.
    """
    counted = verdict_counts(conn, day) if counted is None else counted
    sections = [
        feeds_section(feeds),
        findings_section(run_findings(conn, day), day),
        rejections_section(conn, day),
        *verdict_sections(conn, day, counted),
    ]
    filters: dict[int, str] = {}
    with (
        written_whole(target) as partial,
        zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as book,
    ):
        with book.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as stream:
            _write_summary(_Sheet(stream), day, sections, counted)
        for n, section in enumerate(sections, start=2):
            with book.open(f"xl/worksheets/sheet{n}.xml", "w", force_zip64=True) as stream:
                sheet = _Sheet(stream)
                sheet.table(section.frame, section.numbers)
                filters[n - 1] = sheet.filter_ref(absolute=True)
        for name, text in _package(["summary", *(s.name for s in sections)], filters).items():
            book.writestr(name, text)
    return [s.name for s in sections if s.truncated]


def write_tables(target: IO[bytes], tables: Mapping[str, pd.DataFrame]) -> None:
    """A workbook of one sheet per table (its name the sheet's, at most 31 characters),
    each a frozen, filtered header row and the rows, every cell text as in the run
    workbook but for integer columns and the :data:`DATE_COLUMNS`."""
    names = [name[:31] for name in tables]
    filters: dict[int, str] = {}
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as book:
        for n, frame in enumerate(tables.values(), start=1):
            with book.open(f"xl/worksheets/sheet{n}.xml", "w", force_zip64=True) as stream:
                sheet = _Sheet(stream)
                numbers = [c for c in frame.columns if pd.api.types.is_integer_dtype(frame[c])]
                sheet.table(frame, numbers)
                filters[n - 1] = sheet.filter_ref(absolute=True)
        for part, text in _package(names, filters).items():
            book.writestr(part, text)
