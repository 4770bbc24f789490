"""The run workbook for operators who work in Excel: ``reports/<date>/vehiclehub_<date>.xlsx``.

One sheet per agency, its sections one under the other: the agency's feeds (state,
files, rows, failed expectations), its findings (every finding on or citing one of
its records, with new or still open), the rejections of its files taken by the run,
and its verdicts (police, tax). Excel turns 18-digit ids into ``5.30E+17``: every
identifier is written as a text cell with the text number format ``@``, so it stays
exactly as sent; only counts (line numbers) are numbers.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font, PatternFill
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from sqlalchemy import Connection, select

from vehiclehub.config import AGENCIES
from vehiclehub.publish.drops import REJECTIONS_COLUMNS, rejections_for
from vehiclehub.store.schema import findings, verdicts

#: Rows shown per section; the drops carry all of them.
MAX_ROWS = 100_000
TEXT = "@"
#: The verdict reports of each agency (ICD §4).
VERDICT_REPORTS = {"police": ["export_verification"], "tax": ["refund_verification"]}
FINDING_COLUMNS = [
    "rule_id", "severity", "vin", "record_key", "related", "detail", "first_seen", "status"
]  # fmt: skip
FEED_COLUMNS = [
    "feed", "state", "files", "rows", "loaded", "rejected rows", "critical failed",
    "warnings failed",
]  # fmt: skip
_BOLD = Font(bold=True)
_TITLE = Font(bold=True, size=13)
_HEAD_FILL = PatternFill("solid", fgColor="DDE3EA")


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return None
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


class _Sheet:
    """A write-only sheet filled top to bottom, section by section."""

    def __init__(self, sheet: WriteOnlyWorksheet) -> None:
        self.sheet = sheet

    def cell(self, value: Any, *, number: bool = False, font: Font | None = None) -> WriteOnlyCell:
        if number and isinstance(value, int | float | np.integer | np.floating) and value == value:
            cell = WriteOnlyCell(self.sheet, value=int(value))
        else:
            cell = WriteOnlyCell(self.sheet, value=_text(value))
            cell.number_format = TEXT
            cell.data_type = "s"
        if font is not None:
            cell.font = font
        return cell

    def title(self, text: str) -> None:
        self.sheet.append([self.cell(text, font=_TITLE)])

    def section(
        self,
        heading: str,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        numbers: Iterable[str] = (),
        total: int | None = None,
        empty: str = "none",
    ) -> None:
        """A heading, a header row and the rows (as text, but for the ``numbers`` columns)."""
        self.sheet.append([])
        self.sheet.append([self.cell(heading, font=_BOLD)])
        header = []
        for name in columns:
            cell = self.cell(name, font=_BOLD)
            cell.fill = _HEAD_FILL
            header.append(cell)
        self.sheet.append(header)
        numeric = {columns.index(c) for c in numbers if c in columns}
        shown = 0
        for row in rows:
            if shown == MAX_ROWS:
                break
            self.sheet.append([self.cell(v, number=i in numeric) for i, v in enumerate(row)])
            shown += 1
        if shown == 0:
            self.sheet.append([self.cell(empty)])
        if total is not None and total > shown:
            self.sheet.append([self.cell(f"… {total - shown} more rows in the drops")])


def agency_findings(conn: Connection, agency: str, day: date) -> pd.DataFrame:
    """Findings holding at the end of the run on, or citing, one of the agency's records."""
    result = conn.execute(
        select(
            findings.c.rule_id,
            findings.c.severity,
            findings.c.vin,
            findings.c.agency,
            findings.c.record_key,
            findings.c.related,
            findings.c.detail,
            findings.c.first_seen,
        )
        .where(
            findings.c.first_seen <= day,
            findings.c.last_seen >= day,
            (findings.c.resolved_on.is_(None)) | (findings.c.resolved_on > day),
        )
        .order_by(findings.c.rule_id, findings.c.record_key)
    )
    found = pd.DataFrame(result.all(), columns=list(result.keys()))
    if found.empty:
        return pd.DataFrame(columns=FINDING_COLUMNS)
    cites = found["related"].fillna("").str.contains(f"(?:^|;){agency}:", regex=True)
    mine = found[(found["agency"] == agency) | cites].copy()
    mine["status"] = mine["first_seen"].map(lambda d: "new" if d == day else "still open")
    return mine[FINDING_COLUMNS]


def day_verdicts(conn: Connection, report: str, day: date) -> pd.DataFrame:
    """Every verdict of the day's snapshot for a report (the drop has only the changes)."""
    lines = [
        row
        for (row,) in conn.execute(
            select(verdicts.c.row_json)
            .where(verdicts.c.report == report, verdicts.c.run_date == day)
            .order_by(verdicts.c.record_key)
        )
    ]
    if not lines:
        return pd.DataFrame()
    return pd.read_json(io.StringIO("\n".join(lines)), lines=True, dtype=False, convert_dates=False)


def _rows(frame: pd.DataFrame) -> Iterable[list[Any]]:
    for values in frame.itertuples(index=False, name=None):
        yield list(values)


def write_workbook(
    conn: Connection, day: date, target: Path, feeds: dict[str, list[dict[str, Any]]]
) -> Path:
    """Write the run's workbook; ``feeds`` are the report's per-agency feed rows."""
    book = Workbook(write_only=True)
    for agency in AGENCIES:
        ws = book.create_sheet(agency)
        for letter, width in zip("ABCDEFGH", (24, 12, 22, 36, 40, 60, 12, 12), strict=True):
            ws.column_dimensions[letter].width = width
        sheet = _Sheet(ws)
        sheet.title(f"{agency} — vehiclehub run of {day.isoformat()}")
        sheet.section(
            "Feeds",
            FEED_COLUMNS,
            (
                [
                    f["feed"],
                    f["state"],
                    f["file_count"],
                    f["rows"],
                    f["loaded"],
                    f["rejected_rows"],
                    f["critical_failed"],
                    f["warnings_failed"],
                ]
                for f in feeds.get(agency, [])
            ),
            numbers=FEED_COLUMNS[2:],
        )
        found = agency_findings(conn, agency, day)
        sheet.section("Findings", FINDING_COLUMNS, _rows(found), total=len(found))
        rejected = rejections_for(conn, agency, day)
        sheet.section(
            "Rejections",
            REJECTIONS_COLUMNS,
            _rows(rejected[REJECTIONS_COLUMNS]),
            numbers=["line"],
            total=len(rejected),
        )
        reports = VERDICT_REPORTS.get(agency, [])
        if not reports:
            sheet.section("Verdicts", ["report"], [], empty="no verdict reports for this agency")
        for report in reports:
            frame = day_verdicts(conn, report, day)
            sheet.section(
                f"Verdicts — {report}",
                list(frame.columns) or ["verdict"],
                _rows(frame),
                total=len(frame),
            )
    target.parent.mkdir(parents=True, exist_ok=True)
    book.save(target)
    return target
