"""EXP, LIC and TAX rules: each with a case that fires and a close case that must not."""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
import pytest
from tests.factories import Vehicle, read_drop, send

from vehiclehub.config import Settings
from vehiclehub.pipeline import run_cycle

DAY = date(2025, 11, 3)


def cycle(settings: Settings, **feeds: list[dict[str, Any]]) -> dict[str, pd.DataFrame]:
    """Send each feed (``customs_declarations=[...]``), run the day, return the drops."""
    root = settings.work_dir.parent
    for name, rows in feeds.items():
        agency, feed = name.split("_", 1)
        send(root, agency, feed, rows)
    run_cycle(settings, DAY)
    drops = {}
    for agency in ("commerce", "police", "customs", "tax"):
        drops[f"{agency}_findings"] = read_drop(root, agency, "findings")
    drops["police_export_verification"] = read_drop(root, "police", "export_verification")
    drops["tax_refund_verification"] = read_drop(root, "tax", "refund_verification")
    return drops


def fired(drops: dict[str, pd.DataFrame], rule_id: str) -> list[tuple[str, str]]:
    """(record_key, related) of a rule's findings, over all findings drops, deduplicated."""
    rows = pd.concat([d for k, d in drops.items() if k.endswith("_findings")])
    rows = rows[rows["rule_id"] == rule_id]
    return sorted(set(zip(rows["record_key"], rows["related"], strict=True)))


