"""What a night's change reaches (rules.reach and the reaches beside their rules): each
reach leads from a changed record to the records it must (fires) and to no other one
(near miss). Records are applied with the store's ``load_records``, which journals them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import count
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, func, insert, select

from vehiclehub.config import RuleParameters
from vehiclehub.contract import feeds
from vehiclehub.rules import RULES
from vehiclehub.rules.base import Night, Reach, RuleContext
from vehiclehub.rules.export import PAST_DEREG_WINDOW
from vehiclehub.rules.police import PAST_PENDING_EXPORT_WINDOW
from vehiclehub.rules.quality import _HELD_VINS, BY_NEIGHBOUR, HELD_BLOCK, _held_vin_blocks
from vehiclehub.rules.reach import BY_APPLICANT, BY_DECLARATION_REF, BY_EXPORTER, BY_VIN
from vehiclehub.rules.service import LICENCES_PENDING_PAST_LIMIT, REFUNDS_PENDING_PAST_LIMIT
from vehiclehub.store.load import load_records
from vehiclehub.store.schema import CHANGE_KEYS, feed_table, intake_files

D = date(2025, 11, 3)
VIN_A, VIN_B = "LSVAU2180N2000001", "LSVAU2180N2000002"
NEAR_A = "LSVAU2180N2000011"  # one substitution from VIN_A
FAR_A = "LSVAU2180N2000111"  # two from VIN_A
DECL = "222020251000000001"
OTHER_DECL = "222020251000000002"
_lines = count(2)


def _load(engine: Engine, agency: str, feed: str, *rows: dict[str, Any]) -> None:
    """Apply records (stored form; unnamed columns empty) as a file of their own."""
    table = feed_table(agency, feed)
    defaults: dict[str, Any] = {c.name: None for c in table.columns}
    for vin in feeds()[agency, feed].vin_columns:
        defaults |= {f"{vin}_substituted": False, f"{vin}_check_ok": True}
    defaults |= {"record_version": 1, "record_status": "active", "content_hash": 0}
    with engine.begin() as conn:
        file_id = conn.execute(
            insert(intake_files).values(
                agency=agency,
                name=f"{feed}.csv",
                run_date=D,
                status="loaded",
                taken_at=datetime.now(UTC),
            )
        ).inserted_primary_key[0]
        frame = pd.DataFrame([defaults | row for row in rows])
        frame = frame.assign(file_id=file_id, line=[next(_lines) for _ in rows])
        frame["content_hash"] = range(len(frame))
        load_records(conn, feeds()[agency, feed], frame)


def _files(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.max(intake_files.c.id))).scalar() or 0)


def _reached(engine: Engine, reach: Reach, since: int, day: date = D, previous: date = D) -> set:
    """What ``reach`` leads to from the records loaded after file ``since``."""
    with engine.connect() as conn:
        night = Night(RuleContext(conn, day, RuleParameters()), since, previous)
        expanded = reach.expand(night)
        if isinstance(expanded, pd.Series):
            return set(expanded)
        return set(conn.execute(expanded).scalars())


def _event(event_id: str, vin: str, **kw: Any) -> dict[str, Any]:
    return {"event_id": event_id, "vin": vin, "event_type": "transfer", "event_date": D} | kw


def _licence(licence_no: str, vin: str, uscc: str, **kw: Any) -> dict[str, Any]:
    return {"licence_no": licence_no, "vin": vin, "uscc": uscc, "applied_at": D} | kw


def test_every_rule_declares_a_reach_by_its_own_records() -> None:
    for rule in RULES.values():
        assert BY_VIN in rule.reach or BY_DECLARATION_REF in rule.reach, rule.id


def test_every_key_a_reach_follows_is_journaled() -> None:
    kinds = {kind for keys in CHANGE_KEYS.values() for kind in keys.values()}
    assert kinds == {"vin", "exporter", "applicant", "declaration", "decl_ref"}


def test_a_correction_reaches_its_old_vin_and_its_new_one(engine: Engine) -> None:
    _load(engine, "police", "events", _event("E1", VIN_A), _event("E2", VIN_B))
    since = _files(engine)
    _load(engine, "police", "events", _event("E1", NEAR_A, record_version=2))
    assert _reached(engine, BY_VIN, since) == {VIN_A, NEAR_A}


def test_a_cancellation_reaches_its_vin(engine: Engine) -> None:
    _load(engine, "police", "events", _event("E1", VIN_A), _event("E2", VIN_B))
    since = _files(engine)
    _load(
        engine, "police", "events", _event("E1", VIN_A, record_version=2, record_status="cancelled")
    )
    assert _reached(engine, BY_VIN, since) == {VIN_A}


def test_a_record_sent_again_unchanged_is_no_change_to_what_was_loaded_before(
    engine: Engine,
) -> None:
    _load(engine, "police", "events", _event("E1", VIN_A))
    since = _files(engine)
    _load(engine, "police", "events", _event("E2", VIN_B))
    assert _reached(engine, BY_VIN, since) == {VIN_B}


def test_a_changed_filing_reaches_its_exporters_licences_only(engine: Engine) -> None:
    _load(
        engine,
        "commerce",
        "licences",
        _licence("L1", VIN_A, "X" * 18),
        _licence("L2", VIN_B, "Y" * 18),
    )
    since = _files(engine)
    _load(engine, "commerce", "enterprises", {"uscc": "X" * 18, "filing_no": "F1"})
    assert _reached(engine, BY_EXPORTER, since) == {VIN_A}


def test_a_changed_licence_reaches_no_other_licence_of_its_exporter(engine: Engine) -> None:
    _load(engine, "commerce", "licences", _licence("L1", VIN_A, "X" * 18))
    since = _files(engine)
    _load(engine, "commerce", "licences", _licence("L2", VIN_B, "X" * 18))
    assert _reached(engine, BY_EXPORTER, since) == set()
    assert _reached(engine, BY_VIN, since) == {VIN_B}


def test_a_changed_claim_reaches_its_applicants_other_claims(engine: Engine) -> None:
    claim = {"claim_type": "replace", "new_vin": FAR_A, "applied_at": D}
    _load(
        engine,
        "commerce",
        "tradein_claims",
        claim | {"claim_no": "C1", "old_vin": VIN_A, "applicant_id": "P1"},
        claim | {"claim_no": "C2", "old_vin": NEAR_A, "applicant_id": "P2"},
    )
    since = _files(engine)
    _load(
        engine,
        "commerce",
        "tradein_claims",
        claim | {"claim_no": "C3", "old_vin": VIN_B, "applicant_id": "P1"},
    )
    assert _reached(engine, BY_APPLICANT, since) == {VIN_A, VIN_B}


def test_a_changed_item_reaches_the_refund_lines_citing_its_declaration(engine: Engine) -> None:
    _load(
        engine,
        "tax",
        "refunds",
        {"refund_no": "R1", "decl_ref": DECL + "001", "status": "pending", "applied_at": D},
        {"refund_no": "R2", "decl_ref": OTHER_DECL + "001", "status": "pending", "applied_at": D},
    )
    since = _files(engine)
    _load(engine, "customs", "declarations", {"decl_no": DECL, "item_no": 1, "vin": VIN_A})
    assert _reached(engine, BY_DECLARATION_REF, since) == {DECL + "001"}


def test_a_changed_refund_line_reaches_its_declaration_reference(engine: Engine) -> None:
    since = _files(engine)
    _load(
        engine,
        "tax",
        "refunds",
        {"refund_no": "R1", "decl_ref": DECL + "001", "status": "pending", "applied_at": D},
    )
    assert _reached(engine, BY_DECLARATION_REF, since) == {DECL + "001"}


@pytest.mark.parametrize("block", [1, HELD_BLOCK])
def test_a_changed_vin_reaches_the_vins_one_typo_away(
    engine: Engine, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether the VINs held are searched all in one block or one VIN at a time."""
    monkeypatch.setattr("vehiclehub.rules.quality.HELD_BLOCK", block)
    monkeypatch.setattr("vehiclehub.rules.quality.HELD_CHUNK", block)
    _load(engine, "police", "events", _event("E1", NEAR_A), _event("E2", FAR_A))
    since = _files(engine)
    _load(engine, "customs", "declarations", {"decl_no": DECL, "item_no": 1, "vin": VIN_A})
    assert _reached(engine, BY_NEIGHBOUR, since) == {NEAR_A}


