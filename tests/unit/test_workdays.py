import re
import tomllib
from datetime import date, datetime, timedelta
from pathlib import Path

import chinese_calendar
import pandas as pd
import pytest

from vehiclehub.config import CalendarYear
from vehiclehub.workdays import (
    PACKAGE_YEARS,
    WorkingDays,
    is_working_day,
    package_calendar,
    uncovered,
    working_days_after,
)

README = Path(__file__).resolve().parents[2] / "README.md"

#: An example 2027 schedule for tests only (not the State Council's): 1 January off
#: (a Friday), Saturday 9 January a make-up working day.
EXAMPLE_2027 = CalendarYear(holidays=[date(2027, 1, 1)], workdays=[date(2027, 1, 9)])


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2025, 10, 11), True),  # Saturday made up for National Day
        (date(2026, 2, 14), True),  # Saturday made up for Spring Festival
        (date(2025, 10, 3), False),  # National Day holiday
        (date(2025, 10, 12), False),  # plain Sunday
        (date(2025, 10, 9), True),
        (datetime(2025, 10, 11, 18, 30), True),
        (date(2027, 1, 4), None),  # a year the package does not carry
        (date(2003, 6, 2), None),
    ],
)
def test_is_working_day(day: date, working: bool | None) -> None:
    assert is_working_day(day) is working


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


def test_a_count_needing_an_uncovered_year_is_not_made_and_names_the_years() -> None:
    start = pd.Series(["2026-12-30", "2003-05-01", "2003-12-31", "2026-12-21", "2001-03-01"])
    end = pd.Series(["2027-01-04", "2025-01-02", "2004-01-05", "2026-12-31", "2027-02-01"])
    counted = package_calendar().working_days_after(start, end)
    missing = package_calendar().missing_years(start, end)
    # 2003-12-31 to 2004-01-05 needs only 2004's days: 2, 5 January (1 January off).
    assert counted.tolist()[2:4] == [2, 8]
    assert counted.iloc[[0, 1, 4]].isna().all()
    assert missing.tolist() == ["2027", "2003", "", "", "2001-2003, 2027"]
    assert uncovered("2001-2003, 2027") == (
        "no working-day calendar for 2001-2003, 2027: add [calendar.2001] to "
        "[calendar.2003], [calendar.2027] to the configuration"
    )


def test_a_configured_year_extends_the_calendar() -> None:
    calendar = WorkingDays({2027: EXAMPLE_2027})
    start = pd.Series([date(2026, 12, 30), date(2027, 1, 7)])
    end = pd.Series([date(2027, 1, 4), date(2027, 1, 11)])
    # 31 December, (1 January off), 4 January; 8, Saturday 9 (make-up), 11 January.
    assert calendar.working_days_after(start, end).tolist() == [2, 3]
    assert calendar.missing_years(start, end).tolist() == ["", ""]
    assert calendar.is_working_day(date(2027, 1, 9)) is True
    assert calendar.is_working_day(date(2027, 1, 10)) is False
    assert calendar.is_working_day(date(2028, 1, 3)) is None


def test_a_configured_year_takes_precedence_over_the_package() -> None:
    # A year configured with no holidays at all: Wednesday 1 to Monday 13 October 2025 has
    # nine weekdays, all working, and Saturday 11 October is a day off.
    calendar = WorkingDays({2025: CalendarYear(holidays=[])})
    start, end = pd.Series([date(2025, 9, 30)]), pd.Series([date(2025, 10, 13)])
    assert calendar.working_days_after(start, end).tolist() == [9]
    assert package_calendar().working_days_after(start, end).tolist() == [4]


@pytest.mark.parametrize(
    ("day", "configured", "warned"),
    [
        (date(2026, 10, 31), {}, []),  # before November: nothing yet
        (date(2026, 11, 1), {}, [2027]),
        (date(2026, 12, 31), {2027: EXAMPLE_2027}, []),
        (date(2027, 1, 4), {}, [2027]),  # the business date's own year
        (date(2027, 11, 2), {2027: EXAMPLE_2027}, [2028]),
    ],
)
def test_warnings_name_the_years_to_configure(
    day: date, configured: dict[int, CalendarYear], warned: list[int]
) -> None:
    assert WorkingDays(configured).warnings(day) == [
        f"working-day calendar for {y} not configured: SLA rules cannot count days in {y} "
        f"— add [calendar.{y}]"
        for y in warned
    ]


def readme_calendar_example() -> dict[str, object]:
    """The ``[calendar.2026]`` table of the README's worked example, as TOML."""
    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    (example,) = [b for b in blocks if "[calendar.2026]" in b]
    return tomllib.loads(example)


def test_the_readme_2026_example_equals_the_package_day_by_day() -> None:
    table = readme_calendar_example()["calendar"]
    assert isinstance(table, dict)
    calendar = WorkingDays({2026: CalendarYear.model_validate(table["2026"])})
    day = date(2026, 1, 1)
    differ = []
    while day.year == 2026:
        if calendar.is_working_day(day) is not chinese_calendar.is_workday(day):
            differ.append(day)
        day += timedelta(days=1)
    assert 2026 in PACKAGE_YEARS
    assert differ == []
