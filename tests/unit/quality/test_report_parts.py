"""The report's inline SVG charts and the Excel workbook."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from openpyxl import load_workbook
from sqlalchemy import Connection, Engine, insert
from tests.factories import loaded_file

from vehiclehub import xlsx
from vehiclehub.config import Settings
from vehiclehub.icd.drops import EXPORT_VERIFICATION_COLUMNS
from vehiclehub.publish import drops
from vehiclehub.publish.drops import findings_chunks
from vehiclehub.publish.report import workbook
from vehiclehub.publish.report.charts import (
    _nice_top,
    svg_feed_volumes,
    svg_new_resolved,
    svg_sparkline,
)
from vehiclehub.publish.report.history import feed_volumes
from vehiclehub.publish.report.model import FeedRow
from vehiclehub.publish.report.workbook import write_workbook
from vehiclehub.review.cases import counted_decisions
from vehiclehub.store import connect
from vehiclehub.store.schema import findings, rejections
from vehiclehub.store.verdicts import store_verdicts

D = date(2025, 11, 3)
SVG = "{http://www.w3.org/2000/svg}"


def test_charts_are_wellformed_svg_with_a_mark_per_value() -> None:
    dates = ["2025-11-01", "2025-11-02", "2025-11-03"]
    news = ET.fromstring(str(svg_new_resolved("findings <&>", dates, [40, 0, 2], [0, 3, 0])))
    assert news.find(f"{SVG}title").text == "findings <&>"
    assert len(news.findall(f"{SVG}rect")) == 3 + 2  # non-zero bars and legend swatches
    assert [r.find(f"{SVG}title").text for r in news.findall(f"{SVG}rect")[:3]] == [
        "2025-11-01: 40 new",
        "2025-11-02: 3 resolved",
        "2025-11-03: 2 new",
    ]
    spark = ET.fromstring(str(svg_sparkline([0, 2, 4])))
    assert len(spark.findall(f"{SVG}rect")) == 2
    assert [_nice_top(v) for v in (0, 3, 7, 11, 240, 1001)] == [1, 4, 8, 20, 400, 2000]


def _volumes(runs: int) -> list[str]:
    """The rows chart's text over ``runs`` runs: a first load of 100,000, then ~1,000 a night."""
    dates = [f"2025-11-{d:02d}" for d in range(1, runs + 1)]
    nightly = [100_000, *[1_010] * (runs - 2), 1_000][:runs]
    history = pd.DataFrame([nightly, [5] * runs], index=["police/events", "tax/refunds"])
    history.columns = dates
    chart = ET.fromstring(str(svg_feed_volumes("rows", *feed_volumes(history))))
    return [t.text or "" for t in chart.iter(f"{SVG}text")]


@pytest.mark.parametrize("runs", [1, 3, 90])
def test_the_rows_chart_tells_tonight_from_the_usual_whatever_the_history(runs: int) -> None:
    said = _volumes(runs)
    if runs == 1:
        assert "100,000 (no earlier run)" in said and "5 (no earlier run)" in said
    elif runs == 3:
        # The first night's load does not hide tonight's: both numbers are written out.
        assert "1,000 (usual 50,505, -98%)" in said
    else:
        assert "1,000 (usual 1,010, -1%)" in said
    assert "5 (usual 5, +0%)" in said or runs == 1
    assert {"1", "10", "100", "1,000", "10,000"} <= set(said)  # a logarithmic scale


def test_the_rows_chart_without_rows_says_so() -> None:
    chart = ET.fromstring(str(svg_feed_volumes("rows", [], [], [])))
    assert "no rows received in these runs" in [t.text for t in chart.iter(f"{SVG}text")]


def _police_verdict(event_id: str, verdict: str, decl_no: str = "530420250040970934") -> dict:
    row = {
        "event_id": event_id,
        "vin": "LSVAM4187C2184847",
        "verdict": verdict,
        "decl_no": decl_no,
        "exported_at": "2025-10-12",
        "rule_ids": "EXP-002" if verdict == "before_export" else "",
    }
    return {"record_key": event_id, **row}


def _store_police_verdicts(conn: Connection, rows: list[dict]) -> None:
    frame = pd.DataFrame(rows)
    store_verdicts(conn, D, "export_verification", [frame], EXPORT_VERIFICATION_COLUMNS)


