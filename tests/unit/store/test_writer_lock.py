"""Intakes started together on a SQLite store take turns; on PostgreSQL they do not wait."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from vehiclehub.store.db import one_writer_at_a_time


def _second_waits(url: str, hold: float = 0.5) -> float:
    """How long a second writer waited while a first held the store for ``hold`` s."""
    holding = threading.Event()

    def first() -> None:
        with one_writer_at_a_time(url):
            holding.set()
            time.sleep(hold)

    thread = threading.Thread(target=first)
    thread.start()
    holding.wait(5)
    started = time.monotonic()
    with one_writer_at_a_time(url):
        waited = time.monotonic() - started
    thread.join()
    return waited


def test_sqlite_writers_take_turns(tmp_path: Path) -> None:
    assert _second_waits(f"sqlite:///{tmp_path / 'hub.db'}") >= 0.4


def test_postgresql_writers_do_not_wait(tmp_path: Path) -> None:
    assert _second_waits("postgresql+psycopg://postgres@127.0.0.1:5432/hub") < 0.3
    assert not list(tmp_path.iterdir())
