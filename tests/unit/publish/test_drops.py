"""Drops read and written a chunk at a time give the rows and bytes of one whole pass."""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Connection, insert

from vehiclehub.config import Settings
from vehiclehub.icd.drops import REPORT_COLUMNS, DropInvalid
from vehiclehub.publish import drops
from vehiclehub.publish.drops import (
    Drop,
    Seal,
    changed_verdicts,
    findings_for,
    open_findings,
    render_csv,
    write_drop,
    write_findings_data,
)
from vehiclehub.publish.report.workbook import FindingsSheet
from vehiclehub.review.cases import review_columns
from vehiclehub.signing import hub_signing_key
from vehiclehub.store import connect
from vehiclehub.store.exchange_log import EMPTY_HEAD
from vehiclehub.store.schema import findings
from vehiclehub.store.verdicts import record_run, store_verdicts

D0, D = date(2025, 11, 2), date(2025, 11, 3)


def _verdict(event_id: str, verdict: str) -> dict[str, object]:
    return {
        "record_key": event_id,
        "event_id": None if event_id.startswith("item:") else event_id,
        "vin": "LSVAM4187C2184847",
        "verdict": verdict,
        "decl_no": "020220240000000085",
        "exported_at": "2025-10-12",
        "rule_ids": "EXP-003" if verdict == "overdue" else "",
    }


def _run(conn: Connection, day: date, rows: list[dict[str, object]]) -> None:
    store_verdicts(conn, day, REPORT, [pd.DataFrame(rows)], REPORT_COLUMNS[REPORT])
    record_run(conn, day)


REPORT = "export_verification"


