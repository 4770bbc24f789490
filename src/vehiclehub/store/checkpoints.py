"""SQLite's write-ahead log copied into the database file aside, while a bulk load writes on.

In WAL mode a commit leaves its pages in the log; once the log holds more than a
thousand pages, the committing connection copies them into the database file and waits
for the disk to have them (a checkpoint). After a file of millions of rows that is a
gigabyte copied and flushed while the load waits: at 1M vehicles about 6 s of a first
night's intake. While :func:`checkpoints_aside` runs, the connections made in it leave
the log to a thread of its own, which checkpoints it (``PASSIVE``: never waiting for a
reader or writer) as the commits come, beside the next file's load. Every commit is in
the log, and the log is as durable as before (``synchronous=NORMAL``): only who copies
it changes. When the block ends, the log has been copied whole and emptied.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from urllib.parse import quote

from sqlalchemy import make_url

log = logging.getLogger(__name__)

#: Whether connections made now leave checkpoints to the thread of :func:`checkpoints_aside`.
CHECKPOINTS_ASIDE: ContextVar[bool] = ContextVar("checkpoints_aside", default=False)
#: How often the thread looks for committed pages to copy.
CHECKPOINT_EVERY_S = 0.5


def sqlite_file(database_url: str) -> str | None:
    """The SQLite database file of a store, None for another store or one in memory."""
    if not database_url.startswith("sqlite"):
        return None
    path = make_url(database_url).database
    if not path or path == ":memory:" or "mode=memory" in database_url:
        return None
    return path


def checkpoint(path: str, busy_timeout_s: float, mode: str = "PASSIVE") -> tuple[int, int]:
    """Copy what the log holds committed into the database file; return the log's frames
    and those of them copied. ``PASSIVE`` waits for no reader or writer; ``TRUNCATE``
    waits for them, up to ``busy_timeout_s``, then empties the log."""
    # Opened read-write, never created: a store that is gone is not made again here.
    uri = f"file:{quote(path)}?mode=rw"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=busy_timeout_s)
    try:
        _, frames, copied = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
    finally:
        conn.close()
    return int(frames), int(copied)


def _checkpoint_or_say(path: str, busy_timeout_s: float, mode: str = "PASSIVE") -> None:
    """:func:`checkpoint`; a failure is logged, not raised: the log stays whole, and the
    next commit without this thread copies it."""
    try:
        checkpoint(path, busy_timeout_s, mode)
    except sqlite3.Error as exc:
        log.warning("the store's write-ahead log could not be copied aside: %s", exc)


@contextmanager
def checkpoints_aside(database_url: str, busy_timeout_s: float = 60.0) -> Iterator[None]:
    """While the block runs, the store's checkpoints are a thread's, not its writers'
    (SQLite in a file; nothing changes for another store)."""
    path = sqlite_file(database_url)
    if path is None:
        yield
        return
    stop = threading.Event()

    def copy_aside() -> None:
        while not stop.wait(CHECKPOINT_EVERY_S):
            _checkpoint_or_say(path, busy_timeout_s)

    thread = threading.Thread(target=copy_aside, name="vhub-wal-checkpoints", daemon=True)
    aside = CHECKPOINTS_ASIDE.set(True)
    thread.start()
    try:
        yield
    finally:
        CHECKPOINTS_ASIDE.reset(aside)
        stop.set()
        thread.join()
        # The last commits', and the log emptied: readers of a log left long look every
        # page up in its index (the next writer would only restart it).
        _checkpoint_or_say(path, 5.0, "TRUNCATE")
