"""Checks made before a run takes its first file.

What can be known wrong before the first file is taken is found here, all of it at
once, with what to fix: a run that fails half-way would have taken files (which no
later run takes again) and loaded rows whose rejections never reach their agency.
A failed check stops the run before it changes anything.

Each check is a function of the settings and the business date returning the
problems it found, one sentence each; ``CHECKS`` lists them in the order they run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date
from pathlib import Path
from urllib.parse import unquote, urlparse

from vehiclehub.config import Settings
from vehiclehub.errors import CannotStart

#: The dates a business date may be (ICD §1: dates lie in 1900-01-01 … 2099-12-31).
FIRST_DATE, LAST_DATE = date(1900, 1, 1), date(2099, 12, 31)

Check = Callable[[Settings, date], list[str]]


class PreflightFailed(CannotStart):
    """The run cannot start; nothing was taken, loaded or written."""

    def __init__(self, day: date, problems: list[str]) -> None:
        self.problems = problems
        listed = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"cannot run business date {day}; nothing was taken or changed:\n{listed}")


def business_date_in_range(settings: Settings, day: date) -> list[str]:
    """The business date is one the contract can hold."""
    if FIRST_DATE <= day <= LAST_DATE:
        return []
    return [f"business date {day} is outside {FIRST_DATE} … {LAST_DATE} (ICD §1); pass --date"]


def _writable_place(path: Path) -> Path | None:
    """The nearest existing directory at or above ``path``, if the hub may write there."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            ok = candidate.is_dir() and os.access(candidate, os.W_OK | os.X_OK)
            return candidate if ok else None
    return None


def work_dir_writable(settings: Settings, day: date) -> list[str]:
    """The work directory exists, or can be made, and the hub may write in it."""
    if _writable_place(settings.work_dir) is None:
        return [
            f"work_dir {settings.work_dir} cannot be written (or made) by this user; "
            "fix work_dir or the directory's permissions"
        ]
    return []


def store_reachable(settings: Settings, day: date) -> list[str]:
    """The store answers; a SQLite file not made yet can be made where it is named."""
    from vehiclehub.store.db import StoreUnavailable, connect

    url = settings.database_url
    if url.startswith("sqlite") and "memory" not in url:
        path = Path(unquote(urlparse(url.replace("sqlite+pysqlite", "sqlite")).path))
        if not path.exists():
            if _writable_place(path.parent) is None:
                return [f"the store {path} cannot be made: {path.parent} is not writable"]
            return []  # made by the run itself: nothing to reach yet, nothing made here
    try:
        connect(url, create=False).dispose()
    except StoreUnavailable as exc:
        return [f"{exc} (check database_url or VHUB_DATABASE_URL, and that the server runs)"]
    return []


def exchange_roots_exist(settings: Settings, day: date) -> list[str]:
    """Every local agency root exists with its ``outbox/`` and ``inbox/``.

    A local root that is not there is a wrong url, not an agency that did not send:
    taken for the latter, the run would tell the other agencies that its evidence is
    missing. (An SFTP root is checked when its server answers, at intake.)
    """
    problems = []
    for agency, endpoint in settings.agencies.items():
        if not endpoint.url.startswith("file://"):
            continue
        root = Path(unquote(urlparse(endpoint.url).path))
        lacking = [d for d in ("outbox", "inbox") if not (root / d).is_dir()]
        if not root.is_dir():
            problems.append(
                f"{agency}: the exchange root {root} does not exist; fix [agencies.{agency}] "
                "url, or create it with outbox/ and inbox/ below it"
            )
        elif lacking:
            problems.append(
                f"{agency}: the exchange root {root} has no {' and no '.join(lacking)}/; "
                f"create {', '.join(str(root / d) for d in lacking)}"
            )
    return problems


def sftp_credentials_present(settings: Settings, day: date) -> list[str]:
    """Every SFTP agency names a user, and its key and known_hosts files are readable."""
    problems = []
    for agency, endpoint in settings.agencies.items():
        if not endpoint.url.startswith("sftp://"):
            continue
        if not urlparse(endpoint.url).username:
            problems.append(f"{agency}: the url {endpoint.url} names no user (sftp://user@host/)")
        for field in ("private_key", "known_hosts"):
            path: Path | None = getattr(endpoint, field)
            if path is None:
                problems.append(f"{agency}: no {field} configured under [agencies.{agency}]")
            elif not os.access(path, os.R_OK) or not path.is_file():
                problems.append(f"{agency}: {field} {path} cannot be read")
    return problems


def _newest_archived(settings: Settings) -> Path | None:
    """The archived file written last, if any (an unfinished ``.part`` never counts)."""
    newest: tuple[float, Path] | None = None
    if not settings.archive_dir.is_dir():
        return None
    for agency_dir in settings.archive_dir.iterdir():
        if not agency_dir.is_dir():
            continue
        with os.scandir(agency_dir) as entries:
            for entry in entries:
                if entry.name.endswith(".enc") and entry.is_file():
                    stamp = entry.stat().st_mtime
                    if newest is None or stamp > newest[0]:
                        newest = (stamp, Path(entry.path))
    return newest[1] if newest else None


def archive_key_opens_the_archive(settings: Settings, day: date) -> list[str]:
    """The archive key opens what the archive already holds.

    A changed ``archive_key`` (or pseudonym key, which the archive key is derived from
    when none is set) would seal tonight's files under a key that cannot open the
    earlier ones: the audit archive would be split in two.
    """
    from vehiclehub.crypto import ArchiveCorrupt, archive_key, read_archive

    newest = _newest_archived(settings)
    if newest is None:
        return []
    try:
        next(iter(read_archive(newest, archive_key(settings))), None)
    except ArchiveCorrupt:
        return [
            f"the archive key does not open the archive's files ({newest} does not decrypt): "
            "set archive_key (or VHUB_ARCHIVE_KEY, or the pseudonym key it is derived from) "
            "back to the key they were written with"
        ]
    return []


CHECKS: tuple[Check, ...] = (
    business_date_in_range,
    work_dir_writable,
    exchange_roots_exist,
    sftp_credentials_present,
    archive_key_opens_the_archive,
    store_reachable,
)


def preflight(settings: Settings, day: date) -> None:
    """Run every check; raise PreflightFailed listing all the problems found."""
    problems = [problem for check in CHECKS for problem in check(settings, day)]
    if problems:
        raise PreflightFailed(day, problems)
