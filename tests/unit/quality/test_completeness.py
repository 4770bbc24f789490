"""Completeness: expected feeds, their state for the day, and gaps in seq."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import insert

from vehiclehub.config import ConfigError, QualitySettings, Settings
from vehiclehub.quality.completeness import expected_feeds, feed_completeness
from vehiclehub.store import connect
from vehiclehub.store.db import upgrade
from vehiclehub.store.schema import agency_intakes, intake_files

D = date(2025, 11, 3)


@pytest.fixture(autouse=True)
def _store_set_up(settings: Settings) -> None:
    """The store as a run's first step leaves it: a sensor's poke only reads it."""
    upgrade(settings.database_url)


def _taken(
    conn, agency: str, feed: str, seq: int, status: str = "loaded", *, day: date = D, run: date = D
) -> None:
    conn.execute(
        insert(intake_files).values(
            agency=agency,
            feed=feed,
            seq=seq,
            business_date=day,
            run_date=run,
            status=status,
            name=f"{agency}_{feed}_{day:%Y%m%d}_{seq:03d}.csv",
            taken_at=datetime.now(UTC),
        )
    )


def _agency(
    conn,
    agency: str,
    status: str = "received",
    waiting: list[str] | None = None,
    detail: str | None = None,
) -> None:
    conn.execute(
        insert(agency_intakes).values(
            run_date=D,
            agency=agency,
            status=status,
            detail=detail,
            waiting=json.dumps(waiting or []),
            attempted_at=datetime.now(UTC),
        )
    )


def test_every_state_of_an_expected_feed(settings: Settings) -> None:
    engine = connect(settings.database_url)
    with engine.begin() as conn:
        _agency(conn, "commerce", waiting=["commerce_licences_20251103_001.csv"])
        _agency(conn, "police")
        _agency(conn, "customs")
        _agency(conn, "tax", "not received", detail="Unable to connect to port 22")
        _taken(conn, "commerce", "enterprises", 1)
        _taken(conn, "police", "events", 1, "rejected")
        _taken(conn, "customs", "declarations", 1)
        _taken(conn, "customs", "declarations", 4, "duplicate")
        _taken(conn, "customs", "declarations", 1, day=D - timedelta(days=1))
        _taken(conn, "customs", "declarations", 3, day=D - timedelta(days=1))
        _taken(conn, "customs", "declarations", 2, day=D - timedelta(days=20))
    with engine.connect() as conn:
        found = feed_completeness(conn, settings, D)
    states = {(f.agency, f.feed): (f.state, f.detail) for f in found.feeds}
    assert states == {
        ("commerce", "enterprises"): ("received", None),
        ("commerce", "licences"): ("waiting", "data file waiting for its manifest"),
        ("commerce", "tradein_claims"): ("not received", "no file for 2025-11-03 by this run"),
        ("police", "events"): ("rejected", "every file of the date was rejected whole"),
        ("customs", "declarations"): ("received", None),
        ("tax", "refunds"): ("not received", "exchange unreachable: Unable to connect to port 22"),
    }
    gaps = [(g.agency, g.business_date, g.missing) for g in found.gaps]
    # 20 days back is outside the 7-day window; yesterday's 002 and today's 002-003 are missing.
    assert gaps == [
        ("customs", "2025-11-02", [2]),
        ("customs", "2025-11-03", [2, 3]),
    ]
    assert found.gaps[1].names == [
        "customs_declarations_20251103_002.csv",
        "customs_declarations_20251103_003.csv",
    ]
    summary = found.summary()
    assert summary["not_received"] == ["commerce/tradein_claims", "tax/refunds"]
    assert summary["received"] == 2 and summary["expected"] == 6


def test_a_file_waiting_for_its_manifest_fills_no_gap_but_is_no_gap(settings: Settings) -> None:
    engine = connect(settings.database_url)
    with engine.begin() as conn:
        _agency(conn, "police", waiting=["police_events_20251103_002.csv"])
        _taken(conn, "police", "events", 1)
        _taken(conn, "police", "events", 3)
    with engine.connect() as conn:
        assert feed_completeness(conn, settings, D).gaps == []


def test_expected_feeds_default_to_all_and_follow_the_configuration(settings: Settings) -> None:
    assert expected_feeds(settings) == {
        "commerce": ["enterprises", "licences", "tradein_claims"],
        "police": ["events"],
        "customs": ["declarations"],
        "tax": ["refunds"],
    }
    narrowed = settings.model_copy(
        update={"quality": QualitySettings(expected_feeds={"commerce": ["licences"], "tax": []})}
    )
    assert expected_feeds(narrowed)["commerce"] == ["licences"]
    assert expected_feeds(narrowed)["tax"] == []
    wrong = settings.model_copy(
        update={"quality": QualitySettings(expected_feeds={"customs": ["declaration"]})}
    )
    with pytest.raises(ConfigError, match="customs sends no feed declaration"):
        expected_feeds(wrong)


def test_a_late_file_sensor_sees_what_has_not_arrived(settings: Settings) -> None:
    from tests.factories import Vehicle, send

    from vehiclehub.pipeline import feeds_not_arrived

    root = settings.work_dir.parent
    assert feeds_not_arrived(settings, "customs", D) == ["customs/declarations"]
    send(root, "customs", "declarations", [Vehicle().item()], with_manifest=False)
    assert feeds_not_arrived(settings, "customs", D) == ["customs/declarations"]
    send(root, "customs", "declarations", [Vehicle().item()])
    assert feeds_not_arrived(settings, "customs", D) == []
    send(root, "commerce", "licences", [Vehicle().licence()], day=D - timedelta(days=1))
    assert feeds_not_arrived(settings, "commerce", D) == [
        "commerce/enterprises",
        "commerce/licences",
        "commerce/tradein_claims",
    ]


def test_the_late_file_check_waits_until_the_agency_deadline(settings: Settings) -> None:
    from datetime import time
    from zoneinfo import ZoneInfo

    from vehiclehub.pipeline import late_file_check
    from vehiclehub.quality.completeness import arrival_deadline

    shanghai = ZoneInfo("Asia/Shanghai")
    custom = settings.model_copy(
        update={"quality": QualitySettings(arrival_deadlines={"customs": time(4, 30)})}
    )
    assert arrival_deadline(custom, "customs", D) == datetime(2025, 11, 4, 4, 30, tzinfo=shanghai)
    assert arrival_deadline(custom, "tax", D) == datetime(2025, 11, 4, 6, 0, tzinfo=shanghai)
    early = late_file_check(custom, "customs", D, now=datetime(2025, 11, 4, 3, 0, tzinfo=shanghai))
    assert (early["done"], early["missing"]) == (False, ["customs/declarations"])
    late = late_file_check(custom, "customs", D, now=datetime(2025, 11, 4, 4, 30, tzinfo=shanghai))
    assert late["done"] and late["deadline"] == "2025-11-04T04:30:00+08:00"


def test_an_agency_feed_states_after_its_intake(settings: Settings) -> None:
    from vehiclehub.pipeline import agency_feed_states

    engine = connect(settings.database_url)
    with engine.begin() as conn:
        _agency(conn, "commerce")
        _taken(conn, "commerce", "licences", 1)
        _taken(conn, "commerce", "enterprises", 1, "rejected")
        _taken(conn, "police", "events", 1)
    assert agency_feed_states(settings, "commerce", D) == {
        "enterprises": "rejected",
        "licences": "received",
        "tradein_claims": "not received",
    }
    assert agency_feed_states(settings, "police", D) == {"events": "received"}


def test_the_late_file_check_says_why_an_outbox_could_not_be_listed(settings: Settings) -> None:
    from vehiclehub.config import AgencyEndpoint
    from vehiclehub.pipeline import late_file_check

    gone = settings.work_dir.parent / "unmounted" / "tax"
    moved = settings.model_copy(
        update={"agencies": {**settings.agencies, "tax": AgencyEndpoint(url=f"file://{gone}")}}
    )
    before = datetime(2025, 11, 3, 20, 0, tzinfo=UTC)  # 04:00 in Shanghai
    check = late_file_check(moved, "tax", D, now=before)
    assert (check["done"], check["missing"]) == (False, ["tax/refunds"])
    assert check["unreachable"] == f"tax: no outbox/ under {gone}"
    assert late_file_check(settings, "tax", D, now=before)["unreachable"] is None
