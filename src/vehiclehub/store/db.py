"""Connecting to the store, and what its faults mean."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from vehiclehub.errors import CannotStart, ExitCode, HubError
from vehiclehub.store.checkpoints import CHECKPOINTS_ASIDE, sqlite_file
from vehiclehub.store.migrate import (
    StoreNotCurrent,
    Upgrade,
    ensure_store,
    head_revision,
    store_metadata,
    store_revision,
    upgrade_store,
)
from vehiclehub.store.schema import SUPERSEDED_INDEXES, indexes_on
from vehiclehub.store.upgrade import needs_verdict_upgrade

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


class StoreUnavailable(CannotStart):
    """The store cannot be reached or set up; the message says what to fix.

    ``transient`` tells whether it may pass by itself (the server refused or dropped
    the connection): worth trying again later, unlike a wrong URL or password.
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


#: How long a statement on SQLite waits for another connection's write lock.
BUSY_TIMEOUT_S = 600
#: Each SQLite connection's page cache, in KiB. The operating system caches the store's
#: file too: a connection's own cache need hold little more than the B-trees' upper
#: levels. A night evaluates the rules on two connections at once; at 1M vehicles, caches
#: of 256 MiB each made reconcile's peak 0.46 GiB higher for 4 % less CPU time.
CACHE_KIB = 65_536

#: Each PostgreSQL connection's settings. A cursor's query is planned for all its rows, not
#: PostgreSQL's default first tenth (cursor_tuple_fraction 0.1): the hub reads every
#: cursor it streams (``stream_results``) to the end. At 1M vehicles VIN-003's per-feed
#: DISTINCT VINs were read in 9 s instead of 16.
PG_OPTIONS = "-c cursor_tuple_fraction=1"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
    cursor.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    # Temporary tables and sorts are held in a cache of the same size and spill beyond
    # it to a temporary file. Held in memory instead, building an index after a bulk load
    # sorts the whole table in memory: at 1M vehicles the police events' VIN index took
    # 0.41 GiB and 5.9 s to build, spilling 0.14 GiB and 4.2 s.
    cursor.execute("PRAGMA temp_store=FILE")
    cursor.execute(f"PRAGMA temp.cache_size=-{CACHE_KIB}")
    if CHECKPOINTS_ASIDE.get():  # a thread copies the log (vehiclehub.store.checkpoints)
        cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def _index_names(conn: Connection) -> set[str]:
    present = inspect(conn)
    return {
        str(index["name"])
        for table in present.get_table_names()
        for index in present.get_indexes(table)
    }


def schema_lag(conn: Connection) -> list[str]:
    """What the store lacks to be at this release's schema: missing tables, columns and
    indexes, superseded indexes still there, its schema revision behind; empty when it
    is up to date."""
    metadata = store_metadata()
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
        for i in indexes_on(t, conn.dialect.name)
        if i.name not in indexes
    ]
    lag += [f"superseded index {n} still there" for n in SUPERSEDED_INDEXES if n in indexes]
    if needs_verdict_upgrade(conn):
        lag.append("verdicts still copied per night (an earlier release's)")
    revision, head = store_revision(conn), head_revision()
    if tables and revision != head:
        lag.append(f"at schema revision {revision or 'none'}, this release's is {head}")
    return lag


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


class WriteLockHeld(HubError):
    """Another connection held SQLite's write lock for longer than a writer would wait."""

    exit_code = ExitCode.STORE_BUSY


