"""Loading records: first loads without comparison, indexes built after most of a bulk load."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, Table, Text, func, inspect, select
from tests.factories import Vehicle

from vehiclehub.contract import feed
from vehiclehub.intake.prepare import prepare_records
from vehiclehub.store import connect, load
from vehiclehub.store.load import DeferredIndexes, holds_records, load_records
from vehiclehub.store.schema import feed_table, indexes_on

SPEC = feed("customs", "declarations")


def _index_names(engine: Engine) -> set[str]:
    return {str(i["name"]) for i in inspect(engine).get_indexes(SPEC.table)}


def _records(n: int, **kw: str) -> pd.DataFrame:
    rows = pd.DataFrame([Vehicle().item(**kw) for _ in range(n)], dtype="str")
    return prepare_records(SPEC, rows, b"k").assign(file_id=1)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/hub.db"
    return str(request.getfixturevalue("pg_url"))


def test_indexes_deferred_for_a_bulk_load_are_built_again(database_url: str) -> None:
    engine = connect(database_url)
    table = feed_table("customs", "declarations")
    wanted = {str(i.name) for i in indexes_on(table, engine.dialect.name)}
    assert wanted and wanted <= _index_names(engine)
    with pytest.raises(RuntimeError), engine.begin() as conn:
        DeferredIndexes.drop(conn, SPEC, rows=3)
        raise RuntimeError("the file is rejected")
    assert wanted <= _index_names(engine)  # the rollback keeps them
    with engine.begin() as conn:
        deferred = DeferredIndexes.drop(conn, SPEC, rows=3)
        assert not wanted & {str(i["name"]) for i in inspect(conn).get_indexes(SPEC.table)}
        assert not holds_records(conn, SPEC)
        result = load_records(conn, SPEC, _records(3), compare=False)
        deferred.loaded(conn, 3)
    assert (result.loaded, result.ignored, len(result.conflicts)) == (3, 0, 0)
    assert wanted <= _index_names(engine)
    with engine.connect() as conn:
        assert holds_records(conn, SPEC)
        table = feed_table("customs", "declarations")
        assert conn.execute(select(func.count()).select_from(table)).scalar() == 3


def test_sqlite_builds_the_deferred_indexes_before_the_last_tenth_of_the_rows(
    database_url: str,
) -> None:
    engine = connect(database_url)
    with engine.begin() as conn:
        deferred = DeferredIndexes.drop(conn, SPEC, rows=1000)
        deferred.loaded(conn, 899)
        assert deferred.indexes  # not yet built
        if engine.dialect.name == "sqlite":
            deferred.loaded(conn, 900)
            assert not deferred.indexes
        else:  # PostgreSQL leaves room in an index it builds: built at the end
            deferred.loaded(conn, 999)
            assert deferred.indexes
            deferred.build(conn)
        table = feed_table("customs", "declarations")
        assert {str(i.name) for i in indexes_on(table, engine.dialect.name)} <= {
            str(i["name"]) for i in inspect(conn).get_indexes(SPEC.table)
        }


def _next_night_pages(tmp_path: Path, rows_after_indexes: float) -> int:
    """The pages a SQLite store grows by when 1 % new records follow a bulk first load."""
    engine = connect(f"sqlite:///{tmp_path}/hub-{rows_after_indexes}.db")
    history, chunk = _records(6000), 500
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(load, "SQLITE_ROWS_AFTER_INDEXES", rows_after_indexes)
        with engine.begin() as conn:
            deferred = DeferredIndexes.drop(conn, SPEC, rows=len(history))
            for start in range(0, len(history), chunk):
                load_records(conn, SPEC, history[start : start + chunk], compare=False)
                deferred.loaded(conn, start + chunk)
    with engine.connect() as conn:
        before = int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())
    with engine.begin() as conn:
        load_records(conn, SPEC, _records(60).assign(file_id=2), compare=True)
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("PRAGMA page_count").scalar_one()) - before


def test_a_first_load_leaves_room_in_sqlite_indexes_for_the_next_nights(tmp_path: Path) -> None:
    with_room = _next_night_pages(tmp_path, load.SQLITE_ROWS_AFTER_INDEXES)
    packed = _next_night_pages(tmp_path, 0.0)  # every index built after the whole load
    assert with_room * 2 < packed, (with_room, packed)


def test_a_second_load_counts_what_it_loaded_and_ignored(database_url: str) -> None:
    engine = connect(database_url)
    first = _records(3)
    with engine.begin() as conn:
        load_records(conn, SPEC, first, compare=False)
    again = pd.concat([first.iloc[:1], _records(2)], ignore_index=True)
    with engine.begin() as conn:
        result = load_records(conn, SPEC, again, compare=True)
    assert (result.loaded, result.ignored, len(result.conflicts)) == (2, 1, 0)


def test_a_bulk_insert_of_more_rows_than_a_slice_stores_each_value_as_it_was(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows go in a slice at a time (COPY's text on PostgreSQL): every row of every slice
    arrives, nulls stay null and text that looks like a null marker stays text."""
    monkeypatch.setattr(load, "_SLICE_ROWS", 2)
    engine = connect(database_url)
    table = Table("bulk_probe", MetaData(), Column("n", Integer), Column("note", Text))
    values = ["a", None, "", "\\N", 'say "hi", then\nbye', "丰田"]
    frame = pd.DataFrame({"n": range(len(values)), "note": pd.Series(values, dtype="str")})
    with engine.begin() as conn:
        table.create(conn)
        load.bulk_insert(conn, table, frame)
        stored = conn.execute(select(table.c.n, table.c.note).order_by(table.c.n)).all()
        table.drop(conn)
    assert [note for _, note in stored] == values
