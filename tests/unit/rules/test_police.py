"""POL-001..003: the police chain of a vehicle bound for export."""

from __future__ import annotations

from tests.factories import Vehicle

from vehiclehub.config import Settings

from .world import World, findings


def test_pol001_pending_export_never_declared_after_the_window(settings: Settings) -> None:
    world = World()
    stale, on_time, declared = Vehicle(), Vehicle(), Vehicle()
    late = world.event(stale, "transfer_pending_export", "2025-08-01")
    # event_date + 60 = D exactly: not yet "+ 60 < D".
    world.event(on_time, "transfer_pending_export", "2025-09-04")
    # Old, but on a customs item, even one not cleared.
    world.event(declared, "transfer_pending_export", "2025-08-01")
    world.add("item", declared.item(status="declared", exported_at=None))
    world.load(settings)

    found = findings(settings, "POL-001")
    assert found[["vin", "agency", "record_key", "related", "severity"]].to_dict("records") == [
        {
            "vin": stale.vin,
            "agency": "police",
            "record_key": late["event_id"],
            "related": "",
            "severity": "warning",
        }
    ]
    assert "2025-08-01" in found.at[0, "detail"] and "60 days" in found.at[0, "detail"]
    assert findings(settings, "POL-001", pending_export_days=100).empty


def test_pol002_transfer_after_pending_export(settings: Settings) -> None:
    world = World()
    sold_on, same_day, before = Vehicle(), Vehicle(), Vehicle()
    pending = world.event(sold_on, "transfer_pending_export", "2025-09-01")
    transfer = world.event(sold_on, "transfer", "2025-09-10", owner_id=sold_on.person)
    world.event(same_day, "transfer_pending_export", "2025-09-01")
    world.event(same_day, "transfer", "2025-09-01")  # not a later date: does not follow
    world.event(before, "transfer", "2025-08-01")
    world.event(before, "transfer_pending_export", "2025-09-01")
    world.load(settings)

    found = findings(settings, "POL-002")
    assert found[["vin", "agency", "record_key", "related", "severity"]].to_dict("records") == [
        {
            "vin": sold_on.vin,
            "agency": "police",
            "record_key": transfer["event_id"],
            "related": f"police:{pending['event_id']}",
            "severity": "error",
        }
    ]


def test_pol003_pending_export_owner_holds_no_licence(settings: Settings) -> None:
    world = World()
    wrong, right, unlicensed = Vehicle(), Vehicle(), Vehicle()
    stranger = Vehicle().uscc
    pending = world.event(wrong, "transfer_pending_export", "2025-09-01", owner_id=stranger)
    world.add("licence", wrong.licence(), wrong.licence(licence_no="L2025B0002"))
    # One of two licence rows is the owner's: no finding.
    world.event(right, "transfer_pending_export", "2025-09-01")
    world.add("licence", right.licence(), right.licence(licence_no="L2025B0003", uscc=stranger))
    # No licence at all: no POL-003.
    world.event(unlicensed, "transfer_pending_export", "2025-09-01", owner_id=stranger)
    world.load(settings)

    found = findings(settings, "POL-003")
    assert found[["vin", "agency", "record_key", "related", "severity"]].to_dict("records") == [
        {
            "vin": wrong.vin,
            "agency": "police",
            "record_key": pending["event_id"],
            "related": ";".join(
                sorted(f"commerce:{no}/{wrong.vin}" for no in ("L2025B0002", wrong.licence_no))
            ),
            "severity": "error",
        }
    ]
    assert stranger in found.at[0, "detail"] and wrong.uscc in found.at[0, "detail"]
