"""The exchange interface shared by every transport.

An agency root holds ``outbox/`` (agency -> hub; the hub only reads, never deletes)
and ``inbox/`` (hub -> agency; the hub only writes). Uploads in both directions write
``<name>.part`` and rename it; the manifest is written last, so a data file without
its manifest does not exist yet.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from vehiclehub.errors import HubError
from vehiclehub.icd.names import DATA_SUFFIX, manifest_name

PART_SUFFIX = ".part"


class ExchangeUnavailable(HubError):
    """The agency's exchange could not be reached (after retries); the run goes on without it."""


#: An agency's intake status for the night when its exchange raised ExchangeMisconfigured.
MISCONFIGURED = "configuration error"


class ExchangeMisconfigured(ExchangeUnavailable):
    """The exchange answered, but the configured root has no ``outbox/``: a wrong url.

    No retry mends it. The run still goes on without the agency (its files, if any, stay
    where they are), but reports it as a configuration error to fix, not as an agency
    that did not send.
    """


class NotRegularFile(HubError):
    """An outbox entry that is not a regular file of the outbox (a link, a device, a pipe).

    The hub takes regular files only and never reads outside the agency's root: such
    an entry is rejected whole, not followed.
    """


@dataclass(frozen=True)
class OutboxEntry:
    """A complete outbox file: the data file and its manifest both present."""

    data_name: str
    manifest_name: str


class Exchange(Protocol):
    """One agency's exchange root, whatever the transport."""

    agency: str
    description: str

    def list_outbox(self) -> list[str]:
        """Names of the files in ``outbox/`` (no directories)."""
        ...

    def read_outbox(self, name: str, limit: int | None = None) -> bytes:
        """A small outbox file (a manifest) in full, or its first ``limit`` bytes."""
        ...

    def copy_outbox(self, name: str, sink: BinaryIO, chunk_size: int = 1 << 20) -> int:
        """Stream an outbox file into ``sink``; return the number of bytes copied."""
        ...

    def put_inbox(self, name: str, source: BinaryIO) -> None:
        """Upload ``source`` to ``inbox/name`` as ``name.part``, then rename over any old one."""
        ...

    def list_inbox(self) -> list[str]:
        """Names of the files in ``inbox/``."""
        ...

    def close(self) -> None: ...


def complete_files(names: Iterable[str]) -> list[OutboxEntry]:
    """The data files whose manifest has arrived, in name order; ``.part`` files never count."""
    present = {n for n in names if not n.endswith(PART_SUFFIX)}
    entries = []
    for name in sorted(present):
        if name.endswith(DATA_SUFFIX) and manifest_name(name) in present:
            entries.append(OutboxEntry(name, manifest_name(name)))
    return entries


def waiting_files(names: Iterable[str]) -> list[str]:
    """Data files that are present but whose manifest has not arrived yet."""
    present = {n for n in names if not n.endswith(PART_SUFFIX)}
    return sorted(n for n in present if n.endswith(DATA_SUFFIX) and manifest_name(n) not in present)
