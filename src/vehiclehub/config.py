"""Typed configuration: one TOML file plus environment overrides.

The file is given by ``--config FILE`` or ``VHUB_CONFIG``. Secrets may stay out of
the file: ``VHUB_PSEUDONYM_KEY``, ``VHUB_ARCHIVE_KEY`` and ``VHUB_SIGNING_KEY`` override
the keys there.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import stat
import tomllib
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vehiclehub.errors import CannotStart

log = logging.getLogger(__name__)

AGENCIES: tuple[str, ...] = ("commerce", "police", "customs", "tax")
Agency = Literal["commerce", "police", "customs", "tax"]


class ConfigError(CannotStart):
    """The configuration cannot be used; the message says what to fix."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _public_keys(values: list[str]) -> list[str]:
    """Ed25519 public keys as ICD §6 publishes them: standard base64 of 32 raw bytes."""
    for value in values:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"{value!r} is not standard base64") from exc
        if len(raw) != 32:
            raise ValueError(f"{value!r} holds {len(raw)} bytes; an Ed25519 public key has 32")
    return values


class AgencyEndpoint(_Model):
    """Where an agency's exchange root lives (``outbox/`` and ``inbox/`` below it)."""

    url: str
    private_key: Path | None = None
    known_hosts: Path | None = None
    connect_timeout_s: float = 20.0
    retries: int = Field(default=3, ge=0)
    backoff_s: float = Field(default=2.0, ge=0)
    # file:// only: the mode of a file delivered into the inbox (octal, as chmod takes
    # it); it takes the inbox directory's group, so the agency reads it and no one else.
    inbox_mode: str = Field(default="0640", pattern=r"^0?[0-7]{3}$")
    #: The agency's Ed25519 public keys (ICD §6); when set, its files must be signed.
    public_keys: list[str] = []

    @field_validator("public_keys")
    @classmethod
    def _keys(cls, value: list[str]) -> list[str]:
        return _public_keys(value)

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not (value.startswith("file://") or value.startswith("sftp://")):
            raise ValueError("must start with file:// or sftp://")
        return value


class RuleParameters(_Model):
    """The bracketed parameters of RULES.md, with its defaults."""

    dereg_window_days: int = 60
    new_car_days: int = 180
    pending_export_days: int = 60
    licence_wd: int = 3
    refund_wd_class12: int = 3
    refund_wd_other: int = 5
    subsidy_min_vehicles: int = 50
    subsidy_per_vehicle_cny: int = 1000


class QualitySettings(_Model):
    """Data-quality gates (``expectations/``) and feed completeness.

    ``expected_feeds`` names, per agency, the feeds it must send every business date;
    an agency left out sends every feed of the contract (the default: all six feeds
    daily), ``[]`` means none is expected. Volume: a feed's first file of a business
    date (seq 001) is compared with the median rows of the last
    ``volume_history_files`` loaded first files of that feed from earlier runs, once
    there are ``volume_min_history`` of them and their median is at least
    ``volume_min_median_rows`` (small feeds vary too much to judge). Below
    ``volume_floor_ratio`` x median is critical (the file is rejected whole); above
    ``volume_ceiling_ratio`` x median is a warning. Late files: an agency's files for
    business date D are due by its ``arrival_deadlines`` time (local, on D + 1; default
    ``default_arrival_deadline``); the late-file sensor waits for them until then.
    """

    expected_feeds: dict[Agency, list[str]] = {}
    volume_history_files: int = Field(default=10, ge=1)
    volume_min_history: int = Field(default=3, ge=1)
    volume_min_median_rows: int = Field(default=100, ge=0)
    volume_floor_ratio: float = Field(default=1 / 3, gt=0, lt=1)
    volume_ceiling_ratio: float = Field(default=3.0, gt=1)
    gap_lookback_days: int = Field(default=7, ge=0)
    arrival_deadlines: dict[Agency, time] = {}
    default_arrival_deadline: time = time(6, 0)


class ReviewSettings(_Model):
    """The review desk (``vhub serve``, the Airflow plugin).

    ``session_secret`` signs the desk's session cookies (or ``VHUB_SESSION_SECRET``;
    derived from the pseudonym key when neither is given). A user is locked out for
    ``lockout_minutes`` after ``max_failed_logins`` failed logins in a row.
    ``secure_cookies`` marks the cookies for HTTPS only (set it behind TLS).
    """

    session_secret: str | None = Field(default=None, min_length=16, repr=False)
    session_hours: float = Field(default=12, gt=0)
    max_failed_logins: int = Field(default=5, ge=1)
    lockout_minutes: float = Field(default=15, ge=0)
    secure_cookies: bool = False


