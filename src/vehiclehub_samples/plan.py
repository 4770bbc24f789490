"""Emission and the file plan: what each business date's files carry (the records new or
changed since the date before, versioned), one file per feed and date.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from vehiclehub.contract import FeedSpec, feed
from vehiclehub_samples.columns import calendar_day, padded
from vehiclehub_samples.files import feed_file_name
from vehiclehub_samples.records import CHANGES, Change, contract_columns


def snapshot(records: pd.DataFrame, changes: Sequence[Change], day: int) -> pd.DataFrame:
    """The records known on ``day``, as they stand that day."""
    known = records[records["_known"].to_numpy() <= day]
    for change in changes:
        after = known[change.on].to_numpy() <= day
        for column, value in change.before.items():
            known = known.assign(**{column: known[column].where(after, value)})
    return known


def emit(spec: FeedSpec, records: pd.DataFrame, days: Sequence[int]) -> dict[int, pd.DataFrame]:
    """Per business date, the records new or changed since the previous one, versioned,
    in the order the records were built (by story)."""
    changes = CHANGES.get((spec.agency, spec.feed), ())
    content = [c for c in contract_columns(spec) if c != "record_version"]
    digests = np.zeros(len(records), np.uint64)
    versions = np.zeros(len(records), np.int64)
    sent: dict[int, pd.DataFrame] = {}
    for day in days:
        rows = snapshot(records, changes, day)
        position = rows.index.to_numpy()
        if len(days) == 1:
            changed = np.ones(len(rows), bool)
        else:
            digest = pd.util.hash_pandas_object(rows[content], index=False).to_numpy()
            changed = (versions[position] == 0) | (digests[position] != digest)
            digests[position] = digest
        versions[position[changed]] += 1
        out = rows[changed]
        out["record_version"] = padded(versions[position[changed]], 1).to_numpy()
        sent[day] = out.reset_index(drop=True)
    return sent


@dataclass
class PlannedFile:
    """One agency file as it will be written, and how it is broken if it is."""

    agency: str
    feed: str
    day: int  # the business date in its name
    seq: int
    frame: pd.DataFrame  # rows in file order; ``_reject`` names the column a bad row fails
    columns: list[str]  # the header, in file order
    encoding: str = "utf-8"  # how the bytes are encoded
    bom: bool = False
    manifest: dict[str, Any] = field(default_factory=dict)  # entries overriding the true ones
    manifest_day: int | None = None  # the day its manifest arrives (None: with the data)
    part: bool = False  # left as ``<name>.part``: the upload never finished
    rejected_because: str | None = None  # why the hub must reject the whole file
    copy_of: PlannedFile | None = None  # the same bytes as that file, under this name

    @property
    def name(self) -> str:
        return feed_file_name(self.agency, self.feed, calendar_day(self.day), self.seq)

    @property
    def manifest_on(self) -> int:
        return self.day if self.manifest_day is None else self.manifest_day

    def content(self) -> PlannedFile:
        """The file whose rows, header and encoding this one's bytes are."""
        return self.copy_of.content() if self.copy_of is not None else self

    def rows(self) -> pd.DataFrame:
        """What is written: the header's columns, in file order."""
        source = self.content()
        return source.frame.reindex(columns=source.columns)

    def insert(self, rows: pd.DataFrame, rng: np.random.Generator, after: int = -1) -> None:
        """Put ``rows`` at random places in the file, each after position ``after``."""
        count = len(self.frame)
        places = rng.integers(after + 1, count + 1, len(rows)) - 0.5
        order = np.argsort(np.concatenate([np.arange(count), places]), kind="stable")
        joined = pd.concat([self.frame, rows], ignore_index=True)
        self.frame = joined.iloc[order].reset_index(drop=True)


@dataclass
class FilePlan:
    """Every file of every business date, in the order they are planned."""

    files: list[PlannedFile] = field(default_factory=list)
    skipped: set[tuple[str, str, int, int]] = field(default_factory=set)

    def find(self, agency: str, feed_name: str, day: int, seq: int = 1) -> PlannedFile | None:
        return next(
            (
                f
                for f in self.files
                if (f.agency, f.feed, f.day, f.seq) == (agency, feed_name, day, seq)
            ),
            None,
        )

    def next_seq(self, agency: str, feed_name: str, day: int) -> int:
        used = [f.seq for f in self.files if (f.agency, f.feed, f.day) == (agency, feed_name, day)]
        used += [s for a, f, d, s in self.skipped if (a, f, d) == (agency, feed_name, day)]
        return max(used, default=0) + 1

    def skip_seq(self, agency: str, feed_name: str, day: int) -> int:
        seq = self.next_seq(agency, feed_name, day)
        self.skipped.add((agency, feed_name, day, seq))
        return seq

    def new_file(
        self, agency: str, feed_name: str, day: int, frame: pd.DataFrame, **options: Any
    ) -> PlannedFile:
        """A file with the next sequence number of its feed and date."""
        planned = PlannedFile(
            agency,
            feed_name,
            day,
            self.next_seq(agency, feed_name, day),
            frame.reset_index(drop=True),
            contract_columns(feed(agency, feed_name)),
            **options,
        )
        self.files.append(planned)
        return planned


def plan_files(records: dict[tuple[str, str], pd.DataFrame], days: Sequence[int]) -> FilePlan:
    """One file per feed and business date that has something to send. Takes the records
    out of ``records`` feed by feed, so that a big world is not held twice."""
    plan = FilePlan()
    for agency, feed_name in list(records):
        frame = records.pop((agency, feed_name))
        for day, rows in emit(feed(agency, feed_name), frame, days).items():
            if len(rows):
                plan.new_file(agency, feed_name, day, rows.assign(_reject=None, _picked=False))
    return plan
