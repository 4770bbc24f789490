"""Nightly benchmark: N vehicles' agency files through ``vhub run``, night after night.

    .venv/bin/python benchmarks/nightly.py --vehicles 1000000 [--nights K] [--keep DIR]
        [--database-url URL] [--date 2025-11-03] [--seed 1] [--profile FILE] [--block N]

Generates the world's files for K successive business dates from ``--date`` with
``vehiclehub_samples.stream.write_world``, block by block of ``--block`` vehicles
(100,000 by default) staged on disk, so that neither the generator nor this process
holds the world (its peak RSS is printed with the generation time): the first date's
files hold every vehicle's history (an initial load), each later date's the day's change
as agencies send it (new vehicles moving through the process, corrections and
cancellations; a few tenths of a percent of the rows). Each night the date's files land
in the outboxes and ``vhub run --config ... --date ...`` runs as a child process. Per
night it prints the wall time and peak RSS (all the run's processes together), the time
per stage, the rows in, and the store's size and its growth; after the last night rows
per feed and findings per rule (with precision and recall against the planted cases),
measured against the targets: the first night (1M vehicles) in under 3 minutes and under
3 GiB peak RSS on 2 cores; a steady night within a quarter of the first night's wall
time, growing the store by at most 50 MB.

Before the measured run, a run over a tiny world fills a bytecode cache of the child's
own (``PYTHONPYCACHEPREFIX``), so that module compilation, which a deployed hub does not
do, is not measured. The store is SQLite in the run directory unless ``--database-url``
names another. A PostgreSQL URL names a database that must not exist yet: the benchmark
creates it and drops it at the end (kept with ``--keep``), e.g.
``--database-url postgresql+psycopg://postgres@127.0.0.1:5432/vhub_nightly_1m``.
``--profile FILE`` runs the child under cProfile, writes its stats to FILE and prints the
top functions of the hub's code.
"""

from __future__ import annotations

import argparse
import os
import pstats
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from vehiclehub.config import AGENCIES
from vehiclehub.demo import write_hub_config
from vehiclehub.store.schema import findings, intake_files
from vehiclehub_samples import business_dates, generate_world
from vehiclehub_samples.stream import BLOCK_VEHICLES, WrittenWorld, write_world

#: The first night of 1M vehicles on a quiet 2-core machine: at most this wall time and
#: peak memory of the whole process tree.
TARGET_SECONDS = 150
TARGET_RSS_GIB = 2.0
#: A steady night's wall time at most this share of the first night's.
TARGET_STEADY_SHARE = 0.25
#: A steady night's growth of the store at most this (MB).
TARGET_GROWTH_MB = 50


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=100_000)
    parser.add_argument("--nights", type=int, default=1, help="business dates run in turn")
    parser.add_argument("--date", type=date.fromisoformat, default=date(2025, 11, 3))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="run in DIR and keep it (default: a temp dir)")
    parser.add_argument("--database-url", help="an empty store (default: SQLite in the run dir)")
    parser.add_argument("--profile", type=Path, help="run the child under cProfile into FILE")
    parser.add_argument(
        "--block", type=int, default=BLOCK_VEHICLES, help="vehicles generated at a time"
    )
    return parser.parse_args(argv)


def generate(args: argparse.Namespace, staging: Path) -> tuple[WrittenWorld, float]:
    """Generate the world of ``--nights`` business dates block by block into ``staging``;
    return it with the seconds taken."""
    started = time.perf_counter()
    dates = business_dates(args.date, args.nights)
    world = write_world(args.vehicles, dates, staging, seed=args.seed, block=args.block)
    return world, time.perf_counter() - started


