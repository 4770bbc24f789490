"""The engine: rules run side by side, findings kept across runs, the police verdicts."""

from __future__ import annotations

import threading
from datetime import timedelta

import pandas as pd
from sqlalchemy import select
from tests.factories import Vehicle

from vehiclehub.config import RuleParameters, Settings
from vehiclehub.icd.codes import POLICE_VERDICT_RULES, TAX_VERDICT_RULES
from vehiclehub.rules import RULES, RuleContext
from vehiclehub.rules.engine import reconcile
from vehiclehub.rules.history import StagedFindings
from vehiclehub.rules.runner import evaluate, evaluate_into, evaluate_rules
from vehiclehub.rules.verdicts import VERDICT_RULE_FRAMES, fired_rules
from vehiclehub.store import connect
from vehiclehub.store.schema import findings, verdict_history
from vehiclehub.store.verdicts import verdict_holds_on
from vehiclehub.workdays import package_calendar

from .test_all_rules import every_rule_world
from .world import D, World


def test_rules_on_two_connections_find_what_one_finds(settings: Settings) -> None:
    every_rule_world().load(settings)
    engine = connect(settings.database_url)
    with engine.connect() as conn:
        alone = evaluate(conn, D, RuleParameters())
        shared = evaluate(conn, D, RuleParameters(), workers=2)
    engine.dispose()
    pd.testing.assert_frame_equal(alone.findings, shared.findings)
    assert list(alone.raw) == list(shared.raw)
    for rule_id, frame in alone.raw.items():
        pd.testing.assert_frame_equal(frame, shared.raw[rule_id], obj=rule_id)


def test_only_the_rule_frames_asked_for_are_kept_and_the_findings_are_the_same(
    settings: Settings,
) -> None:
    every_rule_world().load(settings)
    engine = connect(settings.database_url)
    with engine.connect() as conn:
        every = evaluate(conn, D, RuleParameters(), workers=2)
        ctx = RuleContext(conn, D, RuleParameters(), package_calendar())
        kept = evaluate_rules(ctx, sorted(RULES), 2, keep_raw=VERDICT_RULE_FRAMES)
    engine.dispose()
    assert list(kept.raw) == ["EXP-003"]
    assert not kept.raw["EXP-003"].empty
    pd.testing.assert_frame_equal(kept.raw["EXP-003"], every.raw["EXP-003"])
    pd.testing.assert_frame_equal(kept.findings, every.findings)
    pd.testing.assert_frame_equal(kept.not_evaluated, every.not_evaluated)


def test_each_rule_hands_its_findings_over_on_the_callers_thread_as_it_is_done(
    settings: Settings,
) -> None:
    every_rule_world().load(settings)
    engine = connect(settings.database_url)
    handed: list[tuple[int, pd.DataFrame]] = []
    with engine.connect() as conn:
        every = evaluate(conn, D, RuleParameters())
        ctx = RuleContext(conn, D, RuleParameters(), package_calendar())
        ruled = evaluate_into(
            ctx, sorted(RULES), 2, lambda found: handed.append((threading.get_ident(), found))
        )
    engine.dispose()
    # One frame per rule with findings, each of one rule; none for a rule without any.
    rules = [str(found["rule_id"].iat[0]) for _, found in handed]
    assert sorted(rules) == sorted(every.findings["rule_id"].unique())
    assert all(found["rule_id"].nunique() == 1 for _, found in handed)
    assert {thread for thread, _ in handed} == {threading.get_ident()}
    whole = pd.concat([found for _, found in handed], ignore_index=True)
    whole = whole.sort_values(["rule_id", "record_key", "agency", "vin", "related"])
    expected = every.findings.sort_values(["rule_id", "record_key", "agency", "vin", "related"])
    pd.testing.assert_frame_equal(
        whole.reset_index(drop=True).astype(str), expected.reset_index(drop=True).astype(str)
    )
    pd.testing.assert_frame_equal(ruled.not_evaluated, every.not_evaluated)


