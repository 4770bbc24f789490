"""The nightly DAG on Airflow's CeleryExecutor, run natively as ``docker/compose.yaml``
deploys it: a fresh PostgreSQL metadata database, the scheduler, DAG processor and API
server (``airflow_live``), and two Celery workers on the machine's Redis, each with its
own Celery and task-instance host name, serving no logs (``--skip-serve-logs``). Every
process gets ``docker/airflow.env`` and the per-site variables compose sets; the only
other departures are ``TEST_ONLY_SETTINGS`` (a shorter heartbeat timeout and retry delay,
so that a killed task is retried in seconds), the live harness's own (ports, paths,
login), and ``NO_SCHEDULED_RUNS``: the test triggers the one run it checks.

One run, triggered through the REST API for a demo business date, with the hub's store
on PostgreSQL: it must succeed with every task instance run by a Celery worker, both
workers used, and the intakes of the feeds (the mapped instances, loading at once)
spread over both; the intake of police's events is SIGKILLed (its supervisor and task
process) after its first file loaded and must be retried by Airflow; the drops must
equal those of ``vhub run`` on the same files, and the store must hold each file's rows
once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import create_engine, func, select
from tests.conftest import postgres_database, write_config
from tests.deployment import TEST_ONLY_SETTINGS, shared_airflow_settings
from tests.integration.airflow_env import DAG_ID
from tests.integration.airflow_live import (
    AirflowFailed,
    LiveAirflow,
    delivered_drops,
    live_airflow,
    start_celery_worker,
    wait_for_celery_workers,
)

from vehiclehub.config import AGENCIES
from vehiclehub.store.schema import intake_files, metadata
from vehiclehub_samples import business_dates, generate_world

pytestmark = [pytest.mark.celery, pytest.mark.postgres, pytest.mark.slow]

VEHICLES = 2_000
DAYS = business_dates(date(2025, 11, 3), 2)
WORKERS = ("vhub-worker-1", "vhub-worker-2")
KILLED_AGENCY = "police"
REDIS = "127.0.0.1:6379"
#: The scheduler starts only runs triggered through the API (no run of the schedule's
#: latest night when the DAG is unpaused).
NO_SCHEDULED_RUNS = {"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"}


def _worker_logs(airflow: LiveAirflow) -> str:
    return "\n".join(airflow.log_tail(name) for name in WORKERS)


def _task_processes(ti_id: str) -> list[int]:
    """The task's processes: the task runner (titled ``airflow worker -- <ti id>``) and
    the supervisor that forked it (the Celery pool process)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if f"-- {ti_id}" in title:
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            return [int(entry.name), parent]
    return []


def _killed_intake(tasks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The task instance of the police events' intake (an instance of the mapped
    ``intake_police``), or an empty dict before the intake is mapped."""
    task_id = f"intake_{KILLED_AGENCY}"
    return next(
        (ti for ti in tasks.values() if ti["task_id"] == task_id and ti["map_index"] >= 0), {}
    )


def _kill_mid_intake(airflow: LiveAirflow, run_id: str, store_url: str, files: int) -> int:
    """SIGKILL the agency's intake once it loaded a file and has more to take; the
    number of its files loaded by then."""
    engine = create_engine(store_url)
    task_id = f"intake_{KILLED_AGENCY}"
    count = (
        select(func.count()).select_from(intake_files).where(intake_files.c.agency == KILLED_AGENCY)
    )
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            ti = _killed_intake(airflow.task_instances(DAG_ID, run_id))
            if ti.get("state") == "running":
                with engine.connect() as conn:
                    taken = int(conn.execute(count).scalar_one()) if _has_tables(conn) else 0
                pids = _task_processes(ti["id"])
                if 1 <= taken < files and pids:
                    for pid in pids:
                        os.kill(pid, signal.SIGKILL)
                    return taken
                assert taken < files, f"{task_id} took all {files} files before it was caught"
            assert ti.get("state") not in ("success", "failed"), f"{task_id} ended: {ti}"
            time.sleep(0.05)
    finally:
        engine.dispose()
    raise AirflowFailed(f"{task_id} never ran with files left\n{_worker_logs(airflow)}")


def _has_tables(conn: Any) -> bool:
    return bool(conn.dialect.has_table(conn, intake_files.name))


def _feed_rows(url: str) -> dict[str, int]:
    """Rows per table of the hub's store."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                for t in metadata.sorted_tables
                if t.name.split("_", 1)[0] in AGENCIES
            }
    finally:
        engine.dispose()


