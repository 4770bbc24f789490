"""The keys of a file's rows read so far, to catch a key the file repeats (ICD §1).

A file holds at most one row per key: a later row with the key of an earlier one is
rejected, naming the line of the first. A file is read in chunks of ~120k rows and
may have tens of millions, so looking a chunk's keys up must cost in proportion to
the chunk, not to the file read so far, and the keys must be held compactly
(:class:`vehiclehub.key_index.KeyIndex`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from vehiclehub.identifiers import arrow_text
from vehiclehub.key_index import KeyIndex, key_hashes


class SeenKeys:
    """The distinct keys of a file's rows read so far, each with the line it was first on.

    :meth:`first_lines` takes a chunk's keys in file order and tells, for each row, the
    line of the file's first row with its key: its own line when it is the first, an
    earlier one when it repeats a key. The keys are compared exactly; in memory each
    takes 12 bytes, its text and line are spooled to a temporary file.
    """

    def __init__(self) -> None:
        self._keys = KeyIndex()  # each distinct key, with its first line as its value

    def close(self) -> None:
        """Let the spooled keys go; no more keys are looked up."""
        self._keys.close()

    def __len__(self) -> int:
        return len(self._keys)

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
        ordinals, earlier = self._keys.find(exact, hashes)
        new = ordinals < 0
        first_lines = np.where(new, lines[first], earlier)
        if new.all():
            self._keys.add(exact, hashes, first_lines)
        elif new.any():
            self._keys.add(exact.filter(pa.array(new)), hashes[new], first_lines[new])
        result: np.ndarray = first_lines[codes]
        return result
