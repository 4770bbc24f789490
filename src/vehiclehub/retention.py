"""Retention (``[retention]``): what ``vhub prune`` removes of the hub's own files.

The encrypted archive of agency files is kept ``archive_days`` from the last run that
took each file; drops (``work_dir/drops/<date>/``) and run reports
(``work_dir/reports/<date>/``) are kept ``drops_days`` and ``reports_days`` from their
business date. What is older is removed, except a drop still waiting for delivery (and
its manifest). Store records — files taken, rejections, findings, verdicts, deliveries —
are never removed; nor is anything the hub did not name by a date or a taken file.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import Connection, func, select

from vehiclehub.config import Settings
from vehiclehub.icd.names import manifest_name
from vehiclehub.store.schema import deliveries, intake_files

log = logging.getLogger(__name__)


@dataclass
class Pruned:
    """What one prune removed (paths relative to the work directory), and what it kept
    past its time because a delivery still needs it."""

    archive: list[str] = field(default_factory=list)
    drops: list[str] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)
    kept_for_delivery: list[str] = field(default_factory=list)
    bytes_freed: int = 0

    def lines(self) -> list[str]:
        """What an operator reads: per kind of file, how many were removed and of which
        dates (each path is logged as it goes)."""

        def dates(paths: list[str]) -> str:
            days = sorted({Path(p).parts[1] for p in paths})
            return f" ({', '.join(days)})" if days else ""

        shown = [
            f"removed {len(self.archive)} archived agency files",
            f"removed {len(self.drops)} drop files{dates(self.drops)}",
            f"removed {len(self.reports)} report folders{dates(self.reports)}",
        ]
        if self.kept_for_delivery:
            shown.append(
                f"kept {len(self.kept_for_delivery)} drop files past their time, not yet "
                f"delivered: {', '.join(self.kept_for_delivery)}"
            )
        shown.append(f"freed {self.bytes_freed / 2**20:,.1f} MiB")
        return shown


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _dated_folders(root: Path, before: date) -> list[tuple[date, Path]]:
    """The folders under ``root`` named by a business date earlier than ``before``."""
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.iterdir()):
        try:
            day = date.fromisoformat(path.name)
        except ValueError:
            continue
        if path.is_dir() and day < before:
            found.append((day, path))
    return found


def expired_archive(conn: Connection, before: date) -> list[str]:
    """Archive paths (relative to the work directory) no run since ``before`` took."""
    last_taken = func.max(intake_files.c.run_date)
    query = (
        select(intake_files.c.archive_path)
        .where(intake_files.c.archive_path.is_not(None))
        .group_by(intake_files.c.archive_path)
        .having(last_taken < before)
        .order_by(intake_files.c.archive_path)
    )
    return [str(path) for path in conn.execute(query).scalars()]


def undelivered_files(conn: Connection) -> set[str]:
    """Paths (relative to the work directory) of the drops not delivered yet, manifests
    too."""
    rows = conn.execute(
        select(deliveries.c.run_date, deliveries.c.name).where(deliveries.c.delivered_at.is_(None))
    )
    kept = set()
    for run_date, name in rows:
        folder = f"drops/{date.fromisoformat(str(run_date)).isoformat()}"
        kept |= {f"{folder}/{name}", f"{folder}/{manifest_name(name)}"}
    return kept


def _remove(path: Path, work: Path, removed: list[str]) -> int:
    """Remove a file or folder; note it (relative to ``work``); return the bytes freed."""
    size = _size(path)
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
    relative = str(path.relative_to(work))
    removed.append(relative)
    log.info("prune: removed %s", relative)
    return size


def prune(settings: Settings, conn: Connection, today: date) -> Pruned:
    """Remove the archived files, drops and reports older than ``[retention]`` allows,
    counted back from ``today``; a date exactly that old is kept."""
    keep, work, pruned = settings.retention, settings.work_dir, Pruned()
    for relative in expired_archive(conn, today - timedelta(days=keep.archive_days)):
        if (work / relative).is_file():  # an earlier prune may have removed it
            pruned.bytes_freed += _remove(work / relative, work, pruned.archive)
    pending = undelivered_files(conn)
    for _, folder in _dated_folders(settings.drops_dir, today - timedelta(days=keep.drops_days)):
        for path in sorted(folder.iterdir()):
            if str(path.relative_to(work)) in pending:
                pruned.kept_for_delivery.append(str(path.relative_to(work)))
            else:
                pruned.bytes_freed += _remove(path, work, pruned.drops)
        if not any(folder.iterdir()):
            folder.rmdir()
    reports_before = today - timedelta(days=keep.reports_days)
    for _, folder in _dated_folders(settings.reports_dir, reports_before):
        pruned.bytes_freed += _remove(folder, work, pruned.reports)
    return pruned
