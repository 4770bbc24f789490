"""Publishing on PostgreSQL: the day's verdicts are compared with the previous run's by key."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from sqlalchemy import text

from vehiclehub.icd.drops import EXPORT_VERIFICATION_COLUMNS
from vehiclehub.publish.drops import changed_verdicts
from vehiclehub.store import connect
from vehiclehub.store.verdicts import record_run, store_verdicts

pytestmark = pytest.mark.postgres

REPORT = "export_verification"


def _snapshot(rows: int, changed: int) -> pd.DataFrame:
    keys = [f"E{n:08d}" for n in range(rows)]
    frame = pd.DataFrame({c: "x" for c in EXPORT_VERIFICATION_COLUMNS}, index=range(rows))
    frame["verdict"] = ["overdue" if n < changed else "verified" for n in range(rows)]
    return frame.assign(record_key=keys, event_id=keys)


def test_the_comparison_with_yesterday_looks_keys_up(pg_url: str) -> None:
    engine = connect(pg_url)
    yesterday, today = date(2025, 11, 3), date(2025, 11, 4)
    with engine.begin() as conn:
        store_verdicts(conn, yesterday, REPORT, [_snapshot(5000, 0)], EXPORT_VERIFICATION_COLUMNS)
        record_run(conn, yesterday)
        store_verdicts(conn, today, REPORT, [_snapshot(5000, 7)], EXPORT_VERIFICATION_COLUMNS)
        record_run(conn, today)
    with engine.connect() as conn:
        assert len(changed_verdicts(conn, REPORT, today)) == 7
        # The planner knows the table's size: not "1 row", which plans a nested loop
        # that compares every row of one run with every row of the other.
        estimate = conn.execute(
            text("SELECT reltuples FROM pg_class WHERE relname = 'verdict_history'")
        ).scalar()
        assert estimate is not None and estimate >= 5_000
    engine.dispose()
