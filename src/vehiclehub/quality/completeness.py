"""Feed completeness: which expected files are there by the run, and which numbers are missing.

For the run of business date ``D`` every expected feed (``quality.expected_feeds`` in
the configuration, by default every feed of the contract, daily) gets one state for
``D``, from the files of business date ``D`` taken by this run or an earlier one:

* ``received``: at least one of its files for ``D`` loaded (or was a copy of a loaded one);
* ``rejected``: files for ``D`` arrived, and every one was rejected whole;
* ``waiting``: a data file for ``D`` is in the outbox, its manifest is not;
* ``not received``: nothing for ``D`` (also when the agency's exchange was unreachable).

*Not received* is not a mismatch: rules then miss evidence, and findings such as
EXP-001 on the other agencies' records may be caused by the missing file.

A gap in ``seq`` (ICD §1) is a number below the highest one taken for an agency, feed
and business date that has not arrived (nor waits for its manifest). Gaps are shown
for ``D`` and the ``gap_lookback_days`` before it, until the file arrives.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import Connection, select

from vehiclehub.config import AGENCIES, ConfigError, Settings
from vehiclehub.contract import agency_feeds, feeds
from vehiclehub.icd.names import FileName
from vehiclehub.store.schema import agency_intakes, intake_files

STATES = ("received", "rejected", "waiting", "not received")


@dataclass(frozen=True)
class FeedState:
    agency: str
    feed: str
    business_date: str
    state: str
    files: list[str] = field(default_factory=list)
    detail: str | None = None


@dataclass(frozen=True)
class SeqGap:
    agency: str
    feed: str
    business_date: str
    missing: list[int]

    @property
    def names(self) -> list[str]:
        day = date.fromisoformat(self.business_date)
        return [str(FileName(self.agency, self.feed, day, n)) for n in self.missing]


@dataclass
class Completeness:
    day: str
    feeds: list[FeedState]
    gaps: list[SeqGap]
    late: list[dict[str, Any]]  # files of earlier business dates taken by this run

    def state_of(self, agency: str, feed: str) -> FeedState | None:
        return next((f for f in self.feeds if (f.agency, f.feed) == (agency, feed)), None)

    def summary(self) -> dict[str, Any]:
        """JSON-able, for the ``vhub run`` summary and the DAG's XCom."""
        missing = [f"{f.agency}/{f.feed}" for f in self.feeds if f.state != "received"]
        return {
            "expected": len(self.feeds),
            "received": sum(f.state == "received" for f in self.feeds),
            "not_received": [
                f"{f.agency}/{f.feed}" for f in self.feeds if f.state == "not received"
            ],
            "incomplete": missing,
            "feeds": [asdict(f) for f in self.feeds],
            "gaps": [asdict(g) | {"files": g.names} for g in self.gaps],
            "late": self.late,
        }


def expected_feeds(settings: Settings) -> dict[str, list[str]]:
    """Feeds each agency must send every business date (configuration, else all of them)."""
    configured = settings.quality.expected_feeds
    known = feeds()
    expected: dict[str, list[str]] = {}
    for agency in AGENCIES:
        if agency in configured:
            names = list(configured[agency])
            unknown = [n for n in names if (agency, n) not in known]
            if unknown:
                raise ConfigError(
                    f"quality.expected_feeds.{agency}: {agency} sends no feed "
                    f"{', '.join(unknown)} (ICD §3)"
                )
        else:
            names = [spec.feed for spec in agency_feeds(agency)]
        expected[agency] = sorted(names)
    return expected


