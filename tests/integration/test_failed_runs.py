"""Nothing lost when a run fails (issue 11): a run failing after intake is recorded as
failed and exits 1 with a message; the rejections of what it took reach their senders
with the next run's drops."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.factories import Vehicle, read_drop, send

from vehiclehub import pipeline
from vehiclehub.cli import main
from vehiclehub.config import Settings
from vehiclehub.store import connect
from vehiclehub.store.schema import runs

DAY = date(2025, 11, 3)


def _runs(settings: Settings) -> list[tuple]:
    with connect(settings.database_url).connect() as conn:
        return [
            tuple(r) for r in conn.execute(select(runs.c.run_date, runs.c.status, runs.c.stage))
        ]


def test_a_run_failing_after_intake_loses_no_rejection(
    settings: Settings,
    hub_config: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = settings.work_dir.parent
    send(root, "customs", "declarations", [Vehicle().item(), Vehicle().item(hs_code="12")])

    def failing_rules(*_: object) -> None:
        raise RuntimeError("the rules engine stopped")

    with monkeypatch.context() as patched:  # a fault that no input causes any more
        patched.setattr(pipeline, "run_rules", failing_rules)
        code = main(["run", "--config", str(hub_config), "--date", DAY.isoformat()])

    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "vhub: the run for 2025-11-03 failed at reconcile: RuntimeError: the rules engine stopped."
    )
    assert _runs(settings) == [(DAY, "failed", "reconcile")]

    next_day = DAY + timedelta(days=1)
    assert main(["run", "--config", str(hub_config), "--date", next_day.isoformat()]) == 0

    drop = read_drop(root, "customs", "rejections", next_day)
    assert drop[["file", "line", "column"]].values.tolist() == [
        ["customs_declarations_20251103_001.csv", "3", "hs_code"]
    ]
    assert _runs(settings)[-1] == (next_day, "completed", None)
    report = (settings.reports_dir / next_day.isoformat() / "index.html").read_text()
    assert "1 earlier run(s) did not complete" in report
    assert "2025-11-03, started" in report
    assert "failed at reconcile — the run for 2025-11-03 failed at reconcile" in report