class CalendarYear(_Model):
    """One year's working-day schedule as the State Council's notice gives it.

    ``holidays``: every day off in the notice (weekend days may be listed too);
    ``workdays``: the make-up working days (调休), always Saturdays or Sundays. Any other
    Saturday or Sunday is a day off, any other weekday a working day.
    """

    holidays: list[date]
    workdays: list[date] = []


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _calendar_day(where: str, value: Any) -> date:
    """A TOML date, or a ``YYYY-MM-DD`` string, of a ``[calendar.YYYY]`` list."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"{where}: {value!r} is not a date YYYY-MM-DD")


def _calendar_problems(key: str, table: Any) -> list[str]:
    """What is wrong with one ``[calendar.YYYY]`` table, each naming its key and value."""
    name = f"[calendar.{key}]"
    if not re.fullmatch(r"\d{4}", key):
        return [f"{name}: the table's name must be a year YYYY"]
    if not isinstance(table, dict):
        return [f"{name} must be a table with holidays and, optionally, workdays"]
    problems = [
        f"{name} {k}: not a setting (holidays, workdays)"
        for k in table
        if k not in ("holidays", "workdays")
    ]
    if "holidays" not in table:
        problems.append(f"{name} holidays: missing (every day off in the year's notice)")
    listed: dict[str, set[date]] = {}
    for kind in ("holidays", "workdays"):
        values = table.get(kind, [])
        if not isinstance(values, list):
            problems.append(f"{name} {kind}: {values!r} is not a list of dates")
            continue
        days = listed.setdefault(kind, set())
        for value in values:
            try:
                day = _calendar_day(f"{name} {kind}", value)
            except ValueError as exc:
                problems.append(str(exc))
                continue
            days.add(day)
            if day.year != int(key):
                problems.append(f"{name} {kind}: {day} is not in {key}")
            elif kind == "workdays" and day.weekday() < 5:
                problems.append(
                    f"{name} workdays: {day} is a {day:%A}; a make-up working day is a "
                    "Saturday or Sunday"
                )
    for day in sorted(listed.get("holidays", set()) & listed.get("workdays", set())):
        problems.append(f"{name}: {day} is listed both in holidays and in workdays")
    return problems


class MetricsSettings(_Model):
    """Where the hub sends its metrics: StatsD over UDP to ``statsd_host``; without a
    host none are sent. Names start with ``statsd_prefix`` (README, Metrics)."""

    statsd_host: str | None = None
    statsd_port: int = Field(default=8125, ge=1, le=65535)
    statsd_prefix: str = Field(default="vehiclehub", pattern=r"^[A-Za-z0-9_.-]+$")


class RetentionSettings(_Model):
    """How many days the hub keeps its own files: the encrypted archive of the agencies'
    files (counted from the run that took them), the drops and the run reports (counted
    from their business date). Older ones are removed by ``vhub prune``; a drop still
    waiting for delivery is kept, and store records are never removed."""

    archive_days: int = Field(default=400, ge=1)
    drops_days: int = Field(default=90, ge=1)
    reports_days: int = Field(default=90, ge=1)


class Settings(_Model):
    database_url: str
    work_dir: Path
    pseudonym_key: str = Field(min_length=16, repr=False)
    archive_key: str | None = Field(default=None, repr=False)
    #: The hub's Ed25519 signing key (ICD §6): a PKCS#8 PEM file or one holding the raw
    #: 32-byte seed in base64; ``signing_key`` (the seed in base64, usually from
    #: ``VHUB_SIGNING_KEY``) takes precedence. Without either it is derived from the
    #: pseudonym key.
    signing_key_file: Path | None = None
    signing_key: str | None = Field(default=None, repr=False)
    #: Public keys the hub signed with before its current one, kept so that its earlier
    #: drops still verify.
    previous_signing_keys: list[str] = []
    timezone: str = "Asia/Shanghai"
    agencies: dict[Agency, AgencyEndpoint]
    rules: RuleParameters = RuleParameters()
    quality: QualitySettings = QualitySettings()
    review: ReviewSettings = ReviewSettings()
    calendar: dict[int, CalendarYear] = {}
    metrics: MetricsSettings = MetricsSettings()
    retention: RetentionSettings = RetentionSettings()
    # One run at a time per store (vehiclehub.store.lease): how long a second run waits
    # for the first, and how long a run's lease outlives its last renewal (a killed run's
    # lease is free after that).
    lease_wait_s: float = Field(default=0.0, ge=0)
    lease_ttl_s: float = Field(default=600.0, ge=5)
    source: Path | None = None

    @field_validator("calendar", mode="before")
    @classmethod
    def _calendar_tables(cls, value: Any) -> Any:
        """Check every ``[calendar.YYYY]`` table, reporting all problems at once."""
        if not isinstance(value, dict):
            return value
        problems = [p for key, table in value.items() for p in _calendar_problems(str(key), table)]
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @field_validator("work_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError("must be an absolute path")
        return value

    @field_validator("previous_signing_keys")
    @classmethod
    def _previous(cls, value: list[str]) -> list[str]:
        return _public_keys(value)

    @field_validator("agencies")
    @classmethod
    def _all_agencies(cls, value: dict[str, AgencyEndpoint]) -> dict[str, AgencyEndpoint]:
        missing = [a for a in AGENCIES if a not in value]
        if missing:
            raise ValueError(f"missing [agencies.{missing[0]}] (need {', '.join(AGENCIES)})")
        return value

    @property
    def reports_dir(self) -> Path:
        return self.work_dir / "reports"

    @property
    def archive_dir(self) -> Path:
        return self.work_dir / "archive"

    @property
    def drops_dir(self) -> Path:
        return self.work_dir / "drops"


@dataclass(frozen=True)
class _Env:
    config: str = "VHUB_CONFIG"
    pseudonym_key: str = "VHUB_PSEUDONYM_KEY"
    archive_key: str = "VHUB_ARCHIVE_KEY"
    signing_key: str = "VHUB_SIGNING_KEY"
    database_url: str = "VHUB_DATABASE_URL"
    session_secret: str = "VHUB_SESSION_SECRET"


ENV = _Env()


def resolve_config_path(path: str | Path | None) -> Path:
    """The config file named on the command line, else ``VHUB_CONFIG``."""
    chosen = path or os.environ.get(ENV.config)
    if not chosen:
        raise ConfigError("no configuration: pass --config FILE or set VHUB_CONFIG")
    return Path(chosen)


def load_settings(path: str | Path | None = None) -> Settings:
    """Read and validate the TOML configuration; raise ConfigError saying what to fix."""
    config_path = resolve_config_path(path)
    try:
        raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file {config_path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {config_path} is not valid TOML: {exc}") from exc
    for field, var in (
        ("pseudonym_key", ENV.pseudonym_key),
        ("archive_key", ENV.archive_key),
        ("signing_key", ENV.signing_key),
        ("database_url", ENV.database_url),
    ):
        if os.environ.get(var):
            raw[field] = os.environ[var]
    if os.environ.get(ENV.session_secret):
        raw.setdefault("review", {})["session_secret"] = os.environ[ENV.session_secret]
    raw["source"] = str(config_path.resolve())
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"configuration file {config_path} is invalid: {problems}") from exc
    check_private(config_path, "configuration file")
    if settings.signing_key_file is not None and settings.signing_key_file.exists():
        check_private(settings.signing_key_file, "signing key file")
    for agency, endpoint in settings.agencies.items():
        if endpoint.private_key is not None and endpoint.private_key.exists():
            check_private(endpoint.private_key, f"private key of {agency}")
    return settings


def check_private(path: Path, what: str) -> None:
    """A file holding secrets: refused when anyone may write it (anyone could then change
    the hub's keys or exchanges), a warning when others may read it."""
    mode = path.stat().st_mode
    if mode & stat.S_IWOTH:
        raise ConfigError(
            f"{what} {path} may be written by anyone (mode {stat.S_IMODE(mode):o}); "
            f"make it private: chmod 600 {path}"
        )
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        log.warning(
            "%s %s may be read by others (mode %o): it holds keys; chmod 600 it",
            what,
            path,
            stat.S_IMODE(mode),
        )
