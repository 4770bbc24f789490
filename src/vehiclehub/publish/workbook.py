"""The run workbook for operators who work in Excel: ``reports/<date>/vehiclehub_<date>.xlsx``.

One sheet per agency, its sections one under the other: the agency's feeds (state,
files, rows, failed expectations), its findings (every finding on or citing one of
its records, with new or still open), the rejections of its files taken by the run,
and its verdicts (police, tax): every verdict counted, and the records that need
action — every verdict but ``verified`` — listed. The agency's drops carry the full
verification lists. A section lists at most :data:`MAX_ROWS` rows (so a sheet never
reaches Excel's 1,048,576 rows); when it lists fewer than there are, the sheet says
so and names the drop that has them all.

Excel turns 18-digit ids into ``5.30E+17``: every identifier is written as a text
cell with the text number format ``@`` (and every column is formatted as text), so
it stays exactly as sent; only counts are numbers.

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
FEED_COLUMNS = [
    "feed", "state", "files", "rows", "loaded", "rejected rows", "critical failed",
    "warnings failed",
]  # fmt: skip
WIDTHS = (24, 14, 22, 36, 40, 60, 12, 12)

# Cell formats, indexes into ``cellXfs`` of the styles part below.
GENERAL, TEXT, HEADING, HEADER, TITLE = range(5)

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_STYLES = (
    f'{_DECL}<styleSheet xmlns="{_MAIN}">'
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
    '<cellXfs count="5">'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="49" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="49" fontId="1" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"'
    ' applyFont="1"/>'
    '<xf numFmtId="49" fontId="1" fillId="2" borderId="0" xfId="0" applyNumberFormat="1"'
    ' applyFont="1" applyFill="1"/>'
    '<xf numFmtId="49" fontId="2" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"'
    ' applyFont="1"/>'
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


@dataclass
class _Sheet:
    """One worksheet, written top to bottom, a row number at a time."""

    stream: IO[bytes]
    row: int = 0
    truncated: list[str] = field(default_factory=list)

    def open(self) -> None:
        cols = "".join(
            f'<col min="{i}" max="{i}" width="{w}" customWidth="1" style="{TEXT}"/>'
            for i, w in enumerate(WIDTHS, start=1)
        )
        self._write(f'{_DECL}<worksheet xmlns="{_MAIN}"><cols>{cols}</cols><sheetData>')

    def close(self) -> None:
        self._write("</sheetData></worksheet>")

    def _write(self, text: str) -> None:
        self.stream.write(text.encode("utf-8"))

    def _take(self, rows: int) -> int:
        """The number of the first of ``rows`` next rows; a sheet never overflows."""
        if self.row + rows > SHEET_ROWS:
            raise OverflowError(f"a sheet holds at most {SHEET_ROWS:,} rows")
        first = self.row + 1
        self.row += rows
        return first

    def line(self, *values: str | int | None, style: int = TEXT) -> None:
        """One row of a few cells: text in ``style``, ints as numbers."""
        r = self._take(1)
        cells = []
        for i, value in enumerate(values):
            ref = f"{_letter(i)}{r}"
            if value is None:
                continue
            if isinstance(value, int):
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
        """The frame's rows, a chunk at a time: text cells, but for the ``numbers`` columns."""
        for start in range(0, len(frame), CHUNK_ROWS):
            part = frame.iloc[start : start + CHUNK_ROWS]
            first = self._take(len(part))
            refs = pd.Series(range(first, first + len(part))).astype("string")
            xml = '<row r="' + refs + '">'
            for i, name in enumerate(part.columns):
                values = _as_text(part[name]).reset_index(drop=True)
                ref = '<c r="' + _letter(i) + refs
                if name in numbers:
                    cell = ref + '" t="n"><v>' + values + "</v></c>"
                else:
                    cell = (
                        ref
                        + f'" s="{TEXT}" t="inlineStr"><is><t xml:space="preserve">'
                        + _escape(values)
                        + "</t></is></c>"
                    )
                xml = xml + cell.fillna("")
            self._write((xml + "</row>").str.cat())

    def section(
        self,
        heading: str,
        frame: pd.DataFrame,
        *,
        total: int | None = None,
        numbers: Sequence[str] = (),
        empty: str = "none",
        more: str = "",
    ) -> None:
        """A heading, a header row and the rows; says so when it lists fewer than ``total``.

        ``frame`` holds at most :data:`MAX_ROWS` rows of ``total`` (its length by default);
        ``more`` names where all of them are.
        """
        total = len(frame) if total is None else total
        shown = frame.iloc[:MAX_ROWS]
        self.skip()
        self.line(heading, style=HEADING)
        if len(shown) < total:
            self.line(
                f"First {len(shown):,} of {total:,} rows listed (at most {MAX_ROWS:,} per "
                f"section); {more or 'the drops carry all of them'}."
            )
            self.truncated.append(heading)
        self.line(*frame.columns, style=HEADER)
        if shown.empty:
            self.line(empty)
        self.rows(shown, numbers)


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


def agency_findings(found: pd.DataFrame, agency: str) -> tuple[pd.DataFrame, int]:
    """The first :data:`MAX_ROWS` of the ``found`` findings on or citing one of the agency's
    records, and how many there are."""
    mine = concerns(agency, found)
    return found.loc[mine, FINDING_COLUMNS].head(MAX_ROWS), int(mine.sum())


