"""SUB-001: the export_subsidy drop to commerce, its content and its format."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import write_config
from tests.factories import Vehicle, read_drop

from vehiclehub import pipeline
from vehiclehub.config import RuleParameters, Settings, load_settings
from vehiclehub.rules.subsidy import export_subsidy
from vehiclehub.store import connect

from .world import D, World


def test_export_subsidy_drop(tmp_path: Path) -> None:
    settings = load_settings(
        write_config(
            tmp_path,
            f"sqlite:///{tmp_path / 'hub.db'}",
            rules="{ subsidy_min_vehicles = 2, subsidy_per_vehicle_cny = 1500 }",
        )
    )
    world = World()
    a1 = Vehicle()
    a2, a_2024 = Vehicle(uscc=a1.uscc), Vehicle(uscc=a1.uscc)
    world.vehicle(a1)
    world.vehicle(a2)
    # The same vehicle on a second cleared item of the same exporter counts once.
    world.add("item", a1.item(decl_no="020120250000000777"))
    world.vehicle(
        a_2024,
        item={"declared_at": "2024-12-20", "exported_at": "2024-12-30"},
        dereg={"event_date": "2025-01-05"},
    )
    b_verified = Vehicle()
    b_early, b_cancelled = Vehicle(uscc=b_verified.uscc), Vehicle(uscc=b_verified.uscc)
    world.vehicle(b_verified)
    # Deregistered before it left (EXP-002), and an item withdrawn: neither is verified.
    world.vehicle(b_early, dereg={"event_date": "2025-10-01"})
    world.vehicle(b_cancelled, item={"record_status": "cancelled"})
    world.load(settings)

    pipeline.reconcile(settings, D)
    pipeline.publish(settings, D)

    inbox = tmp_path / "exchange" / "commerce" / "inbox"
    name = f"hub_commerce_export_subsidy_{D:%Y%m%d}_001"
    body = (inbox / f"{name}.csv").read_bytes()
    expected = sorted(
        [
            f"{a1.uscc},2024,1,false,0",
            f"{a1.uscc},2025,2,true,3000",
            f"{b_verified.uscc},2025,1,false,0",
        ]
    )
    assert body.decode("utf-8").split("\r\n") == [
        "uscc,year,vehicles,eligible,amount_cny",
        *expected,
        "",
    ]
    assert not body.startswith(b"\xef\xbb\xbf")
    manifest = json.loads((inbox / f"{name}.manifest.json").read_text("utf-8"))
    assert (manifest["agency"], manifest["feed"], manifest["rows"]) == (
        "commerce",
        "export_subsidy",
        3,
    )
    frame = read_drop(tmp_path, "commerce", "export_subsidy")
    assert list(frame.columns) == ["uscc", "year", "vehicles", "eligible", "amount_cny"]

    # Every exporter-year in every run, not only what changed.
    pipeline.reconcile(settings, D.replace(day=4))
    pipeline.publish(settings, D.replace(day=4))
    again = read_drop(tmp_path, "commerce", "export_subsidy", D.replace(day=4))
    assert again.equals(frame)


def test_export_subsidy_defaults_and_empty_store(settings: Settings) -> None:
    world = World()
    world.vehicle()
    world.load(settings)
    engine = connect(settings.database_url)
    with engine.connect() as conn:
        rows = export_subsidy(conn, D, RuleParameters())
        assert rows.to_dict("records") == [
            {
                "uscc": rows.at[0, "uscc"],
                "year": 2025,
                "vehicles": 1,
                "eligible": False,
                "amount_cny": 0,
            }
        ]
    engine.dispose()
    empty = connect(f"sqlite:///{settings.work_dir.parent / 'empty.db'}")
    with empty.connect() as conn:
        assert list(export_subsidy(conn, D, RuleParameters()).columns) == [
            "uscc",
            "year",
            "vehicles",
            "eligible",
            "amount_cny",
        ]
    empty.dispose()


def test_a_vehicle_two_deregistrations_verify_counts_once(tmp_path: Path, store_url: str) -> None:
    settings = load_settings(write_config(tmp_path, store_url))
    world = World()
    twice = world.vehicle()["vehicle"]
    # A second export deregistration after the item left verifies it again.
    world.event(twice, "deregister", "2025-10-25", dereg_reason="export", decl_no=twice.decl_no)
    # Near miss: both export deregistrations dated before the item left verify nothing.
    early = Vehicle(uscc=twice.uscc)
    world.vehicle(early, dereg={"event_date": "2025-10-01"})
    world.event(early, "deregister", "2025-10-02", dereg_reason="export", decl_no=early.decl_no)
    world.load(settings)
    engine = connect(settings.database_url)
    with engine.connect() as conn:
        rows = export_subsidy(conn, D, RuleParameters())
    engine.dispose()
    assert rows[["uscc", "year", "vehicles"]].to_dict("records") == [
        {"uscc": twice.uscc, "year": 2025, "vehicles": 1}
    ]
