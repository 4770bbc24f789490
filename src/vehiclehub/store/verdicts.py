"""Verdicts kept as changes: each record's verification row (ICD §4) with the business
dates from which and until which it held.

A run for business date D states the rows of D. What held on D before is replaced by
them from D up to the next later run (a re-run of an earlier date changes that date
only); rows equal to what already held on D are not written at all, so a night costs
storage in proportion to what it changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    Date,
    MetaData,
    Select,
    String,
    Table,
    Text,
    and_,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.sql.expression import FromClause

from vehiclehub.identifiers import arrow_text
from vehiclehub.key_index import KeyIndex, key_hashes
from vehiclehub.store.batches import fetch_batches
from vehiclehub.store.load import bulk_insert
from vehiclehub.store.schema import reconcile_runs, verdict_history

#: Verdict rows turned into JSON and compared at a time, to bound the memory they take.
VERDICT_BATCH = 200_000


def verdict_holds_on(day: date, table: FromClause = verdict_history) -> ColumnElement[bool]:
    """A history row holds on ``day``: it began on or before it and had not ended by it."""
    return and_(table.c.valid_from <= day, or_(table.c.valid_to.is_(None), table.c.valid_to > day))


def previous_run(conn: Connection, day: date) -> date | None:
    """The latest business date reconciled before ``day``, if any."""
    query = select(func.max(reconcile_runs.c.run_date)).where(reconcile_runs.c.run_date < day)
    return conn.execute(query).scalar()


def next_run(conn: Connection, day: date) -> date | None:
    """The earliest business date reconciled after ``day``, if any."""
    query = select(func.min(reconcile_runs.c.run_date)).where(reconcile_runs.c.run_date > day)
    return conn.execute(query).scalar()


def record_run(conn: Connection, day: date) -> None:
    """Note that ``day`` has been reconciled (again)."""
    conn.execute(delete(reconcile_runs).where(reconcile_runs.c.run_date == day))
    conn.execute(insert(reconcile_runs).values(run_date=day, finished_at=datetime.now(UTC)))


def json_lines(frame: pd.DataFrame) -> list[str]:
    """Each row as a JSON object (an empty frame has no rows, not one empty row)."""
    if frame.empty:
        return []
    return frame.to_json(orient="records", lines=True, force_ascii=False).splitlines()


def row_hashes(lines: list[str]) -> np.ndarray:
    """A 64-bit hash of each JSON line; pandas' fixed hash key makes it the same every run."""
    return pd.util.hash_array(np.asarray(lines, dtype=object)).view(np.int64)


class HeldVerdicts:
    """The records of a report holding on a day, each with its row hash (exactly, by
    record key, in :class:`KeyIndex`: 12 bytes a record in memory, the keys on temporary
    disk), and which of them the run gave again."""

    def __init__(self, conn: Connection, report: str, day: date, within: Select[Any] | None):
        self.records = KeyIndex()
        query = select(verdict_history.c.record_key, verdict_history.c.row_hash).where(
            verdict_history.c.report == report, verdict_holds_on(day)
        )
        if within is not None:
            query = query.where(verdict_history.c.record_key.in_(within))
        for rows in fetch_batches(conn, query, VERDICT_BATCH):
            keys, hashes = zip(*rows, strict=True)
            text = pd.Series(keys, dtype=object)
            self.records.add(arrow_text(text), key_hashes(text), np.array(hashes, dtype=np.int64))
        self.given = np.zeros(len(self.records), dtype=bool)

    def same(self, keys: pd.Series, hashes: np.ndarray) -> np.ndarray:
        """Whether each record (given by this run, a record once) holds with an equal
        row already; each one held is noted as given."""
        ordinals, held_hashes = self.records.find(arrow_text(keys), key_hashes(keys))
        self.given[ordinals[ordinals >= 0]] = True
        same: np.ndarray = (ordinals >= 0) & (held_hashes == hashes)
        return same

    def not_given(self) -> Iterator[pa.Array]:
        """The keys of the records held that the run did not give, a batch at a time."""
        missing = np.flatnonzero(~self.given)
        for start in range(0, len(missing), VERDICT_BATCH):
            keys, _ = self.records.take(missing[start : start + VERDICT_BATCH])
            yield keys

    def close(self) -> None:
        self.records.close()


def _changes(
    parts: Iterable[pd.DataFrame], columns: list[str], held: HeldVerdicts
) -> Iterator[pd.DataFrame]:
    """The rows of ``parts`` that differ from what holds, at most :data:`VERDICT_BATCH`
    rows compared at a time, then a row with a null verdict for each record that holds
    but is no longer given: a run's rows and changes are never all in memory at once."""
    for rows in parts:
        for start in range(0, len(rows), VERDICT_BATCH):
            part = rows.iloc[start : start + VERDICT_BATCH]
            lines = json_lines(part[columns])
            hashes = row_hashes(lines)
            keep = ~held.same(part["record_key"], hashes)
            yield pd.DataFrame(
                {
                    "record_key": part["record_key"].to_numpy()[keep],
                    "verdict": part["verdict"].to_numpy()[keep],
                    "row_hash": hashes[keep],
                    "row_json": np.asarray(lines, dtype=object)[keep],
                }
            )
    for gone in held.not_given():
        yield pd.DataFrame(
            {"record_key": gone.to_pandas(), "verdict": None, "row_hash": None, "row_json": None}
        ).astype({"row_hash": "Int64"})


