"""Agencies' SFTP endpoints from Airflow connections, without a server: urls, key files,
known_hosts lines, and the connections refused."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from typing import Any

import paramiko
import pytest
from airflow.models import Connection
from cryptography.hazmat.primitives.asymmetric import ec
from tests.keys import host_key_line, private_pem, public_line

from vehiclehub.airflow.connections import (
    endpoint_from_connection,
    known_hosts_line,
    with_connection_endpoints,
)
from vehiclehub.airflow.settings import hub_settings
from vehiclehub.config import AgencyEndpoint, ConfigError, Settings, load_settings


@pytest.fixture(scope="module")
def host_key() -> str:
    return host_key_line()


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
    pem = private_pem().decode()
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
    ecdsa_line = public_line(ec.generate_private_key(ec.SECP256R1()))
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
