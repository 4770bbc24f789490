"""The nightly DAG: it parses without side effects, and ``airflow dags test`` runs a cycle.

The run test is the real thing: a migrated Airflow metadata DB (SQLite, once per
session), the real ``airflow dags test`` CLI in a subprocess, a hub configured with
local agency folders holding a few files, the drops checked in the inboxes and the
feeds' asset events in the metadata DB.
"""

from __future__ import annotations

import csv
import json
import re
import sqlite3
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.factories import Vehicle, send
from tests.integration.airflow_env import DAG_FILE, DAG_ID, AirflowEnv, airflow_env

__all__ = ["airflow_env"]  # the session fixture, used by the tests below

AGENCIES = ["commerce", "police", "customs", "tax"]
SENSOR_TASKS = [f"wait_{agency}" for agency in AGENCIES]
FEED_TASKS = [f"feeds_{agency}" for agency in AGENCIES]
AGENCY_TASKS = [f"intake_{agency}" for agency in AGENCIES]
#: The intakes of the sample night: one mapped task instance per feed found.
INTAKES = [
    "intake_commerce[enterprises]",
    "intake_commerce[licences]",
    "intake_police[events]",
    "intake_customs[declarations]",
    "intake_tax[refunds]",
]
ALL_TASKS = [
    "preflight",
    "upgrade_store",
    *SENSOR_TASKS,
    *FEED_TASKS,
    *AGENCY_TASKS,
    "reconcile",
    "publish",
    "prune",
    "files_accepted",
]

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
            if path.endswith((".pyc", ".mo")) or "zoneinfo" in path:
                return  # bytecode caches; translations (the schedule's description); time zones
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
    # The store is upgraded once per run, once the checks pass, before anything else.
    assert dag.get_task("upgrade_store").upstream_task_ids == {"preflight"}
    assert dag.get_task("upgrade_store").downstream_task_ids == set(SENSOR_TASKS)
    for agency in AGENCIES:
        sensor, listing = dag.get_task(f"wait_{agency}"), dag.get_task(f"feeds_{agency}")
        intake = dag.get_task(f"intake_{agency}")
        assert sensor.upstream_task_ids == {"upgrade_store"}
        assert sensor.downstream_task_ids == {f"feeds_{agency}"}
        assert listing.upstream_task_ids == {f"wait_{agency}"}
        assert listing.downstream_task_ids == {f"intake_{agency}"}
        assert intake.upstream_task_ids == {f"feeds_{agency}"}
        assert intake.downstream_task_ids == {"reconcile", "files_accepted"}
        # The sensor gives up (skipped) at the deadline, and the listing runs after it.
        sensor_settings = (sensor.mode, sensor.soft_fail, sensor.poke_interval, sensor.timeout)
        assert sensor_settings == ("reschedule", True, 600, 24 * 3600)
        assert sensor.trigger_rule == "all_success"
        assert listing.trigger_rule == "none_failed"
        # One intake per feed found: dynamic task mapping over the listing's result.
        assert type(intake).__name__ == "DecoratedMappedOperator"
        assert intake.trigger_rule == "all_success"
        assert [(type(o).__name__, o.name) for o in intake.outlets] == [
            ("AssetAlias", f"vehiclehub.{agency}.feeds")
        ]
    assert dag.get_task("reconcile").upstream_task_ids == set(AGENCY_TASKS)
    assert dag.get_task("publish").upstream_task_ids == {"reconcile"}
    assert dag.get_task("files_accepted").upstream_task_ids == set(AGENCY_TASKS)
    assert dag.get_task("preflight").upstream_task_ids == set()
    assert dag.get_task("publish").downstream_task_ids == {"prune"}
    assert dag.get_task("prune").downstream_task_ids == set()
    # An agency with nothing to take has its mapped intake skipped: the night goes on.
    for task_id in ("reconcile", "files_accepted"):
        assert dag.get_task(task_id).trigger_rule == "none_failed"
    for task_id in ("publish", "prune"):
        assert dag.get_task(task_id).trigger_rule == "all_success"
    for task_id in ("reconcile", "publish", "prune"):
        assert dag.get_task(task_id).outlets == []

    assert str(dag.timezone) == "Asia/Shanghai"
    timetable: Any = dag.timetable  # vehiclehub.airflow.schedule.NightlyTimetable
    assert (timetable._expression, timetable._timezone.name) == ("30 2 * * *", "Asia/Shanghai")
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.params["business_date"] is None
    assert dag.params["full"] is False
    assert dag.doc_md
    for task in dag.tasks:
        assert task.doc_md, task.task_id
        assert task.retries == 3
        assert task.retry_exponential_backoff == 2.0
        assert task.retry_policy is not None


