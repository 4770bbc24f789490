"""Taking an agency's new files: fetch, verify, decode, validate, load — one file at a time.

Every complete file is accounted for in ``intake_files`` (loaded, rejected or a
duplicate), every rejected row or file in ``rejections``; a file's rows, its
rejections, its bookkeeping and its entry in the exchange log (ICD §6) are written in
one transaction. An agency with configured public keys must sign its manifests.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from vehiclehub import progress
from vehiclehub.config import Settings
from vehiclehub.contract import feeds
from vehiclehub.exchange.base import (
    Exchange,
    NotRegularFile,
    OutboxEntry,
    complete_files,
    waiting_files,
)
from vehiclehub.intake.bookkeeping import (
    already_taken,
    file_rejection,
    loaded_with_sha,
    names_taken,
    record_file,
)
from vehiclehub.intake.chunks import Preparer, QualityRejected
from vehiclehub.intake.fetch import fetch_to_archive, unreadable
from vehiclehub.intake.load import load_file
from vehiclehub.intake.manifest import (
    MANIFEST_MAX_BYTES,
    FileRejected,
    parse_manifest,
)
from vehiclehub.intake.shown import shown_name
from vehiclehub.intake.signature import BadSignature, FileSignature, file_signature
from vehiclehub.quality import FileQuality
from vehiclehub.store.load import vacuum_loaded

log = logging.getLogger(__name__)


class FileStatus(StrEnum):
    """What became of a file taken (``intake_files.status``)."""

    LOADED = "loaded"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class FileOutcome:
    """One file taken by an intake: what became of it, and its rows."""

    name: str
    status: FileStatus
    feed: str | None = None
    rows: int = 0
    loaded: int = 0
    ignored: int = 0
    rejected: int = 0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)  # failed warning expectations
    signature: str | None = None  # verified | unsigned | rejected; None: manifest unreadable

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, for the run summary and XCom."""
        return {**asdict(self), "status": str(self.status)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FileOutcome:
        """Back from :meth:`to_dict` (an XCom value)."""
        return cls(**{**data, "status": FileStatus(data["status"])})


@dataclass
class AgencyIntake:
    agency: str
    files: list[FileOutcome] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)


def _now() -> datetime:
    return datetime.now(UTC)


def take_agency(
    settings: Settings, engine: Engine, exchange: Exchange, run_date: date, preparer: Preparer
) -> AgencyIntake:
    """Take every complete file in the agency's outbox that the hub has not taken before,
    each prepared by ``preparer`` (whose worker, once started, serves every file)."""
    listing = exchange.list_outbox()
    result = AgencyIntake(exchange.agency, waiting=waiting_files(listing))
    entries = complete_files(listing)
    result.files = take_files(settings, engine, exchange, entries, run_date, preparer)
    return result


def take_files(
    settings: Settings,
    engine: Engine,
    exchange: Exchange,
    entries: Sequence[OutboxEntry],
    run_date: date,
    preparer: Preparer,
    label: str | None = None,
) -> list[FileOutcome]:
    """Take the given complete files one after the other, in the order given, each in a
    transaction of its own and prepared by ``preparer``; the outcomes of those not taken
    before. ``label`` names them on the progress display (default: the agency)."""
    outcomes = []
    preparer.warm_ahead(_declared_rows(engine, exchange, entries))
    with progress.step(f"{label or exchange.agency}: files taken", total=len(entries)) as advance:
        for entry in entries:
            outcome = take_file(
                settings,
                engine,
                exchange,
                entry.data_name,
                entry.manifest_name,
                run_date,
                preparer=preparer,
            )
            if outcome is not None:
                outcomes.append(outcome)
            advance(1)
    vacuum_loaded(engine, exchange.agency, (o.feed for o in outcomes if o.feed and o.loaded))
    return outcomes


def _declared_rows(
    engine: Engine, exchange: Exchange, entries: Sequence[OutboxEntry]
) -> Iterator[int]:
    """The rows declared by the manifest of each file not taken before, as far as it can
    be read (0 otherwise: taking the file tells why). A file of a name taken before is
    passed over, so a night does not read the outbox's history twice."""
    taken = names_taken(engine, exchange.agency)
    for entry in entries:
        if shown_name(entry.data_name) in taken:
            continue
        try:
            raw = exchange.read_outbox(entry.manifest_name, MANIFEST_MAX_BYTES + 1)
            yield parse_manifest(raw, entry.data_name).rows
        except (FileRejected, NotRegularFile, FileNotFoundError, PermissionError):
            yield 0


