"""Chinese working days (State Council calendar with 调休) for the SLA rules."""

from datetime import date
from functools import cache

import numpy as np
import pandas as pd
from chinese_calendar import constants


class CalendarError(ValueError):
    """A date outside the years the working-day calendar covers."""


@cache
def _calendar() -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
    """All days of the covered years, whether each is a working day, and the running count."""
    first = min(constants.holidays).year
    last = max(constants.holidays).year
    days = pd.date_range(f"{first}-01-01", f"{last}-12-31", freq="D")
    working = (days.dayofweek < 5) & ~days.isin(pd.DatetimeIndex(list(constants.holidays)))
    working |= days.isin(pd.DatetimeIndex(list(constants.workdays)))
    return days, working, np.cumsum(working)


def _positions(dates: pd.Series) -> np.ndarray:
    """Day offsets into the calendar (-1 for a null date); raise CalendarError if outside."""
    days = _calendar()[0]
    dt = pd.to_datetime(dates).dt.normalize()
    pos = ((dt - days[0]).dt.days).to_numpy(dtype="float64", na_value=np.nan)
    outside = ~np.isnan(pos) & ((pos < 0) | (pos >= len(days)))
    if outside.any():
        bad = dt[outside].iloc[0].date()
        raise CalendarError(
            f"{bad} is outside the working-day calendar ({days[0].year}-{days[-1].year})"
        )
    return np.nan_to_num(pos, nan=-1).astype(np.int64)


def is_working_day(d: date) -> bool:
    """Whether ``d`` is a working day in mainland China; CalendarError outside the calendar."""
    return bool(_calendar()[1][_positions(pd.Series([d]))[0]])


def working_days_after(start: pd.Series, end: pd.Series) -> pd.Series:
    """Per row, the working days strictly after ``start`` up to and including ``end``.

    0 when ``end <= start``; NA (Int64) when either date is null. Values may be dates,
    datetimes (their day counts) or ISO strings. Both Series must have the same length; the
    result has ``start``'s index. A date outside the calendar raises CalendarError.
    """
    cumulative = _calendar()[2]
    s, e = _positions(start), _positions(end)
    count = np.maximum(cumulative[e] - cumulative[s], 0)
    return pd.Series(pd.array(count, dtype="Int64"), index=start.index).mask((s < 0) | (e < 0))
