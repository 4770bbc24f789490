from datetime import date, datetime

import pandas as pd
import pytest

from vehiclehub.workdays import CalendarError, is_working_day, working_days_after


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2025, 10, 11), True),  # Saturday made up for National Day
        (date(2026, 2, 14), True),  # Saturday made up for Spring Festival
        (date(2025, 10, 3), False),  # National Day holiday
        (date(2025, 10, 12), False),  # plain Sunday
        (date(2025, 10, 9), True),
        (datetime(2025, 10, 11, 18, 30), True),
    ],
)
def test_is_working_day(day: date, working: bool) -> None:
    assert is_working_day(day) is working


def test_outside_calendar_raises() -> None:
    with pytest.raises(CalendarError, match="2030-01-02"):
        is_working_day(date(2030, 1, 2))
    with pytest.raises(CalendarError, match="2030-06-01"):
        working_days_after(pd.Series([date(2025, 1, 2)]), pd.Series([date(2030, 6, 1)]))


def test_working_days_after() -> None:
    start = pd.Series(
        [date(2025, 9, 30), date(2025, 10, 10), date(2025, 10, 10), date(2025, 10, 10), None],
        index=list("abcde"),
    )
    end = pd.Series(
        [
            date(2025, 10, 9),  # 1-8 October holiday, 9 October working
            datetime(2025, 10, 13, 16, 0),  # Saturday 11 (make-up) and Monday 13
            date(2025, 10, 10),
            date(2025, 10, 1),
            date(2025, 10, 1),
        ],
        index=list("abcde"),
    )
    out = working_days_after(start, end)
    assert str(out.dtype) == "Int64"
    assert out.index.equals(start.index)
    assert out.iloc[:4].tolist() == [1, 2, 0, 0]
    assert pd.isna(out.iloc[4])


def test_working_days_after_null_end_is_na() -> None:
    out = working_days_after(pd.Series([date(2025, 1, 2)]), pd.Series([None]))
    assert pd.isna(out.iloc[0])
