"""Connecting to the store and creating its tables."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.exc import SQLAlchemyError

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


def _upgrade_indexes(engine: Engine) -> None:
    """Bring a store created by an earlier version to today's indexes: create the missing
    ones (``create_all`` leaves the indexes of existing tables alone) and drop those they
    supersede. A no-op once done."""
    with engine.begin() as conn:
        present = inspect(conn)
        names = {
            index["name"]
            for table in present.get_table_names()
            for index in present.get_indexes(table)
        }
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
