"""Connecting to the store and creating its tables."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.exc import SQLAlchemyError

# The review desk's tables are the store's too: created with the others.
import vehiclehub.review.tables  # noqa: F401
from vehiclehub.store.schema import SUPERSEDED_INDEXES, metadata


class StoreUnavailable(Exception):
    """The store cannot be reached or set up; the message says what to fix."""


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
            return
        except SQLAlchemyError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


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
    return lag + [f"superseded index {n} still there" for n in SUPERSEDED_INDEXES if n in indexes]


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
            "configuration and that the database server is running."
        ) from exc
    return engine
