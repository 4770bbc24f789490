"""File names of the exchange (ICD §1, §4), read and made here only.

An agency's data file is ``<agency>_<feed>_<YYYYMMDD>_<seq>.csv``, in ASCII only (a
full-width digit or a trailing line break makes a name that is not a data file of the
exchange); its manifest is the same name with ``.manifest.json`` for ``.csv``. A drop
follows the same grammar with the hub as author: ``hub_<agency>_<report>_<YYYYMMDD>_<seq>.csv``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from vehiclehub.errors import HubError

DATA_SUFFIX = ".csv"
MANIFEST_SUFFIX = ".manifest.json"
#: The author part of a drop's name (ICD §4).
HUB = "hub"
_GRAMMAR = re.compile(
    r"(?P<agency>[a-z]+)_(?P<feed>[a-z_]+?)_(?P<date>[0-9]{8})_(?P<seq>[0-9]{3})\.csv\Z",
    re.ASCII,
)


class BadFileName(HubError, ValueError):
    """A name that is not a data file's name of the exchange; the message says why."""


def manifest_name(data_name: str) -> str:
    """The manifest's name of a data file's name."""
    return data_name.removesuffix(DATA_SUFFIX) + MANIFEST_SUFFIX


@dataclass(frozen=True)
class FileName:
    """A data file's name: who sent it, of which feed (or report), date and number."""

    agency: str
    feed: str
    business_date: date
    seq: int

    @classmethod
    def parse(cls, name: str) -> FileName:
        """Read ``name``; raise :class:`BadFileName` saying why it is no data file name."""
        match = _GRAMMAR.match(name)
        if not match:
            raise BadFileName(
                f"file name {name!r} does not follow <agency>_<feed>_<YYYYMMDD>_<seq>.csv"
            )
        raw = match["date"]
        try:
            day = date(int(raw[:4]), int(raw[4:6]), int(raw[6:]))
        except ValueError as exc:
            raise BadFileName(f"file name {name!r} has no valid date {raw}") from exc
        return cls(match["agency"], match["feed"], day, int(match["seq"]))

    @classmethod
    def read(cls, name: str) -> FileName | None:
        """``name`` read, or None when it is not a data file's name."""
        try:
            return cls.parse(name)
        except BadFileName:
            return None

    @classmethod
    def of_drop(cls, agency: str, report: str, day: date, seq: int = 1) -> FileName:
        """The name of the hub's drop of ``report`` to ``agency`` (ICD §4)."""
        return cls(f"{HUB}_{agency}", report, day, seq)

    @staticmethod
    def prefix(agency: str, feed: str, day: date) -> str:
        """What every name of the feed's files of ``day`` begins with."""
        return f"{agency}_{feed}_{day:%Y%m%d}_"

    def __str__(self) -> str:
        return f"{self.prefix(self.agency, self.feed, self.business_date)}{self.seq:03d}.csv"

    @property
    def manifest(self) -> str:
        """The name of this file's manifest."""
        return manifest_name(str(self))