def _open_exp001_findings(engine: Engine, first_seen: list[date]) -> None:
    """EXP-001 findings on the police events E0, E1, ..., first seen on the dates given,
    all seen on ``D``."""
    rows = [
        {
            "identity": f"i{n}",
            "rule_id": "EXP-001",
            "severity": "error",
            "vin": None,
            "agency": "police",
            "record_key": f"E{n}",
            "related": "",
            "detail": "no export",
            "first_seen": day,
            "last_seen": D,
        }
        for n, day in enumerate(first_seen)
    ]
    with engine.begin() as conn:
        conn.execute(insert(findings), rows)


def _rows(path: Path, sheet: str) -> list[list[Any]]:
    """A sheet's rows as values, each padded to ten columns."""
    book = load_workbook(path, read_only=True)
    return [[*row, *[None] * (10 - len(row))] for row in book[sheet].iter_rows(values_only=True)]


def _first_record(sheet: Any) -> dict[str, Any]:
    """A table sheet's first row below the header, its cells by column name."""
    return {h.value: c for h, c in zip(sheet[1], sheet[2], strict=True)}


TABLES = ["feeds", "findings", "rejections", "export_verification", "refund_verification"]


def test_the_workbook_has_a_summary_then_a_filtered_table_per_section(
    settings: Settings, tmp_path: Path
) -> None:
    decl_no, uscc = "530420250040970934", "91120000MA05K0N43C"
    engine = connect(settings.database_url)
    with engine.begin() as conn:
        file_id = loaded_file(conn, "customs", "declarations", D)
        conn.execute(
            insert(rejections).values(
                file_id=file_id,
                agency="customs",
                file="customs_declarations_20251103_001.csv",
                line=7,
                column="uscc",
                value=uscc,
                error="bad check character",
            )
        )
        conn.execute(
            insert(findings).values(
                identity="x",
                rule_id="LIC-001",
                severity="error",
                vin="LSVAM4187C2184847",
                agency="customs",
                record_key=f"{decl_no}/1",
                related="commerce:L2025000001/LSVAM4187C2184847",
                detail="no licence",
                first_seen=D,
                last_seen=D,
            )
        )
        _store_police_verdicts(conn, [_police_verdict("E1", "before_export", decl_no)])
    target = tmp_path / "book.xlsx"
    feeds = {
        "customs": [
            FeedRow(
                feed="declarations",
                state="received",
                state_detail=None,
                file_count=1,
                files_loaded=1,
                files_rejected=0,
                files_duplicate=0,
                rows=10,
                loaded=9,
                ignored=0,
                rejected_rows=1,
                critical_failed=0,
                warnings_failed=1,
            )
        ]
    }
    with engine.connect() as conn:
        write_workbook(conn, D, target, feeds)
    book = load_workbook(target)
    assert book.sheetnames == ["summary", *TABLES]
    for name in TABLES:
        sheet = book[name]
        assert sheet.freeze_panes == "A2", name
        last = sheet.cell(1, sheet.max_column).column_letter
        assert sheet.auto_filter.ref == f"A1:{last}{max(sheet.max_row, 2)}", name
        assert all(c.value for c in sheet[1]), name  # a header over every column
    assert [c.value for c in book["feeds"][2]] == [
        "customs", "declarations", "received", 1, 10, 9, 1, 0, 1
    ]  # fmt: skip
    finding = _first_record(book["findings"])
    assert finding["first_seen"].value == datetime(2025, 11, 3)  # a date, shown as one
    assert finding["first_seen"].number_format == "yyyy-mm-dd"
    assert (finding["status"].value, finding["agencies"].value) == ("new", "commerce; customs")
    rejection = {
        h.value: c for h, c in zip(book["rejections"][1], book["rejections"][2], strict=True)
    }
    assert (rejection["line"].value, rejection["line"].data_type) == (7, "n")
    verdict = _first_record(book["export_verification"])
    assert verdict["exported_at"].value == datetime(2025, 10, 12)
    for cell in (finding["record_key"], rejection["value"], verdict["decl_no"]):
        assert (cell.data_type, cell.number_format, type(cell.value)) == ("s", "@", str)
    assert finding["record_key"].value == f"{decl_no}/1" and verdict["decl_no"].value == decl_no
    summary = _rows(target, "summary")
    assert summary[1][:2] == ["business date", datetime(2025, 11, 3)]
    #            agency, feeds expected, received, findings, rejections
    assert ["customs", 1, 1, 1, 1] in [r[:5] for r in summary]
    assert ["commerce", 0, 0, 1, 0] in [r[:5] for r in summary]  # cited by the finding
    assert ["export_verification", "before_export", 1] in [r[:3] for r in summary]


