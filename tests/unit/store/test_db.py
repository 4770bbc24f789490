"""The store: its connections' pragmas, its indexes and text sizes; a store made by an
earlier release is brought up to date by the upgrade."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from vehiclehub.store import connect
from vehiclehub.store.db import CACHE_KIB, upgrade
from vehiclehub.store.schema import VIN_LOOKUP_COLUMNS


def _indexes(url: str, table: str) -> dict[str, list[str | None]]:
    engine = connect(url, create=False)
    try:
        return {i["name"]: i["column_names"] for i in inspect(engine).get_indexes(table)}  # type: ignore[misc]
    finally:
        engine.dispose()


def _upgrade_an_old_store(url: str) -> None:
    engine = connect(url)
    with engine.begin() as conn:
        # As a release before migrations left it: no version, the VIN alone in the index.
        conn.exec_driver_sql("DROP TABLE alembic_version")
        conn.exec_driver_sql("DROP INDEX ix_police_events_vin_lookup")
        conn.exec_driver_sql("CREATE INDEX ix_police_events_vin ON police_events (vin)")
    engine.dispose()
    assert "ix_police_events_vin_lookup" not in _indexes(url, "police_events")

    for _ in range(2):  # the second upgrade finds nothing to do
        upgrade(url)
        indexes = _indexes(url, "police_events")
        assert "ix_police_events_vin" not in indexes
        covered = list(VIN_LOOKUP_COLUMNS["police_events"])
        assert indexes["ix_police_events_vin_lookup"] == ["vin", *covered]


def test_an_earlier_store_gets_the_covering_vin_index(tmp_path: Path) -> None:
    _upgrade_an_old_store(f"sqlite:///{tmp_path / 'hub.db'}")


@pytest.mark.postgres
def test_an_earlier_postgresql_store_gets_the_covering_vin_index(pg_url: str) -> None:
    _upgrade_an_old_store(pg_url)


@pytest.mark.postgres
def test_an_earlier_postgresql_store_gets_the_contracts_text_sizes(pg_url: str) -> None:
    engine = connect(pg_url)
    with engine.begin() as conn:
        # As a release before migrations left it: no version, every text 128 characters.
        conn.exec_driver_sql("DROP TABLE alembic_version")
        conn.exec_driver_sql("ALTER TABLE police_events ALTER COLUMN brand TYPE varchar(128)")
        conn.exec_driver_sql("ALTER TABLE police_events ALTER COLUMN event_id TYPE varchar(128)")
    engine.dispose()

    for _ in range(2):  # the second upgrade finds nothing to do
        upgrade(pg_url)
        engine = connect(pg_url)
        sizes = {c["name"]: c["type"] for c in inspect(engine).get_columns("police_events")}
        engine.dispose()
        assert sizes["brand"].length == 200  # type: ignore[attr-defined]
        assert sizes["event_id"].length == 64  # type: ignore[attr-defined]


def test_every_sqlite_connection_has_the_hub_s_pragmas(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'hub.db'}")
    with engine.connect() as first, engine.connect() as second:
        for conn in (first, second):
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -CACHE_KIB
            assert conn.exec_driver_sql("PRAGMA temp_store").scalar() == 1  # a file
            assert conn.exec_driver_sql("PRAGMA temp.cache_size").scalar() == -CACHE_KIB
    engine.dispose()


@pytest.mark.postgres
def test_every_postgresql_connection_plans_a_cursor_for_all_its_rows(pg_url: str) -> None:
    engine = connect(pg_url)
    with engine.connect() as first, engine.connect() as second:
        for conn in (first, second):
            assert conn.exec_driver_sql("SHOW cursor_tuple_fraction").scalar() == "1"
    engine.dispose()