def agency_rejections(conn: Connection, agency: str, day: date) -> tuple[pd.DataFrame, int]:
    """The first :data:`MAX_ROWS` rejections of the agency's files of the run, and their count."""
    query = rejections_query(agency, day)
    frame = columns_of(conn, query.limit(MAX_ROWS), REJECTIONS_COLUMNS)
    frame["line"] = frame["line"].astype("Int64")
    return frame, _count(conn, query) if len(frame) == MAX_ROWS else len(frame)


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


def _feeds(feeds: list[dict[str, Any]]) -> pd.DataFrame:
    keys = [
        "feed", "state", "file_count", "rows", "loaded", "rejected_rows", "critical_failed",
        "warnings_failed",
    ]  # fmt: skip
    return pd.DataFrame([[f[k] for k in keys] for f in feeds], columns=FEED_COLUMNS, dtype=object)


def _write_sheet(
    sheet: _Sheet,
    conn: Connection,
    agency: str,
    day: date,
    feeds: list[dict[str, Any]],
    found: pd.DataFrame,
    counted: Mapping[str, Mapping[str, int]],
) -> None:
    sheet.open()
    sheet.line(f"{agency} — vehiclehub run of {day.isoformat()}", style=TITLE)
    sheet.line(
        "Findings, rejections and the verdicts that need action are listed (a section that "
        "lists only its first rows says so); verified verdicts are counted. Identifiers "
        "are text, as sent."
    )
    sheet.section("Feeds", _feeds(feeds), numbers=FEED_COLUMNS[2:])
    mine, total = agency_findings(found, agency)
    sheet.section(
        "Findings",
        mine,
        total=total,
        more=f"{drop_name(agency, 'findings', day)} lists every one",
    )
    rejected, total = agency_rejections(conn, agency, day)
    sheet.section(
        "Rejections",
        rejected,
        total=total,
        numbers=["line"],
        more=f"{drop_name(agency, 'rejections', day)} lists every one",
    )
    reports = VERDICT_REPORTS.get(agency, [])
    if not reports:
        sheet.skip()
        sheet.line("Verdicts", style=HEADING)
        sheet.line("no verdict reports for this agency")
    for report in reports:
        per_verdict = dict(sorted(counted.get(report, {}).items()))
        counts = pd.DataFrame(
            {"verdict": list(per_verdict), "records": list(per_verdict.values())}, dtype=object
        )
        sheet.section(f"Verdicts — {report}", counts, numbers=["records"], empty="no verdicts")
        verified = per_verdict.get(VERIFIED, 0)
        sheet.line(
            f"The {verified:,} verified records are counted, not listed; "
            f"{drop_name(agency, report, day)} carries every verdict new or changed since "
            "the previous drop."
        )
        act = to_act_on(conn, report, day)
        sheet.section(
            f"Not verified — {report}",
            act,
            total=sum(per_verdict.values()) - verified,
            more=f"the others are not in this workbook; {drop_name(agency, report, day)} "
            "carries the verdicts new or changed since the previous drop",
        )
    sheet.close()


def _package(sheets: int, sheet_names: Sequence[str] = AGENCIES) -> dict[str, str]:
    """Every part of the workbook but the sheets, named ``sheet_names``."""
    overrides = "".join(
        f'<Override PartName="/xl/worksheets/sheet{n}.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        for n in range(1, sheets + 1)
    )
    relations = "".join(
        f'<Relationship Id="rId{n}" Type="{_REL}/worksheet" Target="worksheets/sheet{n}.xml"/>'
        for n in range(1, sheets + 1)
    )
    names = "".join(
        f'<sheet name="{a}" sheetId="{n}" r:id="rId{n}"/>'
        for n, a in enumerate(sheet_names[:sheets], start=1)
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
            f'{_DECL}<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><sheets>{names}</sheets></workbook>'
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
    caller has them already (:func:`verdict_counts`). Returns the sections
    (``agency: heading``) that list fewer rows than there are.
    """
    found = run_findings(conn, day)
    counted = verdict_counts(conn, day) if counted is None else counted
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    truncated = []
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as book:
        for name, text in _package(len(AGENCIES)).items():
            book.writestr(name, text)
        for n, agency in enumerate(AGENCIES, start=1):
            with book.open(f"xl/worksheets/sheet{n}.xml", "w", force_zip64=True) as stream:
                sheet = _Sheet(stream)
                _write_sheet(sheet, conn, agency, day, feeds.get(agency, []), found, counted)
                truncated += [f"{agency}: {heading}" for heading in sheet.truncated]
    partial.replace(target)
    return truncated


def write_tables(target: IO[bytes], tables: Mapping[str, pd.DataFrame]) -> None:
    """A workbook of one sheet per table (its name the sheet's, at most 31 characters),
    each a header row and the rows, every cell text as in the run workbook but for
    integer columns."""
    names = [name[:31] for name in tables]
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as book:
        for part, text in _package(len(names), names).items():
            book.writestr(part, text)
        for n, frame in enumerate(tables.values(), start=1):
            with book.open(f"xl/worksheets/sheet{n}.xml", "w", force_zip64=True) as stream:
                sheet = _Sheet(stream)
                sheet.open()
                sheet.line(*frame.columns, style=HEADER)
                numbers = [c for c in frame.columns if pd.api.types.is_integer_dtype(frame[c])]
                sheet.rows(frame, numbers)
                sheet.close()
