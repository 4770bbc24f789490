"""Intake: every kind of rejection of ICD §1–§3, corrections, and nothing lost or leaked."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select
from tests.factories import Vehicle, columns, read_drop, send

from vehiclehub.config import Settings
from vehiclehub.pipeline import intake_agency, run_cycle
from vehiclehub.quality.gate import READS_AS_UTF8
from vehiclehub.store import connect
from vehiclehub.store.schema import feed_table, indexes_on, intake_files
from vehiclehub.summary import format_summary

DAY = date(2025, 11, 3)


def _root(settings: Settings) -> Path:
    return settings.work_dir.parent


def _files(settings: Settings) -> list[dict]:
    with connect(settings.database_url).connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(intake_files))]


def _count(settings: Settings, agency: str, feed: str) -> int:
    with connect(settings.database_url).connect() as conn:
        return conn.execute(select(func.count()).select_from(feed_table(agency, feed))).scalar()


def _whole_file_rejection(settings: Settings, agency: str) -> dict:
    run_cycle(settings, DAY)
    drop = read_drop(_root(settings), agency, "rejections")
    assert len(drop) == 1, drop
    row = drop.iloc[0].to_dict()
    assert row["line"] == "" and row["column"] == "" and row["value"] == ""
    return row


def test_valid_file_loads_and_counts_add_up(settings: Settings) -> None:
    v = Vehicle()
    send(_root(settings), "customs", "declarations", [v.item(), Vehicle().item()])
    result = intake_agency(settings, "customs", DAY).to_dict()
    (outcome,) = result["files"]
    assert (outcome["status"], outcome["rows"], outcome["loaded"], outcome["rejected"]) == (
        "loaded",
        2,
        2,
        0,
    )
    assert _count(settings, "customs", "declarations") == 2


def test_checksum_mismatch_rejects_the_whole_file(settings: Settings) -> None:
    send(
        _root(settings),
        "customs",
        "declarations",
        [Vehicle().item()],
        manifest={"sha256": "0" * 64},
    )
    row = _whole_file_rejection(settings, "customs")
    assert "checksum mismatch" in row["error"]
    assert _count(settings, "customs", "declarations") == 0


def test_row_count_mismatch_rejects_the_whole_file(settings: Settings) -> None:
    send(_root(settings), "customs", "declarations", [Vehicle().item()], manifest={"rows": 2})
    row = _whole_file_rejection(settings, "customs")
    assert "row count mismatch" in row["error"] and "1 data rows" in row["error"]
    assert _count(settings, "customs", "declarations") == 0


def test_bytes_that_do_not_decode_as_the_manifest_says_reject_the_file(
    settings: Settings,
) -> None:
    send(
        _root(settings),
        "customs",
        "declarations",
        [Vehicle().item()],
        encoding="gb18030",
        manifest={"encoding": "utf-8"},
    )
    row = _whole_file_rejection(settings, "customs")
    assert "do not decode as utf-8" in row["error"]


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"schema_version": "2"}, "schema_version"),
        ({"feed": "licences"}, "disagrees with the file name"),
        ({"business_date": "2025-11-04"}, "disagrees with the file name"),
        ({"seq": 2}, "disagrees with the file name"),
        ({"file": "other.csv"}, "disagrees with the file name"),
        ({"encoding": "latin-1"}, "encoding"),
    ],
)
def test_bad_manifest_rejects_the_file(settings: Settings, override: dict, expected: str) -> None:
    send(_root(settings), "customs", "declarations", [Vehicle().item()], manifest=override)
    assert expected in _whole_file_rejection(settings, "customs")["error"]


def test_manifest_that_is_not_json_rejects_the_file(settings: Settings) -> None:
    path = send(_root(settings), "customs", "declarations", [Vehicle().item()])
    path.with_name(path.name.replace(".csv", ".manifest.json")).write_text("{not json")
    assert "not valid UTF-8 JSON" in _whole_file_rejection(settings, "customs")["error"]


def test_missing_required_column_rejects_the_file(settings: Settings) -> None:
    header = [c for c in columns("customs", "declarations") if c != "licence_no"]
    send(_root(settings), "customs", "declarations", [Vehicle().item()], header=header)
    assert (
        "missing required column(s): licence_no"
        in _whole_file_rejection(settings, "customs")["error"]
    )


def test_gb18030_and_bom_files_load_and_columns_match_by_name(settings: Settings) -> None:
    root = _root(settings)
    header = [*list(reversed(columns("police", "events"))), "extra_column"]
    v = Vehicle()
    send(
        root,
        "police",
        "events",
        [v.event("E1", "transfer_pending_export", "2025-09-26")],
        encoding="gb18030",
        header=header,
    )
    send(root, "police", "events", [v.event("E2", "transfer", "2025-09-27")], seq=2, bom=True)
    result = intake_agency(settings, "police", DAY).to_dict()
    assert [f["loaded"] for f in result["files"]] == [1, 1]
    with connect(settings.database_url).connect() as conn:
        brands = conn.execute(select(feed_table("police", "events").c.brand)).scalars().all()
    assert brands == ["比亚迪", "比亚迪"]


def test_a_utf8_file_declared_gb18030_loads_as_declared_and_is_warned_of(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    root = _root(settings)
    v = Vehicle(brand="丰田", model="卡罗拉E")  # UTF-8 bytes that also read as GB18030
    rows = [v.event("E1", "transfer", "2025-09-27")]
    utf8 = send(root, "police", "events", rows, manifest={"encoding": "gb18030"})
    truly = send(root, "police", "events", [v.event("E2", "transfer", "2025-09-28")], seq=2,
                 encoding="gb18030")  # fmt: skip
    ascii_only = send(root, "police", "events", [v.event("E3", "transfer", "2025-09-29",
                      brand="Toyota", model="Corolla", plate_no="A12345")], seq=3,
                      manifest={"encoding": "gb18030"})  # fmt: skip

    with caplog.at_level(logging.WARNING, logger="vehiclehub"):
        run = run_cycle(settings, DAY)
        summary = run.to_dict()

    files = {f["name"]: f for f in summary["intake"][1]["files"]}
    assert [f["status"] for f in files.values()] == ["loaded"] * 3
    assert files[utf8.name]["warnings"] == [READS_AS_UTF8]
    assert files[truly.name]["warnings"] == files[ascii_only.name]["warnings"] == []
    with connect(settings.database_url).connect() as conn:
        events = feed_table("police", "events")
        brands = dict(conn.execute(select(events.c.event_id, events.c.brand)).tuples().all())
    assert brands == {"E1": "涓扮敯", "E2": "丰田", "E3": "Toyota"}  # the manifest decides
    warned = [r.getMessage() for r in caplog.records if "valid UTF-8" in r.getMessage()]
    assert len(warned) == 1 and warned[0].startswith(f"{utf8.name}: declared gb18030")
    assert f"{utf8.name}: quality warnings: {READS_AS_UTF8}" in format_summary(run)
    report = Path(summary["publish"]["report"]).read_text(encoding="utf-8")
    shown = report.split(f"Expectations of <code>{utf8.name}</code>", 1)[1].split("</details>")[0]
    assert READS_AS_UTF8 in shown and "also valid UTF-8" in shown
    assert report.count(READS_AS_UTF8) == 1  # of that file only


@pytest.mark.parametrize(
    ("column", "value", "words"),
    [
        ("vin", "LSVAM4187C218484", "not a VIN"),
        ("decl_no", "5.30E+17", "scientific notation"),
        ("declared_at", "2025-02-30", "YYYY-MM-DD"),
        ("status", "released", "must be one of: declared, cleared"),
        ("hs_code", "85171200", "used-vehicle HS code"),
        ("item_no", "1000", "whole number from 1 to 999"),
        ("uscc", "91350100M000100Y44", "unified social credit code"),
        ("destination_country", "XXX", "ISO 3166-1 alpha-3"),
        ("fob_usd", "12,500", "decimal"),
        ("licence_no", None, "required value is missing"),
    ],
)
def test_bad_value_rejects_the_row_with_line_column_value_and_words(
    settings: Settings, column: str, value: str | None, words: str
) -> None:
    good, bad = Vehicle(), Vehicle()
    send(_root(settings), "customs", "declarations", [good.item(), bad.item(**{column: value})])
    run_cycle(settings, DAY)
    drop = read_drop(_root(settings), "customs", "rejections")
    assert drop[["file", "line", "column", "value"]].values.tolist() == [
        ["customs_declarations_20251103_001.csv", "3", column, value or ""]
    ]
    assert words in drop.loc[0, "error"]
    assert _count(settings, "customs", "declarations") == 1
    (f,) = _files(settings)
    assert (f["rows_read"], f["rows_loaded"], f["rows_ignored"], f["rows_rejected"]) == (2, 1, 0, 1)


def test_one_rejection_per_failing_column_and_the_row_is_not_loaded(settings: Settings) -> None:
    send(
        _root(settings),
        "customs",
        "declarations",
        [Vehicle().item(vin="BAD", hs_code="12", declared_at="yesterday")],
    )
    run_cycle(settings, DAY)
    drop = read_drop(_root(settings), "customs", "rejections")
    assert sorted(drop["column"]) == ["declared_at", "hs_code", "vin"]
    assert set(drop["line"]) == {"2"}
    assert _count(settings, "customs", "declarations") == 0


def test_deregistration_needs_a_reason_and_owner_must_be_a_person_or_enterprise(
    settings: Settings,
) -> None:
    v = Vehicle()
    send(
        _root(settings),
        "police",
        "events",
        [
            v.event("E1", "deregister", "2025-10-20"),
            v.event("E2", "transfer", "2025-10-21", owner_id="12345"),
        ],
    )
    run_cycle(settings, DAY)
    drop = read_drop(_root(settings), "police", "rejections")
    assert drop[["line", "column"]].values.tolist() == [["2", "dereg_reason"], ["3", "owner_id"]]
    assert "required when event_type is deregister" in drop.loc[0, "error"]


def test_wrong_number_of_fields_rejects_the_line(settings: Settings) -> None:
    header = columns("tax", "refunds")
    good = ",".join(str(Vehicle().refund().get(c) or "") for c in header)
    body = (",".join(header) + "\n" + good + "\n" + good + ",surplus\n" + "R1,x\n").encode()
    send(_root(settings), "tax", "refunds", [], data=body)
    run_cycle(settings, DAY)
    drop = read_drop(_root(settings), "tax", "rejections")
    assert drop["line"].tolist() == ["3", "4"]
    assert all("fields, the header has" in e for e in drop["error"])
    assert _count(settings, "tax", "refunds") == 1


def test_key_repeated_in_a_file_rejects_the_second_row(settings: Settings) -> None:
    v = Vehicle()
    send(_root(settings), "customs", "declarations", [v.item(), v.item(fob_usd="1.00")])
    run_cycle(settings, DAY)
    drop = read_drop(_root(settings), "customs", "rejections")
    # Its 18 digits are id-shaped: shown masked (ICD §5), whatever they are.
    assert drop[["line", "column", "value"]].values.tolist() == [
        ["3", "decl_no/item_no", v.decl_no[:6] + "*" * 12 + "/1"]
    ]
    assert "first on line 2" in drop.loc[0, "error"]


def test_incomplete_files_wait_and_part_files_are_never_read(settings: Settings) -> None:
    root = _root(settings)
    send(root, "customs", "declarations", [Vehicle().item()], with_manifest=False)
    (root / "exchange/customs/outbox/customs_declarations_20251103_002.csv.part").write_text("x")
    result = intake_agency(settings, "customs", DAY).to_dict()
    assert result["files"] == []
    assert result["waiting"] == ["customs_declarations_20251103_001.csv"]
    # The manifest arrives a day later: the file is taken then.
    send(root, "customs", "declarations", [Vehicle().item()], seq=3)
    later = intake_agency(settings, "customs", date(2025, 11, 4)).to_dict()
    assert [f["name"] for f in later["files"]] == ["customs_declarations_20251103_003.csv"]


def test_taking_again_changes_nothing_and_a_resent_copy_is_noted(settings: Settings) -> None:
    root = _root(settings)
    path = send(root, "customs", "declarations", [Vehicle().item()])
    intake_agency(settings, "customs", DAY)
    assert intake_agency(settings, "customs", DAY).to_dict()["files"] == []
    copy = root / "exchange/customs/outbox/customs_declarations_20251104_001.csv"
    copy.write_bytes(path.read_bytes())
    manifest = json.loads(path.with_name(path.stem + ".manifest.json").read_text())
    manifest |= {"file": copy.name, "business_date": "2025-11-04"}
    copy.with_name(copy.stem + ".manifest.json").write_text(json.dumps(manifest))
    (resent,) = intake_agency(settings, "customs", date(2025, 11, 4)).to_dict()["files"]
    assert resent["status"] == "duplicate"
    assert _count(settings, "customs", "declarations") == 1


def test_corrections_by_record_version(settings: Settings) -> None:
    root = _root(settings)
    a, b, c, d = Vehicle(), Vehicle(), Vehicle(), Vehicle()
    send(
        root, "customs", "declarations", [a.item(record_version="2"), b.item(), c.item(), d.item()]
    )
    send(
        root,
        "customs",
        "declarations",
        [
            a.item(record_version="1", fob_usd="1.00"),  # older: ignored
            b.item(),  # same version, same content: ignored
            c.item(fob_usd="9.99"),  # same version, other content: rejected
            d.item(record_version="3", status="declared"),  # newer: replaces
        ],
        seq=2,
    )
    run_cycle(settings, DAY)
    second = next(f for f in _files(settings) if f["seq"] == 2)
    assert (second["rows_loaded"], second["rows_ignored"], second["rows_rejected"]) == (1, 2, 1)
    drop = read_drop(root, "customs", "rejections")
    assert drop[["file", "line", "column", "value"]].values.tolist() == [
        ["customs_declarations_20251103_002.csv", "4", "record_version", "1"]
    ]
    with connect(settings.database_url).connect() as conn:
        t = feed_table("customs", "declarations")
        rows = {r.vin: r for r in conn.execute(select(t))}
    assert str(rows[a.vin].fob_usd) == "12500.00" or float(rows[a.vin].fob_usd) == 12500
    assert (rows[d.vin].record_version, rows[d.vin].status) == (3, "declared")
    assert float(rows[c.vin].fob_usd) == 12500


def test_resident_ids_are_pseudonymised_and_masked_everywhere(settings: Settings) -> None:
    root = _root(settings)
    v = Vehicle()
    bad_id = v.person[:-1] + ("0" if v.person[-1] != "0" else "1")
    send(
        root,
        "police",
        "events",
        [
            v.event("E1", "register", "2023-03-01"),
            v.event("E2", "transfer", "2024-03-01", owner_id=bad_id),
        ],
    )
    run_cycle(settings, DAY)
    drop = read_drop(root, "police", "rejections")
    assert drop["value"].tolist() == [bad_id[:6] + "*" * 12]
    needles = [v.person.encode(), bad_id.encode()]
    scanned = 0
    for path in [*settings.work_dir.rglob("*"), Path(settings.database_url[10:])]:
        if path.is_file():
            scanned += 1
            content = path.read_bytes()
            assert not any(n in content for n in needles), path
    assert scanned > 5
    with connect(settings.database_url).connect() as conn:
        owner = conn.execute(
            select(feed_table("police", "events").c.owner_id).where(
                feed_table("police", "events").c.event_id == "E1"
            )
        ).scalar()
    assert len(owner) == 64 and owner != hashlib.sha256(v.person.encode()).hexdigest()


def test_the_audit_archive_is_encrypted(settings: Settings) -> None:
    v = Vehicle()
    send(_root(settings), "customs", "declarations", [v.item()])
    intake_agency(settings, "customs", DAY)
    (archived,) = (settings.work_dir / "archive" / "customs").iterdir()
    assert v.vin.encode() not in archived.read_bytes()
    from vehiclehub.crypto import archive_key, read_archive

    assert v.vin.encode() in b"".join(read_archive(archived, archive_key(settings)))


def test_a_file_from_another_agencys_name_is_rejected(settings: Settings) -> None:
    write = send(_root(settings), "customs", "declarations", [Vehicle().item()])
    moved = _root(settings) / "exchange/tax/outbox" / write.name
    moved.write_bytes(write.read_bytes())
    manifest = write.with_name(write.stem + ".manifest.json")
    moved.with_name(manifest.name).write_bytes(manifest.read_bytes())
    write.unlink()
    manifest.unlink()
    assert "arrived in the tax outbox" in _whole_file_rejection(settings, "tax")["error"]


def test_a_bulk_first_load_and_a_later_correction_count_the_same(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import inspect

    from vehiclehub.intake import load

    monkeypatch.setattr(load, "BULK_ROWS", 1)  # every first load is a bulk load here
    root = _root(settings)
    a, b = Vehicle(), Vehicle()
    send(root, "customs", "declarations", [a.item(), b.item(), a.item(fob_usd="1.00")])
    send(
        root,
        "customs",
        "declarations",
        [a.item(record_version="2", status="declared"), b.item(fob_usd="9.99")],
        seq=2,
    )
    first, second = intake_agency(settings, "customs", DAY).to_dict()["files"]
    assert (first["loaded"], first["ignored"], first["rejected"]) == (2, 0, 1)
    assert (second["loaded"], second["ignored"], second["rejected"]) == (1, 0, 1)
    engine = connect(settings.database_url)
    names = {i["name"] for i in inspect(engine).get_indexes("customs_declarations")}
    table = feed_table("customs", "declarations")
    assert {str(i.name) for i in indexes_on(table, engine.dialect.name)} <= names


@pytest.mark.parametrize(("worker_rows", "in_process"), [(5, []), (7, ["_001", "_002"])])
def test_small_files_before_a_big_one_are_prepared_by_its_worker(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, worker_rows: int, in_process: list[str]
) -> None:
    from vehiclehub.intake import chunks

    here: list[str] = []
    prepare_here = chunks.prepare_file

    def recorded(job: chunks.FileJob) -> Iterator[chunks.Prepared | chunks.Finished]:
        here.append(job.manifest.file)
        return prepare_here(job)

    monkeypatch.setattr(chunks, "prepare_file", recorded)
    root = _root(settings)
    send(root, "customs", "declarations", [Vehicle().item() for _ in range(2)], seq=1)
    send(root, "customs", "declarations", [Vehicle().item() for _ in range(6)], seq=2)
    with chunks.Preparer(use_worker=True, worker_rows=worker_rows) as preparer:
        result = intake_agency(settings, "customs", DAY, preparer).to_dict()
        assert (preparer.worker_pid is not None) == (not in_process)
    assert [f["loaded"] for f in result["files"]] == [2, 6]
    assert [name[-8:-4] for name in here] == in_process


def _visibility(url: str, table: str) -> tuple[int, int, object]:
    """A PostgreSQL table's pages, those marked visible to every transaction, and when it
    was last vacuumed (None: never)."""
    from sqlalchemy import text

    with connect(url).connect() as conn:
        pages, visible = conn.execute(
            text("SELECT relpages, relallvisible FROM pg_class WHERE relname = :t"), {"t": table}
        ).one()
        vacuumed = conn.execute(
            text("SELECT last_vacuum FROM pg_stat_user_tables WHERE relname = :t"), {"t": table}
        ).scalar()
    return pages, visible, vacuumed


@pytest.mark.postgres
def test_on_postgresql_the_tables_of_the_feeds_loaded_are_vacuumed(
    settings: Settings, pg_url: str
) -> None:
    """Once a feed's files are loaded, its table's pages are marked visible to every
    transaction: the VINs held are then read from their index without visiting the table.
    A feed with nothing loaded is not vacuumed."""
    from tests.unit.rules.test_quality import plan_of

    from vehiclehub.config import RuleParameters
    from vehiclehub.rules.base import RuleContext
    from vehiclehub.rules.quality import VinColumn, ascending_vins

    settings = settings.model_copy(update={"database_url": pg_url})
    send(_root(settings), "customs", "declarations", [Vehicle().item() for _ in range(50)])
    intake_agency(settings, "customs", DAY)
    intake_agency(settings, "police", DAY)  # nothing sent
    pages, visible, vacuumed = _visibility(pg_url, "customs_declarations")
    assert pages > 0 and visible == pages and vacuumed is not None
    assert _visibility(pg_url, "police_events")[2] is None
    with connect(pg_url).connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        query = ascending_vins(
            RuleContext(conn, DAY, RuleParameters()), VinColumn("customs", "declarations", "vin")
        )
        plan = plan_of(conn, query, "(ANALYZE, COSTS OFF)").splitlines()
    assert any("Index Only Scan using ix_customs_declarations_vin_held" in p for p in plan)
    assert "Heap Fetches: 0" in [p.strip() for p in plan]
