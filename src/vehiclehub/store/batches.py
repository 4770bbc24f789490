"""A query's rows read from the store a batch at a time, as the driver gives them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import CompoundSelect, Connection, Select


def fetch_batches(
    conn: Connection, query: Select[Any] | CompoundSelect[Any], size: int
) -> Iterator[Sequence[Sequence[Any]]]:
    """A query's rows ``size`` at a time, never all at once, each row a tuple of values as
    the driver gives them (no row object per row).

    SQLite's cursor steps through the result as it is fetched: the rows are read from the
    driver's cursor itself. PostgreSQL's come through a server-side cursor of the driver's
    own, in the connection's transaction.
    """
    if conn.dialect.name == "sqlite":
        result = conn.execute(query)
        try:
            while rows := result.cursor.fetchmany(size):
                yield rows
        finally:
            result.close()
        return
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    driver = conn.connection.driver_connection
    name = f"vhub_batches_{uuid.uuid4().hex[:12]}"
    with driver.cursor(name=name) as cursor:  # type: ignore[union-attr]
        cursor.execute(str(compiled), compiled.params)
        while rows := cursor.fetchmany(size):
            yield rows
