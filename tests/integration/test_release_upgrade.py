"""A store written by the release that copied every verdict per night is upgraded in
place: its findings keep their history, every earlier date's verification drop reads the
same, and the next night's drops are the ones that release wrote."""

from __future__ import annotations

import gzip
import shutil
import sqlite3
from datetime import date
from pathlib import Path

import pandas as pd
from sqlalchemy import func, select
from tests.conftest import write_config
from tests.unit.store.test_migrations import schema_differences

from vehiclehub.config import AGENCIES, load_settings
from vehiclehub.pipeline import run_cycle
from vehiclehub.publish.drops import changed_verdicts, drop_name
from vehiclehub.store import connect
from vehiclehub.store.db import schema_lag, upgrade
from vehiclehub.store.migrate import head_revision
from vehiclehub.store.schema import findings, verdict_history

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "release_store"
PSEUDONYM_KEY = "release-store-fixture-pseudonym-key"
DATES = [date(2025, 11, d) for d in (3, 4, 5)]
NEXT = date(2025, 11, 6)
REPORTS = {"police": "export_verification", "tax": "refund_verification"}


def _release_store(root: Path) -> Path:
    """The fixture's store and agency files under ``root``; returns the configuration."""
    database = root / "hub.db"
    with gzip.open(FIXTURE / "hub.db.gz") as packed, database.open("wb") as target:
        shutil.copyfileobj(packed, target)
    config = write_config(root, f"sqlite:///{database}")
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace('"test-pseudonym-key-0123456789"', f'"{PSEUDONYM_KEY}"'), encoding="utf-8"
    )
    for agency in AGENCIES:
        for path in (FIXTURE / "outbox" / agency).iterdir():
            shutil.copy2(path, root / "exchange" / agency / "outbox" / path.name)
    return config


def _release_drop(day: date, agency: str) -> pd.DataFrame:
    path = FIXTURE / "drops" / day.isoformat() / drop_name(agency, REPORTS[agency], day)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_a_release_store_upgrades_without_changing_history_or_the_next_drops(
    tmp_path: Path,
) -> None:
    config = _release_store(tmp_path)
    with sqlite3.connect(tmp_path / "hub.db") as raw:
        findings_before = raw.execute("SELECT * FROM findings ORDER BY id").fetchall()
        snapshot_rows = raw.execute("SELECT count(*) FROM verdicts").fetchone()[0]
    settings = load_settings(config)
    release = connect(settings.database_url, create=False)
    with release.connect() as conn:
        assert "verdicts still copied per night (an earlier release's)" in schema_lag(conn)
    release.dispose()
    upgraded = upgrade(settings.database_url)
    assert upgraded.unversioned and upgraded.after == head_revision()
    engine = connect(settings.database_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT * FROM findings ORDER BY id").all() == findings_before
        history_rows = conn.execute(select(func.count()).select_from(verdict_history)).scalar()
        for day in DATES:
            for agency, report in REPORTS.items():
                got = changed_verdicts(conn, report, day).fillna("")
                pd.testing.assert_frame_equal(got, _release_drop(day, agency), obj=str(day))
        assert schema_lag(conn) == []
        assert schema_differences(conn) == []  # as a new store of this release
    engine.dispose()
    assert history_rows is not None and history_rows < snapshot_rows / 2

    run_cycle(settings, NEXT)
    drops = settings.work_dir / "drops" / NEXT.isoformat()
    for agency, report in REPORTS.items():
        name = drop_name(agency, report, NEXT)
        assert (drops / name).read_bytes() == (
            FIXTURE / "drops" / NEXT.isoformat() / name
        ).read_bytes()
    engine = connect(settings.database_url)
    with engine.connect() as conn:
        # Findings carried on: those of the earlier nights keep their first_seen.
        kept = conn.execute(
            select(func.count()).select_from(findings).where(findings.c.first_seen < NEXT)
        ).scalar()
    engine.dispose()
    assert kept == len(findings_before)