def test_the_nightly_dag_on_celery_workers_delivers_what_vhub_run_delivers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = generate_world(VEHICLES, DAYS, seed=5)
    day = DAYS[-1]
    reference_root, hub_root = tmp_path / "vhub", tmp_path / "celery-hub"
    reference_url = f"sqlite:///{reference_root / 'hub.db'}"
    reference_config = write_config(reference_root, reference_url)
    broker_db = random.randrange(1, 16)
    broker = redis.Redis.from_url(f"redis://{REDIS}/{broker_db}")
    try:
        broker.flushdb()
    except redis.ConnectionError as exc:
        pytest.skip(f"Redis not reachable at {REDIS}: {exc}")
    with postgres_database("vhub_store") as store_url:
        hub_config = write_config(hub_root, store_url)
        for root in (reference_root, hub_root):
            for each in DAYS:
                world.write_day(each, root / "exchange")
        police_files = len(list((hub_root / "exchange" / KILLED_AGENCY / "outbox").glob("*.csv")))
        reference = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vehiclehub.cli",
                "run",
                "--config",
                str(reference_config),
                "--date",
                day.isoformat(),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        settings = {
            **shared_airflow_settings(),
            **TEST_ONLY_SETTINGS,
            **NO_SCHEDULED_RUNS,
            "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS}/{broker_db}",
            "VHUB_CONFIG": str(hub_config),
        }
        home = tmp_path / "airflow"
        home.mkdir()
        started = time.monotonic()
        with live_airflow(
            home, executor=settings["AIRFLOW__CORE__EXECUTOR"], extra_env=settings
        ) as airflow:
            for name in WORKERS:
                start_celery_worker(airflow, name)
            airflow.wait_for_dag(DAG_ID)
            wait_for_celery_workers(airflow, WORKERS)
            airflow.set_paused(DAG_ID, False)
            run_id = airflow.trigger(DAG_ID, {"business_date": day.isoformat()})
            taken_before_kill = _kill_mid_intake(airflow, run_id, store_url, police_files)
            run = airflow.wait_for_run(DAG_ID, run_id)
            tasks = airflow.task_instances(DAG_ID, run_id)
            table = "\n".join(
                f"  {task:<30} {ti['state']:<8} try {ti['try_number']}  on {ti['hostname']}"
                for task, ti in sorted(tasks.items())
            )
            with capsys.disabled():
                print(
                    f"\nCelery run {run_id} ({time.monotonic() - started:.0f} s); "
                    f"intake_{KILLED_AGENCY} killed after {taken_before_kill} of "
                    f"{police_files} files:\n{table}"
                )
            assert run["state"] == "success", (
                f"{table}\n{airflow.diagnose()}\n{_worker_logs(airflow)}"
            )
            assert {ti["executor"] or "CeleryExecutor" for ti in tasks.values()} == {
                "CeleryExecutor"
            }
            assert {ti["hostname"] for ti in tasks.values()} == set(WORKERS), table
            # The feeds' intakes, one mapped instance per feed, spread over both workers.
            intakes = [t for t in tasks.values() if t["task_id"].startswith("intake_")]
            assert all(t["map_index"] >= 0 for t in intakes), table
            assert {t["hostname"] for t in intakes} == set(WORKERS), table
            assert _killed_intake(tasks)["try_number"] >= 2, table
        output, _ = reference.communicate(timeout=600)
        assert reference.returncode == 0, output[-3000:]
        assert _feed_rows(store_url) == _feed_rows(reference_url)
        engine = create_engine(store_url)
        with engine.connect() as conn:
            names = conn.execute(select(intake_files.c.agency, intake_files.c.name)).all()
        engine.dispose()
        assert len(names) == len(set(names))
    broker.flushdb()
    assert delivered_drops(hub_root) == delivered_drops(reference_root)
