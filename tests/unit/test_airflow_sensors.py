"""The late-file sensor's pokes, and the feeds each night's intakes are mapped over."""

from __future__ import annotations

import socket
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout
from tests.factories import Vehicle, send
from tests.keys import host_key_line, private_pem

from vehiclehub.airflow.connections import known_hosts_line
from vehiclehub.airflow.sensors import feeds_to_take, poke_arrivals
from vehiclehub.config import AgencyEndpoint, QualitySettings, Settings
from vehiclehub.exchange.base import UNKNOWN_FEED, files_by_feed, outbox_entry
from vehiclehub.pipeline import late_file_check
from vehiclehub.store.db import upgrade

SHANGHAI = timezone(timedelta(hours=8))

#: Business date 3 November: the files are due by 06:00 on the 4th, Shanghai time.
DAY = date(2025, 11, 3)
BEFORE_DEADLINE = datetime(2025, 11, 4, 5, 59, tzinfo=SHANGHAI)
AT_DEADLINE = datetime(2025, 11, 4, 6, 0, tzinfo=SHANGHAI)


@pytest.fixture
def sensed(settings: Settings) -> Settings:
    """Settings whose store is set up, as the DAG's upgrade task leaves it before its
    sensors poke (a poke only reads the store)."""
    upgrade(settings.database_url)
    return settings


def test_the_sensor_is_done_once_the_files_have_arrived(sensed: Settings) -> None:
    send(sensed.work_dir.parent, "customs", "declarations", [Vehicle().item()], day=DAY)
    poked = poke_arrivals(sensed, "customs", DAY, now=BEFORE_DEADLINE)
    assert poked.is_done
    assert poked.xcom_value == {
        "agency": "customs",
        "business_date": "2025-11-03",
        "done": True,
        "missing": [],
        "deadline": "2025-11-04T06:00:00+08:00",
        "unreachable": None,
    }
    # Long after the deadline, files that are there are still simply there.
    assert poke_arrivals(sensed, "customs", DAY, now=AT_DEADLINE + timedelta(days=30))


def test_the_sensor_waits_for_every_expected_feed_until_the_deadline(sensed: Settings) -> None:
    root = sensed.work_dir.parent
    send(root, "commerce", "enterprises", [Vehicle().filing()], day=DAY)
    send(root, "commerce", "licences", [Vehicle().licence()], day=DAY, with_manifest=False)
    poked = poke_arrivals(sensed, "commerce", DAY, now=BEFORE_DEADLINE)
    assert not poked.is_done and poked.xcom_value is None
    with pytest.raises(AirflowSensorTimeout) as timed_out:
        poke_arrivals(sensed, "commerce", DAY, now=AT_DEADLINE)
    assert str(timed_out.value) == (
        "commerce: arrival deadline 2025-11-04T06:00:00+08:00 passed; not arrived for "
        "2025-11-03: commerce/licences, commerce/tradein_claims"
    )


def test_each_agency_has_its_own_deadline(sensed: Settings) -> None:
    early = sensed.model_copy(
        update={"quality": QualitySettings(arrival_deadlines={"tax": time(3, 0)})}
    )
    three = datetime(2025, 11, 4, 3, 0, tzinfo=SHANGHAI)
    with pytest.raises(AirflowSensorTimeout, match="2025-11-04T03:00:00"):
        poke_arrivals(early, "tax", DAY, now=three)
    assert not poke_arrivals(early, "police", DAY, now=three).is_done


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_exchange_is_waited_for_like_a_late_file(
    sensed: Settings, tmp_path: Path
) -> None:
    key = tmp_path / "hub_id"
    key.write_bytes(private_pem())
    port = _closed_port()
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(known_hosts_line("127.0.0.1", port, host_key_line()))
    endpoint = AgencyEndpoint(
        url=f"sftp://hub@127.0.0.1:{port}/srv/police",
        private_key=key,
        known_hosts=known_hosts,
        connect_timeout_s=2,
        retries=0,
    )
    down = sensed.model_copy(update={"agencies": {**sensed.agencies, "police": endpoint}})
    poked = poke_arrivals(down, "police", DAY, now=BEFORE_DEADLINE)
    assert not poked.is_done  # not failed: the next poke tries again
    check = late_file_check(down, "police", DAY, now=BEFORE_DEADLINE)
    assert check["missing"] == ["police/events"]
    assert check["unreachable"] and f"127.0.0.1:{port}" in check["unreachable"]
    with pytest.raises(AirflowSensorTimeout, match="not arrived for 2025-11-03: police/events"):
        poke_arrivals(down, "police", DAY, now=AT_DEADLINE)


def test_feeds_with_nothing_to_take_are_told_by_the_listing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    listed = {
        "agency": "commerce",
        "status": "received",
        "feeds": [{"agency": "commerce", "feed": "licences", "files": ["a.csv", "b.csv"]}],
    }
    states = {"enterprises": "received", "licences": "not received", "tradein_claims": "waiting"}
    with caplog.at_level("INFO", logger="vehiclehub.airflow.sensors"):
        assert feeds_to_take(listed, states, DAY) == listed["feeds"]
    # Licences is being taken: its intake tells its state once its files are in.
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warned == ["commerce/tradein_claims for 2025-11-03: waiting"]
    assert feeds_to_take({"agency": "police", "status": "not received", "feeds": []}, {}, DAY) == []


def test_an_outbox_is_taken_feed_by_feed_in_name_order() -> None:
    names = [
        "police_events_20251103_002.csv",
        "police_events_20251102_001.csv",
        "commerce_licences_20251103_001.csv",
        "police_backlog.csv",
        "police_events_20251103_001.csv",
    ]
    grouped = files_by_feed(outbox_entry(name) for name in names)
    assert {feed: [e.data_name for e in entries] for feed, entries in grouped.items()} == {
        "events": [
            "police_events_20251102_001.csv",
            "police_events_20251103_001.csv",
            "police_events_20251103_002.csv",
        ],
        "licences": ["commerce_licences_20251103_001.csv"],
        UNKNOWN_FEED: ["police_backlog.csv"],
    }
    assert grouped["events"][0].manifest_name == "police_events_20251102_001.manifest.json"
