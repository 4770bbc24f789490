"""Intake noise: what goes wrong with agency files (bad rows, broken files, late manifests,
...), planted in the file plan. Every row or file the hub must reject is recorded with
its file, line and column.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from vehiclehub.contract import FeedSpec, feed
from vehiclehub_samples.columns import padded
from vehiclehub_samples.plan import FilePlan, PlannedFile


@dataclass
class Noise:
    """What the noise functions work on, and what they record for the ground truth."""

    rng: np.random.Generator
    plan: FilePlan
    dates: tuple[int, ...]
    duplicates: list[dict[str, str]] = field(default_factory=list)
    corrections: list[dict[str, Any]] = field(default_factory=list)
    _fresh: int = 0

    @property
    def first(self) -> int:
        return self.dates[0]

    @property
    def last(self) -> int:
        return self.dates[-1]

    def main(self, agency: str, feed_name: str, day: int | None = None) -> PlannedFile | None:
        """The ordinary file (seq 1) of a feed on ``day`` (the first date by default)."""
        return self.plan.find(agency, feed_name, self.first if day is None else day)

    def pick(self, planned: PlannedFile, count: int, kind: str | None = None) -> np.ndarray:
        """Positions of ``count`` good rows (of ``kind``) from the file's first half, marked
        as picked so that no other noise touches them."""
        frame = planned.frame
        free = frame["_reject"].isna() & ~frame["_picked"].astype(bool)
        if kind is not None:
            free &= frame["_kind"] == kind
        candidates = np.flatnonzero(free.to_numpy()[: max(1, len(frame) // 2)])
        chosen = np.sort(
            self.rng.choice(candidates, size=min(count, len(candidates)), replace=False)
        )
        planned.frame.loc[chosen, "_picked"] = True
        return chosen

    def split_off(self, planned: PlannedFile | None, count: int) -> pd.DataFrame | None:
        """Take up to ``count`` good rows off the end of a file (always leaving one)."""
        if planned is None:
            return None
        frame = planned.frame
        free = (frame["_reject"].isna() & ~frame["_picked"].astype(bool)).to_numpy()
        if len(frame) < 2:
            return None
        taken = np.flatnonzero(free)[-min(count, len(frame) - 1) :]
        if len(taken) == 0:
            return None
        if taken[0] == len(frame) - len(taken):  # the tail: a slice, not a copy
            planned.frame = frame.iloc[: taken[0]]
        else:
            planned.frame = frame.drop(index=pd.Index(taken)).reset_index(drop=True)
        return frame.iloc[taken].reset_index(drop=True)

    def fresh_key(self, spec: FeedSpec, rows: pd.DataFrame) -> pd.DataFrame:
        """The rows with a key no good row has (a text id prefixed ``X``, or item 9xx)."""
        rows = rows.copy()
        self._fresh += len(rows)
        numbers = np.arange(self._fresh - len(rows), self._fresh) + 1
        for name in spec.key:
            kind = spec.column(name).type
            if kind == "id":
                rows[name] = "X" + padded(numbers, 6).to_numpy()
                return rows
            if kind == "integer":
                rows[name] = padded(900 + numbers % 100, 3).to_numpy()
                return rows
        raise ValueError(f"{spec.table} has no key column the generator can vary")

    def add_rows(self, agency: str, feed_name: str, day: int, rows: pd.DataFrame) -> None:
        """Send rows on ``day``: in the day's ordinary file, or a file of their own."""
        planned = self.main(agency, feed_name, day)
        if planned is None:
            self.plan.new_file(agency, feed_name, day, rows)
        else:
            planned.insert(rows, self.rng)


#: Name -> a function planting that kind of trouble in the file plan.
NOISE: dict[str, Callable[[Noise], None]] = {}


def noise(name: str) -> Callable[[Callable[[Noise], None]], Callable[[Noise], None]]:
    """Register a kind of intake trouble (planted in the order registered)."""

    def register(function: Callable[[Noise], None]) -> Callable[[Noise], None]:
        NOISE[name] = function
        return function

    return register


