"""One run at a time per store: a lease held in the store itself.

A run — one ``vhub run``, or one Airflow DAG run whose tasks share it by their run id —
takes the store's lease before it writes and renews it while it works. A second run
waits for it up to a configured time, then gives up with :class:`StoreBusy`. A run
that is killed stops renewing: its lease expires and the next run takes it over.

On SQLite a stage holding the store's write lock (reconcile's writes) keeps the lease's
renewals waiting, as it keeps any other run from taking the lease: that stage renews
the lease within its own transaction as it commits (:func:`renew_within`), so that the
lease runs its whole life from the moment the lock is let go, however long it was held.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from vehiclehub.errors import ExitCode, HubError
from vehiclehub.store.schema import run_leases

log = logging.getLogger(__name__)

#: The one lease of a store: every run that writes takes it.
LEASE_NAME = "run"

#: The lease held while :func:`holding`'s block runs: its holder and life in seconds.
_HELD: ContextVar[tuple[str, float] | None] = ContextVar("vhub_lease_held", default=None)


class StoreBusy(HubError):
    """Another run holds the store's lease; the message names it and when it expires."""

    exit_code = ExitCode.STORE_BUSY


def _now() -> datetime:
    return datetime.now(UTC)


def _take(engine: Engine, holder: str, ttl: timedelta) -> bool:
    """Take the lease if it is free, expired or already ``holder``'s; whether it was."""
    now = _now()
    values = {"holder": holder, "acquired_at": now, "expires_at": now + ttl}
    try:
        with engine.begin() as conn:
            conn.execute(insert(run_leases).values(name=LEASE_NAME, **values))
        return True
    except IntegrityError:
        pass  # someone holds it, or held it: taken over below if it may be
    with engine.begin() as conn:
        taken = conn.execute(
            update(run_leases)
            .where(
                run_leases.c.name == LEASE_NAME,
                or_(run_leases.c.holder == holder, run_leases.c.expires_at < now),
            )
            .values(**values),
            execution_options={"preserve_rowcount": True},
        ).rowcount
    return bool(taken)


def _holder(engine: Engine) -> tuple[str, datetime] | None:
    with engine.connect() as conn:
        row = conn.execute(
            select(run_leases.c.holder, run_leases.c.expires_at).where(
                run_leases.c.name == LEASE_NAME
            )
        ).first()
    return None if row is None else (str(row[0]), row[1])


def acquire(engine: Engine, holder: str, *, ttl_s: float, wait_s: float) -> None:
    """Take the store's lease for ``holder``, waiting up to ``wait_s`` seconds for it.

    Raises StoreBusy, naming the run that holds it, when it is not free by then.
    """
    ttl = timedelta(seconds=ttl_s)
    deadline = time.monotonic() + wait_s
    while not _take(engine, holder, ttl):
        left = deadline - time.monotonic()
        if left <= 0:
            held = _holder(engine)
            by = f"{held[0]!r}, until {held[1]:%Y-%m-%d %H:%M:%S} UTC" if held else "another run"
            raise StoreBusy(
                f"another run holds the store ({by} unless it renews its lease); waited "
                f"{wait_s:g} s. Try again when it has finished, or raise lease_wait_s"
            )
        time.sleep(min(1.0, left))


def _renew(conn: Connection, holder: str, ttl_s: float) -> bool:
    renewed = conn.execute(
        update(run_leases)
        .where(run_leases.c.name == LEASE_NAME, run_leases.c.holder == holder)
        .values(expires_at=_now() + timedelta(seconds=ttl_s)),
        execution_options={"preserve_rowcount": True},
    ).rowcount
    return bool(renewed)


def renew(engine: Engine, holder: str, ttl_s: float) -> bool:
    """Extend ``holder``'s lease; False if it no longer holds it."""
    with engine.begin() as conn:
        return _renew(conn, holder, ttl_s)


def renew_within(conn: Connection) -> None:
    """On SQLite, extend the lease held here (if any) in ``conn``'s transaction: the
    last write of a stage that holds the store's write lock. PostgreSQL renews the
    lease beside the stage: nothing to do."""
    held = _HELD.get()
    if held is None or conn.dialect.name != "sqlite":
        return
    if not _renew(conn, *held):
        log.error("the store's lease was taken from %s", held[0])


def release(engine: Engine, holder: str) -> None:
    """Give the lease back, if ``holder`` still holds it."""
    with engine.begin() as conn:
        conn.execute(
            delete(run_leases).where(run_leases.c.name == LEASE_NAME, run_leases.c.holder == holder)
        )


@contextmanager
def holding(
    engine: Engine, holder: str, *, ttl_s: float, wait_s: float, release_after: bool = True
) -> Iterator[None]:
    """Hold the store's lease while the block runs, renewing it every third of its life.

    ``release_after=False`` leaves it to expire (or to a later step of the same run,
    which takes it again under the same ``holder``): the tasks of one DAG run.
    """
    acquire(engine, holder, ttl_s=ttl_s, wait_s=wait_s)
    held = _HELD.set((holder, ttl_s))
    stop = threading.Event()

    def keep() -> None:
        while not stop.wait(ttl_s / 3):
            try:
                if not renew(engine, holder, ttl_s):
                    log.error("the store's lease was taken from %s", holder)
            except SQLAlchemyError as exc:  # the run itself meets the store's trouble
                log.warning("renewing the store's lease failed: %s", type(exc).__name__)

    keeper = threading.Thread(target=keep, name="vhub-lease", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        _HELD.reset(held)
        stop.set()
        keeper.join()
        if release_after:
            release(engine, holder)
