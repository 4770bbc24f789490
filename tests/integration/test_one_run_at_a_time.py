"""One run at a time per store (issue 11): a lease in the store, shared by one run's
steps, waited for or refused (exit 75) by a second run, and expiring after a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from tests.conftest import write_config

from vehiclehub.cli import main
from vehiclehub.config import Settings, load_settings
from vehiclehub.store import StoreBusy, connect
from vehiclehub.store.lease import acquire, holding, release
from vehiclehub.store.schema import run_leases

DAY = date(2025, 11, 3)


@pytest.fixture
def store(store_url: str) -> Iterator[Engine]:
    engine = connect(store_url)
    yield engine
    engine.dispose()


def test_a_second_run_is_refused_while_the_first_holds_the_store(store: Engine) -> None:
    acquire(store, "first", ttl_s=20, wait_s=0)
    acquire(store, "first", ttl_s=20, wait_s=0)  # the same run's next step shares it
    with pytest.raises(StoreBusy, match="'first'"):
        acquire(store, "second", ttl_s=20, wait_s=0)
    release(store, "first")
    acquire(store, "second", ttl_s=20, wait_s=0)


def test_a_second_run_waits_for_the_first_to_end(store: Engine) -> None:
    acquire(store, "first", ttl_s=20, wait_s=0)
    threading.Timer(1.0, release, (store, "first")).start()
    started = time.monotonic()
    acquire(store, "second", ttl_s=20, wait_s=30)
    assert 0.9 < time.monotonic() - started < 30


def _expiry(store: Engine) -> datetime:
    with store.connect() as conn:
        return conn.execute(select(run_leases.c.expires_at)).scalar_one()


def test_a_held_lease_is_renewed(store: Engine) -> None:
    with holding(store, "alive", ttl_s=3, wait_s=0):
        first = _expiry(store)
        deadline = time.monotonic() + 30
        while _expiry(store) == first and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _expiry(store) > first  # renewed while the run works
        with pytest.raises(StoreBusy):
            acquire(store, "other", ttl_s=3, wait_s=0)
    acquire(store, "other", ttl_s=3, wait_s=0)  # released at the end


def test_a_killed_runs_lease_expires(tmp_path: Path) -> None:
    store = connect(f"sqlite:///{tmp_path / 'hub.db'}")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from vehiclehub.store import connect\n"
            "from vehiclehub.store.lease import holding\n"
            "with holding(connect(sys.argv[1]), 'killed', ttl_s=2, wait_s=0):\n"
            "    print('held', flush=True); time.sleep(600)\n",
            store.url.render_as_string(hide_password=False),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with pytest.raises(StoreBusy, match="'killed'"):
        acquire(store, "next", ttl_s=2, wait_s=0)
    acquire(store, "next", ttl_s=2, wait_s=15)  # free once its life has run out
    store.dispose()


def test_vhub_run_exits_75_with_a_message_while_another_run_holds_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")
    settings: Settings = load_settings(config)
    engine = connect(settings.database_url)
    acquire(engine, "the nightly run", ttl_s=200, wait_s=0)

    code = main(["run", "--config", str(config), "--date", DAY.isoformat()])

    assert code == 75
    err = capsys.readouterr().err
    assert err.startswith("vhub: another run holds the store ('the nightly run'")
    assert not (tmp_path / "work" / "drops").exists()  # nothing was done
    release(engine, "the nightly run")
    engine.dispose()
