"""TRD-001..005: trade-in subsidy claims 以旧换新 against police and customs."""

from __future__ import annotations

from tests.factories import RNG, Vehicle

from vehiclehub.config import Settings
from vehiclehub_samples.identifiers import make_resident_id

from .world import World, evaluation, findings

CHECKED = ["vin", "agency", "record_key", "related", "severity"]


def test_trd001_scrap_claim_without_scrap_deregistration(settings: Settings) -> None:
    world = World()
    kept, scrapped, replaced = Vehicle(), Vehicle(), Vehicle()
    new = Vehicle().vin
    claim = world.claim(kept.vin, new, claim_type="scrap")
    world.event(kept, "deregister", "2025-05-01", dereg_reason="other")  # not for scrap
    world.claim(scrapped.vin, new, claim_type="scrap")
    world.event(scrapped, "deregister", "2025-05-01", dereg_reason="scrap")
    world.claim(replaced.vin, new, claim_type="replace")  # TRD-003's business, not TRD-001's
    world.load(settings)

    found = findings(settings, "TRD-001")
    assert found[CHECKED].to_dict("records") == [
        {
            "vin": kept.vin,
            "agency": "commerce",
            "record_key": claim["claim_no"],
            "related": "",
            "severity": "error",
        }
    ]


def test_trd002_export_of_a_scrapped_vehicle(settings: Settings) -> None:
    world = World()
    scrapped, declared_only, replaced = Vehicle(), Vehicle(), Vehicle()
    world.vehicle(scrapped)
    dereg = world.event(scrapped, "deregister", "2025-05-01", dereg_reason="scrap")
    claim = world.claim(scrapped.vin, Vehicle().vin, claim_type="scrap")
    # Scrapped but never cleared for export: nothing exported, no TRD-002.
    world.add("item", declared_only.item(status="declared", exported_at=None))
    world.event(declared_only, "deregister", "2025-05-01", dereg_reason="scrap")
    # The old car of a replace claim may well be exported.
    world.vehicle(replaced)
    world.claim(replaced.vin, Vehicle().vin, claim_type="replace")
    world.load(settings)

    found = findings(settings, "TRD-002")
    assert found[CHECKED].to_dict("records") == [
        {
            "vin": scrapped.vin,
            "agency": "customs",
            "record_key": scrapped.item_key,
            "related": f"commerce:{claim['claim_no']};police:{dereg['event_id']}",
            "severity": "error",
        }
    ]


def test_trd003_replace_claim_without_sale_by_the_applicant(settings: Settings) -> None:
    world = World()
    applicant = make_resident_id(RNG)
    buyer, other = make_resident_id(RNG), make_resident_id(RNG)
    kept, sold, never_owned, sold_long_ago = Vehicle(), Vehicle(), Vehicle(), Vehicle()
    # Registered to the applicant and never transferred.
    world.event(kept, "register", "2020-05-01", owner_id=applicant)
    unsold = world.claim(kept.vin, Vehicle().vin, applicant_id=applicant)
    # Sold by the applicant (the pending-export event between is no ownership event).
    world.event(sold, "register", "2020-05-01", owner_id=applicant)
    world.event(sold, "transfer_pending_export", "2021-01-01")
    world.event(sold, "transfer", "2025-06-01", owner_id=buyer)
    world.claim(sold.vin, Vehicle().vin, applicant_id=applicant)
    # Transferred, but from someone else's hands to someone else's.
    world.event(never_owned, "register", "2020-05-01", owner_id=other)
    world.event(never_owned, "transfer", "2025-06-01", owner_id=buyer)
    not_theirs = world.claim(never_owned.vin, Vehicle().vin, applicant_id=applicant)
    # Sold by the applicant, then sold on by the buyer: the first transfer counts.
    world.event(sold_long_ago, "register", "2020-05-01", owner_id=applicant)
    world.event(sold_long_ago, "transfer", "2023-06-01", owner_id=buyer)
    world.event(sold_long_ago, "transfer", "2025-06-01", owner_id=other)
    world.claim(sold_long_ago.vin, Vehicle().vin, applicant_id=applicant, applied_at="2024-06-10")
    world.load(settings)

    found = findings(settings, "TRD-003")
    assert found[CHECKED].to_dict("records") == [
        {
            "vin": claim["old_vin"],
            "agency": "commerce",
            "record_key": claim["claim_no"],
            "related": "",
            "severity": "error",
        }
        for claim in (unsold, not_theirs)
    ]


