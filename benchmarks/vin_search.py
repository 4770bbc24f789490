"""VIN-003 over everything: the near-VIN search of a night reconciled in full, on N VINs.

    .venv/bin/python benchmarks/vin_search.py --vins 10000000

Makes N synthetic legal VINs held (positions 1-8 from a few thousand models, Zipf-like;
1 % with a one-character typo of another; 12 % lone on one feed, the others on two or
three), in ascending blocks of 200,000 as the store gives them, then runs in a child
process each the search by groups (``rules.quality._near_pairs_of_all``) and the one
search of every lone VIN against every VIN held. Prints per search its wall time, the
child's memory growth over the VINs it was given (peak RSS sampled, less RSS before),
the pairs found, and whether both found the same pairs.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import numpy as np
import psutil

from vehiclehub.rules import quality

ALPHABET = np.frombuffer(b"0123456789ABCDEFGHJKLMNPRSTUVWXYZ", np.uint8)
BLOCK = 200_000


def held_vins(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` synthetic VINs (about) ascending as ``S17``, and their feed masks."""
    rng = np.random.default_rng(seed)
    chars = ALPHABET[rng.integers(0, len(ALPHABET), (count, 17))]
    models = ALPHABET[rng.integers(0, len(ALPHABET), (5000, 8))]
    chars[:, :8] = models[rng.zipf(1.3, count) % len(models)]
    typos = rng.choice(count, count // 100, replace=False)
    typed = chars[typos].copy()
    typed[np.arange(len(typos)), rng.integers(0, 17, len(typos))] = ALPHABET[
        rng.integers(0, len(ALPHABET), len(typos))
    ]
    vins = np.unique(np.concatenate([chars, typed]).view("S17")[:, 0])
    lone = rng.random(len(vins)) < 0.12
    one = np.uint8(1) << rng.integers(0, 4, len(vins)).astype(np.uint8)
    several = np.uint8(0b0110) | rng.integers(0, 2, len(vins)).astype(np.uint8)
    return vins, np.where(lone, one, several)


def search(method: str, count: int, seed: int) -> None:
    """One search in this process: prints wall, memory growth, pairs and their digest."""
    vins, on = held_vins(count, seed)
    me = psutil.Process()
    before, peak, done = me.memory_info().rss, [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], me.memory_info().rss)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    def blocks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, len(vins), BLOCK):
            yield vins[start : start + BLOCK].copy(), on[start : start + BLOCK].copy()

    started = time.perf_counter()
    if method == "groups":
        pairs = quality._near_pairs_of_all(blocks())
    else:
        held = quality.HeldVins(quality.VinCodes.of_legal(vins.copy()), on.copy())
        pairs = quality._near_pairs_across_feeds(held.lone(), [held])
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    digest = hashlib.sha256(pairs.to_csv(index=False).encode()).hexdigest()[:16]
    print(
        f"{method:6} {len(vins):>12,} VINs  {wall:7.1f} s  "
        f"+{(peak[0] - before) / 2**30:.2f} GiB  {len(pairs):,} pairs  {digest}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--vins", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--method", choices=["groups", "one"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.method:
        search(args.method, args.vins, args.seed)
        return
    digests = []
    for method in ("groups", "one"):
        out = subprocess.run(
            [sys.executable, __file__, "--vins", str(args.vins), "--seed", str(args.seed),
             "--method", method],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        print(out, end="")
        digests.append(out.split()[-1])
    print("the same pairs" if digests[0] == digests[1] else "THE PAIRS DIFFER")


if __name__ == "__main__":
    main()
