"""``[calendar.YYYY]`` tables: read with the configuration, every mistake named."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from vehiclehub.config import ConfigError, Settings, load_settings


def with_calendar(hub_config: Path, toml: str) -> Settings:
    hub_config.write_text(hub_config.read_text(encoding="utf-8") + toml, encoding="utf-8")
    return load_settings(hub_config)


def test_a_year_table_is_read_with_dates_as_text_or_toml_dates(hub_config: Path) -> None:
    settings = with_calendar(
        hub_config,
        '[calendar.2027]\nholidays = ["2027-01-01", 2027-02-06]\nworkdays = [2027-02-14]\n'
        '[calendar.2028]\nholidays = ["2028-01-01"]\n',
    )
    assert settings.calendar[2027].holidays == [date(2027, 1, 1), date(2027, 2, 6)]
    assert settings.calendar[2027].workdays == [date(2027, 2, 14)]
    assert settings.calendar[2028].workdays == []


def test_no_calendar_table_is_the_package_alone(hub_config: Path) -> None:
    assert load_settings(hub_config).calendar == {}


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[calendar.2027]\nholidays = ["2027-01-01", "2026-12-31"]\n',
            "[calendar.2027] holidays: 2026-12-31 is not in 2027",
        ),
        (
            '[calendar.2027]\nholidays = []\nworkdays = ["2028-01-08"]\n',
            "[calendar.2027] workdays: 2028-01-08 is not in 2027",
        ),
        (
            '[calendar.2027]\nholidays = []\nworkdays = ["2027-02-15"]\n',
            "[calendar.2027] workdays: 2027-02-15 is a Monday; a make-up working day is a "
            "Saturday or Sunday",
        ),
        (
            '[calendar.2027]\nholidays = ["2027-02-13"]\nworkdays = ["2027-02-13"]\n',
            "[calendar.2027]: 2027-02-13 is listed both in holidays and in workdays",
        ),
        (
            '[calendar.2027]\nholidays = ["2027-02-30"]\n',
            "[calendar.2027] holidays: '2027-02-30' is not a date YYYY-MM-DD",
        ),
        (
            '[calendar.2027]\nholidays = ["1 Jan 2027"]\n',
            "[calendar.2027] holidays: '1 Jan 2027' is not a date YYYY-MM-DD",
        ),
        (
            "[calendar.2027]\nholidays = [20270101]\n",
            "[calendar.2027] holidays: 20270101 is not a date YYYY-MM-DD",
        ),
        (
            "[calendar.2027]\nholidays = [2027-01-01T00:00:00]\n",
            "[calendar.2027] holidays: datetime.datetime(2027, 1, 1, 0, 0) is not a date",
        ),
        (
            '[calendar.2027]\nholidays = "2027-01-01"\n',
            "[calendar.2027] holidays: '2027-01-01' is not a list of dates",
        ),
        (
            '[calendar.2027]\nworkdays = ["2027-02-14"]\n',
            "[calendar.2027] holidays: missing",
        ),
        (
            '[calendar.2027]\nholidays = []\nholiday = ["2027-01-01"]\n',
            "[calendar.2027] holiday: not a setting (holidays, workdays)",
        ),
        (
            '[calendar.27]\nholidays = ["2027-01-01"]\n',
            "[calendar.27]: the table's name must be a year YYYY",
        ),
    ],
)
def test_each_mistake_is_a_configuration_error_naming_key_and_value(
    hub_config: Path, toml: str, message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        with_calendar(hub_config, toml)
    assert message in str(raised.value)
    assert str(raised.value).startswith(f"configuration file {hub_config} is invalid: calendar")


def test_every_mistake_is_named_at_once(hub_config: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        with_calendar(
            hub_config,
            '[calendar.2027]\nholidays = ["2026-12-31"]\nworkdays = ["2027-02-15"]\n',
        )
    assert "2026-12-31 is not in 2027" in str(raised.value)
    assert "2027-02-15 is a Monday" in str(raised.value)
