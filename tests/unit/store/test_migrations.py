"""The store's migrations: run from an empty database they give the tables this release
defines (so a new store made from the definitions and one upgraded are the same); a
store is upgraded once, by the upgrade, never by opening it; the SQL for a DBA."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, create_engine, inspect, text
from sqlalchemy.types import String, TypeEngine
from tests.conftest import postgres_database
from tests.unit.rules.test_reach import _event, _load
from tests.unit.rules.world import D

from vehiclehub.config import RuleParameters
from vehiclehub.rules.base import RuleContext
from vehiclehub.rules.quality import held_blocks
from vehiclehub.store import StoreUnavailable, connect
from vehiclehub.store.db import upgrade
from vehiclehub.store.migrate import (
    BASELINE,
    _config,
    head_revision,
    store_metadata,
    store_revision,
    upgrade_sql,
)
from vehiclehub.store.schema import POSTGRESQL_ONLY_INDEXES


def _lengths_differ_on_postgresql(
    context: MigrationContext,
    _inspected: Any,
    _defined: Any,
    inspected_type: TypeEngine[Any],
    defined_type: TypeEngine[Any],
) -> bool | None:
    """SQLite keeps a text's declared size and enforces none: only PostgreSQL's count."""
    if context.dialect.name == "sqlite" and isinstance(inspected_type, String):
        return not isinstance(defined_type, String)
    return None  # alembic's own comparison


def _forced_by_the_primary_key(diff: Any) -> bool:
    """PostgreSQL makes a primary key's columns NOT NULL whatever the definition says."""
    if not isinstance(diff, tuple) or diff[0] != "modify_nullable":
        return False
    _, _, table, column, _, _, defined_nullable = diff
    return bool(defined_nullable) and column in store_metadata().tables[table].primary_key.c


def _compared(_object: Any, name: str | None, kind: str, _reflected: bool, _other: Any) -> bool:
    """Alembic cannot compare an index's collation: the indexes only PostgreSQL has are
    compared by their definitions (:func:`_index_definitions`)."""
    return not (kind == "index" and name in POSTGRESQL_ONLY_INDEXES)


def schema_differences(conn: Connection) -> list[Any]:
    """What the store's tables, columns, types and indexes differ in from this release's."""
    context = MigrationContext.configure(
        conn, opts={"compare_type": _lengths_differ_on_postgresql, "include_object": _compared}
    )
    with warnings.catch_warnings():
        # SQLite has none of the indexes only PostgreSQL has; alembic warns it cannot look.
        warnings.filterwarnings("ignore", "autogenerate skipping .* expression-based index")
        differences = compare_metadata(context, store_metadata())
    found = []
    for diff in differences:
        # Changes to one column come as a list of them.
        kept = (
            [d for d in diff if not _forced_by_the_primary_key(d)]
            if isinstance(diff, list)
            else [diff]
        )
        found += kept
    return found


def _migrate_from_empty(url: str, revision: str = "head") -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        command.upgrade(_config(connection=conn), revision)
    engine.dispose()


def test_the_migrations_give_the_tables_this_release_defines(store_url: str) -> None:
    _migrate_from_empty(store_url)
    engine = connect(store_url)  # at this release's revision: opened as it is
    with engine.connect() as conn:
        assert store_revision(conn) == head_revision()
        assert schema_differences(conn) == []
    engine.dispose()


def test_a_new_store_is_made_from_the_definitions_at_the_latest_revision(store_url: str) -> None:
    engine = connect(store_url)
    with engine.connect() as conn:
        assert store_revision(conn) == head_revision()
        assert schema_differences(conn) == []
    engine.dispose()
    assert upgrade(store_url).lines() == [f"store at revision {head_revision()}: nothing to do"]


def test_a_baseline_store_is_refused_on_opening_and_upgraded_once(store_url: str) -> None:
    _migrate_from_empty(store_url, BASELINE)
    with pytest.raises(StoreUnavailable, match="run `vhub db upgrade`"):
        connect(store_url)
    upgraded = upgrade(store_url)
    assert upgraded.before == BASELINE and upgraded.after == head_revision()
    assert upgraded.steps[0].revision == "0002"
    assert upgraded.steps[-1].revision == head_revision()
    assert upgrade(store_url).steps == []  # once done, nothing to do
    engine = connect(store_url)
    with engine.connect() as conn:
        assert schema_differences(conn) == []
    engine.dispose()


def test_a_store_of_a_release_before_migrations_is_upgraded_from_the_baseline(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    _migrate_from_empty(url, BASELINE)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))  # as that release left it
        # An index of a release before the baseline, superseded by the covering one.
        conn.execute(text("DROP INDEX ix_police_events_vin_lookup"))
        conn.execute(text("CREATE INDEX ix_police_events_vin ON police_events (vin)"))
    engine.dispose()
    with pytest.raises(StoreUnavailable, match="release before schema versions"):
        connect(url)
    upgraded = upgrade(url)
    assert upgraded.unversioned and upgraded.steps[0].revision == "0002"
    assert upgraded.lines()[0].startswith("store upgraded from release before migrations")
    engine = connect(url)
    with engine.connect() as conn:
        assert schema_differences(conn) == []
        assert "ix_police_events_vin" not in {
            i["name"] for i in inspect(conn).get_indexes("police_events")
        }
    engine.dispose()