def test_verdicts_read_in_batches_keep_order_nulls_and_only_the_changes(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(drops, "CHUNK_ROWS", 2)
    engine = connect(settings.database_url)
    with engine.begin() as conn:
        _run(
            conn,
            D0,
            [_verdict("E1", "verified"), _verdict("E2", "no_export"), _verdict("E3", "verified")],
        )
        _run(
            conn,
            D,
            [
                _verdict("E1", "verified"),  # unchanged: not in the drop
                _verdict("E2", "verified"),  # changed
                _verdict("E3", "verified"),  # unchanged
                _verdict("E4", "no_export"),  # new
                _verdict("E5", "before_export"),  # new
                _verdict("item:530420250040970934/1", "overdue"),  # new, no event
            ],
        )
    with engine.connect() as conn:
        first = changed_verdicts(conn, REPORT, D0)
        frame = changed_verdicts(conn, REPORT, D)
    assert first["event_id"].tolist() == ["E1", "E2", "E3"]  # the first drop carries all
    assert list(frame.columns) == REPORT_COLUMNS[REPORT]
    assert frame["event_id"].fillna("").tolist() == ["E2", "E4", "E5", ""]
    assert frame["verdict"].tolist() == ["verified", "no_export", "before_export", "overdue"]
    assert frame["decl_no"].tolist() == ["020220240000000085"] * 4  # text, zeros kept
    assert frame["rule_ids"].tolist() == ["", "", "", "EXP-003"]


def test_a_drop_written_in_chunks_is_the_csv_of_the_whole_frame(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = pd.DataFrame(
        {
            "uscc": ["91120000MA05K0N43C", "0012", "x\ny", 'a,"b"', "比亚迪"],
            "year": [2024, 2024, 2025, 2025, 2025],
            "vehicles": [50, 3, 60, 2, 51],
            "eligible": [True, False, True, False, True],
            "amount_cny": [50000, 0, 60000, 0, 51000],
        }
    )
    whole = frame.assign(eligible=frame["eligible"].map({True: "true", False: "false"}))
    expected = whole.to_csv(index=False, lineterminator="\r\n").encode("utf-8")
    monkeypatch.setattr(drops, "CHUNK_ROWS", 2)
    seal = Seal([], hub_signing_key(settings))
    written = write_drop(
        Drop("commerce", "export_subsidy", D, lambda: iter([frame])),
        tmp_path,
        "Asia/Shanghai",
        seal,
        EMPTY_HEAD,
    )
    assert written.data.read_bytes() == expected
    manifest = json.loads(written.manifest.read_text())
    assert manifest["rows"] == written.rows == 5
    assert manifest["sha256"] == written.sha256 == hashlib.sha256(expected).hexdigest()
    # Read from the store as parts of any size, empty ones too: the same file.
    in_parts = Drop(
        "commerce",
        "export_subsidy",
        D,
        lambda: iter([frame.iloc[:3], frame.iloc[3:3], frame.iloc[3:]]),
    )
    again = write_drop(in_parts, tmp_path / "again", "Asia/Shanghai", seal, EMPTY_HEAD)
    assert again.data.read_bytes() == expected and again.rows == 5
    for no_rows in (frame.iloc[:0], None):
        parts = [] if no_rows is None else [no_rows]
        empty = write_drop(
            Drop("commerce", "export_subsidy", D + timedelta(days=1), lambda p=parts: iter(p)),
            tmp_path / str(len(parts)),
            "Asia/Shanghai",
            seal,
            EMPTY_HEAD,
        )
        assert empty.data.read_bytes() == b"uscc,year,vehicles,eligible,amount_cny\r\n"  # header
        assert empty.rows == 0


def test_a_drop_whose_later_part_breaks_the_schema_is_not_written(
    tmp_path: Path, settings: Settings
) -> None:
    good = pd.DataFrame(
        {"uscc": ["U1"], "year": [2025], "vehicles": [3], "eligible": [False], "amount_cny": [0]}
    )
    bad = good.assign(vehicles=[-1])
    seal = Seal([], hub_signing_key(settings))
    directory = tmp_path / "drops"
    drop = Drop("commerce", "export_subsidy", D, lambda: iter([good, bad]))
    with pytest.raises(DropInvalid, match="vehicles"):
        write_drop(drop, directory, "Asia/Shanghai", seal, EMPTY_HEAD)
    assert list(directory.iterdir()) == []
    # Near miss: the good part alone is written.
    alone = Drop("commerce", "export_subsidy", D, lambda: iter([good]))
    write_drop(alone, directory, "Asia/Shanghai", seal, EMPTY_HEAD)
    assert sorted(p.suffix for p in directory.iterdir()) == [".csv", ".json"]


def _finding(n: int, agency: str, related: str, first_seen: date = D) -> dict[str, object]:
    return {
        "identity": f"i{n}",
        "rule_id": f"EXP-00{n % 3 + 1}",
        "severity": "error",
        "vin": None if n % 4 == 0 else f"LSVAM4187C218{n:04d}",
        "agency": agency,
        "record_key": f"K{n:02d}",
        "related": related,
        "detail": f"detail {n}, with a comma",
        "first_seen": first_seen,
        "last_seen": D,
        "resolved_on": None,
    }


def test_every_findings_drop_is_written_in_one_read_as_each_whole_frame_would_be(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(drops, "CHUNK_ROWS", 2)
    engine = connect(settings.database_url)
    rows = [
        _finding(1, "police", "customs:530420250040970934/1"),  # police's, and customs'
        _finding(2, "police", "", D0),
        _finding(3, "tax", "customs:530420250040970935/1;police:E9"),
        _finding(4, "tax", ""),  # dismissed: in no drop, on the sheet
        _finding(5, "customs", ""),
        _finding(6, "police", "taxes:R1"),  # near miss: cites no agency's record
        _finding(7, "police", "", D0) | {"resolved_on": D},  # resolved: nowhere
    ]
    with engine.begin() as conn:
        conn.execute(insert(findings), rows)
        ids = dict(
            conn.execute(
                findings.select().with_only_columns(findings.c.record_key, findings.c.id)
            ).all()
        )
    decisions = pd.DataFrame(
        {
            "finding_id": [ids["K04"], ids["K05"]],
            "review": ["dismissed", "confirmed"],
            "note": ["-", "seen"],
        }
    )
    sheet = FindingsSheet(D)
    with engine.connect() as conn:
        written = write_findings_data(conn, D, tmp_path, decisions, sheet.add)
        whole = review_columns(decisions, D, open_findings(conn, D))
    engine.dispose()
    assert sorted(written) == [
        f"hub_{a}_findings_20251103_001.csv" for a in ("commerce", "customs", "police", "tax")
    ]
    expected_keys = {
        "commerce": [],
        "customs": ["K01", "K03", "K05"],
        "police": ["K01", "K02", "K03", "K06"],
        "tax": ["K03"],
    }
    for agency, keys in expected_keys.items():
        data = written[f"hub_{agency}_findings_20251103_001.csv"]
        expected = b"".join(render_csv([findings_for(agency, whole)], REPORT_COLUMNS["findings"]))
        assert data.path.read_bytes() == expected
        assert data.sha256 == hashlib.sha256(expected).hexdigest() and data.rows == len(keys)
        listed = pd.read_csv(data.path, dtype=str, keep_default_na=False)
        assert sorted(listed["record_key"]) == keys, agency
    confirmed = pd.read_csv(
        written["hub_customs_findings_20251103_001.csv"].path, dtype=str, keep_default_na=False
    )
    assert confirmed.set_index("record_key").at["K05", "note"] == "seen"
    with sheet:
        section = sheet.section()
        listed = pd.concat(list(section.parts()), ignore_index=True)
    assert section.total == 6  # the dismissed one too; not the resolved one
    assert section.per_agency == {"commerce": 0, "customs": 3, "police": 4, "tax": 2}
    # By rule, then record: EXP-001 on K03 and K06, EXP-002 on K01 and K04, EXP-003 ...
    assert listed["record_key"].tolist() == ["K03", "K06", "K01", "K04", "K02", "K05"]
