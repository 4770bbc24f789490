"""The report's per-rule and rejection lists: counted by the store, capped, and saying so."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import insert
from tests.factories import loaded_file

from vehiclehub.config import Settings
from vehiclehub.publish.report import tree as report
from vehiclehub.publish.report import write_report
from vehiclehub.store import connect
from vehiclehub.store.schema import findings, rejections

D0, D = date(2025, 11, 2), date(2025, 11, 3)


def _finding(n: int, first_seen: date, **kw: object) -> dict[str, object]:
    return {
        "identity": f"f{n}",
        "rule_id": "EXP-001",
        "severity": "error",
        "vin": f"LSVAM4187C218{n:04d}",
        "agency": "police",
        "record_key": f"E{n:02d}",
        "related": "",
        "detail": "no export",
        "first_seen": first_seen,
        "last_seen": D,
        "resolved_on": None,
        **kw,
    }


def test_long_lists_show_their_first_rows_and_say_how_many_there_are(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report, "SHOWN_PER_RULE", 2)
    monkeypatch.setattr(report, "SHOWN_REJECTIONS", 3)
    engine = connect(settings.database_url)
    with engine.begin() as conn:
        conn.execute(
            insert(findings),
            [
                *(_finding(n, D) for n in range(3)),
                *(_finding(n, D0) for n in range(3, 5)),
                _finding(5, D0, last_seen=D0, resolved_on=D),  # resolved by this run
                _finding(6, D, rule_id="EXP-002"),
            ],
        )
        file_id = loaded_file(conn, "customs", "declarations", D)
        conn.execute(
            insert(rejections),
            [
                {
                    "file_id": file_id,
                    "agency": "customs",
                    "file": "customs_declarations_20251103_001.csv",
                    "line": line,
                    "column": "vin",
                    "value": f"BAD{line}",
                    "error": "not a VIN",
                }
                for line in range(2, 9)
            ],
        )
    html = write_report(engine, settings, D, {}).read_text(encoding="utf-8")
    with engine.connect() as conn:
        gathered = report.gather(conn, settings, D)
    (exp1,) = [r for r in gathered.rules if r.id == "EXP-001"]
    assert (exp1.count, exp1.vehicles, exp1.new, exp1.still_open) == (5, 5, 3, 2)
    assert exp1.resolved == 1
    assert [f.record_key for f in exp1.rows] == ["E00", "E01"]
    (exp2,) = [r for r in gathered.rules if r.id == "EXP-002"]
    assert (exp2.count, exp2.more) == (1, 0)
    assert gathered.totals.findings == 6
    assert "First 2 of 5 shown; the full list is in the findings drops and the workbook." in html
    assert html.count("First 2 of") == 1  # EXP-002 lists its one finding in full
    assert "Rejected rows (first 3 of 7 shown" in html
    assert "BAD4" in html and "BAD5" not in html
