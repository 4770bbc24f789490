"""``vhub prune``: the hub's files older than ``[retention]`` go, what a delivery still
needs and every store record stay."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, update
from tests.conftest import write_config
from tests.factories import loaded_file

from vehiclehub.cli import main
from vehiclehub.config import Settings, load_settings
from vehiclehub.publish.drops import drop_name
from vehiclehub.store import connect
from vehiclehub.store.schema import deliveries, intake_files

TODAY = date(2026, 12, 1)
#: With the defaults: archive kept 400 days, drops and reports 90.
ARCHIVE_LIMIT, FILES_LIMIT = date(2025, 10, 27), date(2026, 9, 2)
OLD = date(2026, 9, 1)


def _archived(settings: Settings, conn: object, name: str, *taken: date) -> Path:
    path = settings.archive_dir / "police" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"encrypted")
    for day in taken:
        file_id = loaded_file(conn, "police", "events", day)
        conn.execute(  # type: ignore[attr-defined]
            update(intake_files)
            .where(intake_files.c.id == file_id)
            .values(archive_path=str(path.relative_to(settings.work_dir)))
        )
    return path


def _drop(settings: Settings, conn: object, report: str, day: date, delivered: bool) -> Path:
    name = drop_name("police", report, day)
    folder = settings.drops_dir / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("header\r\n")
    (folder / name.replace(".csv", ".manifest.json")).write_text("{}")
    conn.execute(  # type: ignore[attr-defined]
        insert(deliveries).values(
            agency="police",
            name=name,
            run_date=day,
            sha256="0" * 64,
            delivered_at=datetime.now(UTC) if delivered else None,
        )
    )
    return folder / name


def test_prune_removes_what_is_past_its_time_and_nothing_a_delivery_needs(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = connect(settings.database_url)
    with engine.begin() as conn:
        expired = _archived(settings, conn, "a.csv.enc", date(2025, 10, 1))
        on_the_limit = _archived(settings, conn, "b.csv.enc", ARCHIVE_LIMIT)
        sent_again = _archived(settings, conn, "c.csv.enc", date(2025, 9, 1), date(2026, 11, 30))
        delivered = _drop(settings, conn, "findings", OLD, delivered=True)
        pending = _drop(settings, conn, "rejections", OLD, delivered=False)
        recent = _drop(settings, conn, "findings", FILES_LIMIT, delivered=True)
        files_before = conn.execute(select(func.count()).select_from(intake_files)).scalar()
    in_flight = settings.archive_dir / "police" / "incoming-x.csv.part"
    in_flight.write_bytes(b"")
    for day in (OLD, FILES_LIMIT):
        (settings.reports_dir / day.isoformat()).mkdir(parents=True)
    (settings.reports_dir / "assets").mkdir()

    assert main(["prune", "--config", str(settings.source), "--date", TODAY.isoformat()]) == 0

    assert not expired.exists()
    assert on_the_limit.exists() and sent_again.exists() and in_flight.exists()
    assert not delivered.exists()
    assert not delivered.with_name(delivered.name.replace(".csv", ".manifest.json")).exists()
    assert pending.exists() and pending.with_name(pending.name.replace(".csv", ".manifest.json"))
    assert recent.exists()
    assert not (settings.reports_dir / OLD.isoformat()).exists()
    assert (settings.reports_dir / FILES_LIMIT.isoformat()).is_dir()
    assert (settings.reports_dir / "assets").is_dir()
    with engine.connect() as conn:  # store records are never pruned
        assert conn.execute(select(func.count()).select_from(intake_files)).scalar() == files_before
        assert conn.execute(select(func.count()).select_from(deliveries)).scalar() == 3
    engine.dispose()
    printed = capsys.readouterr().out
    assert "removed 1 archived agency files" in printed
    assert f"removed 2 drop files ({OLD})" in printed
    assert f"removed 1 report folders ({OLD})" in printed
    assert f"kept 2 drop files past their time, not yet delivered: drops/{OLD}/" in printed


def test_retention_is_configured_per_kind_of_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")
    config.write_text(config.read_text() + "[retention]\ndrops_days = 7\n")
    settings = load_settings(config)
    assert (settings.retention.archive_days, settings.retention.drops_days) == (400, 7)
    assert settings.retention.reports_days == 90
