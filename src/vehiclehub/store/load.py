"""Loading a validated file into its feed table, set-based, in the caller's transaction.

ICD §1, corrections: a higher ``record_version`` replaces the stored record; a lower
one is ignored, and so is the same version with the same content; the same version
with different content is rejected.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Column, Connection, MetaData, Table, and_, delete, exists, insert
from sqlalchemy import select as sa_select

from vehiclehub.contract import FeedSpec
from vehiclehub.store.schema import feed_table


@dataclass(frozen=True)
class LoadResult:
    loaded: int
    ignored: int
    conflicts: pd.DataFrame  # line, record_version: same version, different content


def bulk_insert(conn: Connection, table: Table, frame: pd.DataFrame) -> None:
    """Insert a frame whose columns are a subset of the table's, as fast as the driver allows."""
    if frame.empty:
        return
    columns = list(frame.columns)
    if conn.dialect.name == "postgresql":
        buffer = io.StringIO()
        # \N marks null, so that an empty string stays an empty string.
        frame.to_csv(buffer, header=False, index=False, na_rep="\\N")
        names = ", ".join(f'"{c}"' for c in columns)
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with (
            cursor,
            cursor.copy(
                f"""COPY "{table.name}" ({names}) FROM STDIN (FORMAT csv, NULL '\\N')"""
            ) as copy,
        ):
            copy.write(buffer.getvalue())
        return
    placeholders = ", ".join("?" for _ in columns)
    names = ", ".join(f'"{c}"' for c in columns)
    rows = frame.astype(object).where(frame.notna(), None).itertuples(index=False, name=None)
    raw_conn = conn.connection.driver_connection
    raw_conn.executemany(  # type: ignore[union-attr]
        f'INSERT INTO "{table.name}" ({names}) VALUES ({placeholders})', rows
    )


def _staging_table(conn: Connection, target: Table) -> Table:
    staging_meta = MetaData()
    columns = [Column(c.name, c.type) for c in target.columns]
    staging = Table(
        f"stage_{target.name}_{uuid.uuid4().hex[:8]}",
        staging_meta,
        *columns,
        prefixes=["TEMPORARY"],
    )
    staging.create(conn)
    return staging


def load_records(conn: Connection, spec: FeedSpec, records: pd.DataFrame) -> LoadResult:
    """Apply a file's valid records to its feed table; return what was loaded and ignored.

    ``records`` has the table's columns (``line`` among them). Runs inside the
    caller's transaction so that the file loads whole or not at all.
    """
    target = feed_table(spec.agency, spec.feed)
    staging = _staging_table(conn, target)
    bulk_insert(conn, staging, records)
    same_key = and_(*(target.c[k] == staging.c[k] for k in spec.key))
    conflicts = pd.DataFrame(
        conn.execute(
            sa_select(staging.c.line, staging.c.record_version)
            .join(target, same_key)
            .where(
                staging.c.record_version == target.c.record_version,
                staging.c.content_hash != target.c.content_hash,
            )
            .order_by(staging.c.line)
        ).all(),
        columns=["line", "record_version"],
    )
    superseded = exists().where(
        and_(*(staging.c[k] == target.c[k] for k in spec.key)),
        staging.c.record_version > target.c.record_version,
    )
    conn.execute(delete(target).where(superseded))
    still_stored = exists().where(and_(*(target.c[k] == staging.c[k] for k in spec.key)))
    columns = [c.name for c in target.columns]
    loaded = conn.execute(
        insert(target).from_select(
            columns,
            sa_select(*(staging.c[c] for c in columns)).where(~still_stored),
        )
    ).rowcount
    # Dropped on success only: on failure the rollback undoes its creation.
    staging.drop(conn)
    if conn.dialect.name == "postgresql":
        # Fresh statistics keep the rules' anti-joins on hash plans after big loads.
        conn.exec_driver_sql(f'ANALYZE "{target.name}"')
    ignored = len(records) - loaded - len(conflicts)
    return LoadResult(loaded=loaded, ignored=ignored, conflicts=conflicts)
