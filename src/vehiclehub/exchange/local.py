"""A local-directory exchange (``file://`` urls): the demo's and the tests' transport."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlparse

from vehiclehub.config import AgencyEndpoint
from vehiclehub.exchange.base import PART_SUFFIX, ExchangeUnavailable


class LocalExchange:
    """An agency root on the local file system."""

    def __init__(self, agency: str, endpoint: AgencyEndpoint) -> None:
        self.agency = agency
        self.root = Path(unquote(urlparse(endpoint.url).path))
        self.description = f"{agency} at {self.root}"
        if not (self.root / "outbox").is_dir():
            raise ExchangeUnavailable(f"{agency}: no outbox/ under {self.root}")

    def list_outbox(self) -> list[str]:
        return sorted(p.name for p in (self.root / "outbox").iterdir() if p.is_file())

    def read_outbox(self, name: str) -> bytes:
        return (self.root / "outbox" / name).read_bytes()

    def copy_outbox(self, name: str, sink: BinaryIO, chunk_size: int = 1 << 20) -> int:
        copied = 0
        with (self.root / "outbox" / name).open("rb") as source:
            while chunk := source.read(chunk_size):
                sink.write(chunk)
                copied += len(chunk)
        return copied

    def put_inbox(self, name: str, source: BinaryIO) -> None:
        inbox = self.root / "inbox"
        inbox.mkdir(parents=True, exist_ok=True)
        part = inbox / (name + PART_SUFFIX)
        with part.open("wb") as sink:
            shutil.copyfileobj(source, sink, 1 << 20)
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(part, inbox / name)

    def list_inbox(self) -> list[str]:
        inbox = self.root / "inbox"
        return sorted(p.name for p in inbox.iterdir() if p.is_file()) if inbox.is_dir() else []

    def close(self) -> None:
        return None