def _waiting(conn: Connection, day: date) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Per agency its exchange problem for the run (if any), and the files waiting."""
    rows = conn.execute(
        select(
            agency_intakes.c.agency,
            agency_intakes.c.status,
            agency_intakes.c.detail,
            agency_intakes.c.waiting,
        ).where(agency_intakes.c.run_date == day)
    ).all()
    unreachable: dict[str, str] = {}
    waiting: list[dict[str, Any]] = []
    for agency, status, detail, names in rows:
        if status != "received":
            unreachable[agency] = detail or status
        for name in json.loads(names) if names else []:
            read = FileName.read(name)
            if read and read.agency == agency:
                waiting.append(
                    {
                        "agency": agency,
                        "feed": read.feed,
                        "business_date": read.business_date.isoformat(),
                        "seq": read.seq,
                        "name": name,
                    }
                )
    return unreachable, waiting


def feed_completeness(conn: Connection, settings: Settings, day: date) -> Completeness:
    """The expected feeds' states for ``day``, the gaps in ``seq``, and late files."""
    since = day - timedelta(days=settings.quality.gap_lookback_days)
    result = conn.execute(
        select(
            intake_files.c.agency,
            intake_files.c.feed,
            intake_files.c.business_date,
            intake_files.c.seq,
            intake_files.c.name,
            intake_files.c.status,
            intake_files.c.run_date,
        ).where(
            intake_files.c.run_date <= day,
            intake_files.c.business_date.is_not(None),
            intake_files.c.business_date >= since,
        )
    )
    taken = pd.DataFrame(result.all(), columns=list(result.keys()))
    taken["business_date"] = taken["business_date"].map(
        lambda d: d.isoformat() if isinstance(d, date) else str(d)[:10]
    )
    unreachable, waiting = _waiting(conn, day)
    waiting_frame = pd.DataFrame(
        waiting, columns=["agency", "feed", "business_date", "seq", "name"]
    )
    iso = day.isoformat()
    states: list[FeedState] = []
    for agency, names in expected_feeds(settings).items():
        for feed_name in names:
            mine = taken[
                (taken["agency"] == agency)
                & (taken["feed"] == feed_name)
                & (taken["business_date"] == iso)
            ]
            pending = waiting_frame[
                (waiting_frame["agency"] == agency)
                & (waiting_frame["feed"] == feed_name)
                & (waiting_frame["business_date"] == iso)
            ]
            files = sorted(mine["name"].tolist())
            if mine["status"].isin(["loaded", "duplicate"]).any():
                state, detail = "received", None
            elif not mine.empty:
                state, detail = "rejected", "every file of the date was rejected whole"
            elif not pending.empty:
                state, detail = "waiting", "data file waiting for its manifest"
                files = sorted(pending["name"].tolist())
            elif agency in unreachable:
                state, detail = "not received", f"exchange unreachable: {unreachable[agency]}"
            else:
                state, detail = "not received", f"no file for {iso} by this run"
            states.append(FeedState(agency, feed_name, iso, state, files, detail))
    present = pd.concat(
        [
            taken[["agency", "feed", "business_date", "seq"]],
            waiting_frame[["agency", "feed", "business_date", "seq"]],
        ],
        ignore_index=True,
    ).dropna(subset=["seq"])
    present = present[present["business_date"] >= since.isoformat()]
    gaps: list[SeqGap] = []
    for key, group in present.groupby(["agency", "feed", "business_date"], sort=True):
        numbers = {int(n) for n in group["seq"]}
        missing = sorted(set(range(1, max(numbers) + 1)) - numbers)
        if missing:
            gap_agency, gap_feed, gap_date = (str(k) for k in key)
            gaps.append(SeqGap(gap_agency, gap_feed, gap_date, missing))
    late_rows = taken[(taken["run_date"] == day) & (taken["business_date"] < iso)]
    late = [
        {
            "agency": r.agency,
            "feed": r.feed,
            "business_date": r.business_date,
            "file": r.name,
            "status": r.status,
        }
        for r in late_rows.sort_values(["agency", "name"]).itertuples()
    ]
    return Completeness(iso, states, gaps, late)


def missing_evidence(found: Completeness) -> list[str]:
    """Agencies none of whose expected files for the date had arrived by the run (ICD §4).

    A file rejected whole has arrived; a data file still waiting for its manifest has not
    (ICD §1: it does not exist yet). An agency expected to send nothing is never missing.
    """
    states: dict[str, list[str]] = {}
    for feed_state in found.feeds:
        states.setdefault(feed_state.agency, []).append(feed_state.state)
    return sorted(
        agency
        for agency, seen in states.items()
        if all(state in ("not received", "waiting") for state in seen)
    )


def taken_feeds(conn: Connection, agency: str, day: date) -> set[str]:
    """Feeds of ``agency`` with a file of business date ``day`` loaded (or a copy of one)."""
    return {
        str(feed)
        for (feed,) in conn.execute(
            select(intake_files.c.feed).where(
                intake_files.c.agency == agency,
                intake_files.c.business_date == day,
                intake_files.c.status.in_(["loaded", "duplicate"]),
            )
        )
    }


def not_arrived(
    settings: Settings, agency: str, day: date, taken: set[str], outbox: list[str]
) -> list[str]:
    """Expected feeds of ``agency`` for ``day`` neither ``taken`` (:func:`taken_feeds`)
    nor among the complete data files in its ``outbox``, as ``agency/feed``."""
    arrived = set(taken)
    for name in outbox:
        read = FileName.read(name)
        if read and read.agency == agency and read.business_date == day:
            arrived.add(read.feed)
    return [f"{agency}/{feed}" for feed in expected_feeds(settings)[agency] if feed not in arrived]


def arrival_deadline(settings: Settings, agency: str, day: date) -> datetime:
    """When the agency's files of business date ``day`` are due: a local time on ``day + 1``."""
    quality = settings.quality
    local = quality.arrival_deadlines.get(agency, quality.default_arrival_deadline)  # type: ignore[call-overload]
    return datetime.combine(day + timedelta(days=1), local, tzinfo=ZoneInfo(settings.timezone))


def arrival_check(
    settings: Settings,
    agency: str,
    day: date,
    missing: list[str],
    unreachable: str | None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A late-file sensor's answer, given the feeds still ``missing`` (:func:`not_arrived`):
    done once every expected feed arrived or the deadline passed.

    Returns ``done``, the feeds still ``missing``, the ``deadline`` (ISO) and, when the
    agency's outbox could not be listed, why (``unreachable``, else None: an unreachable
    exchange is waited for like a late file). Intake runs after it either way, and the
    report shows what never came as *not received*.
    """
    deadline = arrival_deadline(settings, agency, day)
    current = now or datetime.now(ZoneInfo(settings.timezone))
    return {
        "agency": agency,
        "business_date": day.isoformat(),
        "done": not missing or current >= deadline,
        "missing": missing,
        "deadline": deadline.isoformat(),
        "unreachable": unreachable,
    }
