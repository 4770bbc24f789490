"""The DAG's fan-out on PostgreSQL: every feed found loads at the same time, each in a
process of its own, and the store ends as ``vhub run`` leaves it.

Two business days of a sample (with a stray file whose name gives no feed) wait in the
outboxes. One copy is taken by ``vhub run`` on SQLite, one agency and file after the
other. On the other copy, as the nightly DAG does it, each agency's outbox is listed
once (``list_feeds``) and then every feed found is taken by ``intake_feed`` in its own
process, all released at once, before reconcile and publish. The intakes must overlap
in time, and the store must hold what ``vhub run``'s holds: the same outcome and row
counts per file (which add up), each file once, the same rows per feed table, an
intact exchange log with as many entries, and the same drops delivered.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select
from tests.conftest import postgres_database, write_config
from tests.integration.airflow_live import delivered_drops

from vehiclehub.config import AGENCIES, load_settings
from vehiclehub.feed_intake import list_feeds
from vehiclehub.pipeline import publish, reconcile, upgrade_store
from vehiclehub.store.exchange_log import log_entries, verify_chain
from vehiclehub.store.schema import intake_files, metadata
from vehiclehub_samples import business_dates, generate_world

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

VEHICLES = 3_000
DAYS = business_dates(date(2025, 11, 3), 2)

#: One feed's intake in a process of its own: it imports the stack, says it is ready,
#: waits for the go file, takes its files and prints when it started and ended.
TAKE_ONE_FEED = """
import json, sys, time
from datetime import date
from pathlib import Path
from vehiclehub.config import load_settings
from vehiclehub.feed_intake import intake_feed

config, agency, feed, files, day, go = json.loads(sys.argv[1])
settings = load_settings(config)
print("ready", flush=True)
while not Path(go).exists():
    time.sleep(0.005)
started = time.time()
result = intake_feed(settings, agency, feed, files, date.fromisoformat(day))
ended = time.time()
print(json.dumps({"started": started, "ended": ended, "result": result.to_dict()}), flush=True)
"""


def _stray_file(root: Path) -> None:
    """A complete file in police's outbox whose name gives no feed (rejected whole)."""
    outbox = root / "exchange" / "police" / "outbox"
    (outbox / "police_backlog.csv").write_text("vin\r\n", encoding="utf-8")
    (outbox / "police_backlog.manifest.json").write_text("{}", encoding="utf-8")


def _take_every_feed_at_once(config: Path, found: list[dict[str, Any]], day: date) -> list[Any]:
    go = config.parent / "go"
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                TAKE_ONE_FEED,
                json.dumps(
                    [str(config), f["agency"], f["feed"], f["files"], day.isoformat(), str(go)]
                ),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for f in found
    ]
    for child in children:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    go.touch()
    done = []
    for child in children:
        output, _ = child.communicate(timeout=600)
        assert child.returncode == 0, output[-3000:]
        done.append(json.loads(output.strip().splitlines()[-1]))
    return done


def _store_state(url: str) -> dict[str, Any]:
    """What the comparison reads of a store: per file its outcome and row counts, rows
    per table of agency records, and the exchange log's entries."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            files = conn.execute(
                select(
                    intake_files.c.agency,
                    intake_files.c.name,
                    intake_files.c.status,
                    intake_files.c.rows_read,
                    intake_files.c.rows_loaded,
                    intake_files.c.rows_ignored,
                    intake_files.c.rows_rejected,
                )
            ).all()
            tables = {
                t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                for t in metadata.sorted_tables
                if t.name.split("_", 1)[0] in AGENCIES or t.name == "rejections"
            }
            entries = list(log_entries(conn))
    finally:
        engine.dispose()
    return {"files": [tuple(f) for f in files], "tables": tables, "log": entries}


def test_feeds_loading_at_once_on_postgresql_leave_the_store_vhub_run_leaves(
    tmp_path: Path,
) -> None:
    world = generate_world(VEHICLES, DAYS, seed=11)
    day = DAYS[-1]
    reference_root, hub_root = tmp_path / "vhub", tmp_path / "fan-out"
    reference_url = f"sqlite:///{reference_root / 'hub.db'}"
    reference_config = write_config(reference_root, reference_url)
    with postgres_database("vhub_fanout") as store_url:
        hub_config = write_config(hub_root, store_url)
        for root in (reference_root, hub_root):
            for each in DAYS:
                world.write_day(each, root / "exchange")
            _stray_file(root)
        command = [sys.executable, "-m", "vehiclehub.cli", "run", "--config"]
        vhub_run = subprocess.run(
            [*command, str(reference_config), "--date", day.isoformat()],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert vhub_run.returncode == 0, (vhub_run.stdout + vhub_run.stderr)[-3000:]

        settings = load_settings(hub_config)
        upgrade_store(settings)  # as the DAG's upgrade_store task, before the listings
        found = [f for agency in AGENCIES for f in list_feeds(settings, agency, day)["feeds"]]
        assert {(f["agency"], f["feed"]) for f in found} >= {
            ("commerce", "enterprises"),
            ("commerce", "licences"),
            ("police", "events"),
            ("police", "unknown"),
            ("customs", "declarations"),
            ("tax", "refunds"),
        }
        assert all(f["files"] == sorted(f["files"]) for f in found)
        taken = _take_every_feed_at_once(hub_config, found, day)
        # Every intake was under way before the first one ended.
        assert max(t["started"] for t in taken) < min(t["ended"] for t in taken), taken
        reconcile(settings, day)
        publish(settings, day)

        fanned_out, reference = _store_state(store_url), _store_state(reference_url)

    assert sorted(fanned_out["files"]) == sorted(reference["files"])
    names = [(agency, name) for agency, name, *_ in fanned_out["files"]]
    assert len(names) == len(set(names)), "a file was taken twice"
    for agency, name, status, rows, loaded, ignored, rejected in fanned_out["files"]:
        if status == "loaded":
            assert loaded + ignored + rejected == rows, (agency, name)
    assert ("police", "police_backlog.csv", "rejected", 0, 0, 0, 0) in fanned_out["files"]
    assert fanned_out["tables"] == reference["tables"]
    chain = verify_chain(fanned_out["log"])
    assert chain.intact, chain.problem
    assert chain.entries == len(reference["log"])
    assert delivered_drops(hub_root) == delivered_drops(reference_root)
