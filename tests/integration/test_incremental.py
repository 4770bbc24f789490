"""Incremental reconciliation is a full recompute's equal (issue 14): property-based.

A store holds a generated world's first night, taken through the real intake. Each
example then drives a random sequence of nights: records new, corrected (a VIN, an
exporter, an applicant, a date, a status taken from another record, or a VIN one typo
from another), cancelled, late (a night's file for an earlier business date), business
dates moving on by a day to a year, re-runs of the latest date and of an earlier one.
The night's records are applied with the store's own ``load_records``, as intake
applies them. Before each reconciliation the store is copied; the copy is reconciled in
full, the store incrementally, and the two must agree: findings, verdict history,
records not evaluated, the run's counts and every drop's data. The VINs held are read
a few at a time, so that VIN-003 and its reach search them in many blocks.

Bounded for the default suite (about a minute); a longer run for nightly use:
``HYPOTHESIS_PROFILE=nightly .venv/bin/python -m pytest tests/integration/test_incremental.py``
"""

from __future__ import annotations

import os
import random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, insert, select
from tests.conftest import write_config

from vehiclehub.config import AGENCIES, Settings, load_settings
from vehiclehub.contract import feeds
from vehiclehub.icd.drops import REPORT_COLUMNS
from vehiclehub.pipeline import intake_agency
from vehiclehub.publish.drops import each_drop, render_csv
from vehiclehub.rules import quality
from vehiclehub.rules.engine import reconcile
from vehiclehub.rules.scope import basis_now, why_in_full
from vehiclehub.store import connect
from vehiclehub.store.load import load_records
from vehiclehub.store.schema import (
    feed_table,
    findings,
    intake_files,
    not_evaluated,
    records_not_evaluated,
    verdict_history,
)
from vehiclehub.workdays import WorkingDays
from vehiclehub_samples import business_dates, generate_world

FIRST = date(2025, 11, 3)

