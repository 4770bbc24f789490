"""The report's inline SVG charts and the Excel workbook."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from pathlib import Path

from openpyxl import load_workbook
from sqlalchemy import insert

from vehiclehub.config import Settings
from vehiclehub.publish.report import _nice_top, svg_lines, svg_sparkline, svg_stacked_bars
from vehiclehub.publish.workbook import write_workbook
from vehiclehub.store import connect
from vehiclehub.store.schema import findings, intake_files, rejections, verdicts

D = date(2025, 11, 3)
SVG = "{http://www.w3.org/2000/svg}"


def test_charts_are_wellformed_svg_with_a_mark_per_value() -> None:
    dates = ["2025-11-01", "2025-11-02", "2025-11-03"]
    bars = ET.fromstring(
        str(
            svg_stacked_bars(
                "findings <&>", dates, {"error": [1, 0, 2], "warning": [0, 3, 1]}, {"error": "#f00"}
            )
        )
    )
    assert bars.find(f"{SVG}title").text == "findings <&>"
    assert len(bars.findall(f"{SVG}rect")) == 4 + 2  # non-zero bars and legend swatches
    lines = ET.fromstring(str(svg_lines("rows", dates, {"customs/declarations": [5, 0, 10]})))
    assert len(lines.findall(f"{SVG}polyline")) == 1
    assert len(lines.findall(f"{SVG}circle")) == 3
    spark = ET.fromstring(str(svg_sparkline([0, 2, 4])))
    assert len(spark.findall(f"{SVG}rect")) == 2
    ET.fromstring(str(svg_lines("empty", ["2025-11-03"], {})))
    assert [_nice_top(v) for v in (0, 3, 7, 11, 240, 1001)] == [1, 4, 8, 20, 400, 2000]


def test_the_workbook_has_a_sheet_per_agency_and_keeps_ids_as_text(
    settings: Settings, tmp_path: Path
) -> None:
    decl_no, uscc = "530420250040970934", "91120000MA05K0N43C"
    engine = connect(settings.database_url)
    with engine.begin() as conn:
        file_id = conn.execute(
            insert(intake_files).values(
                agency="customs",
                feed="declarations",
                name="customs_declarations_20251103_001.csv",
                run_date=D,
                status="loaded",
                taken_at=datetime.now(UTC),
            )
        ).inserted_primary_key[0]
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
                related="",
                detail="no licence",
                first_seen=D,
                last_seen=D,
            )
        )
        conn.execute(
            insert(verdicts).values(
                run_date=D,
                report="export_verification",
                record_key="E1",
                verdict="verified",
                row_json=json.dumps(
                    {
                        "event_id": "E1",
                        "vin": "LSVAM4187C2184847",
                        "verdict": "verified",
                        "decl_no": decl_no,
                        "exported_at": "2025-10-12",
                        "rule_ids": "",
                    }
                ),
            )
        )
    target = tmp_path / "book.xlsx"
    feeds = {
        "customs": [
            {
                "feed": "declarations",
                "state": "received",
                "file_count": 1,
                "rows": 10,
                "loaded": 9,
                "rejected_rows": 1,
                "critical_failed": 0,
                "warnings_failed": 1,
            }
        ]
    }
    with engine.connect() as conn:
        write_workbook(conn, D, target, feeds)
    book = load_workbook(target)
    assert book.sheetnames == ["commerce", "police", "customs", "tax"]
    customs = [[c for c in row] for row in book["customs"].iter_rows()]
    values = [[c.value for c in row] for row in customs]
    assert ["declarations", "received", 1, 10, 9, 1, 0, 1] in values
    key_cell = next(c for row in customs for c in row if c.value == f"{decl_no}/1")
    uscc_cell = next(c for row in customs for c in row if c.value == uscc)
    line_cell = next(
        row[1] for row in customs if row[0].value == "customs_declarations_20251103_001.csv"
    )
    police = [c for row in book["police"].iter_rows() for c in row]
    decl_cell = next(c for c in police if c.value == decl_no)
    for cell in (key_cell, uscc_cell, decl_cell):
        assert (cell.data_type, cell.number_format, type(cell.value)) == ("s", "@", str)
    assert (line_cell.value, line_cell.data_type) == (7, "n")
    finding_row = next(row for row in values if row[0] == "LIC-001")
    assert finding_row[-1] == "new"