def test_staged_findings_fire_per_record_what_the_whole_frame_fires(settings: Settings) -> None:
    every_rule_world().load(settings)
    engine = connect(settings.database_url)
    with engine.begin() as conn:
        every = evaluate(conn, D, RuleParameters())
        staged = StagedFindings(conn)
        for _, found in every.findings.groupby("rule_id"):
            staged.add(found)
        assert dict(staged.per_rule) == every.findings["rule_id"].value_counts().to_dict()
        for agency, rule_ids in (("police", POLICE_VERDICT_RULES), ("tax", TAX_VERDICT_RULES)):
            fired = staged.fired(agency, rule_ids)
            assert not fired.empty
            pd.testing.assert_series_equal(
                fired, fired_rules(every.findings, agency, rule_ids), check_names=False
            )
        # Near miss: a rule of another agency's report fires nothing on the police's.
        assert staged.fired("police", ["TAX-001"]).empty
        staged.record(D)
        stored = conn.execute(select(findings.c.rule_id, findings.c.record_key)).all()
    engine.dispose()
    assert len(stored) == len(every.findings)
    assert [(r, k) for r, k in stored] == sorted((r, k) for r, k in stored)


def test_an_in_memory_store_is_evaluated_on_its_own_connection() -> None:
    # Another connection to sqlite:// would be another, empty database.
    engine = connect("sqlite://")
    with engine.connect() as conn:
        found = evaluate(conn, D, RuleParameters(), workers=2)
    engine.dispose()
    assert found.findings.empty


def _findings(settings: Settings) -> pd.DataFrame:
    engine = connect(settings.database_url)
    with engine.connect() as conn:
        query = select(
            findings.c.id,
            findings.c.rule_id,
            findings.c.first_seen,
            findings.c.last_seen,
            findings.c.resolved_on,
        ).where(findings.c.rule_id.in_(("EXP-001", "EXP-003")))
        query = query.order_by(findings.c.id)
        frame = pd.DataFrame(conn.execute(query).all())
    engine.dispose()
    return frame.set_index("rule_id")


def test_a_finding_keeps_its_identity_while_it_holds_resolves_and_returns(
    settings: Settings,
) -> None:
    w = World()
    w.vehicle()
    w.event(Vehicle(), "deregister", "2025-10-20", dereg_reason="export")  # EXP-001 throughout
    # EXP-003 within a 60-day window (and LIC-001 throughout: no licence).
    w.add("item", Vehicle().item(exported_at="2025-08-01"))
    w.load(settings)
    engine = connect(settings.database_url)
    later, last = D + timedelta(days=1), D + timedelta(days=2)
    reconcile(engine, D, RuleParameters())
    first = _findings(settings)
    reconcile(engine, later, RuleParameters(dereg_window_days=120))
    second = _findings(settings)
    reconcile(engine, last, RuleParameters())
    third = _findings(settings)
    engine.dispose()

    assert sorted(first.index) == ["EXP-001", "EXP-003"]
    assert first["first_seen"].tolist() == [D, D] and first["resolved_on"].isna().all()
    assert list(second.loc["EXP-001", ["last_seen", "resolved_on"]]) == [later, None]
    assert list(second.loc["EXP-003", ["last_seen", "resolved_on"]]) == [D, later]
    # Back again: the same finding, seen since D, open.
    assert third["id"].tolist() == first["id"].tolist()
    assert list(third.loc["EXP-003", ["first_seen", "last_seen", "resolved_on"]]) == [
        D,
        last,
        None,
    ]


def test_the_item_shown_for_each_export_deregistration(settings: Settings) -> None:
    w = World()
    cited, late = Vehicle(), Vehicle()
    w.vehicle(cited)
    # Deregistered on 2025-10-20, but its own item left the day after.
    w.vehicle(late, item={"exported_at": "2025-10-21"})
    # Each VIN has a second cleared item: ``cited``'s in time, ``late``'s later still.
    for v, exported_at in ((cited, "2025-10-12"), (late, "2025-10-25")):
        other = Vehicle(vin=v.vin, uscc=v.uscc, licence_no=v.licence_no)
        w.add("item", other.item(exported_at=exported_at))
    w.load(settings)
    engine = connect(settings.database_url)
    reconcile(engine, D, RuleParameters())
    with engine.connect() as conn:
        rows = conn.execute(
            select(verdict_history.c.verdict, verdict_history.c.row_json).where(
                verdict_history.c.report == "export_verification", verdict_holds_on(D)
            )
        ).all()
    engine.dispose()
    # The item the deregistration names comes first, whether or not any is in time.
    shown = {(verdict, row_json.split('"decl_no":"')[1][:18]) for verdict, row_json in rows}
    assert shown == {("verified", cited.decl_no), ("before_export", late.decl_no)}
