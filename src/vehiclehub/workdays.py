"""Chinese working days (State Council calendar with 调休) for the SLA rules.

The package ``chinesecalendar`` carries the State Council's schedules of the years it
knows; the hub's configuration can add a year (``[calendar.YYYY]``), and a configured
year takes precedence over the package. A day of a year neither covers is never
guessed: a count that needs one is not made, and the years it lacks are named
(RULES.md, Definitions, "Working days").
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date
from functools import cache

import numpy as np
import pandas as pd
from chinese_calendar import constants

from vehiclehub.config import CalendarYear

#: The years ``chinesecalendar`` carries.
PACKAGE_YEARS = range(min(constants.holidays).year, max(constants.holidays).year + 1)


def calendar_entry(year: int) -> str:
    """The configuration table that adds ``year`` to the calendar."""
    return f"[calendar.{year}]"


def uncovered(years: str) -> str:
    """Why a count over the ``years`` :meth:`WorkingDays.missing_years` names cannot be
    made, and the configuration to add."""
    tables = []
    for run in years.split(", "):
        first, _, last = run.partition("-")
        tables.append(
            f"{calendar_entry(int(first))} to {calendar_entry(int(last))}"
            if last
            else calendar_entry(int(first))
        )
    return f"no working-day calendar for {years}: add {', '.join(tables)} to the configuration"


def _runs(years: list[int]) -> str:
    """Ascending years as ``, ``-joined runs: ``1990-2003, 2027``."""
    runs: list[list[int]] = []
    for year in years:
        if runs and runs[-1][-1] == year - 1:
            runs[-1].append(year)
        else:
            runs.append([year])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


class WorkingDays:
    """The working-day calendar: the package's years, overridden and extended by the
    configured ones; a day is *covered* when its year is one of them."""

    def __init__(self, configured: Mapping[int, CalendarYear] | None = None) -> None:
        configured = dict(configured or {})
        self.years = frozenset(PACKAGE_YEARS) | frozenset(configured)
        first, last = min(self.years), max(self.years)
        days = pd.date_range(f"{first}-01-01", f"{last}-12-31", freq="D")
        in_package = days.year.isin(PACKAGE_YEARS) & ~days.year.isin(list(configured))
        holidays = pd.DatetimeIndex(
            [d for d in constants.holidays if d.year not in configured]
            + [d for year in configured.values() for d in year.holidays]
        )
        workdays = pd.DatetimeIndex(
            [d for d in constants.workdays if d.year not in configured]
            + [d for year in configured.values() for d in year.workdays]
        )
        covered = in_package | days.year.isin(list(configured))
        working = covered & (days.dayofweek < 5) & ~days.isin(holidays)
        working |= covered & days.isin(workdays)
        self._first = days[0]
        self._covered = np.cumsum(np.asarray(covered))
        self._working = np.cumsum(np.asarray(working))

    def fingerprint(self) -> str:
        """A digest of the calendar: the years it covers and which of their days are
        working days. Two calendars that count alike have the same."""
        digest = hashlib.sha256(str(self._first).encode())
        digest.update(self._covered.tobytes())
        digest.update(self._working.tobytes())
        return digest.hexdigest()

    def covers(self, year: int) -> bool:
        """Whether the calendar knows every day of ``year``."""
        return year in self.years

    def _positions(self, dates: pd.Series) -> np.ndarray:
        """Day offsets from the calendar's first day (NaN for a null date)."""
        dt = pd.to_datetime(pd.Series(dates)).dt.normalize()
        return ((dt - self._first).dt.days).to_numpy(dtype="float64", na_value=np.nan)

    @staticmethod
    def _running(running: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """A running count at each position: 0 before the first day, the total after
        the last (null positions read as the first day; callers mask them)."""
        at = np.clip(np.nan_to_num(pos, nan=0), -1, len(running) - 1).astype(np.int64)
        return np.where(at < 0, 0, running[np.maximum(at, 0)])

    def _spans(self, start: pd.Series, end: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per row: the positions of ``start`` and ``end``, and how many days strictly
        after ``start`` up to ``end`` the calendar does not cover (0 when a date is null)."""
        s, e = self._positions(start), self._positions(end)
        days = np.where(np.isnan(s) | np.isnan(e), 0, np.maximum(e - s, 0)).astype(np.int64)
        known = self._running(self._covered, e) - self._running(self._covered, s)
        return s, e, np.where(days > 0, days - known, 0)

    def working_days_after(self, start: pd.Series, end: pd.Series) -> pd.Series:
        """Per row, the working days strictly after ``start`` up to and including ``end``.

        0 when ``end <= start``; NA (Int64) when either date is null or a day the count
        needs is in a year the calendar does not cover (:meth:`missing_years` says
        which). Values may be dates, datetimes (their day counts) or ISO strings. Both
        Series must have the same length; the result has ``start``'s index.
        """
        s, e, unknown = self._spans(start, end)
        count = np.maximum(self._running(self._working, e) - self._running(self._working, s), 0)
        unusable = np.isnan(s) | np.isnan(e) | (unknown > 0)
        return pd.Series(pd.array(count, dtype="Int64"), index=start.index).mask(unusable)

    def missing_years(self, start: pd.Series, end: pd.Series) -> pd.Series:
        """Per row, the years of the days the count from ``start`` to ``end`` needs that
        the calendar does not cover, as ascending runs (``1990-2003, 2027``); empty when
        none."""
        unknown = self._spans(start, end)[2]
        out = pd.Series("", index=start.index, dtype="str")
        lacking = unknown > 0
        if not lacking.any():
            return out
        first = (pd.to_datetime(start[lacking]) + pd.Timedelta(days=1)).dt.year.to_numpy()
        last = pd.to_datetime(end[lacking]).dt.year.to_numpy()
        named = {
            (a, b): _runs([y for y in range(a, b + 1) if not self.covers(y)])
            for a, b in set(zip(first.tolist(), last.tolist(), strict=True))
        }
        pairs = zip(first.tolist(), last.tolist(), strict=True)
        out[lacking] = pd.array([named[pair] for pair in pairs], dtype="str")
        return out

    def is_working_day(self, day: date) -> bool | None:
        """Whether ``day`` is a working day in mainland China; None when its year is not
        covered."""
        if not self.covers(day.year):
            return None
        pos = self._positions(pd.Series([day]))
        return bool(self._running(self._working, pos)[0] - self._running(self._working, pos - 1)[0])

    def warnings(self, day: date) -> list[str]:
        """What to configure before the SLA rules stop counting: the business date's year
        when not covered, and from 1 November the next year when not covered."""
        years = [day.year, day.year + 1] if day.month >= 11 else [day.year]
        return [
            f"working-day calendar for {year} not configured: SLA rules cannot count days "
            f"in {year} — add {calendar_entry(year)}"
            for year in years
            if not self.covers(year)
        ]


@cache
def package_calendar() -> WorkingDays:
    """The calendar of ``chinesecalendar`` alone."""
    return WorkingDays()


def is_working_day(d: date) -> bool | None:
    """Whether ``d`` is a working day by the package's calendar; None outside its years."""
    return package_calendar().is_working_day(d)


def working_days_after(start: pd.Series, end: pd.Series) -> pd.Series:
    """:meth:`WorkingDays.working_days_after` by the package's calendar."""
    return package_calendar().working_days_after(start, end)