def test_the_neighbouring_vin_reach_spools_the_vins_it_read_for_vin003(engine: Engine) -> None:
    """The VINs held, block by block as read from the store, handed to VIN-003 on disk."""
    _load(engine, "police", "events", _event("E1", NEAR_A), _event("E2", FAR_A))
    since = _files(engine)
    _load(engine, "customs", "declarations", {"decl_no": DECL, "item_no": 1, "vin": VIN_A})
    with engine.connect() as conn:
        ctx = RuleContext(conn, D, RuleParameters())
        BY_NEIGHBOUR.expand(Night(ctx, since, D))
        spool = ctx.carried.pop(_HELD_VINS)
        read = list(_held_vin_blocks(ctx))
    spooled = list(spool.blocks())
    assert [len(vins) for vins, _ in spooled] == [len(vins) for vins, _ in read] == [3]
    for (vins, on), (again, again_on) in zip(spooled, read, strict=True):
        assert vins.tolist() == again.tolist() and on.tolist() == again_on.tolist()


def test_a_new_date_reaches_the_exports_it_carries_past_the_deregistration_window(
    engine: Engine,
) -> None:
    window = timedelta(days=RuleParameters().dereg_window_days)
    previous, day = D, D + timedelta(days=3)
    crossing = {
        "decl_no": DECL,
        "item_no": 1,
        "vin": VIN_A,
        "exported_at": day - window - timedelta(days=1),
    }
    past = {
        "decl_no": DECL,
        "item_no": 2,
        "vin": VIN_B,
        "exported_at": previous - window - timedelta(days=1),
    }
    not_yet = {"decl_no": DECL, "item_no": 3, "vin": NEAR_A, "exported_at": day - window}
    _load(engine, "customs", "declarations", crossing, past, not_yet)
    assert _reached(engine, PAST_DEREG_WINDOW, _files(engine), day, previous) == {VIN_A}


