"""Bringing a store written by an earlier release to today's tables, once, in place.

Earlier releases kept a copy of every verdict per night (``verdicts``: one row per run
date, report and record). The upgrade turns those snapshots into
:data:`~vehiclehub.store.schema.verdict_history` — one row per record for each stretch
of consecutive runs in which its row stayed the same — and records the run dates, so
that every date's verdicts, and so the next drops, read the same as before. Findings
already have one row each with their first_seen / last_seen / resolved_on dates and are
left as they are.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
from sqlalchemy import Connection, inspect, text

from vehiclehub.store.load import bulk_insert
from vehiclehub.store.schema import VERDICT_SNAPSHOTS, reconcile_runs, verdict_history
from vehiclehub.store.verdicts import VERDICT_BATCH, row_hashes

#: Each snapshot row starts a stretch unless the record had the same row on the run just
#: before; a stretch ends at the next run after its last (none: it still holds).
_STRETCHES = f"""
WITH runs AS (
    SELECT run_date, ROW_NUMBER() OVER (ORDER BY run_date) AS rn FROM reconcile_runs
),
snapshot AS (
    SELECT v.report, v.record_key, v.run_date, r.rn, v.verdict, v.row_json,
           LAG(r.rn) OVER by_record AS previous_rn,
           LAG(v.row_json) OVER by_record AS previous_json
    FROM {VERDICT_SNAPSHOTS} v JOIN runs r ON r.run_date = v.run_date
    WINDOW by_record AS (PARTITION BY v.report, v.record_key ORDER BY v.run_date)
),
marked AS (
    SELECT report, record_key, run_date, rn, verdict, row_json,
           SUM(CASE WHEN previous_rn = rn - 1 AND previous_json = row_json THEN 0 ELSE 1 END)
               OVER (PARTITION BY report, record_key ORDER BY run_date
                     ROWS UNBOUNDED PRECEDING) AS stretch
    FROM snapshot
),
stretches AS (
    SELECT report, record_key, MIN(run_date) AS valid_from, MAX(rn) AS last_rn
    FROM marked GROUP BY report, record_key, stretch
)
SELECT s.report, s.record_key, s.valid_from, following.run_date, m.verdict, m.row_json
FROM stretches s
JOIN marked m
  ON m.report = s.report AND m.record_key = s.record_key AND m.run_date = s.valid_from
LEFT JOIN runs following ON following.rn = s.last_rn + 1
"""

_HISTORY_COLUMNS = ["report", "record_key", "valid_from", "valid_to", "verdict", "row_json"]


def needs_verdict_upgrade(conn: Connection) -> bool:
    """Whether the store still holds an earlier release's verdict snapshots."""
    present = inspect(conn)
    if not present.has_table(VERDICT_SNAPSHOTS):
        return False
    return "run_date" in {c["name"] for c in present.get_columns(VERDICT_SNAPSHOTS)}


def upgrade_verdict_snapshots(conn: Connection) -> int:
    """Turn verdict snapshots into verdict history, in the caller's transaction (the
    store's migration to revision 0003); drop the snapshots.

    The run dates are those of the snapshots and of the drops written. Returns the
    history rows written (0 when there was nothing to upgrade).
    """
    if not needs_verdict_upgrade(conn):
        return 0
    dates = conn.exec_driver_sql(
        f"SELECT run_date FROM {VERDICT_SNAPSHOTS} UNION SELECT run_date FROM deliveries"
    ).scalars()
    now = datetime.now(UTC)
    # SQLite hands dates back as text through a raw statement.
    runs = [{"run_date": date.fromisoformat(str(d)), "finished_at": now} for d in dates]
    if runs:
        conn.execute(reconcile_runs.insert(), runs)
    written = 0
    result = conn.execute(text(_STRETCHES).execution_options(stream_results=True))
    try:
        while rows := result.fetchmany(VERDICT_BATCH):
            frame = pd.DataFrame(rows, columns=_HISTORY_COLUMNS)
            frame["row_hash"] = row_hashes(frame["row_json"].tolist())
            bulk_insert(conn, verdict_history, frame)
            written += len(frame)
    finally:
        result.close()
    conn.exec_driver_sql(f"DROP TABLE {VERDICT_SNAPSHOTS}")
    return written
