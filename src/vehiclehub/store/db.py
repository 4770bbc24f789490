"""Connecting to the store and creating its tables."""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.exc import SQLAlchemyError

# The review desk's tables are the store's too: created with the others.
import vehiclehub.store.review  # noqa: F401
from vehiclehub.store.schema import SUPERSEDED_INDEXES, metadata
from vehiclehub.store.upgrade import needs_verdict_upgrade, upgrade_verdict_snapshots

#: SQLSTATEs of faults that pass by themselves: the connection failed or was lost
#: (class 08), a serialisation failure or deadlock (the transaction, run again, goes
#: through), the server shutting down or starting up, too many connections.
TRANSIENT_SQLSTATES = ("08", "40001", "40P01", "57P01", "57P02", "57P03", "53300")
#: How drivers word connection faults they report without a SQLSTATE.
TRANSIENT_WORDS = (
    "connection refused",
    "connection reset",
    "connection timed out",
    "timeout expired",
    "server closed the connection",
    "terminating connection",
    "connection is lost",
    "connection is closed",
    "consuming input failed",
    "the database system is starting up",
    "the database system is shutting down",
    "database is locked",  # SQLite: another writer held the lock past the busy timeout
)


def is_transient_store_fault(exc: BaseException) -> bool:
    """True when the store's fault may pass by itself: run the work again later.

    Connection refused or lost, the server restarting, a serialisation failure or a
    deadlock, SQLite's lock held too long. A wrong URL, password or database name, a
    missing table or a bad value are not: they say what to fix. The exception, its
    cause chain and the DB-API error SQLAlchemy wraps are all looked at.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if getattr(current, "connection_invalidated", False):
            return True  # SQLAlchemy saw the connection die under a statement
        sqlstate = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(sqlstate, str) and sqlstate:
            return sqlstate.startswith(TRANSIENT_SQLSTATES)
        message = str(current).lower()
        if any(words in message for words in TRANSIENT_WORDS):
            return True
        current = getattr(current, "orig", None) or current.__cause__
    return False


class StoreUnavailable(Exception):
    """The store cannot be reached or set up; the message says what to fix.

    ``transient`` tells whether it may pass by itself (the server refused or dropped
    the connection): worth trying again later, unlike a wrong URL or password.
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=600000")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.execute("PRAGMA cache_size=-262144")
    cursor.close()


def _create_tables(engine: Engine, attempts: int = 20) -> None:
    """Create missing tables; parallel intake tasks may race to create them first.

    Each attempt creates what the previous ones left missing, so the race ends once
    every table exists, whoever created it.
    """
    for attempt in range(attempts):
        try:
            metadata.create_all(engine)
            _upgrade_indexes(engine)
            _protect_exchange_log(engine)
            upgrade_verdict_snapshots(engine)
            _widen_text_columns(engine)
            return
        except SQLAlchemyError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def _protect_exchange_log(engine: Engine) -> None:
    """On PostgreSQL, take UPDATE, DELETE and TRUNCATE on the exchange log away from the
    hub's own role: its entries are never changed or deleted (ICD §6).

    The table's owner may revoke its own privileges; for a role that does not own the
    table (an administrator created it) and was never granted them, there is nothing to
    take and nothing is done. A superuser is never bound by privileges.
    """
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        owner = conn.execute(
            text(
                "SELECT pg_get_userbyid(relowner) = current_user FROM pg_class "
                "WHERE oid = to_regclass('exchange_log')"
            )
        ).scalar()
        if owner:
            conn.execute(text("REVOKE UPDATE, DELETE, TRUNCATE ON exchange_log FROM CURRENT_USER"))


def _index_names(conn: Connection) -> set[str]:
    present = inspect(conn)
    return {
        str(index["name"])
        for table in present.get_table_names()
        for index in present.get_indexes(table)
    }


def schema_lag(conn: Connection) -> list[str]:
    """What the store lacks to be at this version's schema: missing tables, columns and
    indexes, and superseded indexes still there; empty when it is up to date."""
    present = inspect(conn)
    tables = set(present.get_table_names())
    indexes = _index_names(conn)
    lag = [f"table {t.name} missing" for t in metadata.sorted_tables if t.name not in tables]
    for table in metadata.sorted_tables:
        if table.name in tables:
            columns = {c["name"] for c in present.get_columns(table.name)}
            lag += [
                f"column {table.name}.{c.name} missing" for c in table.c if c.name not in columns
            ]
    lag += [
        f"index {i.name} missing"
        for t in metadata.sorted_tables
        if t.name in tables
        for i in t.indexes
        if i.name not in indexes
    ]
    lag += [f"superseded index {n} still there" for n in SUPERSEDED_INDEXES if n in indexes]
    if needs_verdict_upgrade(conn):
        lag.append("verdicts still copied per night (an earlier release's)")
    return lag


def _upgrade_indexes(engine: Engine) -> None:
    """Bring a store created by an earlier version to today's indexes: create the missing
    ones (``create_all`` leaves the indexes of existing tables alone) and drop those they
    supersede. A no-op once done."""
    with engine.begin() as conn:
        names = _index_names(conn)
        for table in metadata.sorted_tables:
            for index in table.indexes:
                if index.name not in names:
                    index.create(conn)
        for name in SUPERSEDED_INDEXES:
            if name in names:
                conn.execute(text(f'DROP INDEX "{name}"'))


@contextmanager
def one_writer_at_a_time(database_url: str) -> Iterator[None]:
    """Hold the store's writer lock while the block runs, when the store is SQLite.

    SQLite lets one transaction write at a time: intakes started together (the DAG's
    four) would wait on each other's locks mid-load, slower than one after the other.
    They queue here instead, on an exclusive lock of a file beside the database,
    which the operating system releases if the holder dies. PostgreSQL takes parallel
    loads as they come: there is no lock.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        yield
        return
    lock_path = Path(url.database).with_name(Path(url.database).name + ".writer-lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _widen_text_columns(engine: Engine) -> None:
    """Give a store created by an earlier version the text sizes the contract sets now
    (ICD §1: free text up to 200 characters), so that whatever validation accepts loads.

    Only PostgreSQL enforces them; a column is only ever widened (a value stored by an
    earlier version may be longer than the contract now allows). A no-op once done.
    """
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        present = inspect(conn)
        tables = set(present.get_table_names())
        for table in metadata.sorted_tables:
            if table.name not in tables:
                continue
            stored = {c["name"]: c["type"] for c in present.get_columns(table.name)}
            for column in table.columns:
                want = getattr(column.type, "length", None)
                have = getattr(stored.get(column.name), "length", None)
                if want is not None and have is not None and have < want:
                    conn.execute(
                        text(
                            f'ALTER TABLE "{table.name}" ALTER COLUMN "{column.name}" '
                            f"TYPE varchar({int(want)})"
                        )
                    )


def connect(database_url: str, *, create: bool = True) -> Engine:
    """An engine for the store, its tables created; StoreUnavailable if it cannot be reached."""
    try:
        if database_url.startswith("sqlite"):
            engine = create_engine(database_url, connect_args={"timeout": 600})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(database_url, pool_pre_ping=True)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        if create:
            _create_tables(engine)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        shown = database_url.split("@")[-1] if "@" in database_url else database_url
        raise StoreUnavailable(
            f"cannot use the store at {shown}: {exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}. Check database_url in the "
            "configuration and that the database server is running.",
            transient=is_transient_store_fault(exc),
        ) from exc
    return engine
