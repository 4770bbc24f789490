"""Business dates of DAG runs: half-open Asia/Shanghai days, the param winning."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from types import SimpleNamespace

import pendulum
import pytest

from vehiclehub.airflow.dates import business_date_of_run, lease_holder, previous_local_day

SHANGHAI = timezone(timedelta(hours=8))


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (datetime(2025, 11, 4, 2, 30, tzinfo=SHANGHAI), date(2025, 11, 3)),  # the nightly run
        (datetime(2025, 11, 3, 18, 30, tzinfo=UTC), date(2025, 11, 3)),  # same, UTC
        (datetime(2025, 11, 3, 16, 0, tzinfo=UTC), date(2025, 11, 3)),  # 00:00 local
        (datetime(2025, 11, 3, 15, 59, 59, tzinfo=UTC), date(2025, 11, 2)),  # 23:59:59
        (pendulum.datetime(2026, 1, 1, 2, 30, tz="Asia/Shanghai"), date(2025, 12, 31)),
    ],
)
def test_previous_local_day_uses_half_open_shanghai_days(instant: datetime, expected: date) -> None:
    day = previous_local_day(instant)
    assert day == expected
    assert type(day) is date  # not pendulum's Date, which sqlite3 cannot bind


def test_previous_local_day_refuses_naive_instants() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        previous_local_day(datetime(2025, 11, 4, 2, 30))


def test_business_date_from_the_data_interval_end_then_logical_date_then_run_after() -> None:
    run_time = pendulum.datetime(2025, 11, 3, 18, 30, tz="UTC")  # 02:30 on the 4th, Shanghai
    assert business_date_of_run(
        {"data_interval_end": run_time, "logical_date": run_time - timedelta(days=5)}
    ) == date(2025, 11, 3)
    assert business_date_of_run({"data_interval_end": None, "logical_date": run_time}) == date(
        2025, 11, 3
    )
    manual = SimpleNamespace(run_after=run_time + timedelta(hours=12))  # 14:30 on the 4th
    assert business_date_of_run(
        {"data_interval_end": None, "logical_date": None, "dag_run": manual}
    ) == date(2025, 11, 3)


def test_business_date_param_overrides_the_run_time() -> None:
    context = {
        "params": {"business_date": "2025-10-31"},
        "data_interval_end": pendulum.datetime(2025, 11, 3, 18, 30, tz="UTC"),
    }
    assert business_date_of_run(context) == date(2025, 10, 31)
    context["params"] = {"business_date": None}
    assert business_date_of_run(context) == date(2025, 11, 3)
    with pytest.raises(ValueError, match="business_date='2025-02-30' is not a date"):
        business_date_of_run({"params": {"business_date": "2025-02-30"}})
    with pytest.raises(ValueError, match="neither"):
        business_date_of_run({"params": {}})


def test_every_task_of_a_run_holds_the_lease_under_the_runs_name() -> None:
    run = SimpleNamespace(dag_id="vehiclehub_nightly", run_id="scheduled__2025-11-03")
    assert lease_holder({"dag_run": run}) == "airflow vehiclehub_nightly run scheduled__2025-11-03"
    assert lease_holder({"run_id": "manual__1"}) == "airflow vehiclehub_nightly run manual__1"
