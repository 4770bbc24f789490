"""Taking an agency's new files: fetch, verify, decode, validate, load — one file at a time.

Every complete file is accounted for in ``intake_files`` (loaded, rejected or a
duplicate), every rejected row or file in ``rejections``; a file's rows, its
rejections, its bookkeeping and its entry in the exchange log (ICD §6) are written in
one transaction. An agency with configured public keys must sign its manifests.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy import exc as sa_exc

from vehiclehub import progress
from vehiclehub.config import Settings
from vehiclehub.contract import FeedSpec, feeds
from vehiclehub.crypto import ArchiveWriter, archive_key, pseudonym_key
from vehiclehub.exchange.base import (
    Exchange,
    ExchangeUnavailable,
    NotRegularFile,
    OutboxEntry,
    complete_files,
    waiting_files,
)
from vehiclehub.icd.manifest import Manifest
from vehiclehub.intake.chunks import FileJob, Finished, Preparer, QualityRejected
from vehiclehub.intake.manifest import (
    MANIFEST_MAX_BYTES,
    FileRejected,
    parse_manifest,
)
from vehiclehub.intake.read import scan_archive
from vehiclehub.intake.shown import shown_name
from vehiclehub.intake.signature import BadSignature, FileSignature, file_signature
from vehiclehub.intake.validate import REJECTION_COLUMNS
from vehiclehub.quality import FileQuality, record_quality
from vehiclehub.quality.gate import log_quality, reads_as_utf8_warning
from vehiclehub.quality.history import volume_baseline
from vehiclehub.store.exchange_log import append_entry
from vehiclehub.store.load import (
    bulk_insert,
    defer_indexes,
    finish_load,
    holds_records,
    load_records,
    restore_indexes,
)
from vehiclehub.store.schema import file_signatures, intake_files, rejections
from vehiclehub.workfiles import private_dir

log = logging.getLogger(__name__)

#: Rows from which a file loaded into an empty feed table has its indexes built after.
BULK_ROWS = 100_000


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


def _already_taken(engine: Engine, agency: str, name: str, manifest_digest: str) -> bool:
    with engine.connect() as conn:
        return (
            conn.execute(
                select(intake_files.c.id).where(
                    intake_files.c.agency == agency,
                    intake_files.c.name == name,
                    intake_files.c.manifest_sha256 == manifest_digest,
                )
            ).first()
            is not None
        )


def _loaded_with_sha(engine: Engine, sha256: str) -> int | None:
    with engine.connect() as conn:
        return conn.execute(
            select(intake_files.c.id).where(
                intake_files.c.sha256 == sha256, intake_files.c.status == "loaded"
            )
        ).scalar()


def _record_taken(
    conn: Connection, file_id: int, values: dict[str, object], signature: FileSignature | None
) -> None:
    """How the file came signed, and its ``in`` entry of the exchange log, in the
    transaction that records its outcome."""
    if signature is not None:
        conn.execute(
            insert(file_signatures).values(
                file_id=file_id,
                agency=values["agency"],
                state=signature.state,
                key_id=signature.key_id,
            )
        )
    rows = values.get("rows_declared")
    append_entry(
        conn,
        agency=str(values["agency"]),
        direction="in",
        file=str(values["name"]),
        sha256=str(values["sha256"]) if values.get("sha256") else None,
        rows=rows if isinstance(rows, int) else None,
        outcome=values["status"],  # type: ignore[arg-type]
    )


def _record_file(
    engine: Engine,
    values: dict[str, object],
    problems: pd.DataFrame,
    quality: FileQuality | None = None,
    signature: FileSignature | None = None,
) -> int:
    """Bookkeeping for a file that loads nothing: rejected whole, or a duplicate."""
    with engine.begin() as conn:
        file_id = _insert_file(conn, values)
        _record_taken(conn, file_id, values, signature)
        if quality is not None:
            record_quality(conn, file_id, quality)
        if not problems.empty:
            bulk_insert(
                conn,
                rejections,
                problems.assign(
                    file_id=file_id, agency=str(values["agency"]), file=str(values["name"])
                ),
            )
    return file_id


def _insert_file(conn: Connection, values: dict[str, object]) -> int:
    inserted = conn.execute(insert(intake_files).values(**values)).inserted_primary_key
    assert inserted is not None
    return int(inserted[0])


def _file_rejection(reason: str) -> pd.DataFrame:
    return pd.DataFrame([{"line": None, "column": None, "value": None, "error": reason}])


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
    return outcomes


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
        raise _unreadable(exchange, manifest_name, exc) from exc
    manifest_digest = hashlib.sha256(manifest_raw).hexdigest()
    name = shown_name(data_name)
    if _already_taken(engine, agency, name, manifest_digest):
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
    duplicate_of = _loaded_with_sha(engine, manifest.sha256)
    if duplicate_of is not None:
        _record_file(
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
        archive_path = _fetch(settings, exchange, data_name)
        base |= {"archive_path": str(archive_path.relative_to(settings.work_dir))}
        return _load_file(settings, engine, spec, manifest, archive_path, base, preparer, signature)
    except FileRejected as exc:
        return reject_file(
            engine,
            base,
            str(exc),
            rows=manifest.rows,
            quality=exc.quality if isinstance(exc, QualityRejected) else None,
            signature=signature,
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
    _record_file(
        engine, {**values, "status": "rejected"}, _file_rejection(reason), quality, signature
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


def _unreadable(exchange: Exchange, name: str, exc: OSError) -> ExchangeUnavailable:
    """A complete file the exchange will not hand over (gone, or no permission).

    Not a data error: nothing of it is recorded, so the next run tries it again; until
    then the agency's intake stops here, as for any transfer failure.
    """
    return ExchangeUnavailable(f"{exchange.description}: cannot read outbox/{name}: {exc}")


def _fetch(settings: Settings, exchange: Exchange, data_name: str) -> Path:
    """Stream the data file into the encrypted archive, named by its sha256.

    A transfer cut part-way raises ExchangeUnavailable (the transport's own retries
    are spent by then) after the archive writer has discarded its ``.part``: the
    caller records nothing, so the file is fetched again in full by the next run.
    """
    landing = private_dir(settings.archive_dir / exchange.agency)
    private_dir(settings.archive_dir)
    writer = ArchiveWriter(landing / f"incoming-{data_name}", archive_key(settings))
    try:
        exchange.copy_outbox(data_name, writer)  # type: ignore[arg-type]
        writer.commit()
    except NotRegularFile as exc:
        writer.abort()
        raise FileRejected(str(exc)) from exc
    except (FileNotFoundError, PermissionError) as exc:
        writer.abort()
        raise _unreadable(exchange, data_name, exc) from exc
    except BaseException:
        writer.abort()
        raise
    final = landing / f"{writer.sha256.hexdigest()}.csv.enc"
    writer.path.replace(final)
    return final


#: What a store raises for a value it will not hold (too long, a NUL byte, out of range):
#: the file's content, not the store, is at fault.
STORE_REFUSALS: tuple[type[Exception], ...] = (
    sa_exc.DataError,
    sa_exc.IntegrityError,
    sqlite3.DataError,
    sqlite3.IntegrityError,
    psycopg.DataError,
    psycopg.IntegrityError,
)


@contextmanager
def _refusals_reject(file: str) -> Iterator[None]:
    """A value the store refuses rejects the file whole (after its load is rolled back),
    rather than stopping every later run at the same file."""
    try:
        yield
    except STORE_REFUSALS as exc:
        # Its class only: the driver's message may quote the refused value.
        log.error("%s: the store refused a value (%s); file rejected", file, type(exc).__name__)
        raise FileRejected(
            f"the store refused a value of this file ({type(exc).__name__}); it is rejected "
            "whole and the hub's operators have the details in its log"
        ) from exc


def _conflict_rejections(conflicts: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "line": conflicts["line"],
            "column": "record_version",
            "value": conflicts["record_version"].astype(str),
            "error": "this record_version of the key was already loaded with "
            "different content; send a higher record_version to correct it",
        }
    )


def _load_file(
    settings: Settings,
    engine: Engine,
    spec: FeedSpec,
    manifest: Manifest,
    archive_path: Path,
    base: dict[str, object],
    preparer: Preparer,
    signature: FileSignature,
) -> FileOutcome:
    """Check, validate and load one archived file, chunk by chunk, in one transaction.

    The file is read twice from its archive and never held whole: first for its
    checksum and encoding, then in chunks that the preparer validates and prepares
    while this process applies the previous chunk to the feed table. What needs the
    whole file (its row count, keys repeated across chunks, the quality gate) is
    decided at the end; a file rejected then leaves nothing behind, as the
    transaction is rolled back.
    """
    key = archive_key(settings)
    found = scan_archive(archive_path, key, manifest.codec)
    base["sha256"], base["bytes"] = found.sha256, found.size
    if found.sha256 != manifest.sha256:
        raise FileRejected(
            f"checksum mismatch: the file's sha256 is {found.sha256}, the manifest says "
            f"{manifest.sha256}"
        )
    if found.problem:
        raise FileRejected(found.problem)
    run_date = base["run_date"]
    assert isinstance(run_date, date)
    loaded = ignored = 0
    conflicts: list[pd.DataFrame] = []
    verdict: Finished | None = None
    with _refusals_reject(manifest.file), engine.begin() as conn:
        file_id = _insert_file(conn, {**base, "status": "loaded"})
        compare = holds_records(conn, spec)
        # A big first load into an empty table builds its indexes afterwards.
        deferred = defer_indexes(conn, spec) if not compare and manifest.rows >= BULK_ROWS else []
        baseline = volume_baseline(
            conn, settings.quality, spec.agency, spec.feed, manifest.seq, run_date
        )
        job = FileJob(
            spec.agency,
            spec.feed,
            manifest,
            archive_path,
            key,
            pseudonym_key(settings),
            baseline,
        )
        # Rejected rows never reach the loader: the bar ends at the rows loaded.
        shown = progress.step(f"{manifest.file}: rows loaded", total=manifest.rows)
        with closing(preparer.run(job)) as items, shown as advance:
            for item in items:
                if isinstance(item, Finished):
                    verdict = item
                    continue
                result = load_records(
                    conn, spec, item.records.assign(file_id=file_id), compare=compare
                )
                loaded, ignored = loaded + result.loaded, ignored + result.ignored
                if not result.conflicts.empty:
                    conflicts.append(_conflict_rejections(result.conflicts))
                advance(len(item.records))
        assert verdict is not None
        restore_indexes(conn, deferred)
        quality = verdict.quality
        if found.reads_as_utf8:
            log.warning(
                "%s: declared gb18030, but its bytes are also valid UTF-8 with non-ASCII "
                "characters: read as gb18030, as its manifest says; its text may be garbled",
                manifest.file,
            )
            quality.outcomes.append(reads_as_utf8_warning())
        log_quality(manifest.file, quality)
        if quality.rejects:
            raise QualityRejected(quality)
        finish_load(conn, spec)
        record_quality(conn, file_id, quality)
        problems = pd.concat([verdict.problems, *conflicts], ignore_index=True)
        rejected_lines = int(problems["line"].nunique())
        if not problems.empty:
            bulk_insert(
                conn,
                rejections,
                problems[REJECTION_COLUMNS]
                .sort_values(["line", "column"], na_position="first")
                .assign(file_id=file_id, agency=spec.agency, file=manifest.file),
            )
        conn.execute(
            update(intake_files)
            .where(intake_files.c.id == file_id)
            .values(
                rows_read=manifest.rows,
                rows_loaded=loaded,
                rows_ignored=ignored,
                rows_rejected=rejected_lines,
            )
        )
        _record_taken(conn, file_id, {**base, "status": "loaded"}, signature)
    log.info(
        "%s: %d rows, %d loaded, %d ignored, %d rejected",
        manifest.file,
        manifest.rows,
        loaded,
        ignored,
        rejected_lines,
    )
    return FileOutcome(
        manifest.file,
        FileStatus.LOADED,
        feed=spec.feed,
        rows=manifest.rows,
        loaded=loaded,
        ignored=ignored,
        rejected=rejected_lines,
        warnings=[w.expectation for w in quality.warnings],
        signature=signature.state,
    )