def own_peak_gib() -> float:
    """This process's peak resident memory so far (the generator's, before any night)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def create_database(database_url: str) -> bool:
    """Create the PostgreSQL database the URL names, which must not exist yet; True when
    created (SQLite needs nothing)."""
    url = make_url(database_url)
    if not url.drivername.startswith("postgresql"):
        return False
    server = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database}
        ).first()
        if exists:
            raise SystemExit(f"database {url.database} exists: name a fresh one")
        conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    server.dispose()
    return True


def drop_database(database_url: str) -> None:
    """Drop the PostgreSQL database :func:`create_database` created."""
    url = make_url(database_url)
    server = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    server.dispose()


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


@dataclass(frozen=True)
class Night:
    """One measured ``vhub run``."""

    wall: float
    process_gib: float  # peak RSS of its largest process
    peak_gib: float  # peak RSS of its whole process tree
    status: int
    output: str  # what it printed: the run summary
    #: The process tree's resident memory (KiB) sampled every 0.1 s: seconds since the
    #: start, KiB.
    samples: tuple[tuple[float, int], ...] = ()

    def stage_peaks_gib(self) -> dict[str, float]:
        """The tree's peak memory in each stage of the summary's ``took:`` line.

        The stages are laid end to end back from the run's end (the start-up before
        them is ``start-up``), so a stage's window is as exact as the sampling and the
        few tenths of a second the run takes after its last stage."""
        bounds: dict[str, tuple[float, float]] = {}
        end = self.samples[-1][0] if self.samples else 0.0
        for stage, seconds in reversed(stage_seconds(self.output).items()):
            bounds[stage] = (end - seconds, end)
            end -= seconds
        bounds["start-up"] = (0.0, end)
        peaks = {}
        for stage, (start, stop) in sorted(bounds.items(), key=lambda b: b[1][0]):
            inside = [kib for at, kib in self.samples if start <= at <= stop]
            if inside:
                peaks[stage] = max(inside) / 2**20
        return peaks


def run_hub(config: Path, day: date, profile: Path | None, env: dict[str, str], log: Path) -> Night:
    """Run ``vhub run`` as a child, its output into ``log``; measure it.

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
    with log.open("w") as sink:
        child = subprocess.Popen(command, env=env, stdout=sink)
        samples, process_peaks = _sample_until_done(child)
    wall = time.perf_counter() - started
    largest_kib = max(process_peaks.values(), default=0)
    tree_peak_kib = max((kib for _, kib in samples), default=0)
    return Night(
        wall,
        largest_kib / 2**20,
        max(tree_peak_kib, largest_kib) / 2**20,
        child.returncode,
        log.read_text(),
        tuple(samples),
    )


def _sample_until_done(
    child: subprocess.Popen[bytes],
) -> tuple[list[tuple[float, int]], dict[int, int]]:
    """The resident memory of the child's process tree (seconds since the start, KiB),
    sampled every 0.1 s until it exits, and the peak of each of its processes (KiB)."""
    samples, process_peaks = list[tuple[float, int]](), dict[int, int]()
    started = time.perf_counter()
    while child.poll() is None:
        total, peaks = _tree_memory_kib(child.pid)
        samples.append((time.perf_counter() - started, total))
        for pid, peak in peaks.items():
            process_peaks[pid] = max(process_peaks.get(pid, 0), peak)
        time.sleep(0.1)
    return samples, process_peaks


def stage_seconds(output: str) -> dict[str, float]:
    """The stage times of a run summary's ``took:`` line."""
    took = next((line for line in output.splitlines() if line.strip().startswith("took:")), "")
    return {stage: float(s) for stage, s in re.findall(r"(\w+) ([\d.]+) s", took)}


def store_bytes(database_url: str) -> int:
    """The store's size on disk: the SQLite file with its journal, or the PostgreSQL
    database."""
    if database_url.startswith("sqlite"):
        path = Path(database_url.split("///", 1)[1])
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())
    engine = create_engine(database_url)
    with engine.connect() as conn:
        size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
    engine.dispose()
    return int(size)


