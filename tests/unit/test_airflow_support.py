"""The DAG's helpers, without a running Airflow: business dates, endpoints, retry decisions,
the late-file sensor's pokes and the feeds' asset events."""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import stat
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import paramiko
import pendulum
import pytest
from airflow.models import Connection
from airflow.sdk import RetryAction
from airflow.sdk.exceptions import AirflowSensorTimeout
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from sqlalchemy.exc import OperationalError, ProgrammingError
from tests.factories import Vehicle, send

from vehiclehub.airflow_support import (
    TransientOnlyRetryPolicy,
    business_date_of_run,
    config_path,
    endpoint_from_connection,
    feed_alias,
    feed_asset,
    feed_asset_events,
    feeds_to_take,
    hub_settings,
    intake_summary,
    is_transient,
    known_hosts_line,
    poke_arrivals,
    previous_local_day,
    with_connection_endpoints,
)
from vehiclehub.config import AgencyEndpoint, ConfigError, QualitySettings, Settings, load_settings
from vehiclehub.exchange.base import UNKNOWN_FEED, files_by_feed, outbox_entry
from vehiclehub.exchange.sftp import HostKeyRejected
from vehiclehub.pipeline import late_file_check
from vehiclehub.preflight import PreflightFailed
from vehiclehub.results import IntakeResult, IntakeStatus
from vehiclehub.store import StoreUnavailable
from vehiclehub.store.db import upgrade

SHANGHAI = timezone(timedelta(hours=8))


def _public_line(key: Any) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


@pytest.fixture(scope="module")
def host_key() -> str:
    return _public_line(ed25519.Ed25519PrivateKey.generate()) + " root@agency-sftp"


def _connection(host_key: str, **fields: Any) -> Connection:
    extra = fields.pop("extra", {"private_key": "/keys/hub_police", "host_key": host_key})
    values = {
        "conn_id": "sftp_police",
        "conn_type": "sftp",
        "host": "sftp.police.example.cn",
        "port": 2222,
        "login": "hub",
        "schema": "/srv/exchange/police",
        **fields,
    }
    return Connection(**values, extra=json.dumps(extra))


# --- business date ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (datetime(2025, 11, 4, 2, 30, tzinfo=SHANGHAI), date(2025, 11, 3)),  # the nightly run
        (datetime(2025, 11, 3, 18, 30, tzinfo=UTC), date(2025, 11, 3)),  # same, UTC
        (datetime(2025, 11, 3, 16, 0, tzinfo=UTC), date(2025, 11, 3)),  # 00:00 local
        (datetime(2025, 11, 3, 15, 59, 59, tzinfo=UTC), date(2025, 11, 2)),  # 23:59:59
        (pendulum.datetime(2026, 1, 1, 2, 30, tz="Asia/Shanghai"), date(2025, 12, 31)),
    ],
)
def test_previous_local_day_uses_half_open_shanghai_days(instant: datetime, expected: date) -> None:
    day = previous_local_day(instant)
    assert day == expected
    assert type(day) is date  # not pendulum's Date, which sqlite3 cannot bind


def test_previous_local_day_refuses_naive_instants() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        previous_local_day(datetime(2025, 11, 4, 2, 30))


def test_business_date_from_the_data_interval_end_then_logical_date_then_run_after() -> None:
    run_time = pendulum.datetime(2025, 11, 3, 18, 30, tz="UTC")  # 02:30 on the 4th, Shanghai
    assert business_date_of_run(
        {"data_interval_end": run_time, "logical_date": run_time - timedelta(days=5)}
    ) == date(2025, 11, 3)
    assert business_date_of_run({"data_interval_end": None, "logical_date": run_time}) == date(
        2025, 11, 3
    )
    manual = SimpleNamespace(run_after=run_time + timedelta(hours=12))  # 14:30 on the 4th
    assert business_date_of_run(
        {"data_interval_end": None, "logical_date": None, "dag_run": manual}
    ) == date(2025, 11, 3)


def test_business_date_param_overrides_the_run_time() -> None:
    context = {
        "params": {"business_date": "2025-10-31"},
        "data_interval_end": pendulum.datetime(2025, 11, 3, 18, 30, tz="UTC"),
    }
    assert business_date_of_run(context) == date(2025, 10, 31)
    context["params"] = {"business_date": None}
    assert business_date_of_run(context) == date(2025, 11, 3)
    with pytest.raises(ValueError, match="business_date='2025-02-30' is not a date"):
        business_date_of_run({"params": {"business_date": "2025-02-30"}})
    with pytest.raises(ValueError, match="neither"):
        business_date_of_run({"params": {}})


# --- settings -----------------------------------------------------------------------------


