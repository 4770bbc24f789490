"""The nightly schedule: no run for a night already past unless an operator asks."""

from __future__ import annotations

from datetime import timedelta
from importlib.metadata import entry_points

import pendulum
import pytest
from airflow.timetables.base import DataInterval, TimeRestriction
from airflow.timetables.trigger import CronTriggerTimetable
from airflow.utils.types import DagRunType

from vehiclehub.airflow import schedule
from vehiclehub.airflow.schedule import NightlyTimetable, SchedulePlugin

SHANGHAI = "Asia/Shanghai"
START = pendulum.datetime(2025, 1, 1, tz=SHANGHAI)
NO_CATCHUP = TimeRestriction(earliest=START, latest=None, catchup=False)


def _at(monkeypatch: pytest.MonkeyPatch, local: str) -> None:
    """Make it ``local`` (Shanghai time) for the timetables."""
    now = pendulum.parse(local, tz=SHANGHAI).in_timezone("UTC")
    monkeypatch.setattr(schedule, "utcnow", lambda: now)
    monkeypatch.setattr("airflow.timetables.trigger.utcnow", lambda: now)


def _night(local: str) -> DataInterval:
    at = pendulum.parse(local, tz=SHANGHAI).in_timezone("UTC")
    return DataInterval(at, at)


def _next_run(timetable: CronTriggerTimetable, last: DataInterval | None) -> str:
    info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=NO_CATCHUP)
    assert info is not None
    return info.run_after.in_timezone(SHANGHAI).isoformat()


def test_unpausing_after_the_nights_start_waits_for_the_next_night(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _at(monkeypatch, "2025-11-04T10:00:00")
    nightly = NightlyTimetable("30 2 * * *", timezone=SHANGHAI)
    airflows_own = CronTriggerTimetable("30 2 * * *", timezone=SHANGHAI)
    paused_since = _night("2025-11-02T02:30:00")
    # Airflow's own timetable would run 4 November 02:30 (business date the 3rd) at once.
    assert _next_run(airflows_own, paused_since) == "2025-11-04T02:30:00+08:00"
    assert _next_run(nightly, paused_since) == "2025-11-05T02:30:00+08:00"
    # First deployment: no run at all yet.
    assert _next_run(nightly, None) == "2025-11-05T02:30:00+08:00"


def test_a_scheduler_back_within_the_grace_still_runs_the_night(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nightly = NightlyTimetable("30 2 * * *", timezone=SHANGHAI)
    yesterday = _night("2025-11-03T02:30:00")
    _at(monkeypatch, "2025-11-04T03:25:00")
    assert _next_run(nightly, yesterday) == "2025-11-04T02:30:00+08:00"
    _at(monkeypatch, "2025-11-04T03:35:00")
    assert _next_run(nightly, yesterday) == "2025-11-05T02:30:00+08:00"
    _at(monkeypatch, "2025-11-04T01:00:00")  # ahead of the night: the same as Airflow's
    assert _next_run(nightly, yesterday) == "2025-11-04T02:30:00+08:00"


def test_catch_up_when_asked_for_is_airflows(monkeypatch: pytest.MonkeyPatch) -> None:
    _at(monkeypatch, "2025-11-04T10:00:00")
    restriction = TimeRestriction(earliest=START, latest=None, catchup=True)
    info = NightlyTimetable("30 2 * * *", timezone=SHANGHAI).next_dagrun_info(
        last_automated_data_interval=_night("2025-11-01T02:30:00"), restriction=restriction
    )
    assert info is not None
    assert info.run_after.in_timezone(SHANGHAI).isoformat() == "2025-11-02T02:30:00+08:00"


def test_the_timetable_survives_serialization_and_is_registered() -> None:
    nightly = NightlyTimetable("30 2 * * *", timezone=SHANGHAI, grace=timedelta(minutes=20))
    again = NightlyTimetable.deserialize(nightly.serialize())
    assert again.grace == timedelta(minutes=20) and again.summary == nightly.summary
    assert NightlyTimetable in SchedulePlugin.timetables


def test_airflow_finds_the_plugin_through_the_packages_entry_point() -> None:
    found = {e.name: e for e in entry_points(group="airflow.plugins")}
    assert found["vehiclehub_schedule"].load() is SchedulePlugin


def test_scheduled_run_ids_carry_the_business_date() -> None:
    nightly = NightlyTimetable("30 2 * * *", timezone=SHANGHAI)
    at = pendulum.datetime(2025, 11, 3, 18, 30, tz="UTC")  # 4 November 02:30 in Shanghai
    run_id = nightly.generate_run_id(
        run_type=DagRunType.SCHEDULED, run_after=at, data_interval=DataInterval(at, at)
    )
    assert run_id.startswith("scheduled__2025-11-03__2025-11-03T18:30:00")
    manual = nightly.generate_run_id(run_type=DagRunType.MANUAL, run_after=at, data_interval=None)
    assert manual.startswith("manual__") and "2025-11-03__" not in manual
