"""The exchange log (ICD §6) on SQLite and PostgreSQL: chained, gapless under concurrent
appenders, and broken by any change, removal or insertion — as `vhub audit verify` says."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from sqlalchemy import Engine, create_engine, delete, insert, make_url, select, update
from sqlalchemy.exc import ProgrammingError
from tests.conftest import write_config
from tests.factories import send

from vehiclehub.cli import main
from vehiclehub.config import AGENCIES, load_settings
from vehiclehub.pipeline import intake_agency
from vehiclehub.store import connect
from vehiclehub.store.exchange_log import (
    ZERO_HASH,
    append_entry,
    entry_hash,
    log_entries,
    verify_chain,
)
from vehiclehub.store.schema import exchange_log


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Engine, Path]:
    """A store of either kind, and a hub configuration pointing at it."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hub.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    engine = connect(url)
    yield engine, write_config(tmp_path, url)
    engine.dispose()


def _append(engine: Engine, n: int, agency: str = "police") -> None:
    for i in range(n):
        with engine.begin() as conn:
            append_entry(
                conn,
                agency=agency,
                direction="in" if i % 2 else "out",
                file=f"{agency}_events_20251103_{i + 1:03d}.csv",
                sha256=None if i == 2 else hashlib.sha256(str(i).encode()).hexdigest(),
                rows=None if i == 2 else i,
                outcome="loaded" if i % 2 else "written",
            )


