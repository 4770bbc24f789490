"""The DAG's helpers, without a running Airflow: business dates, endpoints, retry decisions."""

from __future__ import annotations

import base64
import json
import os
import stat
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import paramiko
import pendulum
import pytest
from airflow.models import Connection
from airflow.sdk import RetryAction
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from sqlalchemy.exc import OperationalError, ProgrammingError

from vehiclehub.airflow_support import (
    TransientOnlyRetryPolicy,
    business_date_of_run,
    config_path,
    endpoint_from_connection,
    hub_settings,
    is_transient,
    known_hosts_line,
    previous_local_day,
    with_connection_endpoints,
)
from vehiclehub.config import AgencyEndpoint, ConfigError, Settings, load_settings
from vehiclehub.exchange.sftp import HostKeyRejected
from vehiclehub.store import StoreUnavailable

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
    base = AgencyEndpoint(url="file:///x", connect_timeout_s=7, retries=5, backoff_s=0.5)
    endpoint = endpoint_from_connection(_connection(host_key), "police", tmp_path, base)
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
        (StoreUnavailable("cannot use the store"), False),
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
