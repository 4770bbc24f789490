"""KeyIndex: distinct keys with a value each, compared exactly, spooled to disk."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from vehiclehub.key_index import KeyIndex, SpooledKeys, key_hashes


def _add(index: KeyIndex, keys: list[str | None], values: list[int]) -> None:
    index.add(
        pa.array(keys, pa.string()), key_hashes(pd.Series(keys, dtype="str")), np.array(values)
    )


def _find(index: KeyIndex, keys: list[str | None]) -> tuple[list[int], list[int]]:
    ordinals, values = index.find(
        pa.array(keys, pa.string()), key_hashes(pd.Series(keys, dtype="str"))
    )
    return ordinals.tolist(), values.tolist()


def test_keys_are_found_with_their_ordinals_and_values_across_batches() -> None:
    index = KeyIndex()
    _add(index, ["R1", "R2", None], [10, 20, 30])
    _add(index, ["R3"], [-5])
    assert len(index) == 4
    assert _find(index, ["R3", "R9", None, "R1"]) == ([3, -1, 2, 0], [-5, 0, 30, 10])
    keys, values = index.take(np.array([3, 0, 2]))
    assert keys.to_pylist() == ["R3", "R1", None] and values.tolist() == [-5, 10, 30]


def test_many_batches_match_a_dictionary_after_their_runs_merge() -> None:
    rng = np.random.default_rng(3)
    index, reference = KeyIndex(), {}
    for batch in range(41):
        keys = [f"DEREG-{batch:03d}-{i:05d}" for i in range(int(rng.integers(1, 300)))]
        values = rng.integers(-(2**62), 2**62, len(keys))
        _add(index, keys, values.tolist())
        reference.update(zip(keys, values.tolist(), strict=True))
    assert len(index._run_hashes) <= 7
    asked = [*rng.choice(list(reference), 500).tolist(), "DEREG-041-00000", "dereg-000-00000"]
    ordinals, values = _find(index, asked)
    assert values == [reference.get(key, 0) for key in asked]
    assert ordinals[-2:] == [-1, -1]
    keys, _ = index.take(np.array(ordinals[:-2]))
    assert keys.to_pylist() == asked[:-2]


def test_different_keys_sharing_a_hash_are_not_taken_for_one() -> None:
    index = KeyIndex()
    same = np.full(3, 42, dtype=np.uint64)  # every key hashed alike
    index.add(pa.array(["A", "B", "C"]), same, np.array([1, 2, 3]))
    index.add(pa.array(["D"]), same[:1], np.array([4]))
    ordinals, values = index.find(pa.array(["C", "E", "D", "A"]), np.full(4, 42, np.uint64))
    assert ordinals.tolist() == [2, -1, 3, 0] and values.tolist() == [3, 0, 4, 1]


def test_a_near_miss_is_not_found() -> None:
    index = KeyIndex()
    _add(index, ["E1", "a\x1fbc"], [1, 2])
    assert _find(index, ["E1 ", "e1", "ab\x1fc", "E10"])[0] == [-1, -1, -1, -1]


def test_spooled_keys_are_read_back_by_position_after_more_are_written() -> None:
    spooled = SpooledKeys()
    spooled.add(pa.array(["E1", "E22", None, "E333"]), np.array([2, 3, 4, 5]))
    keys, values = spooled.take(0, np.array([3, 0]))
    assert keys.to_pylist() == ["E333", "E1"] and values.tolist() == [5, 2]
    # Written after the first look-up: the file is read again as it now is.
    spooled.add(pa.array(["F1", "F22"]), np.array([9, 11]))
    keys, values = spooled.take(1, np.array([1]))
    assert keys.to_pylist() == ["F22"] and values.tolist() == [11]
    keys, values = spooled.take(0, np.array([2, 1]))
    assert keys.to_pylist() == [None, "E22"] and values.tolist() == [4, 3]
    spooled.close()
    with pytest.raises(ValueError, match="closed"):
        spooled.add(pa.array(["G1"]), np.array([20]))


def test_an_index_closed_takes_no_more_keys() -> None:
    index = KeyIndex()
    _add(index, ["R1"], [1])
    index.close()
    with pytest.raises(ValueError, match="closed"):
        _add(index, ["R2"], [2])
