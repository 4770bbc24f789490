"""Excel workbooks written as SpreadsheetML, a chunk of rows at a time.

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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import IO

import pandas as pd

#: Excel's rows per sheet.
SHEET_ROWS = 1_048_576
#: Rows turned into XML at a time.
CHUNK_ROWS = 20_000
#: Characters an Excel cell holds; a longer value (a garbled rejected field) is cut, marked.
CELL_CHARS = 32_767
CUT = " … [cut: longer than an Excel cell holds]"
#: Columns holding dates (ISO text in the store and the drops), written as Excel dates.
DATE_COLUMNS = frozenset({"first_seen", "exported_at"})
#: Excel's day 0 (its serial 1 is 1900-01-01, counting the 1900 leap day Lotus invented).
EXCEL_EPOCH = pd.Timestamp("1899-12-30")
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
class Sheet:
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
        self.table_in_parts(list(frame.columns), iter([frame]), numbers)

    def table_in_parts(
        self, columns: Sequence[str], parts: Iterator[pd.DataFrame], numbers: Sequence[str] = ()
    ) -> int:
        """The whole sheet as one table of ``columns`` whose rows come a part at a time, each
        written as it comes: header row frozen, autofilter over every row. Returns the rows
        written under the header."""
        self.open(columns, frozen=True)
        self.line(*columns, style=HEADER)
        for part in parts:
            if list(part.columns) != list(columns):
                raise ValueError(f"a part of columns {list(part.columns)}, not {list(columns)}")
            self.rows(part, numbers)
        self.filtered = (_letter(len(columns) - 1), max(self.row, 2))
        self.close()
        return self.row - 1


def package_parts(names: Sequence[str], filters: Mapping[int, str]) -> dict[str, str]:
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


def write_tables(target: IO[bytes], tables: Mapping[str, pd.DataFrame]) -> None:
    """A workbook of one sheet per table (its name the sheet's, at most 31 characters),
    each a frozen, filtered header row and the rows, every cell text as in the run
    workbook but for integer columns and the :data:`DATE_COLUMNS`."""
    names = [name[:31] for name in tables]
    filters: dict[int, str] = {}
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as book:
        for n, frame in enumerate(tables.values(), start=1):
            with book.open(f"xl/worksheets/sheet{n}.xml", "w", force_zip64=True) as stream:
                sheet = Sheet(stream)
                numbers = [c for c in frame.columns if pd.api.types.is_integer_dtype(frame[c])]
                sheet.table(frame, numbers)
                filters[n - 1] = sheet.filter_ref(absolute=True)
        for part, text in package_parts(names, filters).items():
            book.writestr(part, text)