def test_the_workbook_lists_verdicts_needing_action_and_counts_verified_ones(
    settings: Settings, tmp_path: Path
) -> None:
    engine = connect(settings.database_url)
    with engine.begin() as conn:
        _store_police_verdicts(
            conn,
            [
                *(_police_verdict(f"E{n}", "verified") for n in range(5)),
                _police_verdict("E7", "no_export"),
                _police_verdict("E8", "before_export"),
            ],
        )
    target = tmp_path / "book.xlsx"
    with engine.connect() as conn:
        assert write_workbook(conn, D, target, {}) == []
    summary = [r[:3] for r in _rows(target, "summary")]
    assert ["export_verification", "verified", 5] in summary
    assert ["export_verification", "no_export", 1] in summary
    listed = [r[0] for r in _rows(target, "export_verification")[1:]]
    assert listed == ["E7", "E8"]  # the verified ones are counted, not listed
    sheets = {r[0]: r[2:4] for r in _rows(target, "summary")}
    assert sheets["export_verification"] == [2, 2]  # rows listed, rows in all


def test_a_section_longer_than_its_limit_says_what_it_leaves_out(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workbook, "MAX_ROWS", 3)
    monkeypatch.setattr(xlsx, "CHUNK_ROWS", 2)
    monkeypatch.setattr(drops, "CHUNK_ROWS", 2)  # the third listed is in the second read
    engine = connect(settings.database_url)
    _open_exp001_findings(engine, [D] * 5)
    target = tmp_path / "book.xlsx"
    with engine.connect() as conn:
        assert write_workbook(conn, D, target, {}) == ["findings"]
    rows = _rows(target, "findings")
    assert [r[3] for r in rows[1:]] == ["E0", "E1", "E2"]
    assert rows[1][2] is None  # a missing VIN is an empty cell
    summary = _rows(target, "summary")
    assert ["police", 0, 0, 5, 0] in [r[:5] for r in summary]  # all five counted
    note = next(r[0] for r in summary if str(r[0]).startswith("findings lists its first 3 of 5"))
    assert "findings drop lists every one of its own" in note


def test_the_findings_sheet_lists_the_findings_the_publish_read(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(drops, "CHUNK_ROWS", 1)
    engine = connect(settings.database_url)
    _open_exp001_findings(engine, [date(2025, 11, 1), D])
    read, given, fewer = tmp_path / "read.xlsx", tmp_path / "given.xlsx", tmp_path / "fewer.xlsx"
    with engine.connect() as conn:
        chunks = [c.held for c in findings_chunks(conn, D, counted_decisions(conn, D))]
        assert [len(c) for c in chunks] == [1, 1]
        with workbook.FindingsSheet(D) as sheet, workbook.FindingsSheet(D) as first:
            for chunk in chunks:
                sheet.add(chunk)
            first.add(chunks[0])
            write_workbook(conn, D, read, {})
            write_workbook(conn, D, given, {}, findings=sheet.section())
            write_workbook(conn, D, fewer, {}, findings=first.section())
    rows = _rows(given, "findings")
    assert rows == _rows(read, "findings")
    assert [(r[3], r[6], r[7]) for r in rows[1:]] == [
        ("E0", datetime(2025, 11, 1), "still open"),
        ("E1", datetime(2025, 11, 3), "new"),
    ]
    # Near miss: a finding the publish did not read is not listed.
    assert [r[3] for r in _rows(fewer, "findings")[1:]] == ["E0"]


def test_workbook_text_is_escaped_for_xml_and_excel(settings: Settings, tmp_path: Path) -> None:
    engine = connect(settings.database_url)
    odd = 'a<b>&"c"\x01 _x0041_ 比亚迪 '
    long = "9" * 40_000
    with engine.begin() as conn:
        file_id = loaded_file(conn, "tax", "refunds", D)
        conn.execute(
            insert(rejections),
            [
                {
                    "file_id": file_id,
                    "agency": "tax",
                    "file": "tax_refunds_20251103_001.csv",
                    "line": line,
                    "column": "vin",
                    "value": value,
                    "error": "not a VIN",
                }
                for line, value in ((3, odd), (4, long))
            ],
        )
    target = tmp_path / "book.xlsx"
    with engine.connect() as conn:
        write_workbook(conn, D, target, {})
    with zipfile.ZipFile(target) as book:
        for name in book.namelist():
            if name.endswith((".xml", ".rels")):
                ET.fromstring(book.read(name))  # every part is well-formed XML
    row, cut = [r[1:] for r in _rows(target, "rejections") if r[0] == "tax"]
    # SpreadsheetML's own escapes for a control character and a literal "_xHHHH_"
    assert row[:4] == [
        "tax_refunds_20251103_001.csv",
        3,
        "vin",
        'a<b>&"c"_x0001_ _x005F_x0041_ 比亚迪 ',
    ]
    # A value longer than an Excel cell holds is cut, and says so.
    assert len(cut[3]) == xlsx.CELL_CHARS and cut[3].endswith(xlsx.CUT)
    assert cut[3].startswith("9" * 30_000)


def test_a_sheet_never_overflows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xlsx, "SHEET_ROWS", 4)
    sheet = xlsx.Sheet(io.BytesIO())
    sheet.rows(pd.DataFrame({"a": ["1", "2", "3", "4"]}))
    with pytest.raises(OverflowError):
        sheet.line("one more")


