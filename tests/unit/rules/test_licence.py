"""LIC-006 and LIC-007: the licence against the police registration and the car's age."""

from __future__ import annotations

from tests.factories import Vehicle

from vehiclehub.config import Settings

from .world import World, evaluation, findings


def test_lic006_licence_differs_from_latest_pending_export_event(settings: Settings) -> None:
    world = World()
    renamed, corrected, unregistered = Vehicle(), Vehicle(), Vehicle()
    world.vehicle(renamed)
    # A later pending-export registration with another model text: the latest one counts.
    latest = world.event(
        renamed, "transfer_pending_export", "2025-09-30", model="卡罗拉 双擎", owner_id=renamed.uscc
    )
    # The earlier event differs, the latest agrees: no finding.
    world.event(corrected, "transfer_pending_export", "2025-09-20", brand="BYD")
    world.event(corrected, "transfer_pending_export", "2025-09-26")
    world.add("licence", corrected.licence())
    # No pending-export event at all: no LIC-006.
    world.add("licence", unregistered.licence(brand="Toyota"))
    world.load(settings)

    found = findings(settings, "LIC-006")
    assert found[["vin", "agency", "record_key", "related", "severity"]].to_dict("records") == [
        {
            "vin": renamed.vin,
            "agency": "commerce",
            "record_key": f"{renamed.licence_no}/{renamed.vin}",
            "related": f"police:{latest['event_id']}",
            "severity": "error",
        }
    ]
    detail = found.at[0, "detail"]
    assert "model 秦PLUS on the licence, 卡罗拉 双擎 at police" in detail
    assert "pending_export_date 2025-09-26 on the licence, 2025-09-30 at police" in detail
    assert "brand" not in detail and "registration_date" not in detail


def test_lic006_compares_text_exactly(settings: Settings) -> None:
    world = World()
    v = Vehicle(brand="Toyota")
    world.event(v, "transfer_pending_export", "2025-09-26", brand="TOYOTA")
    world.add("licence", v.licence())
    world.load(settings)

    found = findings(settings, "LIC-006")
    assert found["record_key"].tolist() == [f"{v.licence_no}/{v.vin}"]
    assert "brand Toyota on the licence, TOYOTA at police" in found.at[0, "detail"]


def test_lic007_near_new_car(settings: Settings) -> None:
    world = World()
    new, edge, used = Vehicle(), Vehicle(), Vehicle()
    world.add(
        "licence",
        new.licence(registration_date="2025-06-01"),
        edge.licence(registration_date="2025-03-30"),  # applied 180 days later: still near-new
        used.licence(registration_date="2025-03-29"),  # 181 days
    )
    world.load(settings)

    found = findings(settings, "LIC-007")
    assert found[["vin", "agency", "record_key", "related", "severity"]].to_dict("records") == [
        {
            "vin": v.vin,
            "agency": "commerce",
            "record_key": f"{v.licence_no}/{v.vin}",
            "related": "",
            "severity": "warning",
        }
        for v in sorted((new, edge), key=lambda v: v.licence_no)
    ]
    assert set(evaluation(settings, only=["LIC-007"], new_car_days=179).findings["vin"]) == {
        new.vin
    }


def test_clean_vehicle_fires_neither(settings: Settings) -> None:
    world = World()
    world.vehicle()
    world.load(settings)
    assert evaluation(settings, only=["LIC-006", "LIC-007"]).findings.empty
