"""Nightly benchmark: one business date's agency files for N vehicles through ``vhub run``.

    .venv/bin/python benchmarks/nightly.py --vehicles 1000000 [--keep DIR]
        [--database-url URL] [--date 2025-11-03] [--seed 1] [--profile FILE]

Generates the world's files for one business date (every vehicle's history in that
date's files, like an initial load) with ``vehiclehub.samples.generate``, then runs
``vhub run --config ... --date ...`` as a child process and prints the generation time,
the run's wall time and peak RSS (all its processes together), rows per feed and
findings per rule (with precision and recall against the planted cases), measured
against the targets: 1M vehicles end to end in under 3 minutes and under 3 GiB peak
RSS on 2 cores.

Before the measured run, a run over a tiny world fills a bytecode cache of the child's
own (``PYTHONPYCACHEPREFIX``), so that module compilation, which a deployed hub does not
do, is not measured. The store is SQLite in the run directory unless ``--database-url``
names another (an empty database: files already taken there are not taken again).
``--profile FILE`` runs the child under cProfile, writes its stats to FILE and prints the
top functions of the hub's code.
"""

from __future__ import annotations

import argparse
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from sqlalchemy import create_engine, func, select

from vehiclehub.config import AGENCIES
from vehiclehub.demo import write_hub_config
from vehiclehub.samples.generate import World, generate_world
from vehiclehub.store.schema import findings, intake_files

TARGET_SECONDS = 180
TARGET_RSS_GIB = 3.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=100_000)
    parser.add_argument("--date", type=date.fromisoformat, default=date(2025, 11, 3))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="run in DIR and keep it (default: a temp dir)")
    parser.add_argument("--database-url", help="an empty store (default: SQLite in the run dir)")
    parser.add_argument("--profile", type=Path, help="run the child under cProfile into FILE")
    return parser.parse_args(argv)


def generate(directory: Path, vehicles: int, day: date, seed: int) -> tuple[World, float, float]:
    """Generate the world and write its files; return it with both durations (seconds)."""
    started = time.perf_counter()
    world = generate_world(vehicles, [day], seed=seed)
    generated = time.perf_counter()
    world.write_day(day, directory / "exchange")
    return world, generated - started, time.perf_counter() - generated


def child_environment(directory: Path) -> dict[str, str]:
    """The child's environment, with a bytecode cache of its own: where
    PYTHONDONTWRITEBYTECODE is set, each run would otherwise compile every imported
    module from source (tens of seconds), which a deployed hub never does."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(directory / "pycache")
    return env


def warm_up(directory: Path, day: date, env: dict[str, str]) -> float:
    """A run over a tiny world, so that the measured run starts with compiled bytecode."""
    tiny = directory / "warm-up"
    exchange = tiny / "exchange"
    tiny.mkdir()
    config = write_hub_config(
        tiny,
        f"sqlite:///{tiny / 'hub.db'}",
        {a: {"url": f"file://{exchange / a}"} for a in AGENCIES},
    )
    generate_world(50, [day], seed=1).write_day(day, exchange)
    started = time.perf_counter()
    command = [sys.executable, "-m", "vehiclehub.cli", "run", "--config", str(config)]
    subprocess.run([*command, "--date", day.isoformat()], env=env, capture_output=True, check=True)
    elapsed = time.perf_counter() - started
    shutil.rmtree(tiny)
    return elapsed


def _tree_memory_kib(root: int) -> tuple[int, dict[int, int]]:
    """A process tree's resident memory now (KiB) and each member's peak so far
    (VmHWM, KiB), read from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        tree.update(children)
        frontier.extend(children)
    total, peaks = 0, {}
    for pid in tree:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
            elif line.startswith("VmHWM:"):
                peaks[pid] = int(line.split()[1])
    return total, peaks


def run_hub(
    config: Path, day: date, profile: Path | None, env: dict[str, str]
) -> tuple[float, float, float, int]:
    """Run ``vhub run`` as a child; return (wall seconds, peak RSS of its largest
    process in GiB, peak RSS of its whole process tree in GiB, exit status).

    The hub prepares files in a worker process while it loads the previous one, so the
    run's memory is the sum over its processes: the tree's resident memory is sampled
    every 0.1 s, with each process's own peak (VmHWM). The kernel's rusage of children
    is not used: it charges a forked child with the memory of this process (the
    generated world) at the time of the fork.
    """
    command = [sys.executable]
    if profile is not None:
        command += ["-m", "cProfile", "-o", str(profile)]
    command += ["-m", "vehiclehub.cli", "run", "--config", str(config), "--date", day.isoformat()]
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env)
    tree_peak_kib, process_peaks = 0, dict[int, int]()
    while child.poll() is None:
        total, peaks = _tree_memory_kib(child.pid)
        tree_peak_kib = max(tree_peak_kib, total)
        for pid, peak in peaks.items():
            process_peaks[pid] = max(process_peaks.get(pid, 0), peak)
        time.sleep(0.1)
    wall = time.perf_counter() - started
    largest_kib = max(process_peaks.values(), default=0)
    return wall, largest_kib / 2**20, max(tree_peak_kib, largest_kib) / 2**20, child.returncode


