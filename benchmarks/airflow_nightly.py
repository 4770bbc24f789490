"""The nightly cycle under a real Airflow against ``vhub run``, on the same files.

    .venv/bin/python benchmarks/airflow_nightly.py --vehicles 200000 [--store postgresql]

Generates one business date's files for N vehicles (``vehiclehub_samples``),
runs ``vhub run`` on one copy (its wall time and the peak memory of all its processes
together, sampled from ``/proc``), then starts Airflow's scheduler, DAG processor and
API server (LocalExecutor, metadata on the local PostgreSQL, the settings the README
documents; the harness of ``tests/integration/airflow_live.py``), triggers the nightly
DAG through the REST API for the same date on the other copy and prints the run's
wall time (trigger to end), the peak memory of every Airflow process together (task
processes and intake workers included), Airflow's memory idle before the run, and
each task's duration. Both hubs store into SQLite, or with ``--store postgresql`` each
into a fresh database on the local PostgreSQL server.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from datetime import date, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the Airflow harness of the tests

from nightly import _tree_memory_kib, child_environment, run_hub, warm_up  # noqa: E402
from tests.conftest import postgres_database, write_config  # noqa: E402
from tests.integration.airflow_env import DAG_ID  # noqa: E402
from tests.integration.airflow_live import live_airflow  # noqa: E402

from vehiclehub_samples import generate_world  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=30_000)
    parser.add_argument("--date", type=date.fromisoformat, default=date(2025, 11, 3))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    return parser.parse_args(argv)


class TreeSampler:
    """Samples the resident memory of process trees every 0.2 s in a thread."""

    def __init__(self, roots: list[int]) -> None:
        self.roots = roots
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now_kib(self) -> int:
        return sum(_tree_memory_kib(root)[0] for root in self.roots)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, self.now_kib())
            time.sleep(0.2)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _seconds(start: str | None, end: str | None) -> float:
    if not start or not end:
        return float("nan")
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def store_url(root: Path, store: str, stack: ExitStack) -> str:
    """The hub's store: SQLite in its directory, or a fresh PostgreSQL database."""
    if store == "sqlite":
        return f"sqlite:///{root / 'hub.db'}"
    return stack.enter_context(postgres_database("vhub_bench"))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    directory = Path(tempfile.mkdtemp(prefix="vhub-airflow-bench-"))
    with ExitStack() as databases:
        try:
            return _measure(args, directory, databases)
        finally:
            shutil.rmtree(directory, ignore_errors=True)


def _measure(args: argparse.Namespace, directory: Path, databases: ExitStack) -> int:
    print(f"generating {args.vehicles:,} vehicles for {args.date}", flush=True)
    world = generate_world(args.vehicles, [args.date], seed=args.seed)
    reference, hub = directory / "vhub", directory / "airflow-hub"
    configs = {}
    for root in (reference, hub):
        configs[root] = write_config(root, store_url(root, args.store, databases))
        world.write_day(args.date, root / "exchange")
    rows = sum(world.rows_per_feed().values())
    print(f"{rows:,} rows in {len(world.files_of(args.date))} files", flush=True)

    env = child_environment(directory)
    warm_up(directory, args.date, env)
    night = run_hub(configs[reference], args.date, None, env, directory / "vhub-run.log")
    status = night.status
    print(
        f"vhub run: exit {status}, wall {night.wall:.1f} s, peak RSS {night.peak_gib:.2f} GiB "
        f"(largest process {night.process_gib:.2f} GiB)",
        flush=True,
    )

    home = directory / "airflow"
    home.mkdir()
    with live_airflow(home, extra_env={"VHUB_CONFIG": str(configs[hub])}) as airflow:
        airflow.wait_for_dag(DAG_ID)
        airflow.set_paused(DAG_ID, False)
        time.sleep(10)  # settled: the processes' idle memory
        sampler = TreeSampler(airflow.pids())
        idle_kib = sampler.now_kib()
        with sampler:
            started = time.perf_counter()
            run_id = airflow.trigger(DAG_ID, {"business_date": args.date.isoformat()})
            run = airflow.wait_for_run(DAG_ID, run_id, timeout=3600)
            dag_wall = time.perf_counter() - started
        tasks = airflow.task_instances(DAG_ID, run_id)
    print(
        f"Airflow DAG run: {run['state']}, wall {dag_wall:.1f} s (trigger to end; "
        f"run {_seconds(run['start_date'], run['end_date']):.1f} s), peak RSS of the "
        f"Airflow processes {sampler.peak_kib / 2**20:.2f} GiB "
        f"(idle before the run {idle_kib / 2**20:.2f} GiB)"
    )
    for task_id, ti in sorted(tasks.items(), key=lambda item: item[1]["start_date"] or ""):
        print(f"  {task_id:<16} {ti['state']:<8} {ti['duration'] or 0:7.1f} s")
    return 0 if status == 0 and run["state"] == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
