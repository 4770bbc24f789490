"""The processor side of taking a file: parse, validate and prepare it chunk by chunk.

:func:`prepare_file` reads an archived file in chunks and yields each chunk's
records ready for the store, then the file's verdict: its rejection rows and its
quality gate. What needs the whole file is gathered as the chunks go by: the row
count, the keys seen (a key repeated across chunks is caught) and the quality gate,
each chunk reduced at once to the few typed columns the gate reads, its row-wise
expectations validated a slice of rows at a time (quality.gate.FileGate). The file is
never held whole.

It runs in a worker process (:class:`Preparer`) while the intake's own process
loads the previous chunk into the store — the store has one writer, and the two
halves of the work each keep a core busy.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Generator, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from vehiclehub.contract import FeedSpec, feed
from vehiclehub.crypto import read_archive
from vehiclehub.errors import HubError
from vehiclehub.icd.manifest import Manifest
from vehiclehub.intake.manifest import FileRejected
from vehiclehub.intake.prepare import key_text, prepare_records
from vehiclehub.intake.read import Chunk, read_chunks
from vehiclehub.intake.seen_keys import SeenKeys
from vehiclehub.intake.validate import (
    REJECTION_COLUMNS,
    check_header,
    misplaced_personal_data,
    rejection_rows,
    validate_rows,
)
from vehiclehub.quality.gate import FileGate, FileQuality
from vehiclehub.quality.history import VolumeBaseline

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileJob:
    """Everything the processor needs to take one archived file (picklable)."""

    agency: str
    feed: str
    manifest: Manifest
    archive_path: Path
    archive_key: bytes
    pseudonym_key: bytes
    baseline: VolumeBaseline


@dataclass
class Prepared:
    """A chunk's valid records, one per key, ready for ``load_records``."""

    records: pd.DataFrame


@dataclass
class Finished:
    """The file read to its end: its row, key and line rejections, and its quality gate."""

    rows: int
    problems: pd.DataFrame
    quality: FileQuality


class QualityRejected(FileRejected):
    """A file rejected whole by a failed critical expectation of its quality gate."""

    def __init__(self, quality: FileQuality) -> None:
        super().__init__(quality.rejection())
        self.quality = quality


@dataclass
class _FileRows:
    """What is gathered of a file while its chunks go by, for the whole-file checks."""

    spec: FeedSpec
    gate: FileGate
    rows: int = 0
    problems: list[pd.DataFrame] = field(default_factory=list)
    seen_keys: SeenKeys = field(default_factory=SeenKeys)

    def first_lines(self, records: pd.DataFrame) -> np.ndarray:
        """Each record's file line of the first row with its key (its own unless it
        repeats a key of an earlier row of the file); adds the repeats' rejections."""
        lines = records["line"].to_numpy()
        first = first_lines_of(self.seen_keys, self.spec, records)
        repeated = first != lines
        if repeated.any():
            self.problems.append(
                rejection_rows(
                    self.spec,
                    "/".join(self.spec.key),
                    lines[repeated],
                    key_text(self.spec, records[repeated]),
                    (
                        f"key repeated in the same file (first on line {n}); "
                        "a file holds at most one row per key"
                        for n in first[repeated]
                    ),
                )
            )
        return first


def first_lines_of(seen_keys: SeenKeys, spec: FeedSpec, records: pd.DataFrame) -> np.ndarray:
    """Each prepared record's line of the file's first row with its key (its own unless it
    repeats one), the keys read so far held by ``seen_keys``, which remembers these too."""
    text = key_text(spec, records, sep="\x1f")  # a separator no key value holds
    return seen_keys.first_lines(text, records["line"].to_numpy())


def _malformed_rejections(malformed: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "line": malformed["line"],
            "column": None,
            "value": None,
            "error": [
                f"line has {got} fields, the header has {want}"
                for got, want in zip(malformed["fields"], malformed["expected"], strict=True)
            ],
        }
    )


def _count_mismatch(found: str, manifest: Manifest) -> FileRejected:
    return FileRejected(
        f"row count mismatch: the file has {found} data rows, the manifest says {manifest.rows}"
    )