def test_config_from_the_airflow_variable_else_vhub_config(
    hub_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert config_path(lambda key: f" {hub_config} " if key == "vehiclehub_config" else None) == (
        str(hub_config)
    )
    assert config_path(lambda key: None) is None
    assert config_path(lambda key: "") is None

    monkeypatch.setenv("VHUB_CONFIG", "/nowhere/hub.toml")
    with hub_settings(get_variable=lambda key: str(hub_config), agencies=[]) as settings:
        assert settings.source == hub_config.resolve()  # the Variable wins

    monkeypatch.setenv("VHUB_CONFIG", str(hub_config))
    with hub_settings(get_variable=lambda key: None, get_connection=lambda c: None) as settings:
        assert settings.source == hub_config.resolve()

    monkeypatch.delenv("VHUB_CONFIG")
    with (
        pytest.raises(ConfigError, match="VHUB_CONFIG"),
        hub_settings(get_variable=lambda key: None, agencies=[]),
    ):
        pass


# --- endpoints from connections -----------------------------------------------------------


def test_endpoint_from_an_airflow_connection(host_key: str, tmp_path: Path) -> None:
    police_key = "A" * 43 + "="  # 32 bytes in base64
    base = AgencyEndpoint(
        url="file:///x", connect_timeout_s=7, retries=5, backoff_s=0.5, public_keys=[police_key]
    )
    endpoint = endpoint_from_connection(_connection(host_key), "police", tmp_path, base)
    assert endpoint.public_keys == [police_key]  # the connection moves the exchange only
    assert endpoint.url == "sftp://hub@sftp.police.example.cn:2222/srv/exchange/police"
    assert endpoint.private_key == Path("/keys/hub_police")
    assert endpoint.known_hosts is not None
    algorithm, blob = host_key.split()[:2]
    assert endpoint.known_hosts.read_text() == (
        f"[sftp.police.example.cn]:2222 {algorithm} {blob}\n"
    )
    assert (endpoint.connect_timeout_s, endpoint.retries, endpoint.backoff_s) == (7, 5, 0.5)

    # paramiko finds the key under the name it looks up for a non-default port.
    known = paramiko.HostKeys(str(endpoint.known_hosts))
    found = known.lookup("[sftp.police.example.cn]:2222")
    assert found is not None and found[algorithm].get_base64() == blob


def test_endpoint_variants(host_key: str, tmp_path: Path) -> None:
    algorithm, blob = host_key.split()[:2]
    endpoint = endpoint_from_connection(
        _connection(
            host_key,
            port=None,
            schema=None,
            login="hub user",
            extra={"path": "exchange/tax root", "key_file": "/k", "host_key": blob},
        ),
        "tax",
        tmp_path,
    )
    assert endpoint.url == "sftp://hub%20user@sftp.police.example.cn:22/exchange/tax%20root"
    assert endpoint.private_key == Path("/k")
    assert endpoint.known_hosts is not None
    assert endpoint.known_hosts.read_text() == f"sftp.police.example.cn {algorithm} {blob}\n"

    ipv6 = endpoint_from_connection(
        _connection(host_key, host="::1", extra={"private_key": "/k", "host_key": host_key,
                                                  "conn_timeout": "3"}),
        "police",
        tmp_path,
    )  # fmt: skip
    assert ipv6.url == "sftp://hub@[::1]:2222/srv/exchange/police"
    assert ipv6.connect_timeout_s == 3
    assert ipv6.known_hosts is not None
    assert ipv6.known_hosts.read_text().startswith("[::1]:2222 ssh-ed25519 ")


def test_private_key_text_is_written_to_a_private_file(host_key: str, tmp_path: Path) -> None:
    pem = (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        .decode()
    )
    extra = {"private_key": pem, "host_key": host_key}
    endpoint = endpoint_from_connection(_connection(host_key, extra=extra), "customs", tmp_path)
    assert endpoint.private_key is not None
    assert endpoint.private_key.parent == tmp_path
    assert stat.S_IMODE(os.stat(endpoint.private_key).st_mode) == 0o600
    assert paramiko.PKey.from_path(endpoint.private_key).get_name() == "ssh-ed25519"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"host": None}, "needs a host and a login"),
        ({"login": ""}, "needs a host and a login"),
        ({"conn_type": "postgres"}, "'postgres' connection, not sftp"),
        ({"extra": {"host_key": "HOSTKEY"}}, "private_key or key_file"),
        ({"extra": {"private_key": "/k"}}, "host keys are always verified"),
        (
            {"extra": {"private_key": "/k", "host_key": "HOSTKEY", "no_host_key_check": "true"}},
            "no_host_key_check is refused",
        ),
        ({"extra": {"private_key": "/k", "host_key": "ssh-ed25519 not-base64!"}}, "not an OpenSSH"),
    ],
)
def test_unusable_connections_are_configuration_errors(
    host_key: str, tmp_path: Path, fields: dict[str, Any], message: str
) -> None:
    if "extra" in fields and fields["extra"].get("host_key") == "HOSTKEY":
        fields["extra"]["host_key"] = host_key
    with pytest.raises(ConfigError, match=message) as raised:
        endpoint_from_connection(_connection(host_key, **fields), "police", tmp_path)
    assert "sftp_police" in str(raised.value)


