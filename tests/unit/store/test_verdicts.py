"""Verdicts kept as changes: a night adds rows only for what it changed, and every
reconciled date still reads back exactly the rows its run gave."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, func, select

from vehiclehub.icd.drops import REFUND_VERIFICATION_COLUMNS
from vehiclehub.publish.drops import changed_verdicts
from vehiclehub.store import verdicts
from vehiclehub.store.schema import verdict_history
from vehiclehub.store.verdicts import record_run, store_verdicts, verdict_holds_on

D1, D2, D3 = date(2025, 11, 3), date(2025, 11, 4), date(2025, 11, 5)
REPORT = "refund_verification"


def _line(refund_no: str, verdict: str, rule_ids: str = "") -> dict[str, str]:
    return {
        "record_key": f"{refund_no}/530420250040970934001",
        "refund_no": refund_no,
        "decl_ref": "530420250040970934001",
        "vin": "LSVAM4187C2184847",
        "verdict": verdict,
        "rule_ids": rule_ids,
    }


def _run(engine: Engine, day: date, lines: list[dict[str, str]]) -> int:
    with engine.begin() as conn:
        frame = pd.DataFrame(lines)
        # The rows in parts of three (the last shorter), as a report is read.
        parts = [frame.iloc[start : start + 3] for start in range(0, len(frame), 3)]
        changed = store_verdicts(conn, day, REPORT, parts, REFUND_VERIFICATION_COLUMNS)
        record_run(conn, day)
    return changed


def _on(engine: Engine, day: date) -> dict[str, tuple[str, str]]:
    """Each refund line's verdict and rule ids as they hold on ``day``."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(verdict_history.c.row_json).where(
                verdict_history.c.report == REPORT, verdict_holds_on(day)
            )
        ).scalars()
        lines = [json.loads(row) for row in rows]
    return {line["refund_no"]: (line["verdict"], line["rule_ids"]) for line in lines}


def _rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(verdict_history)).scalar_one())


def _drop(engine: Engine, day: date) -> list[str]:
    with engine.connect() as conn:
        return changed_verdicts(conn, REPORT, day)["refund_no"].tolist()


#: The rows compared and written at a time: all at once, and two by two.
BATCHES = pytest.mark.parametrize("batch", [verdicts.VERDICT_BATCH, 2])


def _all_alike(keys: pd.Series) -> np.ndarray:
    return np.full(len(keys), 7, dtype=np.uint64)


@BATCHES
@pytest.mark.parametrize("hashed", [verdicts.key_hashes, _all_alike], ids=["keys", "alike"])
def test_a_night_stores_only_what_it_changed(
    engine: Engine,
    batch: int,
    hashed: Callable[[pd.Series], np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The records held are looked up by a hash of their key, then compared exactly: with
    # every key hashed alike, the same rows are stored.
    monkeypatch.setattr(verdicts, "VERDICT_BATCH", batch)
    monkeypatch.setattr(verdicts, "key_hashes", hashed)
    first = [_line(f"R{n}", "verified") for n in range(5)]
    assert _run(engine, D1, first) == 5
    assert _run(engine, D2, first) == 0  # nothing changed: nothing written
    assert _rows(engine) == 5
    # One verdict changes, one line gets a rule id under the same verdict, one is no
    # longer given (rejected refund), one is new.
    second = [
        _line("R0", "duplicate", "TAX-003"),
        _line("R1", "verified"),
        _line("R2", "verified", "TRD-999"),
        _line("R3", "verified"),
        _line("R5", "no_export", "TAX-001"),
    ]
    assert _run(engine, D3, second) == 4
    assert _rows(engine) == 5 + 3  # R0 and R2 changed, R5 new; R4 closed in place
    assert set(_on(engine, D2)) == {"R0", "R1", "R2", "R3", "R4"}
    assert _on(engine, D3)["R0"] == ("duplicate", "TAX-003")
    assert _on(engine, D3)["R2"] == ("verified", "TRD-999")
    assert "R4" not in _on(engine, D3)
    # New or changed verdicts since the previous run only: R2's verdict is the same.
    assert _drop(engine, D1) == ["R0", "R1", "R2", "R3", "R4"]
    assert _drop(engine, D2) == []
    assert _drop(engine, D3) == ["R0", "R5"]


@BATCHES
def test_running_a_date_again_replaces_that_date_only(
    engine: Engine, batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verdicts, "VERDICT_BATCH", batch)
    _run(engine, D1, [_line("R1", "verified"), _line("R2", "verified")])
    _run(engine, D2, [_line("R1", "duplicate", "TAX-003"), _line("R2", "verified")])
    _run(engine, D3, [_line("R1", "verified"), _line("R2", "verified")])
    before = {d: _on(engine, d) for d in (D1, D2, D3)}
    drops = {d: _drop(engine, d) for d in (D1, D2, D3)}
    # The same rows again: nothing changes, the drops are the same.
    assert _run(engine, D2, [_line("R1", "duplicate", "TAX-003"), _line("R2", "verified")]) == 0
    assert {d: _drop(engine, d) for d in (D1, D2, D3)} == drops
    # Different rows for the earlier date: D2 reads them, D1 and D3 as before.
    _run(engine, D2, [_line("R1", "verified"), _line("R2", "cancelled", "TAX-002")])
    assert _on(engine, D1) == before[D1]
    assert _on(engine, D3) == before[D3]
    assert _on(engine, D2) == {
        "R1": ("verified", ""),
        "R2": ("cancelled", "TAX-002"),
    }
    assert _drop(engine, D2) == ["R2"]
    assert _drop(engine, D3) == ["R2"]
    # R1 held the same row from D1 on: one row, not three.
    with engine.connect() as conn:
        spans = conn.execute(
            select(verdict_history.c.valid_from, verdict_history.c.valid_to).where(
                verdict_history.c.record_key.like("R1/%")
            )
        ).all()
    assert spans == [(D1, None)]
    # And the earlier run's rows restored: R1's stretch splits again around D2.
    _run(engine, D2, [_line("R1", "duplicate", "TAX-003"), _line("R2", "verified")])
    assert {d: _on(engine, d) for d in (D1, D2, D3)} == before
    assert {d: _drop(engine, d) for d in (D1, D2, D3)} == drops
    assert _rows(engine) == 4  # R1: D1-D2, D2-D3, D3-; R2: D1-
