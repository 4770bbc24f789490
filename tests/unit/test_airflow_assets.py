"""The feeds' asset events: one per file loaded, emitted through the agency's alias."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from vehiclehub.airflow.assets import feed_alias, feed_asset, feed_asset_events, intake_summary
from vehiclehub.results import IntakeResult, IntakeStatus

DAY = date(2025, 11, 3)


def _file(
    name: str, status: str, feed: str | None, rows: int = 0, loaded: int = 0, rejected: int = 0
) -> dict[str, Any]:
    """A file of an intake's result, as ``vehiclehub.intake.take.FileOutcome`` gives it."""
    counts = {"rows": rows, "loaded": loaded, "ignored": 0, "rejected": rejected}
    return {"name": name, "status": status, "feed": feed, **counts, "error": None, "warnings": []}


#: What ``vehiclehub.pipeline.intake_agency`` returns for an agency whose outbox held a
#: late file of the 2nd, today's file (one row rejected), a copy of it, and a bad file.
COMMERCE_INTAKE = IntakeResult.from_dict(
    {
        "agency": "commerce",
        "status": "received",
        "files": [
            _file("commerce_licences_20251102_002.csv", "loaded", "licences", 4, 4),
            _file("commerce_licences_20251103_001.csv", "loaded", "licences", 7, 6, 1),
            _file("commerce_licences_20251103_002.csv", "duplicate", "licences", 7),
            _file("commerce_enterprises_20251103_001.csv", "rejected", "enterprises", 3),
            _file("commerce_tradein_claims_2025110_001.csv", "rejected", None),
        ],
        "waiting": [],
    }
)


def test_one_asset_per_feed() -> None:
    asset = feed_asset("commerce", "tradein_claims")
    assert (asset.name, asset.uri) == (
        "vehiclehub.commerce.tradein_claims",
        "x-vehiclehub://commerce/tradein_claims",
    )
    assert asset == feed_asset("commerce", "tradein_claims")
    assert asset != feed_asset("commerce", "licences")
    assert feed_alias("tax").name == "vehiclehub.tax.feeds"


def test_only_loaded_files_update_their_feed() -> None:
    events = feed_asset_events(COMMERCE_INTAKE, DAY)
    assert [(asset.uri, extra) for asset, extra in events] == [
        (
            "x-vehiclehub://commerce/licences",
            {
                "file": "commerce_licences_20251102_002.csv",
                "business_date": "2025-11-02",  # a late file: the business date is its own
                "run_date": "2025-11-03",
                "rows": 4,
                "loaded": 4,
                "rejected": 0,
                "ignored": 0,
            },
        ),
        (
            "x-vehiclehub://commerce/licences",
            {
                "file": "commerce_licences_20251103_001.csv",
                "business_date": "2025-11-03",
                "run_date": "2025-11-03",
                "rows": 7,
                "loaded": 6,
                "rejected": 1,
                "ignored": 0,
            },
        ),
    ]
    unreachable = IntakeResult("tax", IntakeStatus.NOT_RECEIVED, detail="refused")
    assert feed_asset_events(unreachable, DAY) == []


def test_the_intake_emits_its_events_through_the_agency_alias(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from airflow.sdk.execution_time.context import OutletEventAccessors

    outlet_events = OutletEventAccessors()
    states = {"enterprises": "rejected", "licences": "received", "tradein_claims": "not received"}
    with caplog.at_level("INFO", logger="vehiclehub.airflow.assets"):
        summary = intake_summary(outlet_events, COMMERCE_INTAKE, states, DAY)
    emitted = outlet_events[feed_alias("commerce")].asset_alias_events
    assert [(e.source_alias_name, e.dest_asset_key.uri, e.extra["file"]) for e in emitted] == [
        ("vehiclehub.commerce.feeds", "x-vehiclehub://commerce/licences", name)
        for name in ("commerce_licences_20251102_002.csv", "commerce_licences_20251103_001.csv")
    ]
    assert outlet_events[feed_alias("police")].asset_alias_events == []
    assert summary == {
        "business_date": "2025-11-03",
        **COMMERCE_INTAKE.to_dict(),
        "feeds": states,
        "assets": ["x-vehiclehub://commerce/licences"] * 2,
    }
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warned == [
        "commerce/enterprises for 2025-11-03: rejected",
        "commerce/tradein_claims for 2025-11-03: not received",
    ]
