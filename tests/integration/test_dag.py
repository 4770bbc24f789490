"""The nightly DAG: it parses without side effects, and ``airflow dags test`` runs a cycle.

The run test is the real thing: a migrated Airflow metadata DB (SQLite, once per
session), the real ``airflow dags test`` CLI in a subprocess, a hub configured with
local agency folders holding a few files, and the drops checked in the inboxes.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.factories import Vehicle, send
from tests.integration.airflow_env import DAG_FILE, DAG_ID, AirflowEnv, airflow_env

__all__ = ["airflow_env"]  # the session fixture, used by the tests below

AGENCY_TASKS = ["intake_commerce", "intake_police", "intake_customs", "intake_tax"]
ALL_TASKS = [*AGENCY_TASKS, "reconcile", "publish"]

#: The scheduled run of 4 November 2025, 02:30 in Shanghai, as Airflow stores it (UTC).
#: In UTC and in the subprocess's OS zone (New York, 13:30) it is 3 November, whose day
#: before is the 2nd: only the Shanghai reading gives the business date below.
RUN_AT = datetime(2025, 11, 3, 18, 30, tzinfo=UTC)
BUSINESS_DATE = date(2025, 11, 3)


# --- parsing ------------------------------------------------------------------------------


class _SideEffects:
    """Audit events that would mean the DAG file touched a file, a database or the network."""

    CONNECTS = ("socket.connect", "socket.getaddrinfo", "sqlite3.connect", "subprocess.Popen")

    def __init__(self) -> None:
        self.active = False
        self.seen: list[tuple[str, str]] = []

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active:
            return
        if event in self.CONNECTS:
            self.seen.append((event, repr(args[:2])))
        elif event == "open" and args and isinstance(args[0], (str, bytes, Path)):
            path, mode = str(args[0]), str(args[1] if len(args) > 1 else "r")
            writes = any(flag in mode for flag in "wax+")
            if path.endswith(".pyc") or "zoneinfo" in path:
                return  # bytecode caches; the time zone database
            contract = str(DAG_FILE.parents[1] / "schemas"), str(DAG_FILE.parents[1] / "exp")
            if writes or not path.endswith((".py", ".so")) or path.startswith(contract):
                self.seen.append((event, f"{path} ({mode})"))


@pytest.fixture(scope="module")
def audit() -> _SideEffects:
    hook = _SideEffects()
    sys.addaudithook(hook)  # hooks cannot be removed; this one is idle unless active
    return hook


def test_dag_parses_without_side_effects(
    audit: _SideEffects, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    monkeypatch.setenv("VHUB_CONFIG", str(tmp_path / "must-not-be-read.toml"))
    from airflow.dag_processing.dagbag import DagBag

    before = set(sys.modules)
    audit.active = True
    try:
        bag = DagBag(dag_folder=str(DAG_FILE.parent))
    finally:
        audit.active = False
    assert bag.import_errors == {}
    assert audit.seen == [], "the DAG file touched files, a database or the network at import"
    heavy = sorted(
        m
        for m in set(sys.modules) - before
        if m.startswith(("vehiclehub.pipeline", "vehiclehub.store"))
    )
    assert heavy == [], "the pipeline and the store load only inside the tasks"

    dag = bag.dags[DAG_ID]
    assert sorted(t.task_id for t in dag.tasks) == sorted(ALL_TASKS)
    for task_id in AGENCY_TASKS:
        assert dag.get_task(task_id).upstream_task_ids == set()
        assert dag.get_task(task_id).downstream_task_ids == {"reconcile"}
    assert dag.get_task("reconcile").upstream_task_ids == set(AGENCY_TASKS)
    assert dag.get_task("publish").upstream_task_ids == {"reconcile"}
    assert dag.get_task("publish").downstream_task_ids == set()

    assert str(dag.timezone) == "Asia/Shanghai"
    timetable: Any = dag.timetable  # the SDK's CronTriggerTimetable
    assert (timetable.expression, str(timetable.timezone)) == ("30 2 * * *", "Asia/Shanghai")
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.params["business_date"] is None
    assert dag.doc_md
    for task in dag.tasks:
        assert task.doc_md, task.task_id
        assert task.retries == 3
        assert task.retry_exponential_backoff == 2.0
        assert task.retry_policy is not None


# --- one real run -------------------------------------------------------------------------


def write_sample_files(root: Path, day: date) -> Vehicle:
    """A cleared export, its export deregistration after it, a refund citing it, its licence
    (and filing), and one bad row (an unreadable VIN on line 3 of the police file)."""
    v = Vehicle()
    send(root, "commerce", "enterprises", [v.filing()], day=day)
    send(root, "commerce", "licences", [v.licence()], day=day)
    send(root, "customs", "declarations", [v.item()], day=day)  # exported 2025-10-12
    send(
        root,
        "police",
        "events",
        [
            v.export_deregistration("E20251020001", "2025-10-20"),
            v.event("E20251101007", "transfer", "2025-11-01", vin="NOT-A-VIN"),
        ],
        day=day,
    )
    send(root, "tax", "refunds", [v.refund("R20251103001")], day=day)
    return v


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as source:
        return list(csv.DictReader(source))


@pytest.fixture
def hub(hub_config: Path) -> tuple[Path, Vehicle]:
    """The hub's configuration (SQLite, local agency folders) and the sample vehicle."""
    return hub_config, write_sample_files(hub_config.parent, BUSINESS_DATE)


