"""An agency's Airflow connection ``sftp_<agency>`` against a real OpenSSH server.

The connection (built as Airflow stores it) replaces the configuration file's local
folder: intake reads the agency's outbox and publish writes its inbox over SFTP,
the host key checked against the temporary known_hosts made from the connection.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from datetime import date
from pathlib import Path

import pytest
from airflow.models import Connection
from tests.factories import Vehicle, columns

from vehiclehub.airflow.settings import hub_settings
from vehiclehub.config import AGENCIES, Settings
from vehiclehub.pipeline import intake_agency, publish, reconcile
from vehiclehub_samples import write_feed
from vehiclehub_samples.sshd import HOST, SshdServer, unix_user

pytestmark = pytest.mark.sshd

DAY = date(2025, 11, 3)


def _connection(server: SshdServer, agency: str, host_key_type: str = "ed25519") -> Connection:
    public = server.host_keys[host_key_type].with_suffix(".pub").read_text().strip()
    return Connection(
        conn_id=f"sftp_{agency}",
        conn_type="sftp",
        host=HOST,
        port=server.port,
        login=unix_user(agency),
        schema=str(server.root(agency)),
        extra=json.dumps(
            {"private_key": str(server.client_key(agency)), "host_key": public, "conn_timeout": 5}
        ),
    )


def _settings(
    hub_config: Path, connections: dict[str, Connection], *agencies: str
) -> AbstractContextManager[Settings]:
    return hub_settings(
        agencies=agencies or AGENCIES,
        get_variable=lambda key: str(hub_config),
        get_connection=connections.get,
    )


def test_intake_and_publish_use_the_agency_connection(
    sshd_server: SshdServer, hub_config: Path
) -> None:
    rows = [Vehicle().export_deregistration("E1")]
    sent = write_feed(sshd_server.root("police"), "police", "events", DAY, 1,
                      columns("police", "events"), rows)  # fmt: skip
    connections = {"sftp_police": _connection(sshd_server, "police")}

    with _settings(hub_config, connections, "police") as settings:
        assert settings.agencies["police"].url.startswith(f"sftp://vhub_police@{HOST}:")
        taken = intake_agency(settings, "police", DAY).to_dict()
    assert taken["status"] == "received", taken
    assert [(f["name"], f["status"], f["loaded"]) for f in taken["files"]] == [
        (sent.name, "loaded", 1)
    ]

    with _settings(hub_config, connections) as settings:
        reconcile(settings, DAY)
        published = publish(settings, DAY).to_dict()
    assert published["delivered"]["police"] == "delivered"
    inbox = sshd_server.root("police") / "inbox"
    stamp = f"{DAY:%Y%m%d}"
    assert (inbox / f"hub_police_export_verification_{stamp}_001.csv").exists()
    assert (inbox / f"hub_police_export_verification_{stamp}_001.manifest.json").exists()
    # The other agencies kept their local folders.
    tax_inbox = hub_config.parent / "exchange" / "tax" / "inbox"
    assert (tax_inbox / f"hub_tax_findings_{stamp}_001.csv").exists()


def test_a_wrong_host_key_in_the_connection_refuses_the_server(
    sshd_server: SshdServer, hub_config: Path
) -> None:
    impostor = sshd_server.foreign_known_hosts().read_text().split(maxsplit=1)[1]
    connection = _connection(sshd_server, "police")
    extra = json.loads(connection.extra or "{}")
    connection.set_extra(json.dumps({**extra, "host_key": impostor}))
    with _settings(hub_config, {"sftp_police": connection}, "police") as settings:
        taken = intake_agency(settings, "police", DAY).to_dict()
    assert taken["status"] == "not received"
    assert "has CHANGED" in taken["detail"]
    assert sshd_server.host_fingerprint("ed25519") in taken["detail"]
