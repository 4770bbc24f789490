"""The fault catalogue (issue 11): a run killed at each stage, its store lost mid-load, a
disk full at each write, a second run at once. Each fault ends in a ``vhub: ...`` message
and a documented exit code, leaves nothing partial under a final name, and the run after
it leaves exactly what an undisturbed run leaves: the same evidence, findings, verdicts,
rejections and drops (run records and timestamps aside; drop manifests without
``generated_at``, ``signature`` and ``log_head``).

Each backend's undisturbed run is made once for the module, on the small sample world
every case starts from.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import DateTime, create_engine, select, text, update
from tests.conftest import PG_ADMIN_URL, postgres_database, process_gone, write_config
from tests.integration.airflow_live import delivered_drops

from vehiclehub import pipeline
from vehiclehub.cli import main
from vehiclehub.config import Settings, load_settings
from vehiclehub.errors import ExitCode
from vehiclehub.intake import load
from vehiclehub.store import connect
from vehiclehub.store.schema import (
    FEED_TABLES,
    findings,
    intake_files,
    rejections,
    run_leases,
    runs,
    verdict_history,
)
from vehiclehub_samples import World, generate_world

DAY = date(2025, 11, 3)
VEHICLES = 60
REPO = Path(__file__).resolve().parents[2]
#: Columns that number rows in the order a run happened to write them.
ROW_NUMBERS = {"id", "file_id", "duplicate_of"}
FAILED = f"vhub: the run for {DAY} failed at"


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(VEHICLES, [DAY], seed=20251103)


@dataclass
class Hub:
    root: Path
    config: Path
    settings: Settings

    def run(self) -> int:
        return main(["run", "--config", str(self.config), "--date", DAY.isoformat()])


def _hub(root: Path, store_url: str, world: World, **extra: str) -> Hub:
    """A hub whose agencies sent the world's files; a run waits a minute for another."""
    lease = {"lease_wait_s": "60"} | extra
    config = write_config(root, store_url, **lease)
    world.write_day(DAY, root / "exchange")
    return Hub(root, config, load_settings(config))


def _backend(store_url: str) -> str:
    return "sqlite" if store_url.startswith("sqlite") else "postgresql"


def outputs(hub: Hub) -> dict[str, Any]:
    """What a run leaves that must not depend on how it got there."""
    engine = connect(hub.settings.database_url)
    left: dict[str, Any] = {}
    with engine.connect() as conn:
        for table in (*FEED_TABLES.values(), intake_files, rejections, findings, verdict_history):
            kept = [
                c
                for c in table.columns
                if c.name not in ROW_NUMBERS and not isinstance(c.type, DateTime)
            ]
            left[table.name] = sorted(repr(tuple(r)) for r in conn.execute(select(*kept)))
    engine.dispose()
    left["drops"] = delivered_drops(hub.root)
    return left


@pytest.fixture(scope="module")
def undisturbed(
    world: World, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], dict[str, Any]]:
    """The outputs of an undisturbed run, per backend, made when first asked for."""

    @cache
    def of(backend: str) -> dict[str, Any]:
        root = tmp_path_factory.mktemp(f"undisturbed-{backend}")
        if backend == "sqlite":
            hub = _hub(root, f"sqlite:///{root / 'hub.db'}", world)
            assert hub.run() == 0
            return outputs(hub)
        with postgres_database() as url:
            hub = _hub(root, url, world)
            assert hub.run() == 0
            return outputs(hub)

    return of


def _run_records(hub: Hub) -> list[tuple[str, str | None]]:
    engine = connect(hub.settings.database_url)
    with engine.connect() as conn:
        done = [tuple(r) for r in conn.execute(select(runs.c.status, runs.c.stage))]
    engine.dispose()
    return done  # type: ignore[return-value]