def report_rows(world: World, database_url: str) -> None:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        loaded = dict(
            conn.execute(
                select(
                    intake_files.c.agency + "/" + intake_files.c.feed,
                    func.sum(intake_files.c.rows_loaded),
                ).group_by(intake_files.c.agency, intake_files.c.feed)
            ).all()
        )
    print("rows per feed (written / loaded):")
    for name, written in world.rows_per_feed().items():
        print(f"  {name:<26} {written:>10,} {int(loaded.get(name) or 0):>10,}")
    print(
        f"  {'total':<26} {sum(world.rows_per_feed().values()):>10,} "
        f"{sum(int(v or 0) for v in loaded.values()):>10,}"
    )


def report_findings(world: World, database_url: str) -> None:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        found = conn.execute(
            select(findings.c.rule_id, findings.c.record_key, findings.c.related).where(
                findings.c.resolved_on.is_(None)
            )
        ).all()
    got: dict[str, set[str]] = {}
    proposed: set[str] = set()  # "record_key related" per candidate VIN-003 lists
    for rule_id, key, related in found:
        got.setdefault(rule_id, set()).add(key)
        if rule_id == "VIN-003":
            proposed |= {
                f"{key} {candidate}" for candidate in (related or "").split(";") if candidate
            }
    rules = sorted(set(got) | set(world.truth.findings["rule_id"]))
    print("findings per rule (found, planted, precision, recall):")

    def line(name: str, mine: set[str], expected: set[str]) -> None:
        hits = len(mine & expected)
        precision = hits / len(mine) if mine else float(not expected)
        recall = hits / len(expected) if expected else float(not mine)
        print(f"  {name:<8} {len(mine):>8,} {len(expected):>8,} {precision:>9.3f} {recall:>7.3f}")

    for rule_id in rules:
        line(rule_id, got.get(rule_id, set()), world.truth.expected(rule_id))
    print(f"VIN-003 candidates ({len(world.truth.typos):,} VINs typed over), as pairs:")
    candidates = {f"{key} {related}" for key, related in world.truth.expected_candidates()}
    line("VIN-003", proposed, candidates)


def print_profile(profile: Path, top: int = 25) -> None:
    stats = pstats.Stats(str(profile))
    print(f"top {top} functions by cumulative time (cProfile of the child, {profile}):")
    stats.sort_stats("cumulative").print_stats("vehiclehub", top)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    directory = args.keep or Path(tempfile.mkdtemp(prefix="vhub-nightly-"))
    if args.keep:
        shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
    database_url = args.database_url or f"sqlite:///{directory / 'hub.db'}"
    exchange = directory / "exchange"
    config = write_hub_config(
        directory, database_url, {a: {"url": f"file://{exchange / a}"} for a in AGENCIES}
    )
    try:
        print(f"generating {args.vehicles:,} vehicles for {args.date} in {directory}", flush=True)
        world, generation, writing = generate(directory, args.vehicles, args.date, args.seed)
        size = sum(p.stat().st_size for p in exchange.rglob("*") if p.is_file())
        print(
            f"generated in {generation:.1f} s, files written in {writing:.1f} s "
            f"({size / 2**20:,.0f} MiB)",
            flush=True,
        )
        env = child_environment(directory)
        warm = warm_up(directory, args.date, env)
        print(f"warm-up run (tiny world, compiles the bytecode): {warm:.1f} s", flush=True)
        wall, process_gib, peak_gib, status = run_hub(config, args.date, args.profile, env)
        rows = sum(world.rows_per_feed().values())
        print(
            f"\nvhub run: exit {status}, wall {wall:.1f} s ({rows / wall:,.0f} rows/s), "
            f"peak RSS {peak_gib:.2f} GiB (all its processes together; "
            f"largest single process {process_gib:.2f} GiB)"
        )
        print(
            f"targets (1M vehicles, 2 cores): wall < {TARGET_SECONDS} s "
            f"[{'met' if wall < TARGET_SECONDS else 'MISSED'}], peak RSS < "
            f"{TARGET_RSS_GIB} GiB [{'met' if peak_gib < TARGET_RSS_GIB else 'MISSED'}]"
        )
        if status == 0:
            report_rows(world, database_url)
            report_findings(world, database_url)
        if args.profile:
            print_profile(args.profile)
        return status
    finally:
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
