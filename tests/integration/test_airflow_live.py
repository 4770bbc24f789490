"""The nightly DAG under a real Airflow, at a real size, against ``vhub run``.

Airflow's scheduler, DAG processor and API server run as a deployment runs them
(LocalExecutor, metadata on PostgreSQL); the DAG is triggered through the REST API
for three business days of a 30,000-vehicle sample, whose first day holds a police
file of about 90,000 rows: it is prepared by the intake's worker process inside a
real Airflow task process. Every run must succeed, and the drops delivered to the
agencies must be those ``vhub run`` delivers on the same files (manifests compared
without ``generated_at``, ``signature`` and ``log_head``). Unpausing the DAG must
create no scheduled run, unless the test runs while the night's scheduled time (02:30
Asia/Shanghai) is due or within its start grace: the scheduler then rightly creates
that night's run, which would hold the store while its sensors wait for the night's
files, so the scheduler is told to create none (as the Celery test always does) and
that check is left to the timetable's unit tests.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from tests.conftest import postgres_database, write_config
from tests.integration.airflow_env import DAG_ID
from tests.integration.airflow_live import LiveAirflow, delivered_drops, live_airflow

from vehiclehub.airflow.dates import BUSINESS_TIMEZONE
from vehiclehub.airflow.schedule import START_GRACE
from vehiclehub.config import AGENCIES
from vehiclehub_samples import business_dates, generate_world

pytestmark = [pytest.mark.airflow_live, pytest.mark.postgres, pytest.mark.slow]

VEHICLES = 30_000
DAYS = business_dates(date(2025, 11, 3), 3)
#: The size from which the intake prepares a file in its worker process.
WORKER_ROWS = 60_000
#: Longer than the test takes under load.
TEST_SPAN = timedelta(minutes=40)


def _night_due_during_test(now: datetime) -> bool:
    """Whether the scheduler may create the night's run while the test runs: the DAG's
    scheduled time (02:30 in the business time zone) falls within the test's span or
    passed less than the start grace ago."""
    local = now.astimezone(ZoneInfo(BUSINESS_TIMEZONE))
    for days in (-1, 0, 1):
        tick = (local + timedelta(days=days)).replace(hour=2, minute=30, second=0, microsecond=0)
        if tick - TEST_SPAN <= local <= tick + START_GRACE:
            return True
    return False


def test_the_night_due_during_the_test_is_told_by_the_business_clock() -> None:
    shanghai = ZoneInfo(BUSINESS_TIMEZONE)
    assert _night_due_during_test(datetime(2026, 12, 4, 2, 45, tzinfo=shanghai))
    assert _night_due_during_test(datetime(2026, 12, 4, 2, 0, tzinfo=shanghai))
    assert not _night_due_during_test(datetime(2026, 12, 4, 3, 31, tzinfo=shanghai))
    assert not _night_due_during_test(datetime(2026, 12, 4, 1, 45, tzinfo=shanghai))


def _vhub_run(config: Path, day: date) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "vehiclehub.cli", "run", "--config", str(config)]
    return subprocess.Popen(
        [*command, "--date", day.isoformat()],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _check_run(airflow: LiveAirflow, run_id: str, day: date) -> None:
    run = airflow.wait_for_run(DAG_ID, run_id)
    tasks = airflow.task_instances(DAG_ID, run_id)
    states = {task: ti["state"] for task, ti in tasks.items()}
    assert run["state"] == "success", f"{run_id}: {states}\n{airflow.diagnose()}"
    # One intake per feed found (the mapped instances), each of them run.
    mapped = [ti for ti in tasks.values() if ti["task_id"].startswith("intake_")]
    intakes = [
        airflow.return_value(DAG_ID, run_id, ti["task_id"], ti["map_index"])
        for ti in mapped
        if ti["map_index"] >= 0
    ]
    listed = [airflow.return_value(DAG_ID, run_id, f"feeds_{agency}") for agency in AGENCIES]
    assert sorted((i["agency"], i["feed"]) for i in intakes) == sorted(
        (f["agency"], f["feed"]) for found in listed for f in found
    )
    rejected_whole = [f for i in intakes for f in i["files"] if f["status"] == "rejected"]
    for task, state in states.items():
        if task.startswith("intake_") and tasks[task]["map_index"] < 0:
            # An agency with nothing to take: no instance, skipped.
            assert state == "skipped", f"{run_id}: {task} is {state}"
        elif task.startswith("wait_"):
            # A sensor past its agency's deadline with a feed missing gives up: skipped.
            assert state in ("success", "skipped"), f"{run_id}: {task} is {state}"
        elif task == "files_accepted":
            # The grid marks a night with files rejected whole.
            assert state == ("skipped" if rejected_whole else "success"), rejected_whole
        else:
            assert state == "success", f"{run_id}: {task} is {state}"
    published = airflow.return_value(DAG_ID, run_id, "publish")
    assert published["business_date"] == day.isoformat()
    publish_log = airflow.task_log(DAG_ID, run_id, "publish")
    assert f"report: {published['report']}" in publish_log


def test_three_nights_under_a_real_airflow_deliver_what_vhub_run_delivers(
    tmp_path: Path,
) -> None:
    world = generate_world(VEHICLES, DAYS, seed=3)
    big = [
        f for f in world.files_of(DAYS[0]) if f.agency == "police" and len(f.frame) >= WORKER_ROWS
    ]
    assert big, "the sample has no police file big enough for the intake's worker process"

    reference_root, hub_root = tmp_path / "vhub", tmp_path / "airflow-hub"
    reference_config = write_config(reference_root, f"sqlite:///{reference_root / 'hub.db'}")
    night_due = _night_due_during_test(datetime.now(ZoneInfo(BUSINESS_TIMEZONE)))
    with postgres_database("vhub_store") as store_url:
        hub_config = write_config(hub_root, store_url)
        home = tmp_path / "airflow"
        home.mkdir()
        env = {"VHUB_CONFIG": str(hub_config)}
        if night_due:
            env["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] = "False"
        with live_airflow(home, extra_env=env) as airflow:
            dag = airflow.wait_for_dag(DAG_ID)
            assert dag["timetable_summary"] == "30 2 * * *"
            airflow.set_paused(DAG_ID, False)
            for day in DAYS:
                for root in (reference_root, hub_root):
                    world.write_day(day, root / "exchange")
                reference = _vhub_run(reference_config, day)
                run_id = airflow.trigger(
                    DAG_ID, {"business_date": day.isoformat()}, note=f"business date {day}"
                )
                _check_run(airflow, run_id, day)
                output, _ = reference.communicate(timeout=600)
                assert reference.returncode == 0, output[-3000:]

            police = airflow.return_value(
                DAG_ID, airflow.runs(DAG_ID)[0]["dag_run_id"], "intake_police", map_index=0
            )
            assert police["feed"] == "events"
            loaded = {f["name"]: f for f in police["files"] if f["status"] == "loaded"}
            assert all(loaded[file.name]["rows"] >= WORKER_ROWS for file in big)
            # Unpaused during the whole test, away from the night's scheduled time (or
            # with scheduled runs off when it is due): no scheduled run.
            kinds = [run["run_type"] for run in airflow.runs(DAG_ID)]
            assert kinds == ["manual"] * len(DAYS)

    assert delivered_drops(hub_root) == delivered_drops(reference_root)