#: Bad values, one row each: (agency, feed, column, value). Each row must be rejected on
#: that column, and only there.
BAD_VALUES: tuple[tuple[str, str, str, str | None], ...] = (
    ("commerce", "licences", "vin", "LSVAM4187C218484"),  # a character short
    ("commerce", "licences", "hs_code", "85171200"),  # chapter 85: telephones
    ("commerce", "licences", "brand", None),  # a required value left empty
    ("commerce", "enterprises", "region_code", "12011"),  # five digits
    ("commerce", "tradein_claims", "applicant_id", "110101198003071234"),  # wrong check char
    ("customs", "declarations", "decl_no", "5.30E+17"),  # an id Excel turned into a number
    ("customs", "declarations", "status", "released"),  # not in the code list
    ("police", "events", "event_date", "2025-02-30"),  # no such day
    ("police", "events", "event_type", "transfer_export"),  # not in the code list
    ("police", "events", "owner_id", "110101800307123"),  # a 15-digit first-generation ID
    ("tax", "refunds", "applied_at", "2025/11/03"),  # not ISO
)


def _other_plate(plates: pd.Series) -> pd.Series:
    """The plate with its last digit changed."""
    last = (plates.str.slice(-1).astype(np.int64) + 1) % 10
    return plates.str.slice(0, -1) + last.astype("str")


@noise("bad values")
def _bad_values(n: Noise) -> None:
    """Copies of good rows with a fresh key and one bad value each (BAD_VALUES)."""
    by_feed: dict[tuple[str, str], list[tuple[str, str | None]]] = {}
    for agency, feed_name, column, value in BAD_VALUES:
        by_feed.setdefault((agency, feed_name), []).append((column, value))
    for (agency, feed_name), bad_values in by_feed.items():
        planned = n.main(agency, feed_name)
        if planned is None:
            continue
        templates = planned.frame.loc[n.pick(planned, len(bad_values))]
        bad = n.fresh_key(feed(agency, feed_name), templates).reset_index(drop=True)
        for row, (column, value) in enumerate(bad_values[: len(bad)]):
            bad.loc[row, column] = value
            bad.loc[row, "_reject"] = column
        planned.insert(bad, n.rng)


@noise("a key repeated in a file")
def _repeated_key(n: Noise) -> None:
    """The same filing twice in one file: the second is rejected on its key."""
    planned = n.main("commerce", "enterprises")
    if planned is None:
        return
    position = n.pick(planned, 1)
    spec = feed("commerce", "enterprises")
    again = planned.frame.loc[position].assign(_reject="/".join(spec.key))
    planned.insert(again, n.rng, after=int(position[0]))


@noise("same record_version, other content")
def _version_conflict(n: Noise) -> None:
    """A police event sent again with the same record_version and another plate."""
    planned = n.main("police", "events")
    if planned is None:
        return
    again = planned.frame.loc[n.pick(planned, 1, kind="register")].copy()
    again["plate_no"] = _other_plate(again["plate_no"])
    n.plan.new_file("police", "events", n.last, again.assign(_reject="record_version"))


@noise("a correction")
def _correction(n: Noise) -> None:
    """A plate typed wrong on the first date, corrected with record_version 2 the next."""
    planned = n.main("police", "events")
    if planned is None or len(n.dates) < 2:
        return
    position = n.pick(planned, 1, kind="register")
    right = planned.frame.loc[position].assign(record_version="2")
    planned.frame.loc[position, "plate_no"] = _other_plate(right["plate_no"]).to_numpy()
    n.add_rows("police", "events", n.dates[1], right)
    n.corrections.append(
        {
            "agency": "police",
            "feed": "events",
            "record_key": right["event_id"].iloc[0],
            "record_version": 2,
            "column": "plate_no",
            "value": right["plate_no"].iloc[0],
        }
    )


