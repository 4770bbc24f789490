"""Checks before the first file is taken: a run that cannot finish changes nothing,
exits 2 and says what to fix; an exchange without its root is a configuration error."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
from tests.conftest import write_config
from tests.factories import Vehicle, send

from vehiclehub.cli import main
from vehiclehub.config import load_settings
from vehiclehub.crypto import ArchiveWriter, archive_key
from vehiclehub.pipeline import intake_agency
from vehiclehub.preflight import (
    PreflightFailed,
    archive_key_opens_the_archive,
    preflight,
    sftp_credentials_present,
)
from vehiclehub.publish.report import write_report
from vehiclehub.results import IntakeStatus
from vehiclehub.store import connect
from vehiclehub.summary import intake_lines

D = date(2025, 11, 3)


def _run(config: Path, day: str = "2025-11-03") -> int:
    return main(["run", "--config", str(config), "--date", day])


def _nothing_changed(root: Path, sent: Path) -> None:
    """The agency's file is still untaken, and neither store nor work directory exists."""
    assert sent.exists()
    assert not (root / "hub.db").exists()
    assert not (root / "work").exists()


@pytest.fixture
def sent(tmp_path: Path) -> Path:
    write_config(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")
    return send(tmp_path, "customs", "declarations", [Vehicle().item()])


def test_a_missing_exchange_root_stops_the_run_before_anything_is_taken(
    tmp_path: Path, sent: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gone = tmp_path / "exchange" / "custom_does_not_exist"
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")
    text = config.read_text().replace(str(tmp_path / "exchange" / "police"), str(gone))
    config.write_text(text)

    assert _run(config) == 2
    err = capsys.readouterr().err
    assert "vhub: cannot run business date 2025-11-03; nothing was taken or changed" in err
    assert f"police: the exchange root {gone} does not exist; fix [agencies.police] url" in err
    _nothing_changed(tmp_path, sent)


def test_a_root_without_inbox_is_named_with_what_to_create(
    tmp_path: Path, sent: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "exchange" / "tax" / "inbox").rmdir()
    assert _run(tmp_path / "hub.toml") == 2
    inbox = tmp_path / "exchange" / "tax" / "inbox"
    assert f"tax: the exchange root {inbox.parent} has no inbox/; create {inbox}" in (
        capsys.readouterr().err
    )
    _nothing_changed(tmp_path, sent)


def test_a_business_date_outside_the_contract_stops_the_run(
    tmp_path: Path, sent: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(tmp_path / "hub.toml", "2100-01-01") == 2
    assert "business date 2100-01-01 is outside 1900-01-01 … 2099-12-31 (ICD §1)" in (
        capsys.readouterr().err
    )
    _nothing_changed(tmp_path, sent)


def test_an_unreachable_store_stops_the_run(
    tmp_path: Path, sent: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_config(tmp_path, "postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    assert _run(tmp_path / "hub.toml") == 2
    err = capsys.readouterr().err
    assert "cannot use the store at 127.0.0.1:1/nowhere" in err
    assert "check database_url or VHUB_DATABASE_URL" in err
    _nothing_changed(tmp_path, sent)


def test_every_problem_is_listed_at_once(tmp_path: Path, sent: Path) -> None:
    (tmp_path / "exchange" / "tax" / "inbox").rmdir()
    shutil.rmtree(tmp_path / "exchange" / "commerce")
    with pytest.raises(PreflightFailed) as failed:
        preflight(load_settings(tmp_path / "hub.toml"), date(1899, 12, 31))
    assert len(failed.value.problems) == 3


def test_a_sound_setup_passes_and_creates_nothing(tmp_path: Path, sent: Path) -> None:
    """Near miss of the above: nothing to fix, nothing raised, nothing made."""
    preflight(load_settings(tmp_path / "hub.toml"), D)
    _nothing_changed(tmp_path, sent)


def test_an_archive_key_that_cannot_open_the_archive(tmp_path: Path, sent: Path) -> None:
    settings = load_settings(tmp_path / "hub.toml")
    landing = settings.archive_dir / "customs"
    landing.mkdir(parents=True)
    writer = ArchiveWriter(landing / "earlier.csv.enc", archive_key(settings))
    writer.write(b"vin\n")
    writer.commit()
    assert archive_key_opens_the_archive(settings, D) == []  # the key it was written with
    changed = settings.model_copy(update={"archive_key": "another-key-altogether"})
    (problem,) = archive_key_opens_the_archive(changed, D)
    assert "the archive key does not open the archive's files" in problem
    assert "earlier.csv.enc" in problem


def test_sftp_agencies_need_a_user_a_key_and_known_hosts(tmp_path: Path, sent: Path) -> None:
    key = tmp_path / "police_ed25519"
    key.write_text("key")
    config = tmp_path / "hub.toml"
    police = f'url = "file://{tmp_path / "exchange" / "police"}"'
    config.write_text(
        config.read_text().replace(
            police,
            f'url = "sftp://police-gw.example/exchange"\nprivate_key = "{key}"\n'
            f'known_hosts = "{tmp_path / "absent_known_hosts"}"',
        )
    )
    problems = sftp_credentials_present(load_settings(config), D)
    assert problems == [
        "police: the url sftp://police-gw.example/exchange names no user (sftp://user@host/)",
        f"police: known_hosts {tmp_path / 'absent_known_hosts'} cannot be read",
    ]


def test_an_exchange_without_its_root_is_a_configuration_error_said_loudly(
    tmp_path: Path, sent: Path
) -> None:
    """Past the preflight (a root removed while a run is under way, or an SFTP server that
    answers without it), the agency is a configuration error, not an agency that did not
    send; the summary and the report say so."""
    settings = load_settings(tmp_path / "hub.toml")
    shutil.rmtree(tmp_path / "exchange" / "commerce")
    intakes = [intake_agency(settings, agency, D) for agency in settings.agencies]
    commerce = intakes[0]
    assert commerce.status == IntakeStatus.MISCONFIGURED
    assert commerce.detail == f"commerce: no outbox/ under {tmp_path / 'exchange' / 'commerce'}"
    assert intakes[2].received  # the others go on
    (line,) = intake_lines(commerce)
    assert line.startswith("  commerce  CONFIGURATION ERROR: commerce: no outbox/ under")
    page = write_report(connect(settings.database_url), settings, D, {}).read_text()
    assert "<b>Configuration error:</b> the exchange of commerce answered" in page
    assert 'class="status-configuration-error">configuration error<' in page
    # customs sent 1 of its 1 expected feeds; police none of its own: said per agency.
    assert 'class="status-received">received<' in page
    assert 'class="status-partly-received">0 of 1 expected feeds received<' in page
