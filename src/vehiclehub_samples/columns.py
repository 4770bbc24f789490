"""Days and text columns: a day is a whole number of days since 1970-01-01 (NaN: never),
and every value the feeds carry is text, built in bulk through Arrow.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from vehiclehub.workdays import package_calendar

EPOCH = date(1970, 1, 1)


def day_number(day: date) -> int:
    return (day - EPOCH).days


def calendar_day(number: float) -> date:
    return EPOCH + timedelta(days=int(number))


def business_dates(start: date, count: int) -> list[date]:
    """``count`` consecutive Chinese working days from ``start`` (itself if a working day).

    In a year the working-day calendar does not cover, the simulated agencies send their
    files Monday to Friday (a choice for sample files; no rule counts with it).
    """
    calendar = package_calendar()
    found: list[date] = []
    day = start
    while len(found) < count:
        working = calendar.is_working_day(day)
        if working or (working is None and day.weekday() < 5):
            found.append(day)
        day += timedelta(days=1)
    return found


def _arrow_text(array: pa.Array) -> pd.Series:
    """An Arrow string array as a pandas string Series (no Python strings on the way)."""
    return pd.Series(pd.array(array, dtype="str"))


def as_text(values: Any) -> pd.Series:
    """Text values (None for null) as a string Series with a fresh index."""
    return _arrow_text(pa.array(np.asarray(values)))


def choose(options: Sequence[str] | pd.Series, index: Any) -> pd.Series:
    """``options[index]`` per row, as text, built through an Arrow dictionary."""
    codes = pa.array(np.asarray(index, dtype=np.int32))
    chosen = pa.DictionaryArray.from_arrays(codes, pa.array(list(options), pa.string()))
    return _arrow_text(chosen.cast(pa.string()))


def iso(days: Any) -> pd.Series:
    """Day numbers as ``YYYY-MM-DD`` text; NaN (never) as null."""
    values = np.asarray(days, dtype=np.float64)
    missing = np.isnan(values)
    dates = pa.array(np.where(missing, 0, values).astype(np.int32), pa.date32(), mask=missing)
    return _arrow_text(pc.cast(dates, pa.string()))


def compact(days: Any) -> pd.Series:
    """Day numbers as ``YYYYMMDD``."""
    return iso(days).str.replace("-", "", regex=False)


def padded(numbers: Any, width: int) -> pd.Series:
    """Whole numbers as text, zero-padded to ``width``."""
    text = pc.cast(pa.array(np.asarray(numbers, dtype=np.int64)), pa.string())
    return _arrow_text(pc.utf8_lpad(text, width=width, padding="0"))


def money(cents: Any) -> pd.Series:
    """Whole cents as a plain decimal with two places."""
    cents = np.asarray(cents, dtype=np.int64)
    return padded(cents // 100, 1) + "." + padded(cents % 100, 2)


def pick(values: Sequence[Any], index: Any) -> np.ndarray:
    chosen: np.ndarray = np.asarray(values)[np.asarray(index)]
    return chosen


def shares(weights: Sequence[float] | np.ndarray) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    shares: np.ndarray = w / w.sum()
    return shares