def _broken_then_resent(
    n: Noise, agency: str, feed_name: str, why: str, **broken: Any
) -> PlannedFile | None:
    """A few rows sent in a file broken as ``broken`` says, then again in a sound one."""
    rows = n.split_off(n.main(agency, feed_name), 3)
    if rows is None:
        return None
    bad = n.plan.new_file(agency, feed_name, n.first, rows, rejected_because=why, **broken)
    n.plan.new_file(agency, feed_name, n.first, rows, encoding=bad.encoding)
    return bad


@noise("checksum mismatch")
def _checksum_mismatch(n: Noise) -> None:
    digest = hashlib.sha256(b"another file").hexdigest()
    _broken_then_resent(
        n, "customs", "declarations", "checksum mismatch", manifest={"sha256": digest}
    )


@noise("row count mismatch")
def _row_count_mismatch(n: Noise) -> None:
    bad = _broken_then_resent(n, "tax", "refunds", "row count mismatch")
    if bad is not None:
        bad.manifest["rows"] = len(bad.frame) + 1


@noise("undecodable")
def _undecodable(n: Noise) -> None:
    """GB18030 bytes under a manifest saying UTF-8 (police rows carry Chinese brands)."""
    _broken_then_resent(
        n,
        "police",
        "events",
        "bytes do not decode as the manifest's encoding",
        encoding="gb18030",
        manifest={"encoding": "utf-8"},
    )


@noise("missing column")
def _missing_column(n: Noise) -> None:
    bad = _broken_then_resent(n, "commerce", "licences", "missing required column hs_code")
    if bad is not None:
        bad.columns = [c for c in bad.columns if c != "hs_code"]


@noise("GB18030")
def _gb18030(n: Noise) -> None:
    """Filings (Chinese enterprise names) sent in GB18030, as the manifest says."""
    planned = n.main("commerce", "enterprises")
    if planned is not None:
        planned.encoding = "gb18030"


@noise("UTF-8 with BOM")
def _bom(n: Noise) -> None:
    planned = n.main("commerce", "licences", n.last) or n.main("commerce", "licences")
    if planned is not None:
        planned.bom = True


@noise("columns reordered, one unknown")
def _columns_reordered(n: Noise) -> None:
    """Columns in reverse order and an unknown ``remark`` column, which is ignored."""
    planned = n.main("tax", "refunds")
    if planned is not None:
        planned.frame["remark"] = "补录"
        planned.columns = [*reversed(planned.columns), "remark"]


@noise("manifest a day late")
def _late_manifest(n: Noise) -> None:
    """A police file of the first date whose manifest arrives on the second."""
    if len(n.dates) < 2:
        return
    rows = n.split_off(n.main("police", "events"), 3)
    if rows is not None:
        n.plan.new_file("police", "events", n.first, rows, manifest_day=n.dates[1])


@noise("a gap in seq")
def _seq_gap(n: Noise) -> None:
    """A customs file number skipped: the next file still loads."""
    rows = n.split_off(n.main("customs", "declarations"), 2)
    if rows is not None:
        n.plan.skip_seq("customs", "declarations", n.first)
        n.plan.new_file("customs", "declarations", n.first, rows)


@noise("the same file again, another name")
def _resent_identical(n: Noise) -> None:
    original = n.main("commerce", "tradein_claims")
    if original is None:
        return
    again = n.plan.new_file(
        "commerce", "tradein_claims", n.last, original.frame.iloc[:0], copy_of=original
    )
    n.duplicates.append({"agency": "commerce", "file": again.name, "same_as": original.name})


@noise("an unfinished upload")
def _unfinished_upload(n: Noise) -> None:
    """A ``.part`` of refund lines repeating others: harmful if it were ever read."""
    planned = n.main("tax", "refunds")
    if planned is None:
        return
    rows = n.fresh_key(feed("tax", "refunds"), planned.frame.loc[n.pick(planned, 2)])
    n.plan.new_file("tax", "refunds", n.last, rows, part=True)
