"""A feed's usual volume, from the files the hub has loaded before.

"The last runs" of a feed are its last ``volume_history_files`` (default 10) loaded
*first* files of a business date (seq 001) taken by *earlier* runs (``run_date``
before this run's), latest business date first. Rejected files and duplicates do not
count; files with warnings do. The check applies only to a first file: later files of
the same date (002, ...) are remainders and corrections whose size says nothing.

It applies once there are ``volume_min_history`` (default 3) such files and their
median is at least ``volume_min_median_rows`` (default 100): a small feed's days vary
too much for a share of its median to mean truncation. Then a first file below
``volume_floor_ratio`` (1/3) of the median fails the critical ``volume_not_truncated``
and one above ``volume_ceiling_ratio`` (3x) the warning ``volume_not_inflated``.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, select

from vehiclehub.config import QualitySettings
from vehiclehub.store.schema import intake_files


@dataclass(frozen=True)
class VolumeBaseline:
    """What a file's row count is compared with; ``reason`` when there is nothing to compare."""

    files: int
    median: float | None = None
    floor: int | None = None
    ceiling: int | None = None
    reason: str | None = None

    @property
    def applies(self) -> bool:
        return self.reason is None

    def describe(self) -> str:
        if self.reason:
            return self.reason
        return f"median {self.median:,.0f} rows of the last {self.files} loaded first files"


def recent_volumes(conn: Connection, agency: str, feed: str, before: date, limit: int) -> list[int]:
    """Rows of the feed's last ``limit`` loaded first files taken by runs before ``before``."""
    query = (
        select(intake_files.c.rows_read)
        .where(
            intake_files.c.agency == agency,
            intake_files.c.feed == feed,
            intake_files.c.status == "loaded",
            intake_files.c.seq == 1,
            intake_files.c.run_date < before,
        )
        .order_by(intake_files.c.business_date.desc(), intake_files.c.id.desc())
        .limit(limit)
    )
    return [int(n) for (n,) in conn.execute(query)]


def volume_baseline(
    conn: Connection,
    settings: QualitySettings,
    agency: str,
    feed: str,
    seq: int,
    run_date: date,
) -> VolumeBaseline:
    """The volume floor and ceiling for a file, or why the volume checks do not apply."""
    if seq != 1:
        return VolumeBaseline(0, reason=f"file {seq:03d} of its date: only first files are judged")
    volumes = recent_volumes(conn, agency, feed, run_date, settings.volume_history_files)
    if len(volumes) < settings.volume_min_history:
        return VolumeBaseline(
            len(volumes),
            reason=f"{len(volumes)} earlier loaded first files, "
            f"{settings.volume_min_history} needed",
        )
    median = float(statistics.median(volumes))
    if median < settings.volume_min_median_rows:
        return VolumeBaseline(
            len(volumes),
            median,
            reason=f"median of {median:,.0f} rows is below the "
            f"{settings.volume_min_median_rows} rows a volume check needs",
        )
    # Row counts are whole: "fewer than median x ratio" is "fewer than its ceiling".
    return VolumeBaseline(
        len(volumes),
        median,
        floor=math.ceil(median * settings.volume_floor_ratio),
        ceiling=math.floor(median * settings.volume_ceiling_ratio),
    )
