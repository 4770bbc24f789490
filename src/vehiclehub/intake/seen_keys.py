"""The keys of a file's rows read so far, to catch a key the file repeats (ICD §1).

A file holds at most one row per key: a later row with the key of an earlier one is
rejected, naming the line of the first. A file is read in chunks of ~120k rows and
may have tens of millions, so looking a chunk's keys up must cost in proportion to
the chunk, not to the file read so far, and the keys must be held compactly.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from vehiclehub.identifiers import arrow_text


def key_hashes(keys: pd.Series) -> np.ndarray:
    """A 64-bit hash of each key: equal keys have equal hashes, which is all we rely on."""
    return pd.util.hash_pandas_object(keys, index=False).to_numpy(dtype=np.uint64)


class SeenKeys:
    """The distinct keys of a file's rows read so far, each with the line it was first on.

    :meth:`first_lines` takes a chunk's keys in file order and tells, for each row, the
    line of the file's first row with its key: its own line when it is the first, an
    earlier one when it repeats a key.

    How the keys are held:

    - each chunk's new keys, exactly, as one Arrow string array, with their lines —
      stored once, never copied again, never concatenated;
    - a 64-bit hash of every key, with the key's ordinal (its place in the order the
      keys were added, which locates its chunk and position), in sorted runs: a chunk
      adds one run, and a run at least as long as the one before it is merged into it,
      so there are O(log n) runs and each key is copied O(log n) times in all. A
      chunk's keys are looked up in each run by binary search.

    A hash found is only a candidate: the key it belongs to is compared exactly, so two
    different keys that share a hash are never taken for one. Exact keys were chosen
    over a 128-bit hash without them: the keys cost ~30 bytes a row more, but no
    argument about collision odds is needed, and the keys were held before as well.
    Per key: the key's text with a 4-byte offset, its line (8 bytes), its hash (8)
    and ordinal (4); merging the largest runs briefly takes ~20 bytes more.
    """

    def __init__(self) -> None:
        self._run_hashes: list[np.ndarray] = []  # each sorted
        self._run_ordinals: list[np.ndarray] = []  # the ordinals of those hashes, in step
        self._keys: list[pa.Array] = []  # per chunk, the keys it added
        self._lines: list[np.ndarray] = []  # and their lines, in step
        self._starts: list[int] = [0]  # the ordinal of each chunk's first key; then the count

    def __len__(self) -> int:
        return self._starts[-1]

    def first_lines(self, keys: pd.Series, lines: np.ndarray) -> np.ndarray:
        """For each row, the line of the file's first row with its key; remember new keys.

        ``keys`` and ``lines`` are a chunk's rows in file order, after every earlier
        chunk's. A row repeats a key where the line returned is not its own. A missing
        key (NA) counts as one key, like any other.
        """
        if not len(keys):
            return np.array([], dtype=np.int64)
        codes, _ = pd.factorize(keys, use_na_sentinel=False)
        # codes are numbered in order of first appearance: first[c] is code c's first row
        _, first = np.unique(codes, return_index=True)
        distinct = keys.iloc[first]
        hashes = key_hashes(distinct)
        exact = arrow_text(distinct)
        earlier = self._earlier_lines(exact, hashes)
        new = earlier < 0
        first_lines = np.where(new, lines[first], earlier)
        if new.all():
            self._add(exact, hashes, first_lines)
        elif new.any():
            self._add(exact.filter(pa.array(new)), hashes[new], first_lines[new])
        result: np.ndarray = first_lines[codes]
        return result

    def _earlier_lines(self, keys: pa.Array, hashes: np.ndarray) -> np.ndarray:
        """For each key, its line if it was seen already, else -1."""
        found = np.full(len(hashes), -1, dtype=np.int64)
        # Asked in order of hash, the binary searches walk each run forward: several
        # times faster than in the chunk's order once a run outgrows the CPU's caches.
        by_hash = np.argsort(hashes)
        for run_hashes, run_ordinals in zip(self._run_hashes, self._run_ordinals, strict=True):
            asked = by_hash[found[by_hash] < 0]
            at = np.searchsorted(run_hashes, hashes[asked])
            # Every entry of the run with the asked hash: almost always none or one,
            # more only where different keys share a hash.
            while len(asked):
                inside = at < len(run_hashes)
                asked, at = asked[inside], at[inside]
                hit = run_hashes[at] == hashes[asked]
                asked, at = asked[hit], at[hit]
                same, lines = self._compare(keys, asked, run_ordinals[at])
                found[asked[same]] = lines[same]
                asked, at = asked[~same], at[~same] + 1
        return found

    def _compare(
        self, keys: pa.Array, asked: np.ndarray, ordinals: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Whether ``keys[asked]`` are the stored keys ``ordinals``, and those keys' lines."""
        if not len(asked):
            return np.array([], dtype=bool), np.array([], dtype=np.int64)
        # In order of ordinal, the stored keys come from each chunk in one take.
        order = np.argsort(ordinals)
        ordinals = ordinals[order]
        chunks = np.searchsorted(self._starts, ordinals, side="right") - 1
        bounds = [0, *(np.flatnonzero(np.diff(chunks)) + 1), len(chunks)]
        stored: list[pa.Array] = []
        lines: list[np.ndarray] = []
        for begin, end in pairwise(bounds):
            chunk = chunks[begin]
            positions = ordinals[begin:end] - self._starts[chunk]
            stored.append(self._keys[chunk].take(pa.array(positions)))
            lines.append(self._lines[chunk][positions])
        have = pa.concat_arrays(stored)
        wanted = keys.take(pa.array(asked[order]))
        equal = pc.fill_null(pc.equal(have, wanted), pc.and_(have.is_null(), wanted.is_null()))
        same = np.empty(len(asked), dtype=bool)
        same[order] = equal.to_numpy(zero_copy_only=False)
        found = np.empty(len(asked), dtype=np.int64)
        found[order] = np.concatenate(lines)
        return same, found

    def _add(self, keys: pa.Array, hashes: np.ndarray, lines: np.ndarray) -> None:
        """Remember keys not seen before (distinct), first on ``lines``."""
        start = self._starts[-1]
        if start + len(keys) > np.iinfo(np.uint32).max:
            raise ValueError("more distinct keys in one file than SeenKeys can number")
        self._keys.append(keys)
        self._lines.append(lines.astype(np.int64, copy=False))
        self._starts.append(start + len(keys))
        order = np.argsort(hashes)
        self._run_hashes.append(hashes[order])
        self._run_ordinals.append((order + start).astype(np.uint32))
        runs = self._run_hashes
        while len(runs) > 1 and len(runs[-2]) <= len(runs[-1]):
            self._merge_last_runs()

    def _merge_last_runs(self) -> None:
        b_hashes, b_ordinals = self._run_hashes.pop(), self._run_ordinals.pop()
        a_hashes, a_ordinals = self._run_hashes.pop(), self._run_ordinals.pop()
        # where each of b's entries goes in the merged run
        into = np.searchsorted(a_hashes, b_hashes, side="right") + np.arange(len(b_hashes))
        from_a = np.ones(len(a_hashes) + len(b_hashes), dtype=bool)
        from_a[into] = False
        hashes = np.empty(len(from_a), dtype=np.uint64)
        hashes[into], hashes[from_a] = b_hashes, a_hashes
        del a_hashes, b_hashes
        ordinals = np.empty(len(from_a), dtype=np.uint32)
        ordinals[into], ordinals[from_a] = b_ordinals, a_ordinals
        self._run_hashes.append(hashes)
        self._run_ordinals.append(ordinals)