def _prepare_chunk(
    seen: _FileRows, chunk: Chunk, pseudonym_key: bytes, business_date: date
) -> pd.DataFrame:
    """Validate and prepare one chunk; gather what the whole-file checks need."""
    spec = seen.spec
    # One rejection per (line, column): where a value is personal data, that is what
    # its sender is told.
    problems = pd.concat(
        [
            misplaced_personal_data(spec, chunk.frame, business_date),
            validate_rows(spec, chunk.frame),
        ],
        ignore_index=True,
    ).drop_duplicates(["line", "column"])
    if not problems.empty:
        seen.problems.append(problems)
    if not chunk.malformed.empty:
        seen.problems.append(_malformed_rejections(chunk.malformed))
    bad_index = pd.Index(problems["line"].astype("int64") - 2).unique()
    records = prepare_records(spec, chunk.frame.drop(index=bad_index), pseudonym_key)
    first = seen.first_lines(records)
    seen.gate.add(records, seen.rows, first)
    kept: pd.DataFrame = records[first == records["line"].to_numpy()]
    return kept


def prepare_file(job: FileJob) -> Iterator[Prepared | Finished]:
    """Parse, validate and prepare an archived file: its chunks' records, then its verdict.

    Raises FileRejected for a file rejected whole (unusable header, row count not
    the manifest's); a failed quality gate is in the verdict. Whatever else the file's
    content makes fail rejects it whole too: no file can stop the intake.
    """
    try:
        yield from _prepare_file(job)
    except FileRejected:
        raise
    except Exception as exc:
        # The traceback, not the message: a message may quote the file's content.
        log.error(
            "%s: failed reading the file (%s); it is rejected whole. Where:\n%s",
            job.manifest.file,
            type(exc).__name__,
            "".join(traceback.format_tb(exc.__traceback__)),
        )
        raise FileRejected(
            f"the hub could not read this file ({type(exc).__name__}); it is rejected whole "
            "and the hub's operators have the details in its log"
        ) from exc


def _prepare_file(job: FileJob) -> Iterator[Prepared | Finished]:
    spec = feed(job.agency, job.feed)
    manifest = job.manifest
    gate = FileGate(spec, manifest.business_date, job.baseline)
    seen = _FileRows(spec, gate)
    for chunk in read_chunks(read_archive(job.archive_path, job.archive_key), manifest.codec):
        if not seen.rows:
            check_header(spec, list(chunk.frame.columns))
        seen.rows += chunk.rows
        if seen.rows > manifest.rows:
            raise _count_mismatch(f"more than {manifest.rows}", manifest)
        yield Prepared(_prepare_chunk(seen, chunk, job.pseudonym_key, manifest.business_date))
    del chunk  # read_chunks yields at least one
    rows = seen.rows
    if rows != manifest.rows:
        raise _count_mismatch(str(rows), manifest)
    problems = (
        pd.concat(seen.problems, ignore_index=True)
        if seen.problems
        else pd.DataFrame(columns=REJECTION_COLUMNS)
    )
    seen.seen_keys.close()  # the keys seen are of no more use
    del seen
    # Arrow keeps freed blocks for reuse: the keys' go back to the system.
    pa.default_memory_pool().release_unused()
    # The quality gate sees the file's valid rows, repeated keys still in: the last slice,
    # then what needs the whole file.
    quality = gate.finish(rows)
    pa.default_memory_pool().release_unused()
    yield Finished(rows, problems, quality)


# --------------------------------------------------------------------------------------
# The worker process
# --------------------------------------------------------------------------------------


class PreparerFailed(HubError):
    """The worker process failed on a file for a reason other than the file's content."""


#: The worker's program (:mod:`vehiclehub.intake.worker`), run with this Python.
WORKER_MODULE = "vehiclehub.intake.worker"


#: The worker's messages received ahead of the loader at most (a prepared chunk each).
AHEAD = 3


