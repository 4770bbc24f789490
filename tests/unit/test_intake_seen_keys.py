"""SeenKeys: the line of a key's first row in a file, chunk after chunk."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vehiclehub.intake import seen_keys
from vehiclehub.intake.seen_keys import SeenKeys


def _first_lines(seen: SeenKeys, keys: list[str | None], first_line: int) -> list[int]:
    lines = np.arange(first_line, first_line + len(keys), dtype=np.int64)
    return seen.first_lines(pd.Series(keys, dtype="str"), lines).tolist()


def _reference(chunks: list[list[str]]) -> list[list[int]]:
    """The first line of each row's key, by a dict over the whole file."""
    first: dict[str, int] = {}
    result, line = [], 2
    for chunk in chunks:
        result.append([first.setdefault(key, line + i) for i, key in enumerate(chunk)])
        line += len(chunk)
    return result


def _feed(seen: SeenKeys, chunks: list[list[str]]) -> list[list[int]]:
    result, line = [], 2
    for chunk in chunks:
        result.append(_first_lines(seen, list(chunk), line))
        line += len(chunk)
    return result


def test_a_key_repeated_within_a_chunk_names_its_first_line() -> None:
    seen = SeenKeys()
    assert _first_lines(seen, ["E1", "E2", "E1", "E3", "E2", "E1"], 2) == [2, 3, 2, 5, 3, 2]
    assert len(seen) == 3
    # Repeated twice in a later chunk: both name the first chunk's line.
    assert _first_lines(seen, ["E4", "E2", "E2"], 8) == [8, 3, 3]


def test_keys_repeated_across_chunks_far_apart_after_many_merges() -> None:
    rng = np.random.default_rng(7)
    chunks: list[list[str]] = []
    for c in range(37):
        # chunks of uneven sizes, so runs of every length merge
        fresh = [f"PE31002025{c:04d}{i:08d}" for i in range(int(rng.integers(1, 400)))]
        chunks.append(fresh)
    # the first chunk's first key, a middle chunk's and the last's, near the end
    chunks.append([chunks[0][0], chunks[18][0], chunks[36][-1], "new"])
    seen = SeenKeys()
    got = _feed(seen, chunks)
    assert got == _reference(chunks)
    line_of_middle = 2 + sum(len(c) for c in chunks[:18])
    assert got[-1][:2] == [2, line_of_middle]
    assert got[-1][3] == sum(len(c) for c in chunks) + 1  # its own line
    # The 37 chunks' runs were merged down to a few.
    assert len(seen._keys._run_hashes) <= 6


def test_random_repeats_match_a_whole_file_dictionary() -> None:
    rng = np.random.default_rng(11)
    pool = [f"EV{n:020d}" for n in rng.choice(10**12, size=3_000, replace=False)]
    chunks = [[pool[i] for i in rng.integers(0, len(pool), size=250)] for _ in range(30)]
    assert _feed(SeenKeys(), chunks) == _reference(chunks)


def test_different_keys_sharing_a_hash_are_not_taken_for_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every key hashes alike: only the exact comparison tells them apart.
    monkeypatch.setattr(
        seen_keys, "key_hashes", lambda keys: np.full(len(keys), 42, dtype=np.uint64)
    )
    chunks = [[f"E{c}-{i}" for i in range(5)] for c in range(9)]
    chunks.append(["E3-1", "E9-9", "E0-4"])
    seen = SeenKeys()
    got = _feed(seen, chunks)
    assert got == _reference(chunks)
    assert got[-1] == [2 + 3 * 5 + 1, 2 + 45 + 1, 2 + 4]
    assert len(seen) == 46


def test_a_near_miss_is_not_a_repeat() -> None:
    seen = SeenKeys()
    assert _first_lines(seen, ["E10", "a\x1fbc", "E1"], 2) == [2, 3, 4]
    assert _first_lines(seen, ["E1 ", "ab\x1fc", "e1", "E100", "E1"], 5) == [5, 6, 7, 8, 4]


def test_a_missing_key_counts_as_one_key() -> None:
    seen = SeenKeys()
    assert _first_lines(seen, [None, "E1", None], 2) == [2, 3, 2]
    assert _first_lines(seen, ["E2", None], 5) == [5, 2]


def test_the_keys_seen_are_let_go_when_closed() -> None:
    seen = SeenKeys()
    assert _first_lines(seen, ["E1", "E2"], 2) == [2, 3]
    assert _first_lines(seen, ["E2"], 4) == [3]
    seen.close()
    with pytest.raises(ValueError, match="closed"):
        _first_lines(seen, ["E3"], 5)