# --- one real run -------------------------------------------------------------------------


def write_sample_files(root: Path, day: date) -> Vehicle:
    """A cleared export, its export deregistration after it, a refund citing it, its licence
    (and filing), and one bad row (an unreadable VIN on line 3 of the police file).

    Commerce never sends its trade-in claims; tax sends its refunds file again as 002 (a
    duplicate) and a 003 whose manifest's checksum is wrong (rejected whole).
    """
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
    send(root, "tax", "refunds", [v.refund("R20251103001")], day=day, seq=2)
    send(
        root, "tax", "refunds", [v.refund("R20251103009")], day=day, seq=3,
        manifest={"sha256": "0" * 64},
    )  # fmt: skip
    return v


def asset_events(airflow_env: AirflowEnv, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """Asset URI -> the extra of each event the run emitted, with the task and alias behind it."""
    with sqlite3.connect(f"file:{airflow_env.database}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT asset.uri, asset_event.extra, asset_event.source_task_id, asset_alias.name"
            " FROM asset_event JOIN asset ON asset.id = asset_event.asset_id"
            " LEFT JOIN asset_alias_asset_event link ON link.event_id = asset_event.id"
            " LEFT JOIN asset_alias ON asset_alias.id = link.alias_id"
            " WHERE asset_event.source_dag_id = ? AND asset_event.source_run_id = ?"
            " ORDER BY asset_event.id",
            (DAG_ID, run_id),
        ).fetchall()
    events: dict[str, list[dict[str, Any]]] = {}
    for uri, extra, task_id, alias in rows:
        events.setdefault(uri, []).append({**json.loads(extra), "task": task_id, "alias": alias})
    return events


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as source:
        return list(csv.DictReader(source))


#: A business date [retention] no longer keeps drops and reports of, counted back from
#: BUSINESS_DATE (90 days by default).
EXPIRED = date(2025, 8, 1)


@pytest.fixture
def hub(hub_config: Path) -> tuple[Path, Vehicle]:
    """The hub's configuration (SQLite, local agency folders) and the sample vehicle, with
    a drop and a report of a date past retention in the work directory."""
    work = hub_config.parent / "work"
    old_drop = (
        work / "drops" / EXPIRED.isoformat() / f"hub_police_findings_{EXPIRED:%Y%m%d}_001.csv"
    )
    old_drop.parent.mkdir(parents=True)
    old_drop.write_text("header\r\n")
    (work / "reports" / EXPIRED.isoformat()).mkdir(parents=True)
    (work / "reports" / EXPIRED.isoformat() / "index.html").write_text("<html></html>")
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
    # Commerce's trade-in claims never came: its sensor gave up at the deadline (long
    # past for this date), and its intakes ran all the same, one per feed found.
    # A tax file was rejected whole: files_accepted marks the night, skipped.
    unmapped = [t for t in ALL_TASKS if t not in AGENCY_TASKS]
    assert states == {
        **{task: ("success", 1) for task in unmapped},
        **{intake: ("success", 1) for intake in INTAKES},
        "wait_commerce": ("skipped", 1),
        "files_accepted": ("skipped", 1),
    }, run.tail()
    assert "commerce: arrival deadline 2025-11-04T06:00:00+08:00 passed; " in run.output
    assert "not arrived for 2025-11-03: commerce/tradein_claims" in run.output

    # Every task worked on the previous Shanghai day of the run.
    stamp = f"{BUSINESS_DATE:%Y%m%d}"
    returned: dict[str, Any] = airflow_env.return_values(run_id)
    worked = ["preflight", *SENSOR_TASKS[1:], *INTAKES, "reconcile", "publish", "prune"]
    assert "wait_commerce" not in returned
    assert {t: returned[t]["business_date"] for t in worked} == {
        t: BUSINESS_DATE.isoformat() for t in worked
    }
    for task in SENSOR_TASKS[1:]:
        assert (returned[task]["done"], returned[task]["missing"]) == (True, []), task
    # Each agency's outbox listed once: per feed found, its files in name order.
    assert returned["feeds_commerce"] == [
        {"agency": "commerce", "feed": feed, "files": [f"commerce_{feed}_{stamp}_001.csv"]}
        for feed in ("enterprises", "licences")
    ]
    assert returned["feeds_tax"] == [
        {
            "agency": "tax",
            "feed": "refunds",
            "files": [f"tax_refunds_{stamp}_{seq:03d}.csv" for seq in (1, 2, 3)],
        }
    ]
    assert "commerce/tradein_claims for 2025-11-03: not received" in run.output
    assert {
        intake: (returned[intake]["feed"], returned[intake]["feeds"]) for intake in INTAKES
    } == {
        intake: (intake.split("[")[1][:-1], {intake.split("[")[1][:-1]: "received"})
        for intake in INTAKES
    }
    assert [(f["name"], f["status"]) for f in returned["intake_tax[refunds]"]["files"]] == [
        (f"tax_refunds_{BUSINESS_DATE:%Y%m%d}_{seq:03d}.csv", status)
        for seq, status in [(1, "loaded"), (2, "duplicate"), (3, "rejected")]
    ]

    # One asset event per loaded file, through the agency's alias; the duplicate and the
    # rejected tax files, and the trade-in claims that never came, emit none.
    loaded = {
        ("commerce", "enterprises"): (1, 1, 0),
        ("commerce", "licences"): (1, 1, 0),
        ("police", "events"): (2, 1, 1),
        ("customs", "declarations"): (1, 1, 0),
        ("tax", "refunds"): (1, 1, 0),
    }
    assert asset_events(airflow_env, run_id) == {
        f"x-vehiclehub://{agency}/{feed}": [
            {
                "file": f"{agency}_{feed}_{stamp}_001.csv",
                "business_date": BUSINESS_DATE.isoformat(),
                "run_date": BUSINESS_DATE.isoformat(),
                "rows": rows,
                "loaded": taken,
                "rejected": rejected,
                "ignored": 0,
                "task": f"intake_{agency}",
                "alias": f"vehiclehub.{agency}.feeds",
            }
        ]
        for (agency, feed), (rows, taken, rejected) in loaded.items()
    }
    assert returned["intake_tax[refunds]"]["assets"] == ["x-vehiclehub://tax/refunds"]

    # The logs tell the night: the file rejected whole and why, each agency's rows,
    # and where the drops and the report are, each on a line of its own.
    rejected = f"tax/refunds: tax_refunds_{stamp}_003.csv rejected whole: "
    assert rejected in run.output
    assert f"rejected whole: tax/tax_refunds_{stamp}_003.csv: " in run.output
    tax = "tax/refunds: 1 file(s) loaded, 1 rejected whole, 1 duplicate(s), 0 waiting; "
    assert tax in run.output
    drops_dir = root / "work" / "drops" / BUSINESS_DATE.isoformat()
    assert re.search(rf"drops: {re.escape(str(drops_dir))}\s", run.output)
    assert re.search(r"report: \S+/index\.html\s", run.output)

    # Preflight passed every check before anything was taken.
    assert returned["preflight"]["passed"] == [
        "business_date_in_range",
        "work_dir_writable",
        "exchange_roots_exist",
        "sftp_credentials_present",
        "archive_key_opens_the_archive",
        "store_reachable",
    ]
    # Prune ended the run: the drop and the report past retention went, tonight's stayed,
    # and its log says so.
    expired = EXPIRED.isoformat()
    pruned = returned["prune"]
    assert pruned["drops"] == [f"drops/{expired}/hub_police_findings_{EXPIRED:%Y%m%d}_001.csv"]
    assert (pruned["reports"], pruned["archive"]) == ([f"reports/{expired}"], [])
    assert not (root / "work" / "drops" / expired).exists()
    assert not (root / "work" / "reports" / expired).exists()
    assert f"prune: removed drops/{expired}/hub_police_findings_" in run.output
    assert f"prune: removed 1 drop files ({expired})" in run.output
    assert f"prune: removed 1 report folders ({expired})" in run.output

    # Great Expectations' INFO chatter stays out of the task logs.
    assert "[great_expectations" not in run.output
    with sqlite3.connect(root / "hub.db") as db:
        intakes = db.execute("SELECT agency, run_date, status FROM agency_intakes").fetchall()
    assert sorted(intakes) == sorted(
        (agency, BUSINESS_DATE.isoformat(), "received")
        for agency in ("commerce", "police", "customs", "tax")
    )

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
    """The config file named by the Airflow Variable is missing: no task retries.

    Preflight is the first to read it: it fails at once, and nothing runs after it.
    """
    missing = tmp_path / "no-such-hub.toml"
    run = airflow_env.run(
        "dags", "test", DAG_ID, "2025-11-05T18:30:00+00:00",
        extra_env={"AIRFLOW_VAR_VEHICLEHUB_CONFIG": str(missing)},
    )  # fmt: skip
    print(f"airflow dags test (failing) took {run.seconds:.1f}s")
    assert run.returncode != 0, run.tail()
    states = airflow_env.task_states(airflow_env.latest_run_id())
    assert states["preflight"] == ("failed", 1)
    after = [
        "upgrade_store",
        *SENSOR_TASKS,
        *FEED_TASKS,
        *AGENCY_TASKS,
        "reconcile",
        "publish",
        "prune",
    ]
    assert {t: states[t][0] for t in after} == {t: "upstream_failed" for t in after}
    assert f"configuration file {missing} does not exist" in run.output
    assert "ConfigError is not transient" in run.output


@pytest.mark.airflow
def test_preflight_stops_the_run_before_any_file_is_taken(
    airflow_env: AirflowEnv, hub: tuple[Path, Vehicle]
) -> None:
    """A wrong exchange root and one lacking its inbox: the run fails at ``preflight``,
    once and without retries, its log listing both problems as ``vhub run`` does, and
    nothing is taken or written."""
    config, _ = hub
    root = config.parent
    police = root / "exchange" / "police"
    config.write_text(config.read_text().replace(str(police), str(root / "no-such-root")))
    (root / "exchange" / "tax" / "inbox").rmdir()
    outboxes = {p: sorted(p.iterdir()) for p in (root / "exchange").glob("*/outbox")}
    run = airflow_env.run(
        "dags", "test", DAG_ID, RUN_AT.isoformat(), extra_env={"VHUB_CONFIG": str(config)}
    )
    assert run.returncode != 0, run.tail()
    states = airflow_env.task_states(airflow_env.latest_run_id())
    assert states["preflight"] == ("failed", 1)
    after = [
        "upgrade_store",
        *SENSOR_TASKS,
        *FEED_TASKS,
        *AGENCY_TASKS,
        "reconcile",
        "publish",
        "prune",
        "files_accepted",
    ]
    assert {t: states[t][0] for t in after} == {t: "upstream_failed" for t in after}
    no_root = f"police: the exchange root {root / 'no-such-root'} does not exist; fix "
    no_inbox = f"tax: the exchange root {root / 'exchange' / 'tax'} has no inbox/; create "
    for problem in (no_root, no_inbox):
        assert f"preflight: {problem}" in run.output
    assert f"cannot run business date {BUSINESS_DATE}; nothing was taken or changed" in run.output
    assert "PreflightFailed is not transient" in run.output
    assert {p: sorted(p.iterdir()) for p in (root / "exchange").glob("*/outbox")} == outboxes
    assert not (root / "hub.db").exists()


@pytest.mark.airflow
def test_agencies_with_nothing_to_take_skip_their_intake_and_the_night_goes_on(
    airflow_env: AirflowEnv, hub_config: Path
) -> None:
    """Only police sends: the other agencies' listings find no feed, their mapped
    intakes have no instance (*skipped*), and reconcile, publish and prune run all the
    same, as ``vhub run`` would."""
    root = hub_config.parent
    v = Vehicle()
    send(root, "police", "events", [v.export_deregistration("E20251020001", "2025-10-20")])
    run = airflow_env.run(
        "dags", "test", DAG_ID, RUN_AT.isoformat(), extra_env={"VHUB_CONFIG": str(hub_config)}
    )
    assert run.returncode == 0, run.tail()
    run_id = airflow_env.latest_run_id()
    states = {task: state for task, (state, _) in airflow_env.task_states(run_id).items()}
    quiet = ["commerce", "customs", "tax"]
    assert states == {
        **{task: "success" for task in ["preflight", "upgrade_store", *FEED_TASKS]},
        "intake_police[events]": "success",
        "wait_police": "success",
        **{f"wait_{agency}": "skipped" for agency in quiet},
        **{f"intake_{agency}": "skipped" for agency in quiet},
        **{task: "success" for task in ("reconcile", "publish", "prune", "files_accepted")},
    }, run.tail()
    returned: dict[str, Any] = airflow_env.return_values(run_id)
    assert {agency: returned[f"feeds_{agency}"] for agency in quiet} == {a: [] for a in quiet}
    assert "customs/declarations for 2025-11-03: not received" in run.output
    verification = f"hub_police_export_verification_{BUSINESS_DATE:%Y%m%d}_001.csv"
    assert (root / "exchange" / "police" / "inbox" / verification).exists()
