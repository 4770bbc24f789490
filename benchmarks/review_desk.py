"""The review desk at scale: queue and case pages over 100,000 open cases and 1M vehicles.

``build`` makes the store with bulk inserts rather than the nightly cycle (faster, and
the desk reads only what the cycle leaves): the feed tables of ``rules_at_scale.py``
(1M vehicles, about 6 rows each), then ``--cases`` open findings on those records
(EXP-002 on export deregistrations citing their customs item, LIC-006 on licence rows
citing the pending-export event, SLA-001 on licence rows, TAX-004 on refund lines citing
their item), first seen over the last 60 runs, a tenth of them decided or assigned.

``run`` signs in as an operator and times, through the desk's application in-process
(routing, queries and rendering; no network), the queue's first page, a filtered page
(a rule, unreviewed, a VIN prefix, sorted by age) and a case page, each as the HTML page
and the JSON API, ``--repeat`` times; it prints median and p95. Target: under 300 ms.

    .venv/bin/python benchmarks/review_desk.py build --database sqlite:////tmp/vhub_desk.db
    .venv/bin/python benchmarks/review_desk.py run --database sqlite:////tmp/vhub_desk.db
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, select

sys.path.insert(0, str(Path(__file__).parent))
from rules_at_scale import build as build_feeds

from vehiclehub.config import load_settings
from vehiclehub.review.auth import add_user
from vehiclehub.review.cases import mark_run
from vehiclehub.store import connect
from vehiclehub.store.load import bulk_insert
from vehiclehub.store.review import case_events, case_states
from vehiclehub.store.schema import feed_table, findings

LATEST = date(2025, 11, 3)
PASSWORD = "benchmark-password"


def build(engine: Engine, vehicles: int, cases: int, seed: int) -> None:
    build_feeds(engine, vehicles, vehicles // 10, 1_000, seed)
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    with engine.connect() as conn:
        items = feed_table("customs", "declarations")
        decl_of = dict(conn.execute(select(items.c.vin, items.c.decl_no)).all())
        licences = feed_table("commerce", "licences")
        licence_of = dict(conn.execute(select(licences.c.vin, licences.c.licence_no)).all())
        events = feed_table("police", "events")
        event_of = {
            (vin, kind): event_id
            for vin, kind, event_id in conn.execute(
                select(events.c.vin, events.c.event_type, events.c.event_id).where(
                    events.c.event_type.in_(("deregister", "transfer_pending_export"))
                )
            )
        }
        refunds = feed_table("tax", "refunds")
        refund_of = dict(conn.execute(select(refunds.c.decl_ref, refunds.c.refund_no)).all())
    vins = np.array(sorted(set(decl_of) & set(licence_of)), dtype=object)
    picked = vins[rng.choice(len(vins), cases, replace=False)]
    rule = np.array(["EXP-002", "LIC-006", "SLA-001", "TAX-004"], object)[np.arange(cases) % 4]
    rows = []
    for vin, rule_id in zip(picked, rule, strict=True):
        decl, licence = decl_of[vin], licence_of[vin]
        if rule_id == "EXP-002":
            rows.append(("police", event_of[vin, "deregister"], f"customs:{decl}/1", "error"))
        elif rule_id == "LIC-006":
            pending = event_of[vin, "transfer_pending_export"]
            rows.append(("commerce", f"{licence}/{vin}", f"police:{pending}", "error"))
        elif rule_id == "SLA-001":
            rows.append(("commerce", f"{licence}/{vin}", "", "warning"))
        else:
            refund = refund_of[f"{decl}001"]
            rows.append(("tax", f"{refund}/{decl}001", f"customs:{decl}/1", "error"))
    agency, record_key, related, severity = (list(c) for c in zip(*rows, strict=True))
    first = pd.Series(LATEST - timedelta(days=int(d)) for d in rng.integers(0, 60, cases))
    frame = pd.DataFrame(
        {
            "identity": [f"{k:064x}" for k in range(cases)],
            "rule_id": rule,
            "severity": severity,
            "vin": picked,
            "agency": agency,
            "record_key": record_key,
            "related": related,
            "detail": "synthetic finding for the desk benchmark",
            "first_seen": first.map(date.isoformat),
            "last_seen": LATEST.isoformat(),
        }
    )
    with engine.begin() as conn:
        bulk_insert(conn, findings, frame)
        ids = [r for (r,) in conn.execute(select(findings.c.id).order_by(findings.c.id))]
        touched = rng.choice(ids, len(ids) // 10, replace=False)
        now = datetime.now(UTC)
        reviews = np.array(["confirmed", "escalated", "unreviewed"], object)
        states = pd.DataFrame(
            {
                "finding_id": touched,
                "review": reviews[np.arange(len(touched)) % 3],
                "assignee": "op1",
                "decided_by": "op1",
            }
        )
        bulk_insert(conn, case_states, states)
        bulk_insert(
            conn,
            case_events,
            pd.DataFrame(
                {
                    "finding_id": touched,
                    # As SQLAlchemy writes a UTC timestamp on SQLite.
                    "at": now.strftime("%Y-%m-%d %H:%M:%S.%f"),
                    "actor": "op1",
                    "kind": "assign",
                    "assignee": "op1",
                }
            ),
        )
        for day in range(60, -1, -1):
            mark_run(conn, LATEST - timedelta(days=day), now)
        add_user(conn, "op1", "operator", [], PASSWORD)
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE")
    print(f"{cases:,} cases in {time.perf_counter() - started:.1f}s")


def _timed(call, repeat: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        answer = call()
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, answer.text[:300]
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.95 * len(times)))]


def run(database: str, repeat: int) -> None:
    from fastapi.testclient import TestClient

    from vehiclehub.review.app import create_app

    root = Path(tempfile.mkdtemp(prefix="vhub_desk_"))
    config = root / "hub.toml"
    lines = [
        f'database_url = "{database}"',
        f'work_dir = "{root / "work"}"',
        'pseudonym_key = "benchmark-pseudonym-key-0123"',
    ]
    for agency in ("commerce", "police", "customs", "tax"):
        lines += [f"[agencies.{agency}]", f'url = "file://{root / agency}"']
    config.write_text("\n".join(lines) + "\n")
    engine = connect(database)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(findings)).scalar_one()
        vehicles = conn.execute(
            select(func.count()).select_from(feed_table("police", "events"))
        ).scalar_one()
        case_id = conn.execute(
            select(findings.c.id).where(findings.c.rule_id == "LIC-006").limit(1)
        ).scalar_one()
        prefix = conn.execute(select(findings.c.vin).where(findings.c.id == case_id)).scalar_one()
    print(f"store: {total:,} cases, {vehicles:,} police events; {repeat} requests each")
    client = TestClient(create_app(load_settings(config), engine))
    login = client.post("/login", data={"username": "op1", "password": PASSWORD})
    assert login.status_code == 200, login.text
    filtered = {
        "rule_id": "LIC-006",
        "review": "unreviewed",
        "vin_prefix": prefix[:6],
        "sort": "first_seen",
        "order": "asc",
    }
    measured = {
        "queue, first page (HTML)": lambda: client.get("/"),
        "queue, first page (API)": lambda: client.get("/api/cases"),
        "queue, filtered page (HTML)": lambda: client.get("/", params=filtered),
        "queue, filtered page (API)": lambda: client.get("/api/cases", params=filtered),
        "case page (HTML)": lambda: client.get(f"/cases/{case_id}"),
        "case (API)": lambda: client.get(f"/api/cases/{case_id}"),
    }
    for name, call in measured.items():
        call()  # warm the caches once, as a desk in use has them
        median, p95 = _timed(call, repeat)
        print(f"  {name:<30} median {median:7.1f} ms   p95 {p95:7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["build", "run"])
    parser.add_argument("--database", default="sqlite:////tmp/vhub_desk.db")
    parser.add_argument("--vehicles", type=int, default=1_000_000)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--seed", type=int, default=20251103)
    args = parser.parse_args()
    if args.action == "build":
        build(connect(args.database), args.vehicles, args.cases, args.seed)
    else:
        run(args.database, args.repeat)


if __name__ == "__main__":
    main()
