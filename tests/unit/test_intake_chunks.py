"""Intake in chunks: line numbers, repeated keys and counts across chunk boundaries."""

from __future__ import annotations

import hashlib
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date
from itertools import chain
from multiprocessing.connection import Connection
from pathlib import Path

import pandas as pd
import pytest
from tests.conftest import process_gone
from tests.factories import Vehicle, columns, read_whole

from vehiclehub.crypto import ArchiveWriter
from vehiclehub.intake import read
from vehiclehub.intake.chunks import (
    AHEAD,
    FileJob,
    Finished,
    Prepared,
    Preparer,
    _Inbox,
    prepare_file,
)
from vehiclehub.intake.manifest import FileRejected, Manifest
from vehiclehub.intake.read import read_chunks, scan
from vehiclehub.quality.history import VolumeBaseline

KEY = b"k" * 32
HEADER = columns("tax", "refunds")


def _line(row: dict[str, str]) -> str:
    return ",".join(str(row.get(c) or "") for c in HEADER)


def _refunds(n: int) -> list[str]:
    return [_line(Vehicle().refund(refund_no=f"R{i:06d}")) for i in range(n)]


def _file(lines: list[str]) -> bytes:
    return ("\n".join([",".join(HEADER), *lines]) + "\n").encode()


def _blocks(data: bytes, size: int = 100) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_lines_keep_their_numbers_across_chunks() -> None:
    lines = _refunds(40)
    lines[4] = "R1,x"  # line 6: too few fields
    lines[29] = lines[29] + ",surplus"  # line 31: too many
    data = _file(lines)
    chunks = list(read_chunks(_blocks(data), "utf-8-sig", chunk_bytes=600))
    assert len(chunks) > 3
    frame = pd.concat([c.frame for c in chunks])
    malformed = pd.concat([c.malformed for c in chunks])
    assert malformed[["line", "fields"]].values.tolist() == [[6, 2], [31, len(HEADER) + 1]]
    assert sum(c.rows for c in chunks) == 40
    assert 4 not in frame.index and 29 not in frame.index
    assert frame.loc[39, "refund_no"] == "R000039" and frame.loc[5, "refund_no"] == "R000005"
    whole, whole_malformed = read_whole(data, "utf-8-sig")
    assert whole.loc[frame.index].equals(frame)
    assert whole_malformed["line"].tolist() == [6, 31]


def test_undecodable_bytes_are_found_at_their_offset_in_any_block() -> None:
    data = _file(_refunds(3))
    broken = data[:150] + b"\xff" + data[150:]
    found = scan(_blocks(broken, 7), "utf-8-sig")
    assert found.sha256 == hashlib.sha256(broken).hexdigest()
    assert found.undecodable is not None and "offset 150" in found.undecodable


def _job(tmp_path: Path, data: bytes, rows: int) -> FileJob:
    writer = ArchiveWriter(tmp_path / "file.csv.enc", KEY)
    writer.write(data)
    writer.commit()
    name = "tax_refunds_20251103_001.csv"
    manifest = Manifest(
        file=name,
        agency="tax",
        feed="refunds",
        business_date=date(2025, 11, 3),
        seq=1,
        rows=rows,
        sha256=hashlib.sha256(data).hexdigest(),
        encoding="utf-8",
        schema_version="1",
    )
    baseline = VolumeBaseline(0, reason="no history")
    return FileJob("tax", "refunds", manifest, writer.path, KEY, b"pseudonyms", baseline)


def test_a_key_repeated_in_a_later_chunk_is_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(read, "CHUNK_BYTES", 600)
    lines = _refunds(30)
    lines.append(lines[2])  # line 32 repeats line 4's key
    items = list(prepare_file(_job(tmp_path, _file(lines), 31)))
    prepared = [i.records for i in items if isinstance(i, Prepared)]
    (verdict,) = [i for i in items if isinstance(i, Finished)]
    assert len(prepared) > 3
    assert sum(len(r) for r in prepared) == 30
    assert verdict.rows == 31
    assert verdict.problems["line"].tolist() == [32]
    assert "first on line 4" in str(verdict.problems.loc[0, "error"])
    # The gate saw every valid row, the repeated one too.
    record_key = next(o for o in verdict.quality.outcomes if o.expectation == "key_unique_in_file")
    assert record_key.outcome == "failed"


def test_a_row_count_beyond_the_manifest_rejects_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileRejected, match="more than 2 data rows"):
        list(prepare_file(_job(tmp_path, _file(_refunds(3)), 2)))