@pytest.mark.airflow
def test_airflow_dags_test_runs_the_nightly_cycle(
    airflow_env: AirflowEnv, hub: tuple[Path, Vehicle]
) -> None:
    config, vehicle = hub
    root = config.parent
    run = airflow_env.run(
        "dags", "test", DAG_ID, RUN_AT.isoformat(), extra_env={"VHUB_CONFIG": str(config)}
    )
    print(f"airflow dags test took {run.seconds:.1f}s")
    assert run.returncode == 0, run.tail()

    run_id = airflow_env.latest_run_id()
    states = airflow_env.task_states(run_id)
    assert states == {task: ("success", 1) for task in ALL_TASKS}, run.tail()

    # Every task worked on the previous Shanghai day of the run.
    returned = airflow_env.return_values(run_id)
    assert {t: returned[t]["business_date"] for t in ALL_TASKS} == {  # type: ignore[index]
        t: BUSINESS_DATE.isoformat() for t in ALL_TASKS
    }
    with sqlite3.connect(root / "hub.db") as db:
        intakes = db.execute("SELECT agency, run_date, status FROM agency_intakes").fetchall()
    assert sorted(intakes) == sorted(
        (agency, BUSINESS_DATE.isoformat(), "received")
        for agency in ("commerce", "police", "customs", "tax")
    )

    stamp = f"{BUSINESS_DATE:%Y%m%d}"
    police = root / "exchange" / "police" / "inbox"
    verification = police / f"hub_police_export_verification_{stamp}_001.csv"
    manifest = json.loads(verification.with_name(verification.stem + ".manifest.json").read_text())
    assert manifest["business_date"] == BUSINESS_DATE.isoformat()
    assert manifest["agency"] == "police" and manifest["feed"] == "export_verification"
    assert [
        (r["event_id"], r["vin"], r["verdict"], r["decl_no"], r["exported_at"])
        for r in _rows(verification)
    ] == [("E20251020001", vehicle.vin, "verified", vehicle.decl_no, "2025-10-12")]

    refunds = root / "exchange" / "tax" / "inbox" / f"hub_tax_refund_verification_{stamp}_001.csv"
    assert refunds.with_name(refunds.stem + ".manifest.json").exists()
    assert [(r["refund_no"], r["verdict"]) for r in _rows(refunds)] == [
        ("R20251103001", "verified")
    ]

    rejections = _rows(police / f"hub_police_rejections_{stamp}_001.csv")
    assert [(r["file"], r["line"], r["column"], r["value"]) for r in rejections] == [
        (f"police_events_{stamp}_001.csv", "3", "vin", "NOT-A-VIN")
    ]
    assert (root / "work" / "reports" / BUSINESS_DATE.isoformat()).is_dir()


@pytest.mark.airflow
def test_configuration_error_fails_at_once_without_retries(
    airflow_env: AirflowEnv, tmp_path: Path
) -> None:
    """The config file named by the Airflow Variable is missing: no task retries."""
    missing = tmp_path / "no-such-hub.toml"
    run = airflow_env.run(
        "dags", "test", DAG_ID, "2025-11-05T18:30:00+00:00",
        extra_env={"AIRFLOW_VAR_VEHICLEHUB_CONFIG": str(missing)},
    )  # fmt: skip
    print(f"airflow dags test (failing) took {run.seconds:.1f}s")
    assert run.returncode != 0, run.tail()
    states = airflow_env.task_states(airflow_env.latest_run_id())
    assert {t: states[t] for t in AGENCY_TASKS} == {t: ("failed", 1) for t in AGENCY_TASKS}
    assert states["reconcile"][0] == states["publish"][0] == "upstream_failed"
    assert f"configuration file {missing} does not exist" in run.output
    assert "ConfigError is not transient" in run.output
