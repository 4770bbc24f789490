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
from vehiclehub.icd.names import DATA_SUFFIX, FileName, manifest_name

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


def outbox_entry(data_name: str) -> OutboxEntry:
    """A data file and the manifest that completes it (``<name>.manifest.json``)."""
    return OutboxEntry(data_name, manifest_name(data_name))


def complete_files(names: Iterable[str]) -> list[OutboxEntry]:
    """The data files whose manifest has arrived, in name order; ``.part`` files never count."""
    present = {n for n in names if not n.endswith(PART_SUFFIX)}
    return [
        outbox_entry(name)
        for name in sorted(present)
        if name.endswith(DATA_SUFFIX) and manifest_name(name) in present
    ]


#: The feed of the files whose name gives none (outside ICD §1's pattern).
UNKNOWN_FEED = "unknown"


def files_by_feed(entries: Iterable[OutboxEntry]) -> dict[str, list[OutboxEntry]]:
    """Complete files by the feed their name gives (ICD §1), each feed's in name order.

    A manifest must name the feed its file's name gives, so two files of one feed are
    always in one group; files whose name gives no feed (to be rejected whole) are
    together under :data:`UNKNOWN_FEED`.
    """
    grouped: dict[str, list[OutboxEntry]] = {}
    for entry in sorted(entries, key=lambda e: e.data_name):
        name = FileName.read(entry.data_name)
        grouped.setdefault(name.feed if name else UNKNOWN_FEED, []).append(entry)
    return dict(sorted(grouped.items()))


def waiting_files(names: Iterable[str]) -> list[str]:
    """Data files that are present but whose manifest has not arrived yet."""
    present = {n for n in names if not n.endswith(PART_SUFFIX)}
    return sorted(n for n in present if n.endswith(DATA_SUFFIX) and manifest_name(n) not in present)
