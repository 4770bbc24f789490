"""SLA-001 and SLA-002: working days by the State Council calendar, 调休 included.

National Day 2025: 1-8 October off; Sunday 28 September and Saturday 11 October
are working days.
"""

from __future__ import annotations

from datetime import date

import pytest
from tests.factories import Vehicle

from vehiclehub.config import Settings
from vehiclehub.workdays import CalendarError

from .world import World, evaluation, findings

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


def test_a_day_outside_the_calendar_is_an_error_naming_it(settings: Settings) -> None:
    world = World()
    world.add("licence", Vehicle().licence(applied_at="2026-12-21", issued_at=None, valid_to=None))
    world.load(settings)

    with pytest.raises(CalendarError, match=r"SLA-001 .*2027-01-05 is outside"):
        evaluation(settings, date(2027, 1, 5), only=["SLA-001"])