class _Inbox:
    """The worker's messages, received by a thread of their own as they come, up to
    ``ahead`` of the loader: the worker goes on to its next chunk, and at a file's end to
    its quality gate, while the loader still writes the chunks before (its index builds
    and commits take seconds, in which a worker held to the chunk being sent would wait).

    A closed or broken socket is received as ``("lost", None)``, and ends the thread.
    """

    def __init__(self, connection: Connection, ahead: int = AHEAD) -> None:
        self._messages: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=ahead)
        self._closing = threading.Event()
        self._thread = threading.Thread(
            target=self._receive, args=(connection,), name="vhub-intake-inbox", daemon=True
        )
        self._thread.start()

    def _receive(self, connection: Connection) -> None:
        while not self._closing.is_set():
            try:
                message: tuple[str, Any] = connection.recv()
            except (OSError, EOFError):
                message = ("lost", None)
            while not self._closing.is_set():
                try:
                    self._messages.put(message, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if message[0] == "lost":
                return

    @property
    def waiting(self) -> int:
        """The messages received and not yet taken."""
        return self._messages.qsize()

    def get(self, timeout: float) -> tuple[str, Any] | None:
        """The next message, None if none came within ``timeout`` seconds."""
        try:
            return self._messages.get(timeout=timeout)
        except queue.Empty:
            return None

    def closing(self) -> None:
        """Keep no more messages: the loader takes none of them."""
        self._closing.set()

    def close(self) -> None:
        """Wait for the thread, which ends when the worker's end of the socket is closed
        (the worker gone)."""
        self._closing.set()
        self._thread.join()


class Preparer:
    """Runs :func:`prepare_file` in one worker process, up to :data:`AHEAD` chunks ahead
    of the loader.

    The worker is started for the first file of at least ``worker_rows`` rows and
    serves every file after it; smaller files before it, and every file where there
    is no second core, are prepared in the caller's process. A worker abandoned
    part-way through a file (its load failed) is stopped; the next big file starts a
    new one.

    The worker is ``python -m vehiclehub.intake.worker`` talking over a socket pair,
    so it imports nothing of the caller's program (under Airflow, Airflow's own entry
    point, which fails in a task process), and it ends when its caller dies.
    """

    #: How long to wait for the worker's next message before checking it is alive.
    POLL_S = 5.0

    def __init__(self, use_worker: bool | None = None, worker_rows: int = 50_000) -> None:
        if use_worker is None:
            use_worker = (os.cpu_count() or 1) > 1
        self.use_worker = use_worker
        self.worker_rows = worker_rows
        self._process: subprocess.Popen[bytes] | None = None
        self._connection: Connection | None = None
        self._inbox: _Inbox | None = None

    @property
    def worker_pid(self) -> int | None:
        """The running worker's process id, None when there is none."""
        return self._process.pid if self._process is not None and self._alive() else None

    def _alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _start(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", WORKER_MODULE, str(theirs.fileno()), str(os.getpid())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                close_fds=True,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._connection = Connection(ours.detach())
        self._inbox = _Inbox(self._connection)

    def warm(self, rows: int) -> None:
        """Start the worker ahead of a file of ``rows`` rows that it will prepare."""
        self.warm_ahead((rows,))

    def warm_ahead(self, rows: Iterable[int]) -> None:
        """Start the worker now if one of the files ahead, of ``rows`` rows each, is big
        enough to need it: it then prepares the smaller files before that one as well, and
        this process never loads the quality gate's stack (about 130 MB) on a night that
        has a worker anyway. ``rows`` is read only as far as a big file, and not at all
        when no worker is wanted or one is running."""
        wanted = self.use_worker and self._process is None
        if wanted and any(n >= self.worker_rows for n in rows):
            self._start()

    def run(self, job: FileJob) -> Generator[Prepared | Finished, None, None]:
        running = self._alive()
        if not self.use_worker or (job.manifest.rows < self.worker_rows and not running):
            yield from prepare_file(job)
            return
        if not running:
            self.close()
            self._start()
        assert self._connection is not None
        complete = False
        try:
            self._connection.send(job)
            while True:
                kind, payload = self._receive()
                if kind == "item":
                    yield payload
                elif kind == "end":
                    complete = True
                    return
                elif kind == "rejected":
                    complete = True
                    raise FileRejected(payload)
                else:
                    complete = True
                    raise PreparerFailed(f"{job.manifest.file}: {payload}")
        except (BrokenPipeError, ConnectionResetError, EOFError):
            raise self._ended() from None
        finally:
            if not complete:
                self.close()

    def _receive(self) -> tuple[str, Any]:
        assert self._inbox is not None
        while (message := self._inbox.get(self.POLL_S)) is None:
            if not self._alive():
                raise self._ended()
        if message[0] == "lost":
            raise EOFError("the worker's socket closed")
        return message

    def _ended(self) -> PreparerFailed:
        code = self._process.wait() if self._process is not None else None
        return PreparerFailed(f"the intake worker process ended (exit code {code})")

    def close(self) -> None:
        """Stop the worker, if one is running, and close its socket."""
        if self._inbox is not None:
            self._inbox.closing()
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        # The worker is gone: its end of the socket is closed, the inbox's thread ends.
        if self._inbox is not None:
            self._inbox.close()
            self._inbox = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def stop(self) -> None:
        """Let an idle worker finish, then release it and its socket."""
        if self._connection is not None and self._alive():
            with suppress(OSError):
                self._connection.send(None)
            assert self._process is not None
            with suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=10)
        self.close()

    def __enter__(self) -> Preparer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