def _outlive_lease(hub: Hub) -> None:
    """Let the killed run's lease run out (lease_ttl_s), at once: a real expiry is
    test_one_run_at_a_time's."""
    engine = connect(hub.settings.database_url)
    with engine.begin() as conn:
        conn.execute(update(run_leases).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    engine.dispose()


def _message(capsys: pytest.CaptureFixture[str]) -> str:
    """The run's last word on stderr (warnings logged before it)."""
    return capsys.readouterr().err.strip().splitlines()[-1]


def _fails(
    hub: Hub, capsys: pytest.CaptureFixture[str], said: str, module: Any, name: str, fault: Any
) -> None:
    """The run with ``module.name`` replaced by ``fault``: it fails (exit 1), saying
    ``the run for D failed at <said>...``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, name, fault)
        code = hub.run()
    assert code == ExitCode.FAILED
    assert _message(capsys).startswith(f"{FAILED} {said}")


def _parts(hub: Hub) -> list[Path]:
    """Files left half-written where the hub writes (agencies' outboxes have their own)."""
    root = hub.root
    return sorted([*(root / "work").rglob("*.part"), *(root / "exchange").glob("*/inbox/*.part")])


# --------------------------------------------------------------------------------------
# kill -9 at each stage
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backend", "stage"),
    [
        ("sqlite", "intake"),
        ("sqlite", "reconcile"),
        ("sqlite", "publish"),
        # PostgreSQL where it differs: a file's load in an open transaction when killed.
        pytest.param("postgresql", "intake", marks=pytest.mark.postgres),
    ],
)
def test_a_run_killed_at_a_stage_is_completed_by_the_next(
    backend: str,
    stage: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    world: World,
    undisturbed: Callable[[str], dict[str, Any]],
) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}" if backend == "sqlite" else None
    hub = _hub(tmp_path, url or request.getfixturevalue("pg_url"), world)
    killed = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.killed_run", str(hub.config), str(DAY), stage],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its worker in its group, for the clean-up below
    )
    watchdog = threading.Timer(300, killed.kill)
    watchdog.start()
    try:
        assert killed.stdout is not None
        stopped = killed.stdout.readline().split()
        assert stopped[:1] == ["stopped"], f"the run ended before {stage}"
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(timeout=30)
        if stage == "intake":
            worker = int(stopped[1])  # busy with a file when its intake was killed
            assert process_gone(worker, within_s=15), f"the worker {worker} outlived its run"
    finally:
        watchdog.cancel()
        with suppress(ProcessLookupError):
            os.killpg(killed.pid, signal.SIGKILL)
        killed.wait()

    _outlive_lease(hub)
    assert hub.run() == 0
    assert outputs(hub) == undisturbed(backend)
    # The killed run is recorded as failed by the run that took the store over, and that
    # run's report says so.
    assert _run_records(hub) == [("failed", None), ("completed", None)]
    report = next((hub.root / "work" / "reports").glob("*/index.html")).read_text()
    assert "1 earlier run(s) did not complete" in report
    assert pipeline.ENDED_UNFINISHED in report