def store_verdicts(
    conn: Connection,
    day: date,
    report: str,
    parts: Iterable[pd.DataFrame],
    columns: list[str],
    within: Select[Any] | None = None,
) -> int:
    """Make the report's history hold the rows of ``parts`` on ``day`` (each row's
    ``columns`` as its JSON, keyed by ``record_key``; a record in one part only), changing
    nothing before ``day`` nor from the next later run on. The parts are taken one at a
    time as they come. ``within``: the record keys the rows stand for (a query), when they
    are not the whole report; the others hold on as they were. Returns the number of
    records whose row changed."""
    held = HeldVerdicts(conn, report, day, within)
    changes = _changes(parts, columns, held)
    later = next_run(conn, day)
    first = not conn.execute(select(exists().where(verdict_history.c.report == report))).scalar()
    changed = 0
    try:
        if first:  # the report's first run: nothing to close or split
            for part in changes:
                bulk_insert(conn, verdict_history, _history_rows(part, report, day, later))
                changed += len(part)
        else:
            changed = _rewrite(conn, report, day, later, changes)
    finally:
        held.close()
    if changed and conn.dialect.name == "postgresql":
        # Without statistics the next publish's comparison with the previous run's rows
        # (changed_verdicts) may be planned as a nested loop over both.
        conn.exec_driver_sql("ANALYZE verdict_history")
    return changed


def _history_rows(
    changes: pd.DataFrame, report: str, day: date, later: date | None
) -> pd.DataFrame:
    given = changes[changes["verdict"].notna()]
    return pd.DataFrame(
        {
            "report": report,
            "record_key": given["record_key"],
            "valid_from": day.isoformat(),
            "valid_to": later.isoformat() if later else None,
            "verdict": given["verdict"],
            "row_hash": given["row_hash"].astype("int64"),
            "row_json": given["row_json"],
        }
    )


def _rewrite(
    conn: Connection, report: str, day: date, later: date | None, changes: Iterable[pd.DataFrame]
) -> int:
    """Replace, for the changed records, what held from ``day`` until ``later``; return
    how many records changed."""
    stage = Table(
        "stage_verdicts",
        MetaData(),
        Column("record_key", String(255)),
        Column("verdict", String(32)),
        Column("row_hash", BigInteger),
        Column("row_json", Text),
        prefixes=["TEMPORARY"],
    )
    stage.create(conn)
    changed = 0
    for part in changes:
        bulk_insert(conn, stage, part)
        changed += len(part)
    if not changed:
        stage.drop(conn)
        return 0
    conn.exec_driver_sql("CREATE INDEX ix_stage_verdicts_key ON stage_verdicts (record_key)")
    h = verdict_history
    # Named by key (IN, not EXISTS): each changed record's rows are looked up through the
    # primary key, not the report's whole history scanned for them.
    ours = and_(h.c.report == report, h.c.record_key.in_(select(stage.c.record_key)))
    if later is not None:
        # What held on ``day`` and went on past the next run keeps holding from then.
        conn.execute(
            insert(h).from_select(
                [c.name for c in h.columns],
                select(
                    h.c.report,
                    h.c.record_key,
                    literal(later, Date),
                    h.c.valid_to,
                    h.c.verdict,
                    h.c.row_hash,
                    h.c.row_json,
                ).where(
                    ours,
                    verdict_holds_on(day),
                    or_(h.c.valid_to.is_(None), h.c.valid_to > later),
                ),
            )
        )
    conn.execute(delete(h).where(ours, h.c.valid_from == day))
    conn.execute(update(h).where(ours, verdict_holds_on(day)).values(valid_to=day))
    # A row equal to the one that ended on ``day`` extends it rather than following it.
    same_as_new = exists().where(
        stage.c.record_key == h.c.record_key, stage.c.row_hash == h.c.row_hash
    )
    conn.execute(
        update(h)
        .where(ours, h.c.valid_to == day, same_as_new)
        .values(valid_to=literal(later, Date))
    )
    extended = exists().where(
        h.c.report == report, h.c.record_key == stage.c.record_key, verdict_holds_on(day)
    )
    conn.execute(
        insert(h).from_select(
            [c.name for c in h.columns],
            select(
                literal(report, String),
                stage.c.record_key,
                literal(day, Date),
                literal(later, Date),
                stage.c.verdict,
                stage.c.row_hash,
                stage.c.row_json,
            ).where(stage.c.verdict.is_not(None), ~extended),
        )
    )
    if later is not None:
        _join_at(conn, report, later, ours)
    stage.drop(conn)
    return changed


def _join_at(conn: Connection, report: str, boundary: date, ours: ColumnElement[bool]) -> None:
    """Join a row ending on ``boundary`` with an equal row beginning there."""
    h, following = verdict_history, verdict_history.alias("following")
    equal_next = and_(
        following.c.report == report,
        following.c.record_key == h.c.record_key,
        following.c.valid_from == boundary,
        following.c.row_hash == h.c.row_hash,
    )
    conn.execute(
        update(h)
        .where(ours, h.c.valid_to == boundary, exists().where(equal_next))
        .values(valid_to=select(following.c.valid_to).where(equal_next).scalar_subquery())
    )
    covering = verdict_history.alias("covering")
    covered = exists().where(
        covering.c.report == report,
        covering.c.record_key == h.c.record_key,
        covering.c.valid_from < boundary,
        or_(covering.c.valid_to.is_(None), covering.c.valid_to > boundary),
    )
    conn.execute(delete(h).where(ours, h.c.valid_from == boundary, covered))
