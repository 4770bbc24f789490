"""Distinct keys, each with a 64-bit value, held compactly: millions of them looked up a
batch at a time at a cost in proportion to the batch.

Used where a stage must tell, of a stream of keys, which it has met before: the intake
for a key a file repeats (ICD §1), the store for the verdict records that already hold.

How the keys are held:

- exactly, a batch at a time as one Arrow string array with the batch's values,
  written once to a temporary file (:class:`SpooledKeys`) and read back only where a
  hash is found again: a key met again, or two keys sharing a hash;
- in memory, a 64-bit hash of every key with the key's ordinal (its place in the order
  the keys were added, which locates its batch and position), in sorted runs: a batch
  adds one run, and a run at least as long as the one before it is merged into it, so
  there are O(log n) runs and each key is copied O(log n) times in all. A batch's keys
  are looked up in each run by binary search.

A hash found is only a candidate: the key it belongs to is compared exactly, so two
different keys that share a hash are never taken for one. Exact keys were chosen over a
128-bit hash without them: no argument about collision odds is needed. Per key: its hash
(8 bytes) and ordinal (4) in memory, merging the largest runs briefly ~20 bytes more;
the key's text with a 4-byte offset and its value (8) on disk.
"""

from __future__ import annotations

import mmap
import tempfile
from itertools import pairwise

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def key_hashes(keys: pd.Series) -> np.ndarray:
    """A 64-bit hash of each key: equal keys have equal hashes, which is all we rely on."""
    return pd.util.hash_pandas_object(keys, index=False).to_numpy(dtype=np.uint64)


class KeyIndex:
    """Distinct keys with a value each, numbered in the order they were added.

    :meth:`add` takes keys not in the index yet; :meth:`find` tells, for each key asked,
    its ordinal and value, or -1 where it is not in the index; :meth:`take` gives keys
    and values back by ordinal. A missing key (null) is a key like any other.
    """

    def __init__(self) -> None:
        self._run_hashes: list[np.ndarray] = []  # each sorted
        self._run_ordinals: list[np.ndarray] = []  # the ordinals of those hashes, in step
        self._batches = SpooledKeys()  # per batch, the keys it added and their values
        self._starts: list[int] = [0]  # the ordinal of each batch's first key; then the count

    def __len__(self) -> int:
        return self._starts[-1]

    def close(self) -> None:
        """Let the spooled keys go; no more keys are added or looked up."""
        self._batches.close()

    def add(self, keys: pa.Array, hashes: np.ndarray, values: np.ndarray) -> None:
        """Add ``keys`` (distinct, none in the index yet, hashed by :func:`key_hashes`),
        each with its value; they take the next ordinals, in order."""
        start = self._starts[-1]
        if start + len(keys) > np.iinfo(np.uint32).max:
            raise ValueError("more distinct keys than a KeyIndex can number")
        self._batches.add(keys, values)
        self._starts.append(start + len(keys))
        order = np.argsort(hashes)
        self._run_hashes.append(hashes[order])
        self._run_ordinals.append((order + start).astype(np.uint32))
        runs = self._run_hashes
        while len(runs) > 1 and len(runs[-2]) <= len(runs[-1]):
            self._merge_last_runs()

    def find(self, keys: pa.Array, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each key, its ordinal and value; -1 and 0 where it is not in the index."""
        found = np.full(len(hashes), -1, dtype=np.int64)
        values = np.zeros(len(hashes), dtype=np.int64)
        # Asked in order of hash, the binary searches walk each run forward: several
        # times faster than in the keys' order once a run outgrows the CPU's caches.
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
                if not len(asked):
                    break
                ordinals = run_ordinals[at].astype(np.int64)
                stored, stored_values = self.take(ordinals)
                wanted = keys.take(pa.array(asked))
                equal = pc.fill_null(
                    pc.equal(stored, wanted), pc.and_(stored.is_null(), wanted.is_null())
                )
                same = equal.to_numpy(zero_copy_only=False)
                found[asked[same]] = ordinals[same]
                values[asked[same]] = stored_values[same]
                asked, at = asked[~same], at[~same] + 1
        return found, values

    def take(self, ordinals: np.ndarray) -> tuple[pa.Array, np.ndarray]:
        """The keys of ``ordinals``, in their order, with their values."""
        if not len(ordinals):
            return pa.array([], pa.string()), np.array([], dtype=np.int64)
        # In order of ordinal, the keys come from each batch in one take.
        order = np.argsort(ordinals, kind="stable")
        ordered = ordinals[order]
        batches = np.searchsorted(self._starts, ordered, side="right") - 1
        bounds = [0, *(np.flatnonzero(np.diff(batches)) + 1), len(batches)]
        keys: list[pa.Array] = []
        values: list[np.ndarray] = []
        for begin, end in pairwise(bounds):
            batch = batches[begin]
            keys_there, values_there = self._batches.take(
                batch, ordered[begin:end] - self._starts[batch]
            )
            keys.append(keys_there)
            values.append(values_there)
        back = np.empty(len(ordinals), dtype=np.int64)
        back[order] = np.arange(len(ordinals))
        return pa.concat_arrays(keys).take(pa.array(back)), np.concatenate(values)[back]

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
    """Batches of keys with their values, written to a temporary file as they come and
    read back by position: the file is mapped into memory, so a look-up reads the pages
    of the keys it takes, and only the operating system's cache holds the rest."""

    def __init__(self) -> None:
        # Outlives this call: closed with the keys (:meth:`close`), or when collected.
        self._file = tempfile.TemporaryFile()  # noqa: SIM115
        #: Per batch: where its keys begin, their size in bytes, where their values begin.
        self._places: list[tuple[int, int, int]] = []
        self._size = 0
        self._map: pa.Buffer | None = None

    def add(self, keys: pa.Array, values: np.ndarray) -> None:
        """Write one more batch: its keys (Arrow's stream format) and their values."""
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, pa.schema([("key", keys.type)])) as writer:
            writer.write_batch(pa.record_batch([keys], names=["key"]))
        written = sink.getvalue()
        self._file.seek(self._size)
        self._file.write(written)
        self._file.write(values.astype(np.int64, copy=False).tobytes())
        self._places.append((self._size, written.size, self._size + written.size))
        self._size += written.size + 8 * len(values)

    def take(self, batch: int, positions: np.ndarray) -> tuple[pa.Array, np.ndarray]:
        """The keys of a batch at ``positions`` (into the batch), and their values."""
        at, size, values_at = self._places[batch]
        mapped = self._mapped()
        keys = pa.ipc.open_stream(mapped.slice(at, size)).read_next_batch().column(0)
        values = np.frombuffer(mapped, np.int64, len(keys), values_at)
        return keys.take(pa.array(positions)), values[positions]

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
