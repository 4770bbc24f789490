"""Loading a validated file into its feed table, set-based, in the caller's transaction.

ICD §1, corrections: a higher ``record_version`` replaces the stored record; a lower
one is ignored, and so is the same version with the same content; the same version
with different content is rejected.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Index,
    MetaData,
    Table,
    and_,
    delete,
    exists,
    insert,
    literal,
    union,
)
from sqlalchemy import select as sa_select

from vehiclehub.contract import FeedSpec
from vehiclehub.store.schema import CHANGE_KEYS, EVERYTHING, feed_table, indexes_on, record_changes


@dataclass(frozen=True)
class LoadResult:
    loaded: int
    ignored: int
    conflicts: pd.DataFrame  # line, record_version: same version, different content


#: How COPY is told a field is null (PostgreSQL).
COPY_NULL = "\x01"

#: Rows converted to Python values (SQLite) or to COPY's text (PostgreSQL) at a time.
_SLICE_ROWS = 50_000


def _driver_values(values: pd.Series) -> list[Any]:
    """A column as the values the SQLite driver binds: Python scalars, None for missing."""
    if pd.api.types.is_bool_dtype(values.dtype) and not values.hasnans:
        return values.astype(bool).tolist()
    if pd.api.types.is_signed_integer_dtype(values.dtype) and not values.hasnans:
        return values.astype("int64").tolist()
    objects = values.astype(object)
    return objects.where(values.notna(), None).tolist()


def bulk_insert(conn: Connection, table: Table, frame: pd.DataFrame) -> None:
    """Insert a frame whose columns are a subset of the table's, as fast as the driver allows."""
    if frame.empty:
        return
    columns = list(frame.columns)
    if conn.dialect.name == "postgresql":
        names = ", ".join(f'"{c}"' for c in columns)
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with (
            cursor,
            cursor.copy(
                f"""COPY "{table.name}" ({names}) FROM STDIN (FORMAT csv, NULL E'\\x01')"""
            ) as copy,
        ):
            # One COPY, its text written a slice at a time: the text of only a slice
            # exists at a time. Null is marked by a control character, which no stored
            # text holds (ICD §1; rejections show them escaped): any text, ``\N``
            # included, stays that text, and an empty string stays an empty string.
            for start in range(0, len(frame), _SLICE_ROWS):
                part = frame.iloc[start : start + _SLICE_ROWS]
                copy.write(part.to_csv(header=False, index=False, na_rep=COPY_NULL))
        return
    placeholders = ", ".join("?" for _ in columns)
    names = ", ".join(f'"{c}"' for c in columns)
    statement = f'INSERT INTO "{table.name}" ({names}) VALUES ({placeholders})'
    raw_conn = conn.connection.driver_connection
    # Column by column to Python values, then rows: far cheaper than row by row. In
    # slices, so that the Python objects of only a slice exist at a time.
    for start in range(0, len(frame), _SLICE_ROWS):
        part = frame.iloc[start : start + _SLICE_ROWS]
        rows = zip(*(_driver_values(part[c]) for c in columns), strict=True)
        raw_conn.executemany(statement, rows)  # type: ignore[union-attr]


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


def holds_records(conn: Connection, spec: FeedSpec) -> bool:
    """Whether the feed's table holds any record (a first load needs no comparison)."""
    target = feed_table(spec.agency, spec.feed)
    return conn.execute(sa_select(literal(1)).select_from(target).limit(1)).first() is not None


def load_records(
    conn: Connection, spec: FeedSpec, records: pd.DataFrame, *, compare: bool = True
) -> LoadResult:
    """Apply valid records (one per key) to their feed table; return what was loaded and ignored.

    ``records`` has the table's columns (``line`` among them). Runs inside the
    caller's transaction so that the file loads whole or not at all; a file may be
    applied in several calls whose keys are disjoint. ``compare=False`` says the
    table holds none of the keys (it was empty when the file's load began): the
    records are inserted as they are, without looking for stored versions.
    """
    target = feed_table(spec.agency, spec.feed)
    if records.empty:
        return LoadResult(loaded=0, ignored=0, conflicts=_no_conflicts())
    if not compare:
        bulk_insert(conn, target, records[[c.name for c in target.columns]])
        file_id = int(records["file_id"].iloc[0])
        conn.execute(insert(record_changes).values(file_id=file_id, kind=EVERYTHING, value=None))
        return LoadResult(loaded=len(records), ignored=0, conflicts=_no_conflicts())
    staging = _staging_table(conn, target)
    bulk_insert(conn, staging, records)
    # The comparisons below probe the staged keys once per stored record: indexed, that is
    # a look-up each, not a scan of the staged rows each.
    Index(f"ix_{staging.name}_key", *(staging.c[k] for k in spec.key)).create(conn)
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
    _note_changes(conn, spec, staging, target)
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
        ),
        # SQLAlchemy 2.1 reports -1 for an INSERT ... SELECT on psycopg unless asked.
        execution_options={"preserve_rowcount": True},
    ).rowcount
    # Dropped on success only: on failure the rollback undoes its creation.
    staging.drop(conn)
    ignored = len(records) - loaded - len(conflicts)
    return LoadResult(loaded=loaded, ignored=ignored, conflicts=conflicts)


