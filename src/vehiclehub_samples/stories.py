"""The stories of the sample world: each export vehicle's and trade-in claim's steps as day
numbers, and what the plants may do to them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from vehiclehub.config import RuleParameters
from vehiclehub.workdays import package_calendar
from vehiclehub_samples.columns import calendar_day

#: Trade-in claim story steps, each a day number (NaN: does not happen).
CLAIM_STEPS = ("old_registered", "old_ended", "new_registered", "applied")


#: Vehicle story steps, each a day number (NaN: does not happen).
STEPS = (
    "registered",  # 注册登记 to a person
    "transferred",  # a domestic sale to another person (some vehicles)
    "pending",  # 转让登记待出口 to the exporter
    "applied",  # licence application complete
    "issued",  # licence issued
    "valid_to",  # licence valid until
    "declared",  # customs item 1 declared
    "exported",  # item 1 cleared and exited
    "withdrawn",  # item 1 withdrawn (修撤单)
    "declared2",  # customs item 2 declared
    "exported2",  # item 2 cleared and exited
    "deregistered",  # police deregistration for export
    "refund_applied",  # refund line 1 documents complete
    "refund_decided",  # refund line 1 approved or rejected
    "refund2_applied",  # refund line 2 (a second claim on the same item)
    "refund2_decided",
)


@dataclass
class Stories:
    """The population whose stories the plants bend, and the business dates they end on.

    ``vehicles`` has one row per export vehicle: the :data:`STEPS` (day numbers) and
    who does what (``exporter`` holds the licence, ``item_exporter`` declares,
    ``refund_exporter`` claims the refund; indexes into ``exporters``), plus
    ``dereg_cites`` (the item, 1 or 2, the deregistration names), ``refund_cites`` (1, 2,
    or 0 for an item number that does not exist) and the refund lines' final statuses.
    ``claims`` has one row per trade-in claim: ``claim_type``, ``applicant``, the old and
    new vehicles (``old_vin``, ``new_vin``, ...) and the days ``old_registered``,
    ``old_ended`` (deregistered for ``old_reason`` if scrapped, or sold to ``buyer``),
    ``new_registered`` and ``applied``.

    ``candidates`` collects, for VIN-003, which records' findings must list which
    records as likely counterparts: (story rows, kind of the finding's record, kind of
    the candidate record of the same story, the finding's VIN per row).
    """

    rng: np.random.Generator
    params: RuleParameters
    dates: tuple[int, ...]  # the business dates, ascending
    vehicles: pd.DataFrame
    exporters: pd.DataFrame
    claims: pd.DataFrame
    used: np.ndarray = field(init=False)
    used_claims: np.ndarray = field(init=False)
    overrides: list[tuple[str, np.ndarray, dict[str, Any]]] = field(default_factory=list)
    candidates: list[tuple[np.ndarray, str, str, np.ndarray]] = field(default_factory=list)
    typos: list[pd.DataFrame] = field(default_factory=list)
    _workdays: tuple[int, np.ndarray] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.used = np.zeros(len(self.vehicles), bool)
        self.used_claims = np.zeros(len(self.claims), bool)

    @property
    def first(self) -> int:
        return self.dates[0]

    @property
    def second(self) -> int:
        """The second business date (the only one when there is just one)."""
        return self.dates[min(1, len(self.dates) - 1)]

    @property
    def last(self) -> int:
        return self.dates[-1]

    @property
    def normal_exporters(self) -> int:
        return int((self.exporters["standing"] == "active").sum())

    def step(self, name: str) -> np.ndarray:
        return self.vehicles[name].to_numpy()

    def take(self, count: int, eligible: np.ndarray) -> np.ndarray:
        """Up to ``count`` vehicles, at random among the eligible ones not bent yet."""
        pool = np.flatnonzero(eligible & ~self.used)
        chosen = np.sort(self.rng.choice(pool, size=min(count, len(pool)), replace=False))
        self.used[chosen] = True
        return chosen

    def take_claims(self, count: int, eligible: np.ndarray) -> np.ndarray:
        """Up to ``count`` trade-in claims, at random among the eligible ones not bent yet."""
        pool = np.flatnonzero(eligible & ~self.used_claims)
        chosen = np.sort(self.rng.choice(pool, size=min(count, len(pool)), replace=False))
        self.used_claims[chosen] = True
        return chosen

    def holds(self, vins: np.ndarray) -> np.ndarray:
        """Whether each VIN is already one the stories give a vehicle, a claim or a typo."""
        held = [self.vehicles["vin"], self.claims["old_vin"], self.claims["new_vin"]]
        held += [typo["read"] for typo in self.typos]
        value_set = pa.chunked_array([pa.array(v).cast(pa.large_string()) for v in held])
        found = pc.is_in(pa.array(np.asarray(vins), pa.large_string()), value_set=value_set)
        known: np.ndarray = found.to_numpy(zero_copy_only=False)
        return known

    def claim_is(self, claim_type: str) -> np.ndarray:
        return (self.claims["claim_type"] == claim_type).to_numpy()

    def claim_count(self, count: int) -> int:
        """A plant's vehicle count scaled to the (fewer) trade-in claims, at least one."""
        return max(1, round(count * len(self.claims) / max(1, len(self.vehicles))))

    def complete(self) -> np.ndarray:
        """Vehicles whose whole story (refund decided included) is over by the last date."""
        done = np.fmax(self.step("deregistered"), self.step("refund_decided"))
        over: np.ndarray = done <= self.last
        return over

    def refunded(self) -> np.ndarray:
        """Complete vehicles with an approved refund line."""
        approved = (self.vehicles["refund_status"] == "approved").to_numpy()
        refunded: np.ndarray = self.complete() & approved & ~np.isnan(self.step("refund_applied"))
        return refunded

    def days(self, rows: np.ndarray, low: int, high: int) -> np.ndarray:
        """A random whole number of days from ``low`` to ``high`` for each row."""
        return self.rng.integers(low, high + 1, len(rows)).astype(np.float64)

    def other_exporter(self, current: np.ndarray) -> np.ndarray:
        """A different ordinary exporter for each given one."""
        count = self.normal_exporters
        return (current + 1 + self.rng.integers(0, count - 1, len(current))) % count

    def set(self, rows: np.ndarray, **columns: Any) -> None:
        """Change story parameters of the given vehicles."""
        for name, value in columns.items():
            self.vehicles.loc[rows, name] = value

    def never_declared(self, rows: np.ndarray) -> None:
        """The vehicles are never declared, exported, deregistered nor refunded."""
        self.set(
            rows,
            declared=np.nan,
            exported=np.nan,
            deregistered=np.nan,
            refund_applied=np.nan,
            refund_decided=np.nan,
        )

    def label_typos(self, since: int, case: str) -> None:
        """Name the case that typed over the VINs recorded since the ``since``-th."""
        self.typos[since:] = [typo.assign(case=case) for typo in self.typos[since:]]

    def set_claims(self, rows: np.ndarray, **columns: Any) -> None:
        """Change story parameters of the given trade-in claims."""
        for name, value in columns.items():
            self.claims.loc[rows, name] = value

    def override(self, kind: str, rows: np.ndarray, **columns: Any) -> None:
        """Once the records are built, set columns of the ``kind`` record (see
        :data:`KIND_FEEDS`) of the given stories: to a value, to one value per story (a
        Series indexed by story row, see :func:`by_story`), or to what a function makes of
        the current values (a string Series). For a record that differs from its story:
        a typed-over VIN, another brand, another owner."""
        self.overrides.append((kind, rows, columns))

    def shift(self, rows: np.ndarray, by: np.ndarray) -> None:
        """Move the whole story of each vehicle by ``by`` days."""
        for name in STEPS:
            self.vehicles.loc[rows, name] = self.vehicles.loc[rows, name].to_numpy() + by

    def shift_claims(self, rows: np.ndarray, by: np.ndarray) -> None:
        """Move the whole story of each trade-in claim by ``by`` days."""
        for name in CLAIM_STEPS:
            self.claims.loc[rows, name] = self.claims.loc[rows, name].to_numpy() + by

    def _calendar(self) -> tuple[int, np.ndarray]:
        """The first of the 800 days before the last date, and the running count of working
        days over them (the State Council calendar, as ``chinesecalendar`` publishes it).
        A day of a year it does not cover counts as no working day: no working-day case is
        planted across it (the hub does not evaluate those)."""
        if self._workdays is None:
            first = self.last - 800
            days = pd.Series([calendar_day(d) for d in range(first - 1, self.last + 1)])
            counts = package_calendar().working_days_after(days.iloc[:-1], days.iloc[1:])
            working = counts.fillna(0).to_numpy(dtype=np.int64)
            self._workdays = (first, np.cumsum(working))
        return self._workdays

    def working_day_after(self, days: np.ndarray, count: Any) -> np.ndarray:
        """The day of the ``count``-th working day after each of ``days`` (NaN when that is
        after the last date or ``days`` is outside the calendar kept)."""
        first, running = self._calendar()
        offset = np.asarray(days, dtype=np.float64) - first
        inside = (offset >= 0) & (offset < len(running))
        target = running[np.where(inside, offset, 0).astype(np.int64)] + count
        at = np.searchsorted(running, target)
        return np.where(inside & (at < len(running)), first + at, np.nan)

    def working_day_before_last(self, count: Any) -> np.ndarray:
        """For each ``count``, the working day after which exactly ``count`` working days
        fall up to and including the last date."""
        first, running = self._calendar()
        after: np.ndarray = (
            first + np.searchsorted(running, running[-1] - np.asarray(count))
        ).astype(np.float64)
        return after


#: The feed of each kind of record in a story (``_kind`` of the record frames).
KIND_FEEDS: dict[str, tuple[str, str]] = {
    "register": ("police", "events"),
    "transfer": ("police", "events"),
    "pending": ("police", "events"),
    "dereg": ("police", "events"),
    "old_register": ("police", "events"),
    "old_scrap": ("police", "events"),
    "old_transfer": ("police", "events"),
    "new_register": ("police", "events"),
    "filing": ("commerce", "enterprises"),
    "licence": ("commerce", "licences"),
    "claim": ("commerce", "tradein_claims"),
    "item1": ("customs", "declarations"),
    "item2": ("customs", "declarations"),
    "refund1": ("tax", "refunds"),
    "refund2": ("tax", "refunds"),
}


def by_story(rows: np.ndarray, values: Any) -> pd.Series:
    """Values for :meth:`Stories.override`, one per story row."""
    return pd.Series(np.asarray(values), index=np.asarray(rows))