def _verify(config: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(["audit", "verify", "--config", str(config), *extra])
    return code, capsys.readouterr().out


def test_entries_chain_and_hash_as_icd_6_says(store: tuple[Engine, Path]) -> None:
    engine, _ = store
    _append(engine, 4)
    with engine.connect() as conn:
        entries = list(log_entries(conn))
    assert [e["seq"] for e in entries] == [1, 2, 3, 4]
    assert list(entries[0]) == [
        "seq", "at", "agency", "direction", "file", "sha256", "rows", "outcome", "prev", "hash"
    ]  # fmt: skip
    assert entries[0]["prev"] == ZERO_HASH and entries[0]["at"].endswith("Z")
    assert entries[2]["sha256"] is None and entries[2]["rows"] is None
    for before, entry in zip([None, *entries], entries, strict=False):
        body = {k: v for k, v in entry.items() if k != "hash"}
        assert entry["hash"] == hashlib.sha256(rfc8785.dumps(body)).hexdigest()
        assert before is None or entry["prev"] == before["hash"]
    with engine.begin() as conn, pytest.raises(ValueError, match="no outcome"):
        append_entry(
            conn, agency="tax", direction="in", file="x", sha256=None, rows=None, outcome="written"
        )


def test_a_changed_entry_breaks_the_chain_from_there(
    store: tuple[Engine, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    engine, config = store
    _append(engine, 5)
    assert _verify(config, capsys)[0] == 0
    with engine.begin() as conn:
        conn.execute(update(exchange_log).where(exchange_log.c.seq == 3).values(rows=999))
    code, out = _verify(config, capsys)
    assert code == 1 and "entry 3 (seq 3)" in out and "changed" in out


def test_a_removed_entry_breaks_the_chain(
    store: tuple[Engine, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    engine, config = store
    _append(engine, 5)
    with engine.begin() as conn:
        conn.execute(delete(exchange_log).where(exchange_log.c.seq == 2))
    code, out = _verify(config, capsys)
    assert code == 1 and "entry 2 (seq 3)" in out and "removed or inserted" in out


def test_an_inserted_entry_breaks_the_chain(
    store: tuple[Engine, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Inserted after entry 2 with a correct hash of its own: the old entry 3 no longer
    chains onto its predecessor."""
    engine, config = store
    _append(engine, 4)
    with engine.begin() as conn:
        rows = [dict(r) for r in conn.execute(select(exchange_log).order_by("seq")).mappings()]
        conn.execute(delete(exchange_log))
        forged: dict[str, Any] = rows[2] | {"file": "forged.csv", "prev": rows[1]["hash"]}
        forged["hash"] = entry_hash(forged)
        shifted = [r | {"seq": r["seq"] + 1} for r in rows[2:]]
        conn.execute(insert(exchange_log), [*rows[:2], forged, *shifted])
    code, out = _verify(config, capsys)
    assert code == 1 and "entry 4 (seq 4)" in out


def test_a_rewritten_tail_is_exposed_by_a_log_head_an_agency_holds(
    store: tuple[Engine, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    engine, config = store
    _append(engine, 3)
    with engine.connect() as conn:
        held = verify_chain(log_entries(conn)).head  # what a drop's manifest committed to
    _append(engine, 2)
    code, out = _verify(config, capsys, "--head", str(held))
    assert code == 0 and f"log_head {held} is on the chain" in out
    with engine.begin() as conn:  # rewrite entry 3 onwards, every hash recomputed
        rows = [dict(r) for r in conn.execute(select(exchange_log).order_by("seq")).mappings()]
        conn.execute(delete(exchange_log).where(exchange_log.c.seq >= 3))
        for row in rows[2:]:
            row["prev"] = rows[row["seq"] - 2]["hash"]
            row["outcome"] = "rejected" if row["seq"] == 3 else row["outcome"]
            row["hash"] = entry_hash(row)
            conn.execute(insert(exchange_log).values(**row))
    assert _verify(config, capsys)[0] == 0  # consistent in itself
    code, out = _verify(config, capsys, "--head", str(held))
    assert code == 1 and "NOT on the chain" in out
    assert main(["audit", "verify", "--config", str(config), "--head", "3:xyz"]) == 2


def test_export_writes_json_lines_an_agency_can_recompute(
    store: tuple[Engine, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    engine, config = store
    _append(engine, 2, agency="police")
    _append(engine, 3, agency="tax")
    assert main(["audit", "export", "--config", str(config)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["seq"] for e in lines] == [1, 2, 3, 4, 5]
    for entry in lines:
        body = {k: v for k, v in entry.items() if k != "hash"}
        assert hashlib.sha256(rfc8785.dumps(body)).hexdigest() == entry["hash"]
    assert main(["audit", "export", "--config", str(config), "--agency", "tax"]) == 0
    assert [json.loads(x)["seq"] for x in capsys.readouterr().out.splitlines()] == [3, 4, 5]
    assert main(["audit", "export", "--config", str(config), "--since", "2999-01-01"]) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.postgres
def test_four_parallel_appenders_on_postgresql_leave_no_gap(pg_url: str) -> None:
    """Four sessions append at once, each holding its transaction open a moment after
    appending (as an intake does while it commits a file): ``seq`` runs 1..N."""
    engines = [connect(pg_url) for _ in range(4)]
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def intake(engine: Engine, agency: str) -> None:
        try:
            start.wait()
            for i in range(15):
                with engine.begin() as conn:
                    append_entry(
                        conn,
                        agency=agency,
                        direction="in",
                        file=f"{agency}_{i}.csv",
                        sha256=None,
                        rows=i,
                        outcome="loaded",
                    )
                    time.sleep(0.002)
        except BaseException as exc:
            errors.append(exc)

    agencies = ["commerce", "police", "customs", "tax"]
    threads = [
        threading.Thread(target=intake, args=(e, a)) for e, a in zip(engines, agencies, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with engines[0].connect() as conn:
        check = verify_chain(log_entries(conn))
        interleaved = [e["agency"] for e in log_entries(conn)]
    assert check.intact and check.entries == 60
    switches = sum(a != b for a, b in pairwise(interleaved))
    assert switches > 3  # the appenders really ran at the same time
    for engine in engines:
        engine.dispose()


@pytest.mark.postgres
def test_on_postgresql_the_hubs_own_role_cannot_rewrite_the_log(pg_url: str) -> None:
    """The hub connects as a role owning its database (as in docker/init-db.sh): it may
    append entries, and may neither change nor delete one."""
    role = f"vhub_role_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    database = make_url(pg_url).database
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
        conn.exec_driver_sql(f'ALTER DATABASE "{database}" OWNER TO "{role}"')
    engine = connect(make_url(pg_url).set(username=role).render_as_string(hide_password=False))
    try:
        _append(engine, 2)
        for change in (
            update(exchange_log).values(rows=1),
            delete(exchange_log).where(exchange_log.c.seq == 2),
        ):
            with pytest.raises(ProgrammingError, match="permission denied"), engine.begin() as c:
                c.execute(change)
        with engine.connect() as conn:
            assert verify_chain(log_entries(conn)).entries == 2
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{database}" OWNER TO postgres')
            conn.exec_driver_sql(f'REASSIGN OWNED BY "{role}" TO postgres')
            conn.exec_driver_sql(f'DROP OWNED BY "{role}"')
            conn.exec_driver_sql(f'DROP ROLE "{role}"')
        admin.dispose()


def _intake_in_its_own_process(config: str, agency: str) -> int:
    return len(intake_agency(load_settings(config), agency, date(2025, 11, 3)).to_dict()["files"])


@pytest.mark.postgres
@pytest.mark.slow
def test_four_intakes_in_parallel_processes_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    """The DAG's four intake tasks, each a process of its own, log every file they take:
    one entry per file, ``seq`` 1..N, the chain intact. (Forked, so that each starts
    with the hub already imported.)"""
    config = write_config(tmp_path, pg_url)
    for agency, feed in (
        ("commerce", "enterprises"),
        ("police", "events"),
        ("customs", "declarations"),
        ("tax", "refunds"),
    ):
        for seq in (1, 2):  # header-only files: what is logged matters here, not rows
            send(tmp_path, agency, feed, [], seq=seq)
    with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("fork")) as pool:
        taken = list(pool.map(_intake_in_its_own_process, [str(config)] * 4, AGENCIES))
    assert taken == [2, 2, 2, 2]
    engine = connect(pg_url)
    with engine.connect() as conn:
        check = verify_chain(log_entries(conn))
        files = {e["file"] for e in log_entries(conn)}
    engine.dispose()
    assert check.intact and check.entries == 8 and len(files) == 8
