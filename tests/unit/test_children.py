"""The hub's child processes: their arguments, and their end with their parent's."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from vehiclehub.children import ORPHANED, child_arguments


def test_a_child_takes_its_argument_and_its_parent(capsys: pytest.CaptureFixture[str]) -> None:
    assert child_arguments(["/tmp/x", "41"], "vehiclehub.quality.datadocs", "FOLDER") == (
        "/tmp/x",
        41,
    )
    for wrong in ([], ["/tmp/x"], ["/tmp/x", "pid"], ["/tmp/x", "41", "more"]):
        assert child_arguments(wrong, "vehiclehub.quality.datadocs", "FOLDER") is None
    said = capsys.readouterr().err
    assert "usage: python -m vehiclehub.quality.datadocs FOLDER PARENT_PID" in said


def test_a_child_whose_parent_is_gone_ends_as_orphaned() -> None:
    """A child told of a parent that is not its own (as after its parent's death) ends."""
    program = (
        "import time; from vehiclehub.children import become_child; become_child(1); time.sleep(30)"
    )
    started = time.monotonic()
    child = subprocess.run([sys.executable, "-c", program], timeout=20, check=False)
    assert child.returncode == ORPHANED and time.monotonic() - started < 15
