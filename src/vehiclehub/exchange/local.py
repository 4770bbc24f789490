"""A local-directory exchange (``file://`` urls): the demo's and the tests' transport.

The agency writes into its outbox, so what is there is not trusted: the hub reads
regular files only, never follows a link (out of the outbox or anywhere else) and
never blocks on a pipe or a device.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlparse

from vehiclehub.config import AgencyEndpoint
from vehiclehub.exchange.base import (
    PART_SUFFIX,
    ExchangeMisconfigured,
    NotRegularFile,
)

log = logging.getLogger(__name__)


class LocalExchange:
    """An agency root on the local file system."""

    def __init__(self, agency: str, endpoint: AgencyEndpoint) -> None:
        self.agency = agency
        self.root = Path(unquote(urlparse(endpoint.url).path))
        self.description = f"{agency} at {self.root}"
        self.inbox_mode = int(endpoint.inbox_mode, 8)
        outbox = self.root / "outbox"
        if not outbox.is_dir():
            raise ExchangeMisconfigured(f"{agency}: no outbox/ under {self.root}")
        if not outbox.resolve().is_relative_to(self.root.resolve()):
            raise ExchangeMisconfigured(
                f"{agency}: outbox/ under {self.root} leads out of the agency's root "
                f"(to {outbox.resolve()}); the hub reads nothing outside it"
            )

    def list_outbox(self) -> list[str]:
        """Every entry but directories: a link or a device is listed, and rejected when read."""
        with os.scandir(self.root / "outbox") as entries:
            return sorted(e.name for e in entries if not e.is_dir(follow_symlinks=False))

    @contextmanager
    def _open(self, name: str) -> Iterator[BinaryIO]:
        """``outbox/name`` opened for reading if it is a regular file; NotRegularFile if not."""
        if not name or "/" in name or "\x00" in name or name in (".", ".."):
            raise NotRegularFile(f"{name!r} is not a plain file name")
        path = self.root / "outbox" / name
        try:
            # O_NOFOLLOW refuses a link; O_NONBLOCK keeps a pipe from blocking the open.
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as exc:
            if os.path.islink(path):
                raise NotRegularFile(
                    f"outbox/{name} is a symbolic link; the hub takes regular files only"
                ) from exc
            raise
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise NotRegularFile(
                    f"outbox/{name} is not a regular file (a pipe, socket or device); "
                    "the hub takes regular files only"
                )
            os.set_blocking(fd, True)
            source = os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise
        with source:
            yield source

    def read_outbox(self, name: str, limit: int | None = None) -> bytes:
        with self._open(name) as source:
            return source.read(-1 if limit is None else limit)

    def copy_outbox(self, name: str, sink: BinaryIO, chunk_size: int = 1 << 20) -> int:
        copied = 0
        with self._open(name) as source:
            while chunk := source.read(chunk_size):
                sink.write(chunk)
                copied += len(chunk)
        return copied

    def put_inbox(self, name: str, source: BinaryIO) -> None:
        inbox = self.root / "inbox"
        inbox.mkdir(parents=True, exist_ok=True)
        part = inbox / (name + PART_SUFFIX)
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
                sink.flush()
                # The agency's group (the inbox's) may read it, as inbox_mode says.
                try:
                    os.fchown(sink.fileno(), -1, inbox.stat().st_gid)
                except PermissionError:
                    log.warning("%s: cannot give %s the inbox's group", self.agency, name)
                os.fchmod(sink.fileno(), self.inbox_mode)
                os.fsync(sink.fileno())
        except BaseException:  # its volume full, say: no half-written drop left behind
            part.unlink(missing_ok=True)
            raise
        os.replace(part, inbox / name)

    def list_inbox(self) -> list[str]:
        inbox = self.root / "inbox"
        return sorted(p.name for p in inbox.iterdir() if p.is_file()) if inbox.is_dir() else []

    def close(self) -> None:
        return None