def _note_changes(conn: Connection, spec: FeedSpec, staging: Table, target: Table) -> None:
    """Journal the keys (CHANGE_KEYS) of the file's records and of the stored versions of
    the same keys, which they may supersede: what a correction or cancellation changes is
    reached through its old values as much as through its new ones."""
    same_key = and_(*(target.c[k] == staging.c[k] for k in spec.key))
    parts = []
    for column, kind in CHANGE_KEYS[spec.agency, spec.feed].items():
        parts.append(sa_select(staging.c.file_id, literal(kind), staging.c[column]))
        parts.append(
            sa_select(staging.c.file_id, literal(kind), target.c[column]).join(target, same_key)
        )
    conn.execute(insert(record_changes).from_select(["file_id", "kind", "value"], union(*parts)))


#: The share of a bulk load's rows that SQLite loads after building the deferred indexes.
#: SQLite fills every page of an index it builds; the keys of the following nights (new
#: VINs, all over the index) would then split a page each and grow the store by about
#: a tenth of the feed's indexes on the next night. Inserted through the built indexes,
#: the last tenth of the rows splits their pages first and leaves room in them, at about
#: 12 % more of the load's time. PostgreSQL builds an index with room in each page of
#: its own (fillfactor 90): there the indexes are built after the whole load.
SQLITE_ROWS_AFTER_INDEXES = 0.1


@dataclass
class DeferredIndexes:
    """A feed table's secondary indexes, dropped ahead of a bulk load into the empty table
    and built again once ``build_after`` rows are loaded, or when the load ends.

    Building an index once over loaded rows is cheaper than updating it row by row.
    Dropped and built in the load's transaction: a rollback restores them.
    """

    indexes: list[Index]
    build_after: int

    @classmethod
    def drop(cls, conn: Connection, spec: FeedSpec, rows: int) -> DeferredIndexes:
        """Drop the feed table's secondary indexes ahead of a load of ``rows`` rows."""
        if conn.dialect.name == "sqlite":
            # The sqlite3 driver opens its transaction at the first INSERT, UPDATE or
            # DELETE only: a DROP before any would be committed at once.
            raw = conn.connection.driver_connection
            if not raw.in_transaction:  # type: ignore[union-attr]
                raw.execute("BEGIN")  # type: ignore[union-attr]
            build_after = rows - int(rows * SQLITE_ROWS_AFTER_INDEXES)
        else:
            build_after = rows
        table = feed_table(spec.agency, spec.feed)
        indexes = sorted(indexes_on(table, conn.dialect.name), key=lambda i: str(i.name))
        for index in indexes:
            index.drop(conn)
        return cls(indexes, build_after)

    def loaded(self, conn: Connection, rows: int) -> None:
        """``rows`` rows are loaded so far: build the indexes if that is enough."""
        if rows >= self.build_after:
            self.build(conn)

    def build(self, conn: Connection) -> None:
        """Build the indexes still dropped (at the latest when the load ends)."""
        for index in self.indexes:
            index.create(conn)
        self.indexes = []


def finish_load(conn: Connection, spec: FeedSpec) -> None:
    """After a file's records are applied: fresh planner statistics on PostgreSQL."""
    if conn.dialect.name == "postgresql":
        # Fresh statistics keep the rules' anti-joins on hash plans after big loads.
        conn.exec_driver_sql(f'ANALYZE "{feed_table(spec.agency, spec.feed).name}"')


def vacuum_loaded(engine: Engine, agency: str, feeds: Iterable[str]) -> None:
    """PostgreSQL: vacuum the tables of the feeds whose files an intake has loaded, once
    they are committed, so that their pages are marked visible to every transaction.

    The rules read a feed's records by VIN from its VIN look-up index, and the VINs held
    from its index of them (:func:`~vehiclehub.store.schema.held_vin_index_name`): an
    index-only scan reads the table's rows only on pages not so marked. Left to
    PostgreSQL's autovacuum, that happens some time after the night's reconcile, or,
    where autovacuum is off, never, and every such read visits the table. After a night's
    change the vacuum visits the pages the night wrote; after a first load, the whole
    table once. A role that does not own the table is told so by PostgreSQL, which
    vacuums nothing; the intake goes on.
    """
    if engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for name in sorted(set(feeds)):
            conn.exec_driver_sql(f'VACUUM "{feed_table(agency, name).name}"')


def _no_conflicts() -> pd.DataFrame:
    return pd.DataFrame(
        {"line": pd.Series(dtype="int64"), "record_version": pd.Series(dtype="int64")}
    )
