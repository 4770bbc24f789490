"""Loading records: first loads without comparison, indexes built after a bulk load."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, func, inspect, select
from tests.factories import Vehicle

from vehiclehub.contract import feed
from vehiclehub.intake.prepare import prepare_records
from vehiclehub.store import connect
from vehiclehub.store.load import defer_indexes, holds_records, load_records, restore_indexes
from vehiclehub.store.schema import feed_table

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
    wanted = {str(i.name) for i in feed_table("customs", "declarations").indexes}
    assert wanted and wanted <= _index_names(engine)
    with pytest.raises(RuntimeError), engine.begin() as conn:
        defer_indexes(conn, SPEC)
        raise RuntimeError("the file is rejected")
    assert wanted <= _index_names(engine)  # the rollback keeps them
    with engine.begin() as conn:
        deferred = defer_indexes(conn, SPEC)
        assert not wanted & {str(i["name"]) for i in inspect(conn).get_indexes(SPEC.table)}
        assert not holds_records(conn, SPEC)
        result = load_records(conn, SPEC, _records(3), compare=False)
        restore_indexes(conn, deferred)
    assert (result.loaded, result.ignored, len(result.conflicts)) == (3, 0, 0)
    assert wanted <= _index_names(engine)
    with engine.connect() as conn:
        assert holds_records(conn, SPEC)
        table = feed_table("customs", "declarations")
        assert conn.execute(select(func.count()).select_from(table)).scalar() == 3


def test_a_second_load_counts_what_it_loaded_and_ignored(database_url: str) -> None:
    engine = connect(database_url)
    first = _records(3)
    with engine.begin() as conn:
        load_records(conn, SPEC, first, compare=False)
    again = pd.concat([first.iloc[:1], _records(2)], ignore_index=True)
    with engine.begin() as conn:
        result = load_records(conn, SPEC, again, compare=True)
    assert (result.loaded, result.ignored, len(result.conflicts)) == (2, 1, 0)