def test_a_store_of_a_newer_release_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    connect(url).dispose()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    for attempt in (lambda: connect(url), lambda: upgrade(url)):
        with pytest.raises(StoreUnavailable, match="revision 9999, which this release does not"):
            attempt()


def test_opening_without_create_looks_at_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    engine = connect(url, create=False)
    with engine.connect() as conn:
        assert inspect(conn).get_table_names() == []
    engine.dispose()


@pytest.mark.postgres
def test_the_sql_for_a_dba_makes_the_same_store(pg_url: str) -> None:
    script = upgrade_sql(pg_url)
    assert "CREATE TABLE police_events" in script and f"'{head_revision()}'" in script
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(script)
    with engine.connect() as conn:
        assert store_revision(conn) == head_revision()
        assert schema_differences(conn) == []
    engine.dispose()


def test_the_sql_from_a_store_stops_before_a_step_that_moves_data() -> None:
    script = upgrade_sql("postgresql+psycopg://hub@db/hub", start="0002")
    assert "Stopped before revision 0003" in script
    assert "vhub db upgrade" in script
    assert "ALTER TABLE" not in script  # nothing after the step is written
    between = upgrade_sql("postgresql+psycopg://hub@db/hub", start="0003")
    assert "CREATE TABLE IF NOT EXISTS not_evaluated" in between
    assert "Stopped before revision 0007" in between
    later = upgrade_sql("postgresql+psycopg://hub@db/hub", start="0007")
    assert "ALTER TABLE police_events ALTER COLUMN event_id TYPE VARCHAR(64)" in later
    assert "Stopped before" not in later


def _storage_parameters(url: str) -> dict[str, list[str]]:
    """The storage parameters (``WITH (...)``) of the store's tables on PostgreSQL."""
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT relname, reloptions FROM pg_class WHERE relkind = 'r' "
                "AND reloptions IS NOT NULL AND relnamespace = 'public'::regnamespace"
            )
        ).all()
    engine.dispose()
    return {name: sorted(options) for name, options in rows}


def _defined_storage_parameters() -> dict[str, list[str]]:
    return {
        table.name: sorted(f"{k}={v}" for k, v in options.items())
        for table in store_metadata().sorted_tables
        if (options := table.dialect_options["postgresql"]["with"])
    }


@pytest.mark.postgres
@pytest.mark.parametrize("made", ["new", "migrated"])
def test_a_store_on_postgresql_holds_the_tables_storage_parameters(pg_url: str, made: str) -> None:
    if made == "new":
        connect(pg_url).dispose()
    else:
        _migrate_from_empty(pg_url)
    assert _defined_storage_parameters() == {"findings": ["fillfactor=50"]}
    assert _storage_parameters(pg_url) == _defined_storage_parameters()


def _index_definitions(url: str) -> dict[str, str]:
    """Every index of the store on PostgreSQL, by name, as the server writes it."""
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")
        ).all()
    engine.dispose()
    return dict(rows)  # type: ignore[arg-type]


@pytest.mark.postgres
def test_a_store_on_postgresql_made_new_or_migrated_has_the_same_indexes(pg_url: str) -> None:
    """Collations and partial indexes included, which alembic does not compare: the VINs
    held by each VIN column, in byte order, of active records only."""
    connect(pg_url).dispose()
    new = _index_definitions(pg_url)
    with postgres_database() as other:
        _migrate_from_empty(other)
        assert _index_definitions(other) == new
    assert new["ix_commerce_tradein_claims_new_vin_held"] == (
        "CREATE INDEX ix_commerce_tradein_claims_new_vin_held ON public.commerce_tradein_claims "
        "USING btree (new_vin COLLATE \"C\") WHERE ((record_status)::text = 'active'::text)"
    )
    assert set(POSTGRESQL_ONLY_INDEXES) == {n for n in new if n.endswith("_held")}
    assert len(POSTGRESQL_ONLY_INDEXES) == 5


@pytest.mark.postgres
def test_a_postgresql_store_of_the_release_before_gains_its_held_vin_indexes(pg_url: str) -> None:
    """A store written at revision 0013 is given the indexes of the VINs held by the
    upgrade, the same as a new store's; its records are kept and read from them."""
    _migrate_from_empty(pg_url, "0013")
    assert not [name for name in _index_definitions(pg_url) if name.endswith("_held")]
    engine = create_engine(pg_url)
    vins = ["LSVAU2180N2183294", "LFV3A23C0N3025519"]
    _load(engine, "police", "events", _event("E1", vins[1]), _event("E2", vins[0]))
    engine.dispose()
    upgraded = upgrade(pg_url)
    assert [step.revision for step in upgraded.steps] == ["0014"]
    held = {n: d for n, d in _index_definitions(pg_url).items() if n.endswith("_held")}
    with postgres_database() as other:
        connect(other).dispose()
        assert held == {n: d for n, d in _index_definitions(other).items() if n in held}
    assert len(held) == len(POSTGRESQL_ONLY_INDEXES)
    engine = connect(pg_url)
    with engine.connect() as conn:
        ctx = RuleContext(conn, D, RuleParameters())
        blocks = [block.codes.vins(np.arange(len(block.codes))) for block in held_blocks(ctx)]
    engine.dispose()
    assert [vin for block in blocks for vin in block] == sorted(vins)
