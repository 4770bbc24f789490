"""Files and keys private (issue 11): the work dir is the hub's user's alone, inbox files
take the agency's group and the configured mode, secrets files are checked at start-up,
and an artefact is written whole or not at all."""

from __future__ import annotations

import logging
import os
import stat
from datetime import date
from pathlib import Path

import pytest
from tests.conftest import write_config
from tests.factories import Vehicle, send

from vehiclehub.config import ConfigError, Settings, load_settings
from vehiclehub.demo import write_hub_config
from vehiclehub.pipeline import run_cycle
from vehiclehub.workfiles import written_whole

DAY = date(2025, 11, 3)
AGENCY_GID = 4242


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file another group needs root")
def test_what_the_hub_writes_is_private_and_drops_take_the_inbox_group(
    settings: Settings,
) -> None:
    root = settings.work_dir.parent
    inbox = root / "exchange" / "customs" / "inbox"
    os.chown(inbox, -1, AGENCY_GID)
    send(root, "customs", "declarations", [Vehicle().item()])

    run_cycle(settings, DAY)

    assert _mode(settings.work_dir) == 0o700
    kept = [
        *settings.archive_dir.rglob("*.enc"),
        *(settings.work_dir / "drops").rglob("*.*"),
        *settings.reports_dir.glob("*/index.html"),
        *settings.reports_dir.glob("*/*.xlsx"),
    ]
    assert len(kept) > 20
    assert {p.name: _mode(p) for p in kept if _mode(p) != 0o600} == {}
    delivered = list(inbox.iterdir())
    assert delivered and not [p for p in delivered if p.name.endswith(".part")]
    assert {(_mode(p), p.stat().st_gid) for p in delivered} == {(0o640, AGENCY_GID)}


def test_a_world_writable_config_is_refused_and_a_readable_one_warned_of(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")
    load_settings(config)  # 0600: nothing said
    assert not caplog.records
    config.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        load_settings(config)
    assert "may be read by others" in caplog.text
    config.chmod(0o666)
    with pytest.raises(ConfigError, match="may be written by anyone"):
        load_settings(config)


def test_a_key_file_is_checked_as_the_config_is(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = tmp_path / "hub_signing.key"
    key.write_text("not read until the drops are signed\n")
    key.chmod(0o600)
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}", signing_key_file=f'"{key}"')
    load_settings(config)
    assert not caplog.records
    key.chmod(0o640)
    with caplog.at_level(logging.WARNING):
        load_settings(config)
    assert f"signing key file {key} may be read by others" in caplog.text
    key.chmod(0o602)
    with pytest.raises(ConfigError, match=r"signing key file .* may be written by anyone"):
        load_settings(config)


def test_the_demo_writes_its_config_for_its_user_only(tmp_path: Path) -> None:
    endpoints = {
        a: {"url": f"file://{tmp_path}/{a}"} for a in ("commerce", "police", "customs", "tax")
    }
    assert _mode(write_hub_config(tmp_path, "sqlite:///x.db", endpoints)) == 0o600


def test_an_artefact_is_written_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "reports" / "index.html"
    with pytest.raises(OSError), written_whole(target) as partial:
        partial.write_text("half a report")
        raise OSError(28, "No space left on device")
    assert list(target.parent.iterdir()) == []
    with written_whole(target) as partial:
        partial.write_text("a report")
    assert target.read_text() == "a report" and _mode(target) == 0o600
