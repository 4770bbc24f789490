"""RuleContext.frame: what every rule's frame looks like, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    literal,
    select,
    union_all,
)

from vehiclehub.config import RuleParameters
from vehiclehub.rules import base
from vehiclehub.rules.base import RuleContext
from vehiclehub.store import connect

samples = Table(
    "frame_samples",
    MetaData(),
    Column("n", Integer, primary_key=True),
    Column("name", String(32)),
    Column("day", Date),
    Column("count", Integer),
    Column("flag", Boolean),
)

ROWS: list[dict[str, Any]] = [
    {"n": 1, "name": None, "day": None, "count": None, "flag": True},
    {"n": 2, "name": None, "day": None, "count": 7, "flag": False},
    {"n": 3, "name": "粤B", "day": date(2025, 11, 3), "count": 8, "flag": True},
]


def _frame(url: str) -> pd.DataFrame:
    engine = connect(url)
    try:
        with engine.begin() as conn:
            samples.create(conn)
            conn.execute(insert(samples), ROWS)
            ctx = RuleContext(conn, date(2025, 11, 3), RuleParameters())
            return ctx.frame(select(samples, literal(None).label("unset")).order_by(samples.c.n))
    finally:
        engine.dispose()


def _check(found: pd.DataFrame) -> None:
    assert list(found.columns) == ["n", "name", "day", "count", "flag", "unset"]
    assert found["n"].tolist() == [1, 2, 3] and found["n"].dtype == "int64"
    # Text and dates: the string dtype, ISO dates, nulls as NA.
    for name in ("name", "day", "unset"):
        assert pd.api.types.is_string_dtype(found[name]), name
    assert found["name"].isna().tolist() == [True, True, False]
    assert found.at[2, "name"] == "粤B"
    assert found.at[2, "day"] == "2025-11-03"
    assert found["unset"].isna().all()
    # Integers with nulls as pandas makes them; booleans as booleans.
    assert found["count"].dtype == "float64"
    assert found["count"].tolist()[1:] == [7.0, 8.0]
    assert found["flag"].tolist() == [True, False, True]


def test_a_frame_types_its_columns(tmp_path: Path) -> None:
    _check(_frame(f"sqlite:///{tmp_path / 'hub.db'}"))


def test_batches_make_the_same_frame(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # One row a batch: the text column is null in the first two batches only.
    monkeypatch.setattr(base, "FETCH_BATCH", 1)
    _check(_frame(f"sqlite:///{tmp_path / 'hub.db'}"))


@pytest.mark.postgres
def test_postgresql_frames_alike(pg_url: str) -> None:
    _check(_frame(pg_url))


def test_an_empty_result_has_text_columns(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'hub.db'}")
    with engine.connect() as conn:
        ctx = RuleContext(conn, date(2025, 11, 3), RuleParameters())
        empty = select(literal(1).label("one"), literal("a").label("text")).where(literal(False))
        found = ctx.frame(union_all(empty, empty))
    engine.dispose()
    assert found.empty and list(found.columns) == ["one", "text"]
    assert all(pd.api.types.is_string_dtype(found[c]) for c in found.columns)


def _batches(url: str, size: int) -> list[list[tuple[Any, ...]]]:
    """The sample rows named in a list and dated on or after a day, fetched ``size`` at a
    time."""
    engine = connect(url)
    try:
        with engine.begin() as conn:
            samples.create(conn)
            conn.execute(insert(samples), ROWS)
            query = (
                select(samples.c.n, samples.c.name, samples.c.day)
                .where(samples.c.n.in_([2, 3]) | (samples.c.day >= date(2025, 11, 3)))
                .order_by(samples.c.n)
            )
            return [[tuple(row) for row in rows] for rows in base.fetch_batches(conn, query, size)]
    finally:
        engine.dispose()


#: Rows 2 and 3 (row 1 is neither named nor dated), as the drivers give them.
BATCHED = [(2, None, None), (3, "粤B", date(2025, 11, 3))]


def test_rows_are_fetched_a_batch_at_a_time(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    one_by_one = _batches(url, 1)
    # SQLite gives dates as ISO text.
    assert one_by_one == [[(2, None, None)], [(3, "粤B", "2025-11-03")]]
    # Near miss: a batch larger than the result is the whole result at once.
    assert _batches(f"sqlite:///{tmp_path / 'again.db'}", 5) == [[*one_by_one[0], *one_by_one[1]]]


@pytest.mark.postgres
def test_postgresql_rows_come_from_a_server_side_cursor_a_batch_at_a_time(pg_url: str) -> None:
    assert _batches(pg_url, 1) == [[row] for row in BATCHED]


def _frames(url: str, size: int) -> list[pd.DataFrame]:
    """The sample rows' frame read as frames of ``size`` rows."""
    engine = connect(url)
    try:
        with engine.begin() as conn:
            samples.create(conn)
            conn.execute(insert(samples), ROWS)
            query = select(samples, literal(None).label("unset")).order_by(samples.c.n)
            return list(base.read_frames(conn, query, size))
    finally:
        engine.dispose()


def _check_frames(frames: list[pd.DataFrame]) -> None:
    assert [len(f) for f in frames] == [2, 1]
    # The first frame's text is all null and still text, as read_frame types it.
    assert pd.api.types.is_string_dtype(frames[0]["name"])
    _check(pd.concat(frames, ignore_index=True))


def test_frames_a_batch_at_a_time_join_into_the_whole_frame(tmp_path: Path) -> None:
    _check_frames(_frames(f"sqlite:///{tmp_path / 'hub.db'}", 2))
    # Near miss: a batch larger than the result is one frame.
    assert [len(f) for f in _frames(f"sqlite:///{tmp_path / 'again.db'}", 5)] == [3]


@pytest.mark.postgres
def test_postgresql_frames_a_batch_at_a_time_alike(pg_url: str) -> None:
    _check_frames(_frames(pg_url, 2))
