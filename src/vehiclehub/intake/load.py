"""Loading one archived file: checked against its manifest, validated and prepared chunk
by chunk, loaded into its feed table with its rejections, in one transaction."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import psycopg
from sqlalchemy import Engine, update
from sqlalchemy import exc as sa_exc

from vehiclehub import progress
from vehiclehub.config import Settings
from vehiclehub.contract import FeedSpec
from vehiclehub.crypto import archive_key, pseudonym_key
from vehiclehub.icd.manifest import Manifest
from vehiclehub.intake.bookkeeping import insert_file, record_taken
from vehiclehub.intake.chunks import FileJob, Finished, Preparer, QualityRejected
from vehiclehub.intake.manifest import FileRejected
from vehiclehub.intake.read import scan_archive
from vehiclehub.intake.signature import FileSignature
from vehiclehub.intake.validate import REJECTION_COLUMNS
from vehiclehub.quality import record_quality
from vehiclehub.quality.gate import log_quality, reads_as_utf8_warning
from vehiclehub.quality.history import volume_baseline
from vehiclehub.store.load import (
    DeferredIndexes,
    bulk_insert,
    finish_load,
    holds_records,
    load_records,
)
from vehiclehub.store.schema import intake_files, rejections

log = logging.getLogger(__name__)

#: Rows from which a file loaded into an empty feed table has its indexes built after.
BULK_ROWS = 100_000


@dataclass(frozen=True)
class LoadedFile:
    """The rows of a file loaded: loaded, ignored (held already) and rejected lines."""

    loaded: int
    ignored: int
    rejected: int
    warnings: list[str]  # failed warning expectations


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


def load_file(
    settings: Settings,
    engine: Engine,
    spec: FeedSpec,
    manifest: Manifest,
    archive_path: Path,
    base: dict[str, object],
    preparer: Preparer,
    signature: FileSignature,
) -> LoadedFile:
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
        file_id = insert_file(conn, {**base, "status": "loaded"})
        compare = holds_records(conn, spec)
        # A big first load into an empty table builds its indexes once most rows are in.
        deferred = (
            DeferredIndexes.drop(conn, spec, manifest.rows)
            if not compare and manifest.rows >= BULK_ROWS
            else None
        )
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
                if deferred is not None:
                    deferred.loaded(conn, loaded)
                if not result.conflicts.empty:
                    conflicts.append(_conflict_rejections(result.conflicts))
                advance(len(item.records))
        assert verdict is not None
        if deferred is not None:
            deferred.build(conn)
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
        record_taken(conn, file_id, {**base, "status": "loaded"}, signature)
    log.info(
        "%s: %d rows, %d loaded, %d ignored, %d rejected",
        manifest.file,
        manifest.rows,
        loaded,
        ignored,
        rejected_lines,
    )
    return LoadedFile(loaded, ignored, rejected_lines, [w.expectation for w in quality.warnings])