# --------------------------------------------------------------------------------------
# the store lost mid-load
# --------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_a_postgresql_store_lost_mid_load_ends_in_a_message(
    pg_url: str,
    tmp_path: Path,
    world: World,
    undisturbed: Callable[[str], dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    hub = _hub(tmp_path, pg_url, world)
    real, calls = load.load_records, []
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")

    def cut_off(conn: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:  # two files committed, the third's transaction open
            backend = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            with admin.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": backend})
        return real(conn, *args, **kwargs)

    _fails(hub, capsys, "intake: OperationalError", load, "load_records", cut_off)
    admin.dispose()
    assert hub.run() == 0
    assert outputs(hub) == undisturbed("postgresql")
    assert _run_records(hub) == [("failed", "intake"), ("completed", None)]


def test_a_sqlite_store_gone_mid_intake_ends_in_a_message(
    tmp_path: Path,
    world: World,
    undisturbed: Callable[[str], dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = tmp_path / "store"
    store.mkdir()
    hub = _hub(tmp_path, f"sqlite:///{store / 'hub.db'}", world)
    away = tmp_path / "store-unmounted"
    real = pipeline.intake_agency

    def then_gone(*args: Any) -> dict[str, Any]:
        summary = real(*args)
        if not away.exists():  # after the first agency: its volume unmounted,
            store.rename(away)  # the mount point left empty
            store.mkdir()
        return summary

    _fails(hub, capsys, "intake: StoreUnavailable: the store", pipeline, "intake_agency", then_gone)
    assert list(store.iterdir()) == []  # no new, empty store made in its place
    away.replace(store)
    assert hub.run() == 0
    assert outputs(hub) == undisturbed("sqlite")


# --------------------------------------------------------------------------------------
# disk full at each write
# --------------------------------------------------------------------------------------


class _Unwritable:
    """A file open for writing on a full (or read-only) disk: every write fails."""

    def __init__(self, file: Any, name: str, code: int) -> None:
        self._file, self._name, self._code = file, name, code

    def write(self, data: Any) -> int:
        raise OSError(self._code, os.strerror(self._code), self._name)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._file, attribute)

    def __enter__(self) -> _Unwritable:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()


@contextmanager
def disk_full(where: Callable[[str], bool], code: int = errno.ENOSPC) -> Iterator[list[str]]:
    """Writes to files whose path ``where`` picks fail with ``code``, as on a full disk;
    yields the paths that failed. Files are opened as usual (they exist, empty)."""
    failed: list[str] = []
    real_open = builtins.open

    def patched_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        opened = real_open(file, mode, *args, **kwargs)
        # os.fdopen comes here too, with a descriptor
        name = os.readlink(f"/proc/self/fd/{file}") if isinstance(file, int) else os.fsdecode(file)
        if any(m in mode for m in "wax+") and where(name):
            failed.append(name)
            return _Unwritable(opened, name, code)
        return opened

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(builtins, "open", patched_open)
        patch.setattr(io, "open", patched_open)
        yield failed


#: Each write of a run -> (the stage it belongs to, the files it writes, how it fails).
WRITES: dict[str, tuple[str, Callable[[str], bool], int]] = {
    "archive": ("intake", lambda p: "/work/archive/" in p, errno.ENOSPC),
    "drop": ("publish", lambda p: "/work/drops/" in p, errno.ENOSPC),
    "inbox": ("publish", lambda p: "/inbox/" in p, errno.ENOSPC),
    "workbook": ("publish", lambda p: p.endswith(".xlsx.part"), errno.ENOSPC),
    "report": ("publish", lambda p: p.endswith("index.html.part"), errno.ENOSPC),
    "read-only work dir": ("intake", lambda p: "/work/" in p, errno.EROFS),
}


@pytest.mark.parametrize("write", list(WRITES))
def test_a_disk_full_at_a_write_ends_in_a_message_and_leaves_nothing_partial(
    write: str,
    tmp_path: Path,
    world: World,
    undisturbed: Callable[[str], dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    hub = _hub(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}", world)
    stage, where, code = WRITES[write]
    with disk_full(where, code) as failed:
        exit_code = hub.run()

    assert failed, f"the run wrote no {write}"
    assert exit_code == ExitCode.FAILED
    said = _message(capsys)
    assert said.startswith(f"{FAILED} {stage}: OSError: [Errno {code}] {os.strerror(code)}")
    assert _parts(hub) == []
    for name in failed:  # not one of them under its final name
        assert not Path(name.removesuffix(".part")).exists(), name
    assert hub.run() == 0
    assert outputs(hub) == undisturbed("sqlite")


# --------------------------------------------------------------------------------------
# two runs at once
# --------------------------------------------------------------------------------------


def test_two_runs_at_once_one_refused_with_exit_75(
    store_url: str,
    tmp_path: Path,
    world: World,
    undisturbed: Callable[[str], dict[str, Any]],
) -> None:
    hub = _hub(tmp_path, store_url, world, lease_wait_s="0")
    command = ["-m", "vehiclehub.cli", "run", "--config", str(hub.config), "--date", str(DAY)]
    both = [
        subprocess.Popen(
            [sys.executable, *command],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    ended = sorted((p.wait(timeout=600), p.stderr.read() if p.stderr else "") for p in both)

    assert [code for code, _ in ended] == [0, ExitCode.STORE_BUSY]
    assert ended[1][1].startswith("vhub: another run holds the store")
    assert outputs(hub) == undisturbed(_backend(store_url))