def test_host_key_lines_are_checked(host_key: str) -> None:
    ecdsa_line = _public_line(ec.generate_private_key(ec.SECP256R1()))
    assert known_hosts_line("h", 22, ecdsa_line) == f"h {ecdsa_line}\n"
    blob = host_key.split()[1]
    with pytest.raises(ConfigError, match="says ssh-rsa but the key is ssh-ed25519"):
        known_hosts_line("h", 22, f"ssh-rsa {blob}")
    dss = paramiko.Message()
    dss.add_string("ssh-dss")
    for number in (23, 11, 5, 7):  # p, q, g, y: the shape is enough
        dss.add_mpint(number)
    dss_line = "ssh-dss " + base64.b64encode(dss.asbytes()).decode()
    with pytest.raises(ConfigError, match="not an OpenSSH public key line"):
        known_hosts_line("h", 22, dss_line)  # paramiko 5 dropped DSA
    with pytest.raises(ConfigError, match="empty"):
        known_hosts_line("h", 22, "  ")


def test_only_agencies_with_a_connection_change(
    host_key: str, settings: Settings, tmp_path: Path
) -> None:
    connections = {"sftp_police": _connection(host_key)}
    asked: list[str] = []

    def lookup(conn_id: str) -> Connection | None:
        asked.append(conn_id)
        return connections.get(conn_id)

    changed = with_connection_endpoints(settings, tmp_path, get_connection=lookup)
    assert asked == ["sftp_commerce", "sftp_police", "sftp_customs", "sftp_tax"]
    assert changed.agencies["police"].url.startswith("sftp://hub@")
    for agency in ("commerce", "customs", "tax"):
        assert changed.agencies[agency] == settings.agencies[agency]
    assert settings.agencies["police"].url.startswith("file://")  # the original is untouched

    asked.clear()
    assert with_connection_endpoints(settings, tmp_path, ["tax"], lookup) is settings
    assert asked == ["sftp_tax"]


def test_hub_settings_removes_its_key_files(host_key: str, hub_config: Path) -> None:
    connections = {"sftp_tax": _connection(host_key, conn_id="sftp_tax")}
    with hub_settings(
        get_variable=lambda key: str(hub_config), get_connection=connections.get
    ) as settings:
        known_hosts = settings.agencies["tax"].known_hosts
        assert known_hosts is not None and known_hosts.exists()
    assert not known_hosts.exists()
    assert load_settings(hub_config).agencies["tax"].url.startswith("file://")


# --- retries ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ConnectionResetError("reset by peer"), True),
        (TimeoutError("timed out"), True),
        (OperationalError("SELECT 1", {}, Exception("database is locked")), True),
        (ConfigError("configuration file x does not exist"), False),
        (
            PreflightFailed(date(2025, 11, 3), ["police: the exchange root /x does not exist"]),
            False,
        ),
        (StoreUnavailable("cannot use the store"), False),
        (StoreUnavailable("cannot use the store: refused", transient=True), True),
        (
            OperationalError("connect", {}, Exception('password authentication failed for "x"')),
            False,
        ),
        (HostKeyRejected("host key changed"), False),
        (ProgrammingError("SELECT", {}, Exception("no such column")), False),
        (FileNotFoundError("gone"), False),
        (ValueError("param business_date"), False),
        (KeyError("bug"), False),
    ],
)
def test_only_transient_faults_are_retried(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient
    decision = TransientOnlyRetryPolicy().evaluate(error, try_number=1, max_tries=4)
    assert decision.action == (RetryAction.RETRY if transient else RetryAction.FAIL)
    assert decision.retry_delay is None  # the task's exponential backoff applies
    assert type(error).__name__ in (decision.reason or "")


# --- late files ---------------------------------------------------------------------------

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
    sensed: Settings, host_key: str, tmp_path: Path
) -> None:
    key = tmp_path / "hub_id"
    key.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    port = _closed_port()
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(known_hosts_line("127.0.0.1", port, host_key))
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


# --- assets -------------------------------------------------------------------------------


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
    with caplog.at_level("INFO", logger="vehiclehub.airflow_support"):
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


def test_feeds_with_nothing_to_take_are_told_by_the_listing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    listed = {
        "agency": "commerce",
        "status": "received",
        "feeds": [{"agency": "commerce", "feed": "licences", "files": ["a.csv", "b.csv"]}],
    }
    states = {"enterprises": "received", "licences": "not received", "tradein_claims": "waiting"}
    with caplog.at_level("INFO", logger="vehiclehub.airflow_support"):
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


def test_task_logs_keep_great_expectations_quiet(hub_config: Path) -> None:
    chatty = logging.getLogger("great_expectations")
    level = chatty.level
    chatty.setLevel(logging.NOTSET)
    try:
        with hub_settings(get_variable=lambda key: str(hub_config), get_connection=lambda c: None):
            assert logging.getLogger("great_expectations._docs_decorators").getEffectiveLevel() == (
                logging.WARNING
            )
    finally:
        chatty.setLevel(level)


def test_a_worker_named_in_its_environment_records_that_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from vehiclehub.airflow_support import worker_hostname

    monkeypatch.setenv("VHUB_WORKER_HOSTNAME", "vhub-worker-2")
    assert worker_hostname() == "vhub-worker-2"
    monkeypatch.delenv("VHUB_WORKER_HOSTNAME")
    assert worker_hostname() == socket.getfqdn()
