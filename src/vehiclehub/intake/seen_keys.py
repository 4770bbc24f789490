"""The keys of a file's rows read so far, to catch a key the file repeats (ICD §1).

A file holds at most one row per key: a later row with the key of an earlier one is
rejected, naming the line of the first. A file is read in chunks of ~120k rows and
may have tens of millions, so looking a chunk's keys up must cost in proportion to
the chunk, not to the file read so far, and the keys must be held compactly.
"""

from __future__ import annotations

import mmap
import tempfile
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

    - each chunk's new keys, exactly, as one Arrow string array, with their lines,
      written once to a temporary file (:class:`SpooledKeys`) and read back only where
      a hash is found again: a repeat, or two keys sharing a hash;
    - in memory, a 64-bit hash of every key, with the key's ordinal (its place in the
      order the keys were added, which locates its chunk and position), in sorted runs:
      a chunk adds one run, and a run at least as long as the one before it is merged
      into it, so there are O(log n) runs and each key is copied O(log n) times in all.
      A chunk's keys are looked up in each run by binary search.

    A hash found is only a candidate: the key it belongs to is compared exactly, so two
    different keys that share a hash are never taken for one. Exact keys were chosen
    over a 128-bit hash without them: no argument about collision odds is needed. Per
    key: its hash (8 bytes) and ordinal (4) in memory, merging the largest runs briefly
    ~20 bytes more; the key's text with a 4-byte offset and its line (8) on disk.
    """

    def __init__(self) -> None:
        self._run_hashes: list[np.ndarray] = []  # each sorted
        self._run_ordinals: list[np.ndarray] = []  # the ordinals of those hashes, in step
        self._chunks = SpooledKeys()  # per chunk, the keys it added and their lines
        self._starts: list[int] = [0]  # the ordinal of each chunk's first key; then the count

    def close(self) -> None:
        """Let the spooled keys go; no more keys are looked up."""
        self._chunks.close()

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
            keys_there, lines_there = self._chunks.take(
                chunk, ordinals[begin:end] - self._starts[chunk]
            )
            stored.append(keys_there)
            lines.append(lines_there)
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
        self._chunks.add(keys, lines)
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


class SpooledKeys:
    """Chunks of keys with their lines, written to a temporary file as they come and read
    back by position: the file is mapped into memory, so a look-up reads the pages of the
    keys it takes, and only the operating system's cache holds the rest."""

    def __init__(self) -> None:
        # Outlives this call: closed with the keys (:meth:`close`), or when collected.
        self._file = tempfile.TemporaryFile()  # noqa: SIM115
        #: Per chunk: where its keys begin, their size in bytes, where their lines begin.
        self._places: list[tuple[int, int, int]] = []
        self._size = 0
        self._map: pa.Buffer | None = None

    def add(self, keys: pa.Array, lines: np.ndarray) -> None:
        """Write one more chunk: its keys (Arrow's stream format) and their lines."""
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, pa.schema([("key", keys.type)])) as writer:
            writer.write_batch(pa.record_batch([keys], names=["key"]))
        written = sink.getvalue()
        self._file.seek(self._size)
        self._file.write(written)
        self._file.write(lines.astype(np.int64, copy=False).tobytes())
        self._places.append((self._size, written.size, self._size + written.size))
        self._size += written.size + 8 * len(lines)

    def take(self, chunk: int, positions: np.ndarray) -> tuple[pa.Array, np.ndarray]:
        """The keys of a chunk at ``positions`` (into the chunk), and their lines."""
        at, size, lines_at = self._places[chunk]
        mapped = self._mapped()
        keys = pa.ipc.open_stream(mapped.slice(at, size)).read_next_batch().column(0)
        lines = np.frombuffer(mapped, np.int64, len(keys), lines_at)
        return keys.take(pa.array(positions)), lines[positions]

    def _mapped(self) -> pa.Buffer:
        """The file as written so far, mapped; mapped again once it has grown."""
        if self._map is None or self._map.size < self._size:
            self._file.flush()
            self._map = pa.py_buffer(
                mmap.mmap(self._file.fileno(), self._size, prot=mmap.PROT_READ)
            )
        return self._map

    def close(self) -> None:
        self._map = None
        self._file.close()