settings.register_profile(
    "default",
    max_examples=4,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # a failure is reported unshrunk
)
settings.register_profile(
    "nightly", max_examples=150, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

#: Per feed, the columns a correction may take from another record of the feed: what
#: the rules match and compare by (keys stay: a changed key is a new record).
CORRECTABLE = {
    ("commerce", "enterprises"): ["valid_from", "valid_to", "status"],
    ("commerce", "licences"): ["uscc", "issued_at", "valid_to", "applied_at", "brand"],
    ("commerce", "tradein_claims"): ["old_vin", "new_vin", "applicant_id", "claim_type"],
    ("customs", "declarations"): ["vin", "uscc", "status", "exported_at", "licence_no"],
    ("police", "events"): ["vin", "event_type", "event_date", "owner_id", "dereg_reason"],
    ("tax", "refunds"): ["uscc", "status", "applied_at", "enterprise_class"],
}
#: Per feed, the key column a new record gets a fresh value in.
FRESH_KEY = {
    ("commerce", "enterprises"): "filing_no",
    ("commerce", "licences"): "licence_no",
    ("commerce", "tradein_claims"): "claim_no",
    ("customs", "declarations"): "item_no",
    ("police", "events"): "event_id",
    ("tax", "refunds"): "refund_no",
}
VIN_ALPHABET = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"


@dataclass(frozen=True)
class Change:
    """One record of a night: ``kind`` new, correct, cancel or typo, on the ``pick``-th
    stored record of a feed, taking values from the ``donor``-th."""

    kind: str
    feed: int
    pick: int
    donor: int
    column: int


@dataclass(frozen=True)
class NightPlan:
    """``step``: days after the latest date (0: a re-run of it; negative: a re-run of an
    earlier reconciled date); ``late``: the file is dated a week before the night."""

    step: int
    changes: list[Change]
    late: bool


_changes = st.builds(
    Change,
    kind=st.sampled_from(["new", "correct", "correct", "cancel", "typo"]),
    feed=st.integers(0, 5),
    pick=st.integers(0, 10**6),
    donor=st.integers(0, 10**6),
    column=st.integers(0, 10),
)
_nights = st.builds(
    NightPlan,
    step=st.sampled_from([1, 1, 2, 7, 30, 61, 400, 0, -1]),
    changes=st.lists(_changes, max_size=6),
    late=st.booleans(),
)


@pytest.fixture(scope="module")
def first_night(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A store after the first night of a small generated world, and its configuration."""
    root = tmp_path_factory.mktemp("first_night")
    hub = load_settings(write_config(root, f"sqlite:///{root / 'hub.db'}"))
    world = generate_world(40, business_dates(FIRST, 1), seed=14)
    world.write_day(FIRST, root / "exchange")
    for agency in AGENCIES:
        intake_agency(hub, agency, FIRST)
    engine = connect(hub.database_url)
    reconcile(engine, FIRST, hub.rules, WorkingDays(hub.calendar))
    engine.dispose()
    return root / "hub.db", root / "hub.toml"


def _copy(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite store (its WAL included)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def _typo(vin: str, rng: random.Random) -> str:
    """The VIN with one character substituted: a neighbour (VIN-003)."""
    at = rng.randrange(len(vin))
    options = [c for c in VIN_ALPHABET if c != vin[at]]
    return vin[:at] + rng.choice(options) + vin[at + 1 :]


def _records(engine: Engine, agency: str, feed: str) -> pd.DataFrame:
    table = feed_table(agency, feed)
    with engine.connect() as conn:
        rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
    frame = pd.DataFrame(rows, columns=[c.name for c in table.columns])
    # Decimals as the text they are loaded from (the driver binds no Decimal).
    return frame.map(lambda v: str(v) if isinstance(v, Decimal) else v)


def _night_records(engine: Engine, plan: NightPlan, serial: int) -> dict[tuple, pd.DataFrame]:
    """The night's records per feed, built from stored ones (in the store's own form)."""
    rng = random.Random(serial)
    out: dict[tuple, list[dict[str, Any]]] = {}
    names = sorted(CORRECTABLE)
    for n, change in enumerate(plan.changes):
        agency, feed = names[change.feed]
        stored = _records(engine, agency, feed)
        if stored.empty:
            continue
        row = stored.iloc[change.pick % len(stored)].to_dict()
        donor = stored.iloc[change.donor % len(stored)].to_dict()
        columns = CORRECTABLE[agency, feed]
        column = columns[change.column % len(columns)]
        vin_columns = feeds()[agency, feed].vin_columns
        if change.kind == "new":
            key = FRESH_KEY[agency, feed]
            row[key] = 900 + serial * 10 + n if key == "item_no" else f"N{serial}X{n}"
            row["record_version"] = 1
            row[column] = donor[column]
        else:
            row["record_version"] = int(row["record_version"]) + 1 + serial
            if change.kind == "cancel":
                row["record_status"] = "cancelled"
            elif change.kind == "typo" and vin_columns:
                vin = vin_columns[change.column % len(vin_columns)]
                if vin not in feeds()[agency, feed].key:
                    row[vin] = _typo(str(donor[vin]), rng)
            elif column not in feeds()[agency, feed].key:
                row[column] = donor[column]
        row["content_hash"] = rng.getrandbits(62)
        keyed = tuple(row[k] for k in feeds()[agency, feed].key)
        rows = out.setdefault((agency, feed), [])
        rows[:] = [r for r in rows if tuple(r[k] for k in feeds()[agency, feed].key) != keyed]
        rows.append(row)
    return {feed: pd.DataFrame(rows) for feed, rows in out.items()}


def _apply(engine: Engine, day: date, plan: NightPlan, serial: int) -> None:
    """Load the night's records, one file per feed, as intake loads a taken file."""
    dated = day - timedelta(days=7) if plan.late else day
    for (agency, feed), frame in _night_records(engine, plan, serial).items():
        with engine.begin() as conn:
            file_id = conn.execute(
                insert(intake_files).values(
                    agency=agency,
                    feed=feed,
                    name=f"{agency}_{feed}_{dated:%Y%m%d}_{serial:03d}.csv",
                    business_date=dated,
                    seq=serial,
                    run_date=day,
                    status="loaded",
                    taken_at=datetime.now(UTC),
                )
            ).inserted_primary_key[0]
            frame = frame.assign(file_id=file_id, line=range(2, len(frame) + 2))
            load_records(conn, feeds()[agency, feed], frame)


def _state(engine: Engine, hub: Settings, day: date) -> dict[str, Any]:
    """Everything a reconciliation leaves behind, comparable."""
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        for table in (findings, verdict_history, not_evaluated, records_not_evaluated):
            columns = [c for c in table.columns if c.name != "id"]
            out[table.name] = [tuple(r) for r in conn.execute(select(*columns).order_by(*columns))]
        out["drops"] = {
            drop.name: b"".join(render_csv(drop.parts(), REPORT_COLUMNS[drop.report]))
            for drop in each_drop(conn, day, hub.rules)
        }
    return out


def _dates(plans: list[NightPlan]) -> Iterator[tuple[date, NightPlan]]:
    """Each night's business date: a step on from the latest, or a re-run."""
    run = [FIRST]
    for plan in plans:
        latest = max(run)
        if plan.step >= 0:
            day = latest + timedelta(days=plan.step)
        else:
            day = run[len(run) // 2] if len(run) > 1 else latest
        run.append(day)
        yield day, plan


@given(plans=st.lists(_nights, min_size=1, max_size=3))
def test_incremental_reconciliation_equals_a_full_recompute(
    first_night: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory, plans: list[NightPlan]
) -> None:
    root = tmp_path_factory.mktemp("nights")
    store, full_store = root / "hub.db", root / "full.db"
    _copy(first_night[0], store)
    hub = load_settings(first_night[1])
    calendar = WorkingDays(hub.calendar)
    engine = connect(f"sqlite:///{store}")
    with patch.object(quality, "HELD_CHUNK", 3), patch.object(quality, "HELD_BLOCK", 5):
        _equal_night_by_night(engine, full_store, store, hub, calendar, plans)


def _equal_night_by_night(
    engine: Engine,
    full_store: Path,
    store: Path,
    hub: Settings,
    calendar: WorkingDays,
    plans: list[NightPlan],
) -> None:
    try:
        for serial, (day, plan) in enumerate(_dates(plans), start=1):
            _apply(engine, day, plan, serial)
            _copy(store, full_store)
            with engine.connect() as conn:
                incremental = why_in_full(conn, day, basis_now(conn, hub.rules, calendar)) is None
            full = connect(f"sqlite:///{full_store}")
            try:
                expected = reconcile(full, day, hub.rules, calendar, full=True)
                wanted = _state(full, hub, day)
            finally:
                full.dispose()
            got = reconcile(engine, day, hub.rules, calendar)
            assert got == expected, (day, incremental)
            assert _state(engine, hub, day) == wanted, (day, incremental)
    finally:
        engine.dispose()
