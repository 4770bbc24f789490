"""``vhub health``: each check fires on its fault and passes on a hub that can run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.conftest import write_config

from vehiclehub.cli import main
from vehiclehub.config import load_settings
from vehiclehub.health import AGENCY_UNREACHABLE, HEALTHY, HUB_UNHEALTHY, check_health
from vehiclehub.store import connect


@pytest.fixture
def ready_config(hub_config: Path) -> Path:
    """A hub a run has already set up: its store and work directory."""
    settings = load_settings(hub_config)
    connect(settings.database_url).dispose()
    settings.work_dir.mkdir()
    return hub_config


def test_a_hub_that_can_run_is_healthy(
    ready_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["health", "--config", str(ready_config)]) == HEALTHY
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6 and all(line.startswith("ok ") for line in lines)
    assert "at the latest schema" in lines[0]


def test_a_store_no_run_has_set_up_is_not_at_the_latest_schema(hub_config: Path) -> None:
    report = check_health(load_settings(hub_config))
    assert report.exit_code == HUB_UNHEALTHY
    assert not report.checks[0].ok and "table agency_intakes missing" in report.checks[0].detail


def test_a_missing_index_or_column_is_schema_lag(ready_config: Path) -> None:
    settings = load_settings(ready_config)
    engine = connect(settings.database_url, create=False)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_police_events_vin_lookup")
        conn.exec_driver_sql("ALTER TABLE agency_intakes DROP COLUMN waiting")
    engine.dispose()
    store = check_health(settings).checks[0]
    assert not store.ok
    assert "index ix_police_events_vin_lookup missing" in store.detail
    assert "column agency_intakes.waiting missing" in store.detail


def test_an_unreachable_store(tmp_path: Path) -> None:
    config = write_config(tmp_path, "postgresql+psycopg://postgres@127.0.0.1:1/none")
    report = check_health(load_settings(config))
    assert report.exit_code == HUB_UNHEALTHY
    assert "cannot use the store at 127.0.0.1:1/none" in report.checks[0].detail


def test_a_work_dir_that_takes_no_file(ready_config: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    settings = load_settings(ready_config).model_copy(update={"work_dir": blocker / "work"})
    work_dir = check_health(settings).checks[1]
    assert not work_dir.ok and "is not a directory" in work_dir.detail
    assert check_health(settings).exit_code == HUB_UNHEALTHY


def test_a_work_dir_on_a_full_or_read_only_file_system(ready_config: Path) -> None:
    settings = load_settings(ready_config).model_copy(update={"work_dir": Path("/proc/self")})
    work_dir = check_health(settings).checks[1]
    assert not work_dir.ok and "not writable" in work_dir.detail


def test_the_probe_leaves_nothing_in_the_work_dir(ready_config: Path) -> None:
    settings = load_settings(ready_config)
    before = sorted(settings.work_dir.iterdir())
    assert check_health(settings).checks[1].ok
    assert sorted(settings.work_dir.iterdir()) == before


def test_an_unreachable_agency_is_not_the_hubs_fault(
    ready_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.rmtree(ready_config.parent / "exchange" / "customs" / "outbox")
    assert main(["health", "--config", str(ready_config)]) == AGENCY_UNREACHABLE
    failed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("FAIL")]
    root = ready_config.parent / "exchange" / "customs"
    assert failed == [f"FAIL agency customs: unreachable: customs: no outbox/ under {root}"]


def test_an_unusable_configuration_exits_2(tmp_path: Path) -> None:
    assert main(["health", "--config", str(tmp_path / "missing.toml")]) == 2
