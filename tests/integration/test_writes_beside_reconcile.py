"""One run at a time per store (issue 11), on SQLite: the run's own lease renewal, or a
review desk decision, committed from another connection while reconcile evaluates the
rules does not stop reconcile with ``database is locked``; the decision is kept and the
lease runs on from reconcile's last write."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, select
from tests.factories import Vehicle, send

from vehiclehub.config import AGENCIES, Settings
from vehiclehub.pipeline import hold_store, intake_agency, reconcile
from vehiclehub.review.cases import Decision, decide
from vehiclehub.rules import RULES, RuleContext
from vehiclehub.store import connect
from vehiclehub.store.lease import renew
from vehiclehub.store.review import case_states
from vehiclehub.store.schema import findings, run_leases

DAY = date(2025, 11, 3)
HOLDER = "the nightly run"


def _send_world(settings: Settings) -> None:
    """Vehicles whose records raise findings, one of them with a licence whose VIN is one
    typo away from its police records' (VIN-003 then looks the records of both up)."""
    root = settings.work_dir.parent
    typo, plain = Vehicle(), Vehicle()
    near = typo.vin[:16] + ("A" if typo.vin[16] != "A" else "B")
    send(root, "commerce", "licences", [typo.licence(vin=near), plain.licence()])
    send(
        root,
        "police",
        "events",
        [
            typo.event("E1", "register", "2023-03-01"),
            typo.event("E2", "transfer_pending_export", "2025-09-26"),
            plain.export_deregistration("E3"),
        ],
    )
    send(root, "customs", "declarations", [plain.item(exported_at="2025-10-25")])
    for agency in AGENCIES:
        intake_agency(settings, agency, DAY)


def _after_vin003(monkeypatch: pytest.MonkeyPatch, then: Callable[[], None]) -> None:
    """Run ``then`` once VIN-003 has read the store: reconcile is then mid-evaluation,
    between its first read and its first write."""
    rule = RULES["VIN-003"]

    def find(ctx: RuleContext) -> pd.DataFrame:
        found = rule.find(ctx)
        then()
        return found

    monkeypatch.setitem(RULES, "VIN-003", dataclasses.replace(rule, find=find))


def _expiry(engine: Engine) -> datetime:
    with engine.connect() as conn:
        expiry: datetime = conn.execute(select(run_leases.c.expires_at)).scalar_one()
    return expiry


@pytest.fixture
def one_core(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine of one core: every rule is evaluated on reconcile's own connection."""
    monkeypatch.setattr(os, "cpu_count", lambda: 1)


@pytest.mark.usefixtures("one_core")
def test_the_runs_lease_renewed_mid_reconcile(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _send_world(settings)
    other = connect(settings.database_url)
    renewed: list[datetime] = []

    def renewal() -> None:  # the lease keeper's, on its own connection
        assert renew(other, HOLDER, settings.lease_ttl_s)
        renewed.append(_expiry(other))

    _after_vin003(monkeypatch, renewal)
    with hold_store(settings, HOLDER, release=False):
        reconciled = reconcile(settings, DAY)

    assert renewed and reconciled.rules.per_rule["VIN-003"] == 2
    # Renewed again as reconcile's writes were committed: its lease runs from then.
    assert _expiry(other) > renewed[0]
    other.dispose()


@pytest.mark.usefixtures("one_core")
def test_a_desk_decision_mid_reconcile_is_kept(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _send_world(settings)
    with hold_store(settings, HOLDER):
        reconcile(settings, DAY)
    other = connect(settings.database_url)
    with other.connect() as conn:
        case = conn.execute(
            select(findings.c.id).where(findings.c.rule_id == "VIN-003").limit(1)
        ).scalar_one()

    def decision() -> None:  # an operator's, through the desk's own connection
        with other.begin() as conn:
            decide(conn, case, "operator", Decision("confirmed", note="typo in the licence"))

    _after_vin003(monkeypatch, decision)
    with hold_store(settings, HOLDER):
        reconciled = reconcile(settings, DAY, full=True)

    assert reconciled.rules.per_rule["VIN-003"] == 2
    with other.connect() as conn:
        kept: Any = conn.execute(
            select(case_states.c.review, case_states.c.note).where(case_states.c.finding_id == case)
        ).one()
    assert tuple(kept) == ("confirmed", "typo in the licence")
    other.dispose()
