"""Volume history: the last loaded first files of a feed, from earlier runs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import insert

from vehiclehub.config import QualitySettings, Settings
from vehiclehub.quality.history import recent_volumes, volume_baseline
from vehiclehub.store import connect
from vehiclehub.store.schema import intake_files

D = date(2025, 11, 10)


def _file(conn, n: int, rows: int, *, seq: int = 1, status: str = "loaded", run: date) -> None:
    conn.execute(
        insert(intake_files).values(
            agency="customs",
            feed="declarations",
            name=f"f{n}.csv",
            seq=seq,
            business_date=run,
            run_date=run,
            status=status,
            rows_read=rows,
            taken_at=datetime.now(UTC),
        )
    )


def test_only_loaded_first_files_of_earlier_runs_count(settings: Settings) -> None:
    engine = connect(settings.database_url)
    with engine.begin() as conn:
        for n, rows in enumerate([100, 200, 300, 400]):
            _file(conn, n, rows, run=D - timedelta(days=4 - n))
        _file(conn, 10, 5, seq=2, run=D - timedelta(days=1))  # a remainder file
        _file(conn, 11, 7, status="rejected", run=D - timedelta(days=1))
        _file(conn, 12, 9_999, run=D)  # this run
    with engine.connect() as conn:
        assert recent_volumes(conn, "customs", "declarations", D, 10) == [400, 300, 200, 100]
        assert recent_volumes(conn, "customs", "declarations", D, 2) == [400, 300]
        baseline = volume_baseline(conn, QualitySettings(), "customs", "declarations", 1, D)
    assert (baseline.median, baseline.floor, baseline.ceiling) == (250.0, 84, 750)
    assert baseline.describe() == "median 250 rows of the last 4 loaded first files"


def test_the_check_waits_for_history_and_skips_later_files(settings: Settings) -> None:
    engine = connect(settings.database_url)
    with engine.begin() as conn:
        _file(conn, 1, 500, run=D - timedelta(days=2))
        _file(conn, 2, 500, run=D - timedelta(days=1))
    with engine.connect() as conn:
        few = volume_baseline(conn, QualitySettings(), "customs", "declarations", 1, D)
        later = volume_baseline(conn, QualitySettings(), "customs", "declarations", 2, D)
        small = volume_baseline(
            conn,
            QualitySettings(volume_min_history=2, volume_min_median_rows=1000),
            "customs",
            "declarations",
            1,
            D,
        )
        enough = volume_baseline(
            conn, QualitySettings(volume_min_history=2), "customs", "declarations", 1, D
        )
    assert few.reason == "2 earlier loaded first files, 3 needed"
    assert later.reason == "file 002 of its date: only first files are judged"
    assert small.reason == "median of 500 rows is below the 1000 rows a volume check needs"
    assert enough.applies and enough.floor == 167
