"""Revision 0007: what an earlier release stored and ICD §1 or §5 no longer allows is
cleaned as intake now treats a new row, and the upgrade says what it changed and where,
never a value."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import create_engine, insert, select
from tests.unit.store.test_migrations import schema_differences

from vehiclehub.cli import main
from vehiclehub.store import connect
from vehiclehub.store.db import upgrade
from vehiclehub.store.migrate import _config
from vehiclehub.store.schema import feed_table, findings, intake_files, rejections

#: Two resident IDs (GB 11643 check characters), born 1980 and 1990.
RID = "110101198001010010"
RID2 = "440304199006151235"
LONG_KEY = "E" * 100
D = date(2025, 11, 3)


def _event(event_id: str, **values: Any) -> dict[str, Any]:
    row = {
        "event_id": event_id, "vin": "LSVAU033512345678", "vin_raw": "LSVAU033512345678",
        "vin_substituted": False, "vin_check_ok": True, "plate_no": "京A12345",
        "event_type": "registration", "event_date": D, "owner_id": "ab" * 32,
        "brand": "丰田", "model": "卡罗拉", "record_version": 1, "record_status": "active",
        "content_hash": 1, "file_id": 1, "line": 2,
    }  # fmt: skip
    return {**row, **values}


def _enterprise(uscc: str, name: str) -> dict[str, Any]:
    return {
        "uscc": uscc, "name": name, "filing_no": "F1", "region_code": "110101",
        "status": "active", "record_version": 1, "record_status": "active",
        "content_hash": 1, "file_id": 2, "line": 2,
    }  # fmt: skip


def _earlier_release_store(url: str) -> None:
    """A store at revision 0006 holding what validation let through before ICD §1 and §5."""
    engine = create_engine(url)
    with engine.begin() as conn:
        command.upgrade(_config(connection=conn), "0006")
        for file_id, (agency, feed) in enumerate(
            [("police", "events"), ("commerce", "enterprises")], start=1
        ):
            conn.execute(
                insert(intake_files).values(
                    id=file_id, agency=agency, feed=feed, name=f"{agency}_{feed}.csv",
                    business_date=D, run_date=D, status="loaded", rows_read=0, rows_loaded=0,
                    rows_ignored=0, rows_rejected=0, taken_at=datetime.now(UTC),
                )
            )  # fmt: skip
        conn.execute(
            insert(feed_table("police", "events")),
            [
                _event("E-GOOD"),
                _event("E-BRAND", brand=f"丰田 {RID}"),
                _event("E 1;X"),
                _event("E-BELL", plate_no="京A\x0712345"),
                _event(LONG_KEY),
                # An owner's ID belongs in owner_id (stored as its pseudonym), and a key
                # is not searched: both stay.
                _event("E-OWNER", owner_id="cd" * 32),
                _event(f"E{RID2}"),
            ],
        )
        conn.execute(
            insert(feed_table("commerce", "enterprises")),
            [_enterprise("91110000100000000X", "北京汽车"), _enterprise(RID, "个体户")],
        )
        finding = {"rule_id": "LIC-006", "severity": "high", "agency": "commerce",
                   "record_key": "L1", "first_seen": D, "last_seen": D}  # fmt: skip
        conn.execute(
            insert(findings),
            [
                {**finding, "identity": "a", "detail": f"licence holder 个体户 {RID}",
                 "related": "customs:222220251000000001/001"},
                {**finding, "identity": "b", "detail": "declared 222220251000000001",
                 "related": "customs:222220251000000001/001"},
            ],
        )  # fmt: skip
        conn.execute(
            insert(rejections),
            [
                {"file_id": 2, "agency": "commerce", "file": "commerce_enterprises.csv",
                 "line": 3, "column": "uscc", "value": RID, "error": "not a USCC"},
                {"file_id": 1, "agency": "police", "file": "police_events.csv", "line": 4,
                 "column": "owner_id", "value": "110101 19800101 0010", "error": "not an id"},
                {"file_id": 1, "agency": "police", "file": "police_events.csv", "line": 5,
                 "column": "brand", "value": "丰田", "error": "too long"},
            ],
        )  # fmt: skip
    engine.dispose()


def test_stored_values_that_break_icd_1_or_5_are_cleaned_and_told(store_url: str) -> None:
    _earlier_release_store(store_url)
    upgraded = upgrade(store_url)
    told = "\n".join(upgraded.lines())

    engine = connect(store_url)
    with engine.connect() as conn:
        events = feed_table("police", "events")
        kept = set(conn.execute(select(events.c.event_id)).scalars())
        enterprises = feed_table("commerce", "enterprises")
        usccs = set(conn.execute(select(enterprises.c.uscc)).scalars())
        shown = conn.execute(select(rejections.c.value).order_by(rejections.c.line)).scalars()
        assert list(shown) == ["110101************", "110101**************", "丰田"]
        details = conn.execute(
            select(findings.c.detail, findings.c.related).order_by(findings.c.identity)
        ).all()
        assert [tuple(d) for d in details] == [
            ("licence holder 个体户 110101************", "customs:222220251000000001/001"),
            ("declared 222220251000000001", "customs:222220251000000001/001"),
        ]
        assert schema_differences(conn) == []  # the keys too long for 64 went first
    engine.dispose()
    assert kept == {"E-GOOD", "E-OWNER", f"E{RID2}"}
    assert usccs == {"91110000100000000X"}

    assert len(upgraded.cleaned) == 5 + 2 + 1
    assert [c.line() for c in upgraded.cleaned if c.table == "findings"] == [
        "findings.detail [id 1]: value masked: a resident ID number stands here; personal "
        "data may stand in owner_id and applicant_id only (ICD §5)"
    ]
    assert f"stored values cleaned (ICD §1, §5): {len(upgraded.cleaned)}" in told
    by_row = {c.row: c for c in upgraded.cleaned if c.table != "rejections"}
    assert by_row["E-BRAND"].column == "brand"
    assert by_row["E-BRAND"].action == "record removed"
    assert "resident ID number stands here" in by_row["E-BRAND"].reason
    assert by_row["E 1;X"].column == "event_id"
    assert by_row["E-BELL"].column == "plate_no"
    assert "control character" in by_row["E-BELL"].reason
    assert by_row["E" * 64 + "…"].reason == "longer than 64 characters"
    assert by_row["110101************/F1"].table == "commerce_enterprises"
    assert by_row["110101************/F1"].column == "uscc"
    rejection_rows = sorted(c.row for c in upgraded.cleaned if c.table == "rejections")
    assert len(rejection_rows) == 2 and all(r.startswith("id ") for r in rejection_rows)
    assert RID not in told and RID2 not in told  # where and what, never the value
    assert "police_events.brand [E-BRAND]: record removed: " in told


def test_a_clean_store_is_left_as_it_is(store_url: str) -> None:
    engine = create_engine(store_url)
    with engine.begin() as conn:
        command.upgrade(_config(connection=conn), "0006")
        conn.execute(insert(feed_table("police", "events")).values(**_event("E-GOOD")))
    engine.dispose()
    upgraded = upgrade(store_url)
    assert upgraded.cleaned == []
    assert not any("stored values cleaned" in line for line in upgraded.lines())


def test_vhub_db_upgrade_says_what_it_cleaned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    _earlier_release_store(url)
    assert main(["db", "upgrade", "--url", url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("store upgraded from 0006 to revision ")
    assert "police_events.event_id [E 1;X]: record removed: not a key or reference" in out
    assert RID not in out
    assert main(["db", "upgrade", "--url", url]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert main(["db", "upgrade", "--url", url, "--from", "0006"]) == 2
    assert main(["db", "upgrade", "--sql", "--url", url, "--from", "0042"]) == 2
    assert "not a revision of the store's migrations" in capsys.readouterr().err
