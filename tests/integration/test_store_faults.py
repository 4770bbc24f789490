"""Which faults of a real PostgreSQL store the nightly DAG retries, and which it does not."""

from __future__ import annotations

import threading

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from tests.integration.airflow_live import free_port

from vehiclehub.airflow.retry import TransientOnlyRetryPolicy, is_transient
from vehiclehub.store import StoreUnavailable, connect

pytestmark = pytest.mark.postgres


def _store_error(url: str) -> StoreUnavailable:
    with pytest.raises(StoreUnavailable) as caught:
        connect(url)
    return caught.value


def test_a_server_that_refuses_connections_is_retried(pg_url: str) -> None:
    nobody = free_port()
    refused = _store_error(f"postgresql+psycopg://postgres@127.0.0.1:{nobody}/vehiclehub")
    assert refused.transient and is_transient(refused)
    assert TransientOnlyRetryPolicy().evaluate(refused, 1, 4).action.name == "RETRY"
    # The near miss: the server answers, but the database named does not exist.
    missing = _store_error(pg_url.rsplit("/", 1)[0] + "/no_such_database_here")
    assert not missing.transient and not is_transient(missing)
    assert TransientOnlyRetryPolicy().evaluate(missing, 1, 4).action.name == "FAIL"


def test_a_serialisation_failure_is_retried_a_missing_table_is_not(pg_url: str) -> None:
    engine = create_engine(pg_url, isolation_level="SERIALIZABLE")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE tally (n int)"))
    first, second = engine.connect(), engine.connect()
    try:
        # Both read the whole table, then each adds a row the other's read missed.
        for conn in (first, second):
            conn.execute(text("SELECT count(*) FROM tally")).scalar()
            conn.execute(text("INSERT INTO tally VALUES (1)"))
        first.commit()
        with pytest.raises(OperationalError) as caught:
            second.commit()
        assert isinstance(caught.value.orig, psycopg.errors.SerializationFailure)
        assert is_transient(caught.value)
    finally:
        first.close()
        second.close()
    with engine.connect() as conn, pytest.raises(Exception) as missing:
        conn.execute(text("SELECT * FROM no_such_table"))
    assert not is_transient(missing.value)
    engine.dispose()


def test_a_connection_lost_under_a_statement_is_retried(pg_url: str) -> None:
    engine = create_engine(pg_url)
    with engine.connect() as victim, engine.connect() as killer:
        pid = victim.execute(text("SELECT pg_backend_pid()")).scalar()
        stop = threading.Timer(
            0.5, lambda: killer.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        )
        stop.start()
        with pytest.raises(OperationalError) as caught:
            victim.execute(text("SELECT pg_sleep(30)"))
        stop.join()
    assert is_transient(caught.value)
    engine.dispose()
