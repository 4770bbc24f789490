"""``vhub health`` against the production shape: the store on PostgreSQL and every
agency an account on a real OpenSSH sshd (host keys verified)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.integration.test_sftp_cycle import endpoint, sftp_config

from vehiclehub.config import load_settings
from vehiclehub.health import AGENCY_UNREACHABLE, HEALTHY, check_health
from vehiclehub.store import connect
from vehiclehub_samples.sshd import SshdServer

pytestmark = [pytest.mark.sshd, pytest.mark.postgres]


def _postgres_hub(config: Path, pg_url: str) -> Path:
    text = config.read_text(encoding="utf-8").splitlines()
    text = [f'database_url = "{pg_url}"' if t.startswith("database_url") else t for t in text]
    config.write_text("\n".join(text) + "\n", encoding="utf-8")
    settings = load_settings(config)
    connect(settings.database_url).dispose()
    settings.work_dir.mkdir(exist_ok=True)
    return config


def test_health_over_sftp_and_postgresql(
    tmp_path: Path, sshd_server: SshdServer, pg_url: str
) -> None:
    config = _postgres_hub(sftp_config(tmp_path, sshd_server), pg_url)
    report = check_health(load_settings(config))
    assert report.exit_code == HEALTHY, [c.line() for c in report.checks]

    impostor = endpoint(sshd_server, "police", known_hosts=sshd_server.foreign_known_hosts())
    config = _postgres_hub(sftp_config(tmp_path, sshd_server, police=impostor), pg_url)
    report = check_health(load_settings(config))
    assert report.exit_code == AGENCY_UNREACHABLE
    failed = [c for c in report.checks if not c.ok]
    assert [c.name for c in failed] == ["agency police"]
    assert "host key" in failed[0].detail.lower()
