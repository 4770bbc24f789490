"""The upgrade of an earlier release's per-night verdict copies into verdict history."""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy import Engine, inspect, select, text

from vehiclehub.store.schema import reconcile_runs, verdict_history
from vehiclehub.store.upgrade import upgrade_verdict_snapshots
from vehiclehub.store.verdicts import verdict_holds_on

D1, D2, D3, D4 = (date(2025, 11, d) for d in (3, 4, 5, 6))

#: The table as the earlier release created it.
SNAPSHOTS_DDL = """
CREATE TABLE verdicts (
    run_date DATE NOT NULL, report VARCHAR(32) NOT NULL, record_key VARCHAR(255) NOT NULL,
    verdict VARCHAR(32) NOT NULL, row_json TEXT NOT NULL,
    CONSTRAINT pk_verdicts PRIMARY KEY (run_date, report, record_key)
)
"""

#: Per run date, each record's verdict and rule ids: a record that holds throughout
#: (E1), flips and flips back (E2), changes its rule ids only (E3), vanishes and comes
#: back (E4), and one whose last run is not the latest (E5).
SNAPSHOTS = {
    D1: {"E1": ("verified", ""), "E2": ("verified", ""), "E3": ("no_export", "EXP-001"),
         "E4": ("verified", ""), "E5": ("verified", "")},
    D2: {"E1": ("verified", ""), "E2": ("before_export", "EXP-002"),
         "E3": ("no_export", "EXP-001"), "E5": ("verified", "")},
    D3: {"E1": ("verified", ""), "E2": ("verified", ""), "E3": ("no_export", "EXP-001;POL-002"),
         "E4": ("verified", "")},
    D4: {"E1": ("verified", ""), "E2": ("verified", ""), "E3": ("no_export", "EXP-001;POL-002"),
         "E4": ("verified", "")},
}  # fmt: skip


def _json(event_id: str, verdict: str, rule_ids: str) -> str:
    row = {"event_id": event_id, "vin": None, "verdict": verdict, "decl_no": None,
           "exported_at": None, "rule_ids": rule_ids}  # fmt: skip
    return json.dumps(row, ensure_ascii=False, separators=(",", ":"))


def _held(engine: Engine, day: date) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(verdict_history.c.record_key, verdict_history.c.row_json).where(
                verdict_holds_on(day)
            )
        ).all()
    return dict(rows)  # type: ignore[arg-type]


def test_every_run_date_reads_its_snapshot_after_the_upgrade(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text(SNAPSHOTS_DDL))
        for day, records in SNAPSHOTS.items():
            for key, (verdict, rule_ids) in records.items():
                conn.execute(
                    text("INSERT INTO verdicts VALUES (:d, 'export_verification', :k, :v, :j)"),
                    {"d": day, "k": key, "v": verdict, "j": _json(key, verdict, rule_ids)},
                )
    with engine.begin() as conn:
        assert upgrade_verdict_snapshots(conn) == 1 + 3 + 2 + 2 + 1
    for day, records in SNAPSHOTS.items():
        assert _held(engine, day) == {k: _json(k, *row) for k, row in records.items()}
    with engine.connect() as conn:
        assert not inspect(conn).has_table("verdicts")
        runs = conn.execute(select(reconcile_runs.c.run_date)).scalars().all()
    assert sorted(runs) == [D1, D2, D3, D4]
    with engine.begin() as conn:
        assert upgrade_verdict_snapshots(conn) == 0  # once done, nothing to do


def test_a_store_without_snapshots_is_left_alone(engine: Engine) -> None:
    with engine.begin() as conn:
        assert upgrade_verdict_snapshots(conn) == 0
    with engine.connect() as conn:
        assert conn.execute(select(verdict_history)).all() == []
