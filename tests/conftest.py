"""Fixtures shared by the whole suite: a hub configured in a temporary directory."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from vehiclehub.config import AGENCIES, Settings, load_settings

PG_ADMIN_URL = os.environ.get(
    "VHUB_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def write_config(
    root: Path,
    database_url: str,
    agency_keys: dict[str, str] | None = None,
    **extra_toml: str,
) -> Path:
    """A hub configuration with a local exchange root per agency under ``root``, and
    each agency's public key (ICD §6) when ``agency_keys`` gives them."""
    lines = [
        f'database_url = "{database_url}"',
        f'work_dir = "{root / "work"}"',
        'pseudonym_key = "test-pseudonym-key-0123456789"',
        *(f"{k} = {v}" for k, v in extra_toml.items()),
    ]
    for agency in AGENCIES:
        (root / "exchange" / agency / "outbox").mkdir(parents=True, exist_ok=True)
        (root / "exchange" / agency / "inbox").mkdir(parents=True, exist_ok=True)
        lines += [f"[agencies.{agency}]", f'url = "file://{root / "exchange" / agency}"']
        if agency_keys is not None:
            lines.append(f'public_keys = ["{agency_keys[agency]}"]')
    path = root / "hub.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)  # it holds the pseudonym key
    return path


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite tests/golden/ from this run's outputs (tests/golden/test_golden.py)",
    )


#: Tests that run Airflow's own processes: on one worker, one after another (each starts
#: a scheduler or task processes of its own, and two at once starve each other's
#: heartbeats on a small machine), while the other workers share the rest.
AIRFLOW_MARKERS = ("airflow", "airflow_live", "celery")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if any(item.get_closest_marker(name) for name in AIRFLOW_MARKERS):
            item.add_marker(pytest.mark.xdist_group("airflow"))


@pytest.fixture
def hub_config(tmp_path: Path) -> Path:
    """A configuration file for a hub on SQLite with local agency folders."""
    return write_config(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")


@pytest.fixture
def settings(hub_config: Path) -> Settings:
    return load_settings(hub_config)


@contextmanager
def postgres_database(prefix: str = "vhub_test") -> Iterator[str]:
    """A fresh database on the PostgreSQL server of PG_ADMIN_URL (its URL), dropped after."""
    from sqlalchemy import create_engine

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database on 127.0.0.1:5432, dropped afterwards."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    database = postgres_database()
    try:
        url = database.__enter__()
    except sqlalchemy.exc.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
    try:
        yield url
    finally:
        database.__exit__(None, None, None)  # dropped when the test is done


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store's url: on SQLite, then on PostgreSQL (skipped when unreachable)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.db'}"
    return str(request.getfixturevalue("pg_url"))


def process_gone(pid: int, within_s: float = 0) -> bool:
    """The process has ended, or does within ``within_s`` seconds (a zombie waiting for
    init to reap it counts as ended)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            return True
        if "\nState:\tZ" in status:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