def test_a_new_date_reaches_the_pending_exports_it_carries_past_their_window(
    engine: Engine,
) -> None:
    window = timedelta(days=RuleParameters().pending_export_days)
    previous, day = D, D + timedelta(days=1)
    pending = "transfer_pending_export"
    _load(
        engine,
        "police",
        "events",
        _event("E1", VIN_A, event_type=pending, event_date=previous - window),
        _event("E2", VIN_B, event_type=pending, event_date=previous - window - timedelta(days=1)),
        _event("E3", NEAR_A, event_date=previous - window),
    )
    assert _reached(engine, PAST_PENDING_EXPORT_WINDOW, _files(engine), day, previous) == {VIN_A}


def test_a_new_date_reaches_every_licence_still_not_issued_past_the_limit(engine: Engine) -> None:
    long_ago = D - timedelta(days=30)
    _load(
        engine,
        "commerce",
        "licences",
        _licence("L1", VIN_A, "X" * 18, applied_at=long_ago),
        _licence("L2", VIN_B, "X" * 18, applied_at=long_ago, issued_at=D),
        _licence("L3", NEAR_A, "X" * 18, applied_at=D),
    )
    assert _reached(engine, LICENCES_PENDING_PAST_LIMIT, _files(engine)) == {VIN_A}


def test_a_new_date_reaches_every_refund_line_still_pending_past_the_limit(
    engine: Engine,
) -> None:
    long_ago = D - timedelta(days=30)
    line = {"refund_no": "R1", "applied_at": long_ago}
    _load(
        engine,
        "tax",
        "refunds",
        line | {"decl_ref": DECL + "001", "status": "pending"},
        line | {"decl_ref": DECL + "002", "status": "approved", "approved_at": D},
        line | {"decl_ref": DECL + "003", "status": "pending", "applied_at": D},
    )
    assert _reached(engine, REFUNDS_PENDING_PAST_LIMIT, _files(engine)) == {DECL + "001"}
