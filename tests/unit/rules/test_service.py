"""SLA-001 and SLA-002: working days by the State Council calendar, 调休 included.

National Day 2025: 1-8 October off; Sunday 28 September and Saturday 11 October
are working days.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
from tests.factories import Vehicle

from vehiclehub import pipeline
from vehiclehub.config import CalendarYear, Settings
from vehiclehub.publish.drops import each_drop, open_findings
from vehiclehub.publish.report import write_report
from vehiclehub.rules import RULES
from vehiclehub.rules.runner import evaluate
from vehiclehub.store import connect
from vehiclehub.workdays import WorkingDays

from .world import D, World, findings

CHECKED = ["vin", "agency", "record_key", "related", "severity"]


def test_sla001_licence_issued_late_across_national_day(settings: Settings) -> None:
    world = World()
    cases = {
        # applied, issued: working days strictly after applied, up to issued
        "make_up_saturday": ("2025-09-30", "2025-10-11"),  # 9, 10, 11 Oct: 3, on time
        "after_holiday": ("2025-09-30", "2025-10-13"),  # 4: late
        "make_up_sunday": ("2025-09-25", "2025-09-30"),  # 26, 28, 29, 30 Sep: 4, late
        "pending_late": ("2025-10-28", None),  # 29, 30, 31 Oct, 3 Nov (D): 4, late
        "pending_on_time": ("2025-10-29", None),  # 3 by D
    }
    vehicles = {name: Vehicle() for name in cases}
    for name, (applied, issued) in cases.items():
        world.add(
            "licence",
            vehicles[name].licence(
                applied_at=applied, issued_at=issued, valid_to=issued and "2026-03-31"
            ),
        )
    world.load(settings)

    found = findings(settings, "SLA-001")
    late = sorted(
        (vehicles[n] for n in ("after_holiday", "make_up_sunday", "pending_late")),
        key=lambda v: v.licence_no,
    )
    assert found[CHECKED].to_dict("records") == [
        {
            "vin": v.vin,
            "agency": "commerce",
            "record_key": f"{v.licence_no}/{v.vin}",
            "related": "",
            "severity": "warning",
        }
        for v in late
    ]
    detail = found.set_index("vin")["detail"]
    assert detail[vehicles["after_holiday"].vin] == (
        "applied for on 2025-09-30, issued on 2025-10-13 after 4 working days (at most 3)"
    )
    assert detail[vehicles["pending_late"].vin] == (
        "applied for on 2025-10-28 and still not issued after 4 working days (at most 3)"
    )
    assert len(findings(settings, "SLA-001", licence_wd=4)) == 0


def test_sla002_refund_limits_by_enterprise_class(settings: Settings) -> None:
    world = World()
    cases = {
        # class, applied, approved (None: pending), status
        "class1_late": ("1", "2025-09-30", "2025-10-13", "approved"),  # 4 > 3
        "class1_saturday": ("1", "2025-09-30", "2025-10-11", "approved"),  # 3
        "class3_in_time": ("3", "2025-09-30", "2025-10-13", "approved"),  # 4 <= 5
        "class4_late": ("4", "2025-09-30", "2025-10-15", "approved"),  # 6 > 5
        "class2_pending": ("2", "2025-10-28", None, "pending"),  # 4 by D
        "rejected": ("1", "2025-06-02", None, "rejected"),  # outside SLA-002
    }
    vehicles = {name: Vehicle() for name in cases}
    refunds = {
        name: world.add(
            "refund",
            vehicles[name].refund(
                world.serial("R"),
                enterprise_class=klass,
                applied_at=applied,
                approved_at=approved,
                status=status,
            ),
        )
        for name, (klass, applied, approved, status) in cases.items()
    }
    world.add("item", vehicles["class1_late"].item())
    world.load(settings)

    found = findings(settings, "SLA-002")
    late = ("class1_late", "class2_pending", "class4_late")
    assert found[CHECKED].to_dict("records") == sorted(
        [
            {
                # A refund's VIN is its customs item's, empty when there is none.
                "vin": vehicles[name].vin if name == "class1_late" else None,
                "agency": "tax",
                "record_key": f"{refunds[name]['refund_no']}/{refunds[name]['decl_ref']}",
                "related": "",
                "severity": "warning",
            }
            for name in late
        ],
        key=lambda f: f["record_key"],
    )
    assert set(found["detail"]) == {
        "applied for on 2025-09-30, approved on 2025-10-13 after 4 working days "
        "(class 1: at most 3)",
        "applied for on 2025-09-30, approved on 2025-10-15 after 6 working days "
        "(class 4: at most 5)",
        "applied for on 2025-10-28 and still pending after 4 working days (class 2: at most 3)",
    }
    assert findings(settings, "SLA-002", refund_wd_class12=4, refund_wd_other=6).empty


#: An example 2027 schedule for tests only (not the State Council's): Friday 1 January
#: off, Saturday 9 January a make-up working day.
EXAMPLE_2027 = CalendarYear(holidays=[date(2027, 1, 1)], workdays=[date(2027, 1, 9)])
BEFORE, AFTER = date(2026, 12, 28), date(2027, 1, 11)  # Mondays


def _licence(world: World, applied: str, issued: str | None) -> Vehicle:
    v = Vehicle()
    world.add(
        "licence", v.licence(applied_at=applied, issued_at=issued, valid_to=issued and "2027-06-30")
    )
    return v


def _sla001(settings: Settings, day: date) -> dict[str, str]:
    """The SLA-001 findings that hold at the end of the run for ``day``: detail per VIN."""
    engine = connect(settings.database_url)
    with engine.connect() as conn:
        found = open_findings(conn, day)
        (drop,) = [d for d in each_drop(conn, day) if d.name.startswith("hub_commerce_findings")]
        whole = pd.concat(list(drop.parts()), ignore_index=True)
    engine.dispose()
    in_drop = whole[whole["rule_id"] == "SLA-001"]
    assert sorted(in_drop["vin"]) == sorted(found.loc[found["rule_id"] == "SLA-001", "vin"])
    return dict(zip(in_drop["vin"], in_drop["detail"], strict=True))


def test_counts_into_a_year_not_configured_are_not_evaluated_and_findings_kept(
    settings: Settings,
) -> None:
    world = World()
    waiting = _licence(world, "2026-12-21", None)  # 5 working days by 28 December: late
    world.vehicle()
    world.event(Vehicle(), "deregister", "2025-10-20", dereg_reason="export")  # EXP-001
    world.load(settings, BEFORE)
    before = pipeline.reconcile(settings, BEFORE).to_dict()
    assert before["not_evaluated"] == {} and before["calendar_warnings"] == [WARNING_2027]
    earlier = "applied for on 2026-12-21 and still not issued after 5 working days (at most 3)"
    assert _sla001(settings, BEFORE) == {waiting.vin: earlier}

    across_holiday = _licence(world, "2026-12-30", "2027-01-05")  # 31 Dec, 4, 5 Jan: 3
    across_saturday = _licence(world, "2027-01-06", "2027-01-11")  # 7, 8, 9 (Sat), 11 Jan: 4
    world.load(settings, AFTER)
    # 2027 not configured: the licences counted into 2027 are not evaluated, the earlier
    # finding stays as it was and is still in the drop; every other rule is evaluated.
    without = pipeline.reconcile(settings, AFTER).to_dict()
    assert without["not_evaluated"] == {
        "SLA-001": {"no working-day calendar for 2027: add [calendar.2027] to the configuration": 3}
    }
    assert without["calendar_warnings"] == [WARNING_2027]
    assert without["kept_open"] == {"SLA-001": 1} and without["per_rule"]["SLA-001"] == 1
    assert _sla001(settings, AFTER) == {waiting.vin: earlier}

    configured = settings.model_copy(update={"calendar": {2027: EXAMPLE_2027}})
    engine = connect(settings.database_url)
    with engine.connect() as conn:
        by_package = evaluate(conn, AFTER, settings.rules)
        by_config = evaluate(
            conn, AFTER, settings.rules, calendar=WorkingDays({2027: EXAMPLE_2027})
        )
    engine.dispose()
    others = [r for r in RULES if not r.startswith("SLA-")]
    assert "EXP-001" in set(by_package.findings["rule_id"])
    pd.testing.assert_frame_equal(
        by_package.findings[by_package.findings["rule_id"].isin(others)],
        by_config.findings[by_config.findings["rule_id"].isin(others)],
    )
    assert by_config.not_evaluated.empty

    # 2027 configured: counted as RULES.md says, across the holiday and the make-up day.
    with_2027 = pipeline.reconcile(configured, AFTER).to_dict()
    assert with_2027["not_evaluated"] == {} and with_2027["calendar_warnings"] == []
    assert _sla001(configured, AFTER) == {
        # 22-25, 28-31 December, 4-9 January (9th made up), 11 January
        waiting.vin: "applied for on 2026-12-21 and still not issued after 15 working days "
        "(at most 3)",
        across_saturday.vin: "applied for on 2027-01-06, issued on 2027-01-11 after 4 working "
        "days (at most 3)",
    }
    assert across_holiday.vin not in _sla001(configured, AFTER)


WARNING_2027 = (
    "working-day calendar for 2027 not configured: SLA rules cannot count days in 2027 "
    "— add [calendar.2027]"
)


def test_a_licence_applied_for_in_2003_is_reported_not_evaluated(settings: Settings) -> None:
    world = World()
    old = _licence(world, "2003-06-02", None)
    late = _licence(world, "2025-10-28", None)  # 4 working days by D: late
    world.add(
        "refund",
        Vehicle().refund(
            world.serial("R"), applied_at="2003-06-02", approved_at=None, status="pending"
        ),
    )
    world.load(settings)

    summary = pipeline.reconcile(settings, D).to_dict()
    reason = "no working-day calendar for 2003: add [calendar.2003] to the configuration"
    assert summary["not_evaluated"] == {"SLA-001": {reason: 1}, "SLA-002": {reason: 1}}
    assert summary["per_rule"]["SLA-001"] == 1 and summary["kept_open"] == {}
    assert list(_sla001(settings, D)) == [late.vin]
    assert old.vin not in _sla001(settings, D)
    engine = connect(settings.database_url)
    html = write_report(engine, settings, D, {}).read_text("utf-8")
    engine.dispose()
    assert "2 record(s) not evaluated" in html
    assert f"SLA-001: 1 record(s) — {reason}" in html