def take_write_lock(conn: Connection, wait_s: float = BUSY_TIMEOUT_S) -> None:
    """From here on ``conn``'s transaction writes: on SQLite, take the store's write lock now.

    SQLite lets one transaction write at a time, and one that has read may not begin to
    write once another connection has committed since its first read (the store it read
    is no longer the latest: SQLITE_BUSY_SNAPSHOT, "database is locked", which no
    waiting cures). Reconcile reads for minutes before it writes, while the run's lease
    is renewed and the review desk records decisions. So what the transaction read is
    let go (nothing of the store is written before this point: only temporary tables,
    which are kept) and it begins anew with BEGIN IMMEDIATE: the lock is waited for, up
    to ``wait_s`` seconds, while another connection's write finishes, then held until
    the transaction ends, its reads and writes seeing one store. Taking the lock for the
    whole stage instead would keep the lease's renewals and the desk waiting for the
    minutes the reads take. WriteLockHeld when the wait runs out.

    PostgreSQL locks rows, not the store, and reads each statement's latest commits:
    nothing to do.
    """
    if conn.dialect.name != "sqlite":
        return
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    dbapi.commit()
    conn.exec_driver_sql(f"PRAGMA busy_timeout={int(wait_s * 1000)}")
    try:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    except OperationalError as exc:
        if "database is locked" not in str(exc):
            raise
        raise WriteLockHeld(f"another writer held the store for more than {wait_s:g} s") from exc
    finally:
        conn.exec_driver_sql(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")


@contextmanager
def writing(engine: Engine, wait_s: float = BUSY_TIMEOUT_S) -> Iterator[Connection]:
    """A transaction that reads and then writes the store, holding SQLite's write lock
    from its start (:func:`take_write_lock`): what it read still holds when it writes."""
    with engine.begin() as conn:
        take_write_lock(conn, wait_s)
        yield conn


@contextmanager
def _usable(database_url: str) -> Iterator[None]:
    """What goes wrong opening or setting up the store, as StoreUnavailable."""
    try:
        yield
    except StoreNotCurrent as exc:
        raise StoreUnavailable(str(exc)) from exc
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        shown = database_url.split("@")[-1] if "@" in database_url else database_url
        raise StoreUnavailable(
            f"cannot use the store at {shown}: {exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}. Check database_url in the "
            "configuration and that the database server is running.",
            transient=is_transient_store_fault(exc),
        ) from exc


def connect(database_url: str, *, create: bool = True, made: bool = False) -> Engine:
    """An engine for the store; StoreUnavailable if it cannot be reached or used.

    With ``create``, a new (empty) store is created at this release's schema, and a
    store that is not at it (behind: ``vhub db upgrade``; a newer release's) refused;
    of a current store only the version is read. Without, nothing is looked at but
    that the store answers. A store is never upgraded here: see :func:`upgrade`.

    ``made``: the store was there before (a run began on it). A SQLite file gone since —
    moved, deleted, its volume unmounted — is then not made anew, empty, under its name:
    a run carrying on against an empty store would deliver drops that miss everything.
    """
    if made:
        path = sqlite_file(database_url)
        if path is not None and not Path(path).is_file():
            raise StoreUnavailable(
                f"the store {path} is gone since the run began (moved, deleted or its "
                "volume unmounted); no new, empty store is made in its place. Bring it "
                "back, then run again"
            )
    with _usable(database_url):
        if database_url.startswith("sqlite"):
            engine = create_engine(database_url, connect_args={"timeout": BUSY_TIMEOUT_S})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(
                database_url, pool_pre_ping=True, connect_args={"options": PG_OPTIONS}
            )
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            if create:
                ensure_store(engine)
        except BaseException:
            engine.dispose()
            raise
    return engine


def upgrade(database_url: str) -> Upgrade:
    """Bring the store to this release's schema (see
    :func:`~vehiclehub.store.migrate.upgrade_store`): once per run, before anything
    else; StoreUnavailable if it cannot be reached or upgraded."""
    engine = connect(database_url, create=False)
    try:
        with _usable(database_url):
            return upgrade_store(engine)
    finally:
        engine.dispose()


@contextmanager
def stage_engine(database_url: str, *, create: bool = True, made: bool = False) -> Iterator[Engine]:
    """The store for one stage of a run; its pooled connections (and their page caches)
    are closed when the stage ends. Without ``create`` it is only read, never set up;
    ``made`` as :func:`connect` takes it."""
    engine = connect(database_url, create=create, made=made)
    try:
        yield engine
    finally:
        engine.dispose()
