"""SQLite's write-ahead log copied into the store by a thread of its own while a load
writes on (vehiclehub.store.checkpoints)."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from vehiclehub.store import connect
from vehiclehub.store.checkpoints import checkpoint, checkpoints_aside


def _autocheckpoint(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one())


def _write(engine: Engine, rows: int) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS t (x TEXT)"))
        conn.execute(text("INSERT INTO t VALUES (:x)"), [{"x": "v" * 500}] * rows)


def _threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "vhub-wal-checkpoints"]


def test_a_load_s_log_is_copied_aside_and_emptied_when_it_ends(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    url = f"sqlite:///{path}"
    connect(url).dispose()
    keeper = sqlite3.connect(path)  # an idle connection: the log's file stays
    keeper.execute("SELECT count(*) FROM sqlite_master").fetchall()
    with checkpoints_aside(url):
        engine = connect(url)
        assert _autocheckpoint(engine) == 0  # the writers leave the log alone
        _write(engine, 20_000)  # far more than the thousand pages of an autocheckpoint
        wal = path.with_name("hub.db-wal")
        assert wal.stat().st_size > 1_000 * 4096
        deadline = time.monotonic() + 10
        while (found := checkpoint(str(path), 1))[1] < found[0] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _threads() == ["vhub-wal-checkpoints"]
        engine.dispose()
    assert not _threads() and wal.stat().st_size == 0
    keeper.close()
    engine = connect(url)
    try:
        assert _autocheckpoint(engine) == 1000  # made after the block: as ever
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 20_000
    finally:
        engine.dispose()


def test_the_thread_copies_what_is_committed_while_the_block_runs(tmp_path: Path) -> None:
    """Near miss: without the thread the log would keep every page of the block's
    commits until the block ends; with it, they are copied while it still runs."""
    path = tmp_path / "hub.db"
    url = f"sqlite:///{path}"
    connect(url).dispose()
    with checkpoints_aside(url):
        engine = connect(url)
        _write(engine, 5_000)
        deadline = time.monotonic() + 10
        copied = (1, 0)
        while time.monotonic() < deadline:
            with engine.connect() as conn:  # what the log holds, without copying it
                copied = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()[1:]
            if copied[0] and copied[0] == copied[1]:
                break
            time.sleep(0.2)
        engine.dispose()
    assert copied[0] > 0 and copied[0] == copied[1]


def test_a_store_gone_is_not_made_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "gone.db"
    with caplog.at_level(logging.WARNING), checkpoints_aside(f"sqlite:///{path}"):
        time.sleep(0.7)
    assert not path.exists()
    assert "could not be copied aside" in caplog.text


@pytest.mark.parametrize("url", ["sqlite://", "postgresql+psycopg://nobody@127.0.0.1:1/none"])
def test_nothing_is_done_for_a_store_in_memory_or_on_postgresql(url: str) -> None:
    with checkpoints_aside(url):
        assert not _threads()
