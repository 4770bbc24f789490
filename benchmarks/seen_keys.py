"""The keys of one large file looked up chunk after chunk, as the intake does (ICD §1).

    .venv/bin/python benchmarks/seen_keys.py --rows 30000000

Feeds ``SeenKeys`` (vehiclehub.intake.seen_keys) N keys shaped like police event ids
(22 characters), in chunks of 120,000 rows as the intake reads a file, one key in a
thousand repeating an earlier one. Prints the wall time, the peak RSS (sampled every
20 ms) less the RSS before, the repeats found (with a digest of the lines they name),
and the temporary disk the keys take.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time

import numpy as np
import pandas as pd
from peak_rss import PeakRss

from vehiclehub.intake.seen_keys import SeenKeys

CHUNK = 120_000


def chunk_keys(rng: np.random.Generator, start: int, rows: int) -> pd.Series:
    """``rows`` keys from ordinal ``start``; one in a thousand repeats an earlier key."""
    numbers = np.arange(start, start + rows)
    repeats = rng.random(rows) < 0.001
    numbers[repeats] = rng.integers(0, max(start, 1), int(repeats.sum()))
    return pd.Series(np.char.add("PE3100202511", np.char.zfill(numbers.astype(str), 10)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    seen = SeenKeys()
    digest, repeats, started = hashlib.sha256(), 0, time.perf_counter()
    with PeakRss() as peak:
        for start in range(0, args.rows, CHUNK):
            rows = min(CHUNK, args.rows - start)
            lines = np.arange(start + 2, start + 2 + rows, dtype=np.int64)
            first = seen.first_lines(chunk_keys(rng, start, rows), lines)
            repeated = first != lines
            repeats += int(repeated.sum())
            digest.update(first[repeated].tobytes())
    wall = time.perf_counter() - started
    spool = seen._keys._batches
    disk = os.fstat(spool._file.fileno()).st_size
    print(
        f"{args.rows:,} keys: {wall:.1f} s, peak +{peak.growth_gib:.2f} GiB, "
        f"{repeats:,} repeats (lines {digest.hexdigest()[:16]}), on disk {disk / 2**20:,.0f} MB"
    )


if __name__ == "__main__":
    main()
