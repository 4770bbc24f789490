"""Decisions on the review desk reach the findings drops (ICD §4, review columns).

A dismissed finding leaves the drops while its evidence is unchanged and comes back,
unreviewed and ``open``, when a cited record gets a new version; a confirmed one
carries ``review`` and ``note``; a decision made while a run is under way counts from
the next run. The same semantics on PostgreSQL: tests/unit/review/test_cases.py.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import select
from tests.factories import Vehicle, read_drop, send

from vehiclehub.config import Settings
from vehiclehub.pipeline import intake_agency, publish, reconcile, run_cycle
from vehiclehub.review.cases import Decision, decide
from vehiclehub.review.tables import case_events
from vehiclehub.store import connect
from vehiclehub.store.schema import findings

D1, D2, D3, D4 = (date(2025, 11, d) for d in (3, 4, 5, 6))


def _case(settings: Settings, rule_id: str, record_key: str) -> int:
    engine = connect(settings.database_url)
    with engine.connect() as conn:
        found = conn.execute(
            select(findings.c.id).where(
                findings.c.rule_id == rule_id, findings.c.record_key == record_key
            )
        ).scalar_one()
    engine.dispose()
    return int(found)


def _decide(settings: Settings, case: int, decision: Decision) -> None:
    engine = connect(settings.database_url)
    with engine.begin() as conn:
        decide(conn, case, "op1", decision)
    engine.dispose()


def _rows(root: Path, agency: str, day: date, rule_id: str, record_key: str) -> list[dict]:
    drop = read_drop(root, agency, "findings", day)
    hit = drop[(drop["rule_id"] == rule_id) & (drop["record_key"] == record_key)]
    return hit.to_dict("records")


def test_dismissal_leaves_the_drop_until_the_evidence_changes(settings: Settings) -> None:
    root = settings.work_dir.parent
    gone, refunded = Vehicle(), Vehicle()
    send(root, "police", "events", [gone.export_deregistration("E2")])
    send(root, "tax", "refunds", [refunded.refund("R2")])
    run_cycle(settings, D1)
    assert _rows(root, "police", D1, "EXP-001", "E2")[0]["status"] == "new"
    exp001 = _case(settings, "EXP-001", "E2")
    tax001 = _case(settings, "TAX-001", f"R2/{refunded.decl_ref}")
    _decide(settings, exp001, Decision("dismissed", "known_exception"))
    _decide(settings, tax001, Decision("confirmed", note="请核对报关单 申请人110101199003077777"))

    run_cycle(settings, D2)
    assert _rows(root, "police", D2, "EXP-001", "E2") == []
    (confirmed,) = _rows(root, "tax", D2, "TAX-001", f"R2/{refunded.decl_ref}")
    assert (confirmed["status"], confirmed["review"]) == ("open", "confirmed")
    assert confirmed["note"] == "请核对报关单 申请人110101************"
    header = (root / "exchange/tax/inbox/hub_tax_findings_20251104_001.csv").read_text()
    assert header.splitlines()[0].endswith("detail,status,review,note")

    # A new version of the cited event: the dismissal lapses, the finding comes back. A
    # dismissal made again while that run is under way counts from the next run only.
    again = [gone.export_deregistration("E2", "2025-10-21", record_version="2")]
    send(root, "police", "events", again, day=D3)
    intake_agency(settings, "police", D3)
    reconcile(settings, D3)
    _decide(settings, exp001, Decision("dismissed", "other", note="车辆已出境"))
    publish(settings, D3)
    (back,) = _rows(root, "police", D3, "EXP-001", "E2")
    assert (back["status"], back["review"], back["note"]) == ("open", "", "")
    reconcile(settings, D4)
    publish(settings, D4)
    assert _rows(root, "police", D4, "EXP-001", "E2") == []
    engine = connect(settings.database_url)
    with engine.connect() as conn:
        kinds = conn.execute(
            select(case_events.c.kind)
            .where(case_events.c.finding_id == exp001)
            .order_by(case_events.c.id)
        ).scalars()
        assert list(kinds) == ["decision", "lapse", "decision"]
    engine.dispose()