def night_line(number: int, day: date, rows: int, night: Night, size: int, growth: int) -> str:
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in stage_seconds(night.output).items())
    stage_peaks = ", ".join(f"{k} {v:.2f}" for k, v in night.stage_peaks_gib().items())
    return (
        f"night {number} {day}: exit {night.status}, wall {night.wall:.1f} s ({stages}), "
        f"rows in {rows:,}, peak RSS {night.peak_gib:.2f} GiB ({stage_peaks}), "
        f"store {size / 1e6:,.1f} MB (+{growth / 1e6:,.1f} MB)"
    )


def report_rows(world: WrittenWorld, database_url: str) -> None:
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


def report_findings(world: WrittenWorld, database_url: str) -> None:
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


def run_nights(
    args: argparse.Namespace,
    world: WrittenWorld,
    directory: Path,
    config: Path,
    database_url: str,
) -> list[tuple[date, int, Night, int, int]]:
    """Each business date in turn: its files land in the outboxes, then ``vhub run``.
    Returns per night its date, rows in, measurement, store size and growth (bytes)."""
    env = child_environment(directory)
    warm = warm_up(directory, args.date, env)
    print(f"warm-up run (tiny world, compiles the bytecode): {warm:.1f} s", flush=True)
    nights = []
    size = store_bytes(database_url) if not database_url.startswith("sqlite") else 0
    for number, day in enumerate(world.dates, start=1):
        world.write_day(day, directory / "exchange")
        rows = world.rows_sent.get(day, 0)
        night = run_hub(config, day, args.profile, env, directory / f"night-{number}.out")
        grown = store_bytes(database_url)
        nights.append((day, rows, night, grown, grown - size))
        size = grown
        print(
            night_line(number, day, rows, night, grown, nights[-1][4])
            + f", load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        if night.status != 0:
            print(night.output)
            break
    return nights


def print_targets(nights: list[tuple[date, int, Night, int, int]]) -> None:
    first = nights[0][2]
    print(
        f"\nfirst night: wall {first.wall:.1f} s, peak RSS {first.peak_gib:.2f} GiB (all its "
        f"processes together; largest single process {first.process_gib:.2f} GiB)"
    )
    print(
        f"targets (1M vehicles, 2 cores): first night <= {TARGET_SECONDS} s "
        f"[{'met' if first.wall <= TARGET_SECONDS else 'MISSED'}], peak RSS <= "
        f"{TARGET_RSS_GIB} GiB [{'met' if first.peak_gib <= TARGET_RSS_GIB else 'MISSED'}]"
    )
    for number, (day, _, night, _, growth) in enumerate(nights[1:], start=2):
        share = night.wall / first.wall
        print(
            f"  steady night {number} ({day}): {share:.0%} of the first night's wall "
            f"[{'met' if share <= TARGET_STEADY_SHARE else 'MISSED'}], store +"
            f"{growth / 1e6:,.1f} MB [{'met' if growth <= TARGET_GROWTH_MB * 1e6 else 'MISSED'}]"
        )


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
    created = create_database(database_url)
    try:
        print(
            f"generating {args.vehicles:,} vehicles, {args.nights} night(s) from {args.date}, "
            f"in {directory} (load average {os.getloadavg()[0]:.1f})",
            flush=True,
        )
        world, generation = generate(args, directory / "staged")
        print(
            f"generated in {generation:.1f} s, blocks of {args.block:,} vehicles, peak RSS "
            f"{own_peak_gib():.2f} GiB (load average {os.getloadavg()[0]:.1f})",
            flush=True,
        )
        nights = run_nights(args, world, directory, config, database_url)
        print_targets(nights)
        print(f"load average now {os.getloadavg()[0]:.1f} (other jobs on the machine)")
        status = nights[-1][2].status
        if status == 0:
            report_rows(world, database_url)
            report_findings(world, database_url)
        if args.profile:
            print_profile(args.profile)
        return status
    finally:
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
            if created:
                drop_database(database_url)


if __name__ == "__main__":
    sys.exit(main())
