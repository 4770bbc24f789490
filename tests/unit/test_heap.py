"""The heap: large blocks freed go back to the system, whatever was freed before them."""

from __future__ import annotations

import ctypes
import subprocess
import sys
from contextlib import suppress

import pytest

#: Frees a 20 MiB block (glibc then raises its mmap threshold to that size), allocates
#: twenty 6 MiB blocks, frees every other one, and prints the resident MiB given back.
_FREED = """
import sys
import numpy as np
from vehiclehub.heap import map_large_blocks

def resident():
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS"))
    return int(line.split()[1]) // 1024

if sys.argv[1] == "fixed":
    assert map_large_blocks()
big = np.ones(20 * 2**20, np.uint8)
del big
blocks = [np.ones(6 * 2**20, np.uint8) for _ in range(20)]
kept = blocks[1::2]
before = resident()
del blocks
print(before - resident())
"""


def _glibc() -> bool:
    with suppress(OSError):
        return hasattr(ctypes.CDLL("libc.so.6"), "mallopt")
    return False


def _given_back(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _FREED, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


@pytest.mark.skipif(not _glibc(), reason="glibc's malloc only")
def test_large_blocks_freed_between_kept_ones_go_back_to_the_system() -> None:
    assert _given_back("fixed") >= 50  # ten 6 MiB blocks freed
    # Near miss: with glibc's own threshold, raised by the 20 MiB block, they stay.
    assert _given_back("dynamic") < 20