def take_file(
    settings: Settings,
    engine: Engine,
    exchange: Exchange,
    data_name: str,
    manifest_name: str,
    run_date: date,
    preparer: Preparer | None = None,
) -> FileOutcome | None:
    """Take one complete file; None when it was taken before.

    ``preparer`` parses and validates the file's chunks (in a worker process, see
    :class:`~vehiclehub.intake.chunks.Preparer`); by default in this process.

    Whatever the file holds, it ends loaded, a duplicate or rejected whole — recorded,
    so that it is never taken again. A check that rejects a file whole raises
    :class:`FileRejected` with its reason in words, anywhere from the manifest's
    parsing to the end of the load; nothing of the file is then stored but that reason.
    """
    agency = exchange.agency
    not_regular = None
    try:
        manifest_raw = exchange.read_outbox(manifest_name, MANIFEST_MAX_BYTES + 1)
    except NotRegularFile as exc:
        manifest_raw, not_regular = b"", str(exc)
    except (FileNotFoundError, PermissionError) as exc:
        raise unreadable(exchange, manifest_name, exc) from exc
    manifest_digest = hashlib.sha256(manifest_raw).hexdigest()
    name = shown_name(data_name)
    if already_taken(engine, agency, name, manifest_digest):
        return None
    base: dict[str, object] = {
        "agency": agency,
        "name": name,
        "manifest_sha256": manifest_digest,
        "run_date": run_date,
        "taken_at": _now(),
    }
    try:
        if not_regular is not None:
            raise FileRejected(not_regular)
        manifest = parse_manifest(manifest_raw, data_name)
        if manifest.agency != agency:
            raise FileRejected(
                f"file names agency {manifest.agency!r} but arrived in the {agency} outbox"
            )
        spec = feeds().get((agency, manifest.feed))
        if spec is None:
            raise FileRejected(f"{agency} sends no feed {manifest.feed!r} (ICD §3)")
        endpoint = settings.agencies[agency]  # type: ignore[index]
        signature = file_signature(agency, endpoint, manifest_raw)
    except FileRejected as exc:
        bad = exc.signature if isinstance(exc, BadSignature) else None
        return reject_file(engine, base, str(exc), signature=bad)
    base |= {
        "feed": manifest.feed,
        "business_date": manifest.business_date,
        "seq": manifest.seq,
        "rows_declared": manifest.rows,
    }
    duplicate_of = loaded_with_sha(engine, manifest.sha256)
    if duplicate_of is not None:
        record_file(
            engine,
            {
                **base,
                "status": "duplicate",
                "sha256": manifest.sha256,
                "duplicate_of": duplicate_of,
            },
            pd.DataFrame(),
            signature=signature,
        )
        return FileOutcome(
            name,
            FileStatus.DUPLICATE,
            feed=manifest.feed,
            rows=manifest.rows,
            signature=signature.state,
        )
    preparer = preparer or Preparer(use_worker=False)
    preparer.warm(manifest.rows)  # its start overlaps the fetch
    try:
        archive_path = fetch_to_archive(settings, exchange, data_name)
        base |= {"archive_path": str(archive_path.relative_to(settings.work_dir))}
        done = load_file(settings, engine, spec, manifest, archive_path, base, preparer, signature)
    except FileRejected as exc:
        return reject_file(
            engine,
            base,
            str(exc),
            rows=manifest.rows,
            quality=exc.quality if isinstance(exc, QualityRejected) else None,
            signature=signature,
        )
    return FileOutcome(
        manifest.file,
        FileStatus.LOADED,
        feed=spec.feed,
        rows=manifest.rows,
        loaded=done.loaded,
        ignored=done.ignored,
        rejected=done.rejected,
        warnings=done.warnings,
        signature=signature.state,
    )


def reject_file(
    engine: Engine,
    values: dict[str, object],
    reason: str,
    *,
    rows: int = 0,
    quality: FileQuality | None = None,
    signature: FileSignature | None = None,
) -> FileOutcome:
    """Record a file rejected whole: its ``intake_files`` row and its one rejection row
    (ICD §4: ``line``, ``column`` and ``value`` empty), in one transaction.

    ``values`` are the file's ``intake_files`` columns known so far (``agency``,
    ``name``, ``manifest_sha256``, ``run_date`` and ``taken_at`` at least). ``signature``
    says how the file came signed, when its manifest could be read that far.
    """
    record_file(
        engine, {**values, "status": "rejected"}, file_rejection(reason), quality, signature
    )
    feed = values.get("feed")
    return FileOutcome(
        str(values["name"]),
        FileStatus.REJECTED,
        feed=str(feed) if feed is not None else None,
        rows=rows,
        error=reason,
        signature=signature.state if signature else None,
    )