def test_a_table_in_parts_is_the_table_of_its_rows_together() -> None:
    frame = pd.DataFrame({"a": ["1", "2", "3"], "n": [4, 5, 6]})
    whole, in_parts = io.BytesIO(), io.BytesIO()
    xlsx.Sheet(whole).table(frame, ["n"])
    written = xlsx.Sheet(in_parts).table_in_parts(
        ["a", "n"], iter([frame.head(2), frame.tail(1)]), ["n"]
    )
    assert written == 3 and in_parts.getvalue() == whole.getvalue()
    # Near miss: a part whose columns are not the table's is refused, not misplaced.
    with pytest.raises(ValueError, match="not"):
        xlsx.Sheet(io.BytesIO()).table_in_parts(["n", "a"], iter([frame]))


def test_at_most_stops_reading_once_it_has_the_rows() -> None:
    read, closed = [], []

    def parts() -> Iterator[pd.DataFrame]:
        try:
            for n in range(4):
                read.append(n)
                yield pd.DataFrame({"n": [n, n]})
        finally:
            closed.append(True)

    taken = list(workbook.at_most(parts(), 3))
    assert [len(p) for p in taken] == [2, 1] and read == [0, 1] and closed == [True]
    assert [len(p) for p in workbook.at_most(parts(), 8)] == [2, 2, 2, 2]


def _rejected(conn: Connection, agency: str, feed: str, lines: int) -> None:
    file_id = loaded_file(conn, agency, feed, D)
    name = f"{agency}_{feed}_20251103_001.csv"
    conn.execute(
        insert(rejections),
        [
            {
                "file_id": file_id,
                "agency": agency,
                "file": name,
                "line": line,
                "column": "vin",
                "value": "x",
                "error": "not a VIN",
            }
            for line in range(2, 2 + lines)
        ],
    )


@pytest.mark.parametrize("limit", [3, 4])
def test_the_rejections_sheet_lists_agencies_in_turn_up_to_its_limit_and_counts_all(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    monkeypatch.setattr(workbook, "MAX_ROWS", limit)
    monkeypatch.setattr(drops, "CHUNK_ROWS", 1)  # read a row at a time
    engine = connect(settings.database_url)
    with engine.begin() as conn:
        _rejected(conn, "customs", "declarations", 2)
        _rejected(conn, "tax", "refunds", 2)
    target = tmp_path / "book.xlsx"
    with engine.connect() as conn:
        truncated = write_workbook(conn, D, target, {})
    listed = [(r[0], r[2]) for r in _rows(target, "rejections")[1:]]
    assert listed == [("customs", 2), ("customs", 3), ("tax", 2), ("tax", 3)][:limit]
    summary = _rows(target, "summary")
    assert ["customs", 0, 0, 0, 2] in [r[:5] for r in summary]
    assert ["tax", 0, 0, 0, 2] in [r[:5] for r in summary]
    assert {r[0]: r[2:4] for r in summary}["rejections"] == [limit, 4]
    # Near miss: at a limit of four, every rejection is listed and nothing is said cut.
    assert truncated == (["rejections"] if limit == 3 else [])


def test_the_findings_sheet_keeps_what_it_lists_on_disk_until_closed() -> None:
    found = pd.DataFrame(
        {
            "id": [1, 2], "rule_id": ["EXP-001"] * 2, "severity": ["error"] * 2,
            "vin": [None, None], "agency": ["police"] * 2, "record_key": ["E0", "E1"],
            "related": ["", ""], "detail": ["no export"] * 2, "first_seen": ["2025-11-03"] * 2,
        }
    )  # fmt: skip
    with workbook.FindingsSheet(D) as sheet:
        sheet.add(found.head(1))
        sheet.add(found.tail(1))
        section = sheet.section()
        assert [p["record_key"].tolist() for p in section.parts()] == [["E0"], ["E1"]]
        # read again, the same rows
        assert sum(len(p) for p in section.parts()) == 2 == section.total
    with pytest.raises(ValueError):  # closed: the rows are gone with the file
        next(section.parts())
