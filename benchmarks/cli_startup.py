"""How long ``vhub --help`` takes, and how much memory, in a fresh process each time.

    .venv/bin/python benchmarks/cli_startup.py [--runs 10]

Runs the installed ``vhub`` script (the one next to this interpreter) ``--runs`` times
and prints the median and worst wall time and the largest peak RSS. Target: under 1 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

VHUB = Path(sys.executable).with_name("vhub")


def one_call(argv: list[str]) -> float:
    """Wall seconds of one ``vhub`` call that must succeed."""
    started = time.perf_counter()
    subprocess.run([str(VHUB), *argv], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    times = [one_call(["--help"]) for _ in range(args.runs)]
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        f"vhub --help: median {statistics.median(times):.3f} s, worst {max(times):.3f} s "
        f"over {args.runs} runs; peak RSS {peak_kib / 1024:.0f} MiB "
        f"({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f})"
    )
    return 0 if max(times) < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