def complete(v: Vehicle, **overrides: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """A vehicle whose whole story checks out; ``overrides`` replace feeds."""
    feeds = {
        "commerce_enterprises": [v.filing()],
        "commerce_licences": [v.licence()],
        "customs_declarations": [v.item()],
        "police_events": [v.export_deregistration("E1")],
        "tax_refunds": [v.refund()],
    }
    return feeds | overrides


def test_a_complete_story_raises_nothing_and_is_verified(settings: Settings) -> None:
    v = Vehicle()
    drops = cycle(settings, **complete(v))
    for agency in ("commerce", "police", "customs", "tax"):
        assert drops[f"{agency}_findings"].empty, drops[f"{agency}_findings"]
    police = drops["police_export_verification"]
    assert police.values.tolist() == [["E1", v.vin, "verified", v.decl_no, "2025-10-12", ""]]
    tax = drops["tax_refund_verification"]
    assert tax.values.tolist() == [["R20251103001", v.decl_ref, v.vin, "verified", ""]]


# EXP -------------------------------------------------------------------------------------


def test_exp_001_export_deregistration_without_cleared_item(settings: Settings) -> None:
    v, w = Vehicle(), Vehicle()
    drops = cycle(
        settings,
        **complete(
            v,
            customs_declarations=[v.item(status="declared", exported_at=None), w.item()],
            police_events=[v.export_deregistration("E1"), w.export_deregistration("E2")],
        ),
    )
    assert fired(drops, "EXP-001") == [("E1", "")]
    police = drops["police_export_verification"].set_index("event_id")
    assert police.loc["E1", "verdict"] == "no_export"
    assert police.loc["E1", "rule_ids"] == "EXP-001"
    assert police.loc["E2", "verdict"] == "verified"


def test_exp_001_matches_on_the_normalised_vin(settings: Settings) -> None:
    v = Vehicle()
    dashed = f"{v.vin[:3]}-{v.vin[3:9]} {v.vin[9:].lower()}"
    drops = cycle(
        settings, **complete(v, police_events=[v.export_deregistration("E1", vin=dashed)])
    )
    assert fired(drops, "EXP-001") == []
    assert drops["police_export_verification"]["verdict"].tolist() == ["verified"]


def test_exp_002_deregistered_before_export(settings: Settings) -> None:
    v, w = Vehicle(), Vehicle()
    drops = cycle(
        settings,
        **complete(
            v,
            customs_declarations=[v.item(), w.item()],
            police_events=[
                v.export_deregistration("E1", event_date="2025-10-11"),
                w.export_deregistration("E2", event_date="2025-10-12"),  # same day: in time
            ],
        ),
    )
    assert fired(drops, "EXP-002") == [("E1", f"customs:{v.item_key}")]
    police = drops["police_export_verification"].set_index("event_id")
    assert police.loc["E1", ["verdict", "rule_ids"]].tolist() == ["before_export", "EXP-002"]
    assert police.loc["E2", "verdict"] == "verified"


def test_exp_002_a_cancelled_item_is_no_evidence(settings: Settings) -> None:
    v = Vehicle()
    drops = cycle(settings, **complete(v, customs_declarations=[v.item(record_status="cancelled")]))
    assert fired(drops, "EXP-001") == [("E1", "")]
    assert fired(drops, "EXP-002") == []


def test_exp_003_exported_and_not_deregistered(settings: Settings) -> None:
    v, w, x = Vehicle(), Vehicle(), Vehicle()
    drops = cycle(
        settings,
        customs_declarations=[
            v.item(exported_at="2025-09-03"),  # 61 days before D: overdue
            w.item(exported_at="2025-09-04"),  # 60 days: still within the window
            x.item(exported_at="2025-08-01"),  # deregistered: fine
        ],
        police_events=[x.export_deregistration("E3")],
    )
    assert fired(drops, "EXP-003") == [(v.item_key, "")]
    police = drops["police_export_verification"]
    overdue = police[police["verdict"] == "overdue"]
    assert overdue.values.tolist() == [["", v.vin, "overdue", v.decl_no, "2025-09-03", "EXP-003"]]


def test_verification_shows_the_cited_declaration_if_it_qualifies(settings: Settings) -> None:
    v = Vehicle()
    other = Vehicle(vin=v.vin, uscc=v.uscc, licence_no=v.licence_no)
    drops = cycle(
        settings,
        **complete(
            v,
            customs_declarations=[
                v.item(exported_at="2025-10-01"),
                other.item(exported_at="2025-10-15"),
            ],
        ),
    )
    assert drops["police_export_verification"]["decl_no"].tolist() == [v.decl_no]


def test_verification_falls_back_to_the_latest_qualifying_item(settings: Settings) -> None:
    v = Vehicle()
    other = Vehicle(vin=v.vin, uscc=v.uscc, licence_no=v.licence_no)
    drops = cycle(
        settings,
        **complete(
            v,
            customs_declarations=[
                v.item(exported_at="2025-10-01"),
                other.item(exported_at="2025-10-15"),
            ],
            police_events=[v.export_deregistration("E1", decl_no=None)],
        ),
    )
    assert drops["police_export_verification"][["decl_no", "exported_at"]].values.tolist() == [
        [other.decl_no, "2025-10-15"]
    ]


# LIC -------------------------------------------------------------------------------------


def test_lic_001_item_without_licence_row(settings: Settings) -> None:
    v, w = Vehicle(), Vehicle()
    drops = cycle(
        settings,
        commerce_licences=[v.licence(), w.licence(vin=v.vin)],
        customs_declarations=[v.item(), w.item()],
    )
    assert fired(drops, "LIC-001") == [(w.item_key, "")]


@pytest.mark.parametrize(
    ("licence", "declared_at", "fires"),
    [
        ({"issued_at": None, "valid_to": None}, "2025-10-09", True),
        ({}, "2025-09-28", True),  # before issue
        ({}, "2025-09-29", False),  # the day of issue
        ({}, "2025-12-29", False),  # the last valid day
        ({}, "2025-12-30", True),  # after valid_to
    ],
)
def test_lic_002_declared_outside_the_licence(
    settings: Settings, licence: dict[str, Any], declared_at: str, fires: bool
) -> None:
    v = Vehicle()
    drops = cycle(
        settings,
        commerce_licences=[v.licence(**licence)],
        customs_declarations=[v.item(declared_at=declared_at, exported_at=None, status="declared")],
    )
    expected = [(v.item_key, f"commerce:{v.licence_no}/{v.vin}")] if fires else []
    assert fired(drops, "LIC-002") == expected


def test_lic_003_declared_by_another_exporter(settings: Settings) -> None:
    v, w = Vehicle(), Vehicle()
    drops = cycle(
        settings,
        commerce_licences=[v.licence(), w.licence()],
        customs_declarations=[v.item(uscc=w.uscc), w.item()],
    )
    assert fired(drops, "LIC-003") == [(v.item_key, f"commerce:{v.licence_no}/{v.vin}")]


@pytest.mark.parametrize(
    ("filing", "licence", "fires"),
    [
        ({}, {}, False),
        ({"status": "suspended"}, {}, True),
        ({"valid_from": "2025-09-30"}, {}, True),  # filed a day after issue
        ({"valid_to": "2025-09-29"}, {}, False),  # covers the day of issue exactly
        ({"status": "revoked"}, {"issued_at": None, "valid_to": None}, False),  # not issued
    ],
)
def test_lic_004_licence_without_active_filing(
    settings: Settings, filing: dict[str, Any], licence: dict[str, Any], fires: bool
) -> None:
    v = Vehicle()
    drops = cycle(
        settings,
        commerce_enterprises=[v.filing(**filing)],
        commerce_licences=[v.licence(**licence)],
    )
    assert fired(drops, "LIC-004") == ([(f"{v.licence_no}/{v.vin}", "")] if fires else [])


def test_lic_005_vin_on_more_than_one_item(settings: Settings) -> None:
    v, w = Vehicle(), Vehicle()
    again = Vehicle(vin=v.vin, uscc=v.uscc, licence_no=v.licence_no)
    cancelled = Vehicle(vin=w.vin, uscc=w.uscc, licence_no=w.licence_no)
    drops = cycle(
        settings,
        customs_declarations=[
            v.item(),
            again.item(),
            w.item(),
            cancelled.item(record_status="cancelled"),
        ],
    )
    # RULES.md names no related record for LIC-005: each item carries its own finding.
    assert fired(drops, "LIC-005") == sorted([(v.item_key, ""), (again.item_key, "")])


# TAX -------------------------------------------------------------------------------------


def test_tax_001_no_item_or_not_cleared(settings: Settings) -> None:
    v, w, x = Vehicle(), Vehicle(), Vehicle()
    drops = cycle(
        settings,
        customs_declarations=[
            v.item(status="declared", exported_at=None),
            x.item(),
        ],
        tax_refunds=[
            v.refund("R1"),
            w.refund("R2"),
            x.refund("R3"),
            w.refund("R4", status="rejected", decl_ref=w.decl_no + "002"),
        ],
    )
    assert fired(drops, "TAX-001") == [
        (f"R1/{v.decl_ref}", f"customs:{v.item_key}"),
        (f"R2/{w.decl_ref}", ""),
    ]
    verdicts = drops["tax_refund_verification"].set_index("refund_no")
    assert verdicts["verdict"].to_dict() == {"R1": "no_export", "R2": "no_export", "R3": "verified"}
    assert verdicts.loc["R2", "vin"] == ""


def test_tax_002_cancelled_item_is_not_tax_001(settings: Settings) -> None:
    v = Vehicle()
    drops = cycle(
        settings,
        customs_declarations=[v.item(record_status="cancelled")],
        tax_refunds=[v.refund("R1")],
    )
    assert fired(drops, "TAX-002") == [(f"R1/{v.decl_ref}", f"customs:{v.item_key}")]
    assert fired(drops, "TAX-001") == []
    assert drops["tax_refund_verification"][["vin", "verdict", "rule_ids"]].values.tolist() == [
        [v.vin, "cancelled", "TAX-002"]
    ]


def test_tax_003_and_004_with_the_verdict_order(settings: Settings) -> None:
    v, w = Vehicle(), Vehicle()
    drops = cycle(
        settings,
        customs_declarations=[v.item(), w.item()],
        tax_refunds=[
            v.refund("R1"),
            v.refund("R2", uscc=w.uscc),
            w.refund("R3"),
            w.refund("R4", status="rejected"),  # rejected lines are outside TAX-003
        ],
    )
    assert fired(drops, "TAX-003") == [(f"R1/{v.decl_ref}", ""), (f"R2/{v.decl_ref}", "")]
    assert fired(drops, "TAX-004") == [(f"R2/{v.decl_ref}", f"customs:{v.item_key}")]
    verdicts = drops["tax_refund_verification"].set_index("refund_no")
    assert verdicts[["verdict", "rule_ids"]].values.tolist() == [
        ["duplicate", "TAX-003"],
        ["duplicate", "TAX-003;TAX-004"],
        ["verified", ""],
    ]
    assert "R4" not in verdicts.index


def test_findings_go_to_every_agency_they_cite(settings: Settings) -> None:
    v, w = Vehicle(), Vehicle()
    drops = cycle(
        settings,
        commerce_enterprises=[v.filing(), w.filing()],
        commerce_licences=[v.licence(), w.licence()],
        customs_declarations=[v.item(uscc=w.uscc), w.item()],
    )
    assert drops["customs_findings"]["rule_id"].tolist() == ["LIC-003"]
    assert drops["commerce_findings"]["rule_id"].tolist() == ["LIC-003"]
    assert drops["police_findings"].empty and drops["tax_findings"].empty
    assert list(drops["customs_findings"].columns) == [
        "rule_id",
        "severity",
        "vin",
        "record_key",
        "related",
        "detail",
        "status",
        "review",
        "note",
    ]