def test_trd004_duplicate_claims(settings: Settings) -> None:
    world = World()
    twice, first, second = Vehicle(), Vehicle(), Vehicle()
    greedy, careful = make_resident_id(RNG), make_resident_id(RNG)
    a = world.claim(twice.vin, Vehicle().vin, claim_type="scrap")
    b = world.claim(twice.vin, Vehicle().vin, claim_type="replace")
    c = world.claim(first.vin, Vehicle().vin, applicant_id=greedy, applied_at="2025-01-05")
    d = world.claim(second.vin, Vehicle().vin, applicant_id=greedy, applied_at="2025-12-30")
    # Replace claims a year apart, and a scrap claim beside a replace one: allowed.
    world.claim(Vehicle().vin, Vehicle().vin, applicant_id=careful, applied_at="2024-12-31")
    world.claim(Vehicle().vin, Vehicle().vin, applicant_id=careful, applied_at="2025-01-01")
    world.claim(
        Vehicle().vin,
        Vehicle().vin,
        applicant_id=careful,
        applied_at="2025-03-01",
        claim_type="scrap",
    )
    world.load(settings)

    found = findings(settings, "TRD-004")
    assert found[CHECKED].to_dict("records") == [
        {
            "vin": mine["old_vin"],
            "agency": "commerce",
            "record_key": mine["claim_no"],
            "related": f"commerce:{theirs['claim_no']}",
            "severity": "error",
        }
        for mine, theirs in ((a, b), (b, a), (c, d), (d, c))
    ]
    detail = found.set_index("record_key")["detail"]
    assert detail[a["claim_no"]] == "the old vehicle is on more than one trade-in claim"
    assert "same year" in detail[c["claim_no"]]


def test_trd004_one_claim_with_both_reasons(settings: Settings) -> None:
    world = World()
    old, applicant = Vehicle(), make_resident_id(RNG)
    a = world.claim(old.vin, Vehicle().vin, applicant_id=applicant)
    b = world.claim(old.vin, Vehicle().vin, applicant_id=applicant)
    world.load(settings)

    found = findings(settings, "TRD-004")
    assert found["record_key"].tolist() == [a["claim_no"], b["claim_no"]]
    assert found["related"].tolist() == [f"commerce:{b['claim_no']}", f"commerce:{a['claim_no']}"]
    assert found.at[0, "detail"] == (
        "the old vehicle is on more than one trade-in claim; the applicant has more than one "
        "replace claim applied for in the same year"
    )


def test_trd005_subsidised_new_car_on_its_way_out(settings: Settings) -> None:
    world = World()
    exported, late, before = Vehicle(), Vehicle(), Vehicle()
    claim = world.claim(Vehicle().vin, exported.vin, applied_at="2025-03-01")
    pending = world.event(exported, "transfer_pending_export", "2025-05-10")
    world.add("item", exported.item(declared_at="2025-08-28", exported_at=None, status="declared"))
    # Declared 181 days after the claim; pending export before the claim: no finding.
    world.claim(Vehicle().vin, late.vin, applied_at="2025-03-01")
    world.add("item", late.item(declared_at="2025-08-29"))
    world.claim(Vehicle().vin, before.vin, applied_at="2025-03-01")
    world.event(before, "transfer_pending_export", "2025-02-28")
    world.load(settings)

    found = findings(settings, "TRD-005")
    assert found[CHECKED].to_dict("records") == [
        {
            "vin": exported.vin,
            "agency": "commerce",
            "record_key": claim["claim_no"],
            "related": f"customs:{exported.item_key};police:{pending['event_id']}",
            "severity": "warning",
        }
    ]
    assert "transferred pending export on 2025-05-10" in found.at[0, "detail"]
    assert set(evaluation(settings, only=["TRD-005"], new_car_days=30).findings["vin"]) == set()