def test_the_worker_process_prepares_what_the_caller_would(tmp_path: Path) -> None:
    lines = _refunds(20)
    lines[3] = "R1,x"
    job = _job(tmp_path, _file(lines), 20)
    here = list(Preparer(use_worker=False).run(job))
    with Preparer(use_worker=True, worker_rows=0) as preparer:
        there = list(preparer.run(job))
        with pytest.raises(FileRejected, match="row count mismatch"):
            list(preparer.run(_job(tmp_path, _file(lines), 21)))
        # After a rejected file the same worker takes the next one.
        again = list(preparer.run(job))
    for items in (there, again):
        assert [type(i) for i in items] == [type(i) for i in here] == [Prepared, Finished]
        assert isinstance(items[0], Prepared) and isinstance(here[0], Prepared)
        assert items[0].records.equals(here[0].records)
        assert isinstance(items[1], Finished) and isinstance(here[1], Finished)
        assert items[1].problems.equals(here[1].problems)
        assert items[1].problems["line"].tolist() == [5]


#: A program whose ``__main__`` cannot be imported a second time, as Airflow's entry
#: point cannot in a task process (no metadata database there): a multiprocessing
#: "spawn" child, which re-imports its parent's ``__main__``, would die on it.
NOT_REIMPORTABLE = """
import os, pickle, sys
if __name__ != "__main__":
    raise SystemExit("the intake worker re-imported its parent's __main__")
from vehiclehub.intake.chunks import Finished, Prepared, Preparer
job = pickle.loads(open(sys.argv[1], "rb").read())
with Preparer(use_worker=True, worker_rows=0) as preparer:
    items = list(preparer.run(job))
    print(preparer.worker_pid != os.getpid(), flush=True)
print(sum(len(i.records) for i in items if isinstance(i, Prepared)), flush=True)
"""

#: A program that starts the worker and waits to be killed.
STARTS_WORKER = """
import sys, time
from vehiclehub.intake.chunks import Preparer
preparer = Preparer(use_worker=True, worker_rows=0)
preparer.warm(1)
print(preparer.worker_pid, flush=True)
time.sleep(600)
"""


def test_the_worker_imports_nothing_of_the_program_that_starts_it(tmp_path: Path) -> None:
    lines = _refunds(20)
    (tmp_path / "job.pickle").write_bytes(pickle.dumps(_job(tmp_path, _file(lines), 20)))
    script = tmp_path / "airflow_like.py"
    script.write_text(NOT_REIMPORTABLE)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "job.pickle")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "airflow-db-not-allowed:///"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "20"]


def test_the_worker_ends_when_its_intake_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "intake.py"
    script.write_text(STARTS_WORKER)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        worker = int(parent.stdout.readline())
        time.sleep(1.5)  # several of the worker's parent checks: an idle worker stays
        assert not process_gone(worker)
        os.kill(parent.pid, signal.SIGKILL)  # nothing of the intake's clean-up runs
        parent.wait(timeout=10)
        assert process_gone(worker, within_s=10), f"worker {worker} outlived its killed intake"
    finally:
        parent.kill()
        parent.wait()


def _never_read() -> Iterator[int]:
    raise AssertionError("the files ahead were read")
    yield 0


def test_a_worker_is_warmed_ahead_for_a_big_file_further_on() -> None:
    with Preparer(use_worker=True, worker_rows=10) as preparer:
        preparer.warm_ahead([1, 9])
        assert preparer.worker_pid is None  # no file big enough: none started
        preparer.warm_ahead(chain([1, 10], _never_read()))
        assert preparer.worker_pid is not None  # read as far as the big file only
        preparer.warm_ahead(_never_read())  # one is running
    Preparer(use_worker=False, worker_rows=0).warm_ahead(_never_read())


def test_the_worker_s_messages_are_received_ahead_of_the_loader_up_to_a_bound() -> None:
    """The worker's chunks are taken off its socket while the loader is busy, so that it
    goes on preparing; no more than AHEAD wait, and they come in the order sent. A closed
    socket is received last, as lost."""
    ours, theirs = socket.socketpair()
    mine, worker = Connection(ours.detach()), Connection(theirs.detach())
    inbox = _Inbox(mine)
    try:
        sent = [("item", n) for n in range(AHEAD + 5)]
        for message in sent:
            worker.send(message)
        deadline = time.monotonic() + 10
        while inbox.waiting < AHEAD and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        assert inbox.waiting == AHEAD  # the bound: the rest wait in the socket
        worker.close()
        got = []
        while (message := inbox.get(5)) is not None and message[0] != "lost":
            got.append(message)
        assert got == sent and message == ("lost", None)
    finally:
        inbox.close()
        mine.close()
    assert inbox.get(0.01) is None


def test_a_preparer_closed_mid_file_leaves_no_inbox_behind(tmp_path: Path) -> None:
    job = _job(tmp_path, _file(_refunds(20)), 20)
    preparer = Preparer(use_worker=True, worker_rows=0)
    items = preparer.run(job)
    assert isinstance(next(items), Prepared)
    items.close()  # the load failed: the worker is stopped
    assert preparer.worker_pid is None
    assert not [t for t in threading.enumerate() if t.name == "vhub-intake-inbox"]
