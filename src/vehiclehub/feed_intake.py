"""An agency's intake feed by feed, as the nightly DAG fans it out.

``list_feeds`` lists the agency's outbox once and records its intake status for the
night; ``intake_feed`` then takes one feed's files, in name order, each in a
transaction of its own. The DAG runs one ``intake_feed`` per feed found, in parallel:
a backlog spreads over the workers while two files of one feed never load at once.
``vhub run`` takes an agency whole (``vehiclehub.pipeline.intake_agency``); both record
and log the same way (:func:`record_not_taken`, :func:`log_intake`).
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from sqlalchemy import Engine

from vehiclehub.config import Settings
from vehiclehub.exchange import ExchangeMisconfigured, ExchangeUnavailable, open_exchange
from vehiclehub.exchange.base import (
    complete_files,
    files_by_feed,
    outbox_entry,
    waiting_files,
)
from vehiclehub.heap import map_large_blocks
from vehiclehub.intake.chunks import Preparer
from vehiclehub.intake.take import AgencyIntake, take_files
from vehiclehub.metrics import record_intake, record_not_received, timed_stage
from vehiclehub.results import IntakeResult, IntakeStatus
from vehiclehub.store.db import one_writer_at_a_time, stage_engine
from vehiclehub.store.intakes import record_agency_intake
from vehiclehub.workfiles import private_dir

log = logging.getLogger(__name__)


def record_not_taken(
    engine: Engine, day: date, agency: str, exc: ExchangeUnavailable
) -> IntakeStatus:
    """Record (and log) why nothing more of the agency could be taken; the status."""
    if isinstance(exc, ExchangeMisconfigured):
        log.error("%s: configuration error, nothing taken: %s", agency, exc)
        status = IntakeStatus.MISCONFIGURED
    else:
        log.warning("%s not received: %s", agency, exc)
        status = IntakeStatus.NOT_RECEIVED
    record_agency_intake(engine, day, agency, status, detail=str(exc))
    return status


def list_feeds(settings: Settings, agency: str, day: date) -> dict[str, Any]:
    """The agency's outbox, listed once for the DAG's intake of each feed found.

    Records the agency's intake status for the day as :func:`intake_agency` does
    (received, with the files waiting for their manifest; not received; a
    configuration error) and returns it with ``feeds``: per feed with complete files,
    their names in name order (files whose name gives no feed under ``unknown``).
    """
    private_dir(settings.work_dir)
    with one_writer_at_a_time(settings.database_url), stage_engine(settings.database_url) as engine:
        try:
            with open_exchange(agency, settings.agencies[agency]) as exchange:  # type: ignore[index]
                listing = exchange.list_outbox()
        except ExchangeUnavailable as exc:
            status = record_not_taken(engine, day, agency, exc)
            record_not_received(settings, agency)
            return {"agency": agency, "status": str(status), "detail": str(exc), "feeds": []}
        waiting = waiting_files(listing)
        record_agency_intake(engine, day, agency, IntakeStatus.RECEIVED, waiting=waiting)
    for name in waiting:
        log.warning("%s: %s waits for its manifest: not taken yet", agency, name)
    found = [
        {"agency": agency, "feed": feed, "files": [entry.data_name for entry in entries]}
        for feed, entries in files_by_feed(complete_files(listing)).items()
    ]
    for each in found:
        log.info("%s/%s: %d file(s) to take", agency, each["feed"], len(each["files"]))
    return {"agency": agency, "status": "received", "waiting": waiting, "feeds": found}


def intake_feed(
    settings: Settings, agency: str, feed: str, files: list[str], day: date
) -> IntakeResult:
    """Fetch, validate and load the given files of one feed of an agency (as
    :func:`list_feeds` found them), one after the other in name order, each in a
    transaction of its own.

    The DAG runs one per feed, in parallel: two files of a feed never load at once.
    When the exchange fails part-way, the agency is recorded as not received (or a
    configuration error) for the day, as by :func:`intake_agency`, and the files
    left are taken by the next run.
    """
    label = f"{agency}/{feed}"
    entries = [outbox_entry(name) for name in sorted(files)]
    private_dir(settings.work_dir)
    map_large_blocks()
    with (
        timed_stage(settings, f"intake.{agency}.{feed}"),
        Preparer() as preparer,
        one_writer_at_a_time(settings.database_url),
        stage_engine(settings.database_url) as engine,
    ):
        try:
            with open_exchange(agency, settings.agencies[agency]) as exchange:  # type: ignore[index]
                taken = take_files(settings, engine, exchange, entries, day, preparer, label)
        except ExchangeUnavailable as exc:
            status = record_not_taken(engine, day, agency, exc)
            record_not_received(settings, agency)
            return IntakeResult(agency, status, detail=str(exc))
    log_intake(AgencyIntake(agency, taken), label)
    record_intake(settings, agency, taken)
    return IntakeResult(agency, IntakeStatus.RECEIVED, taken)


def log_intake(result: AgencyIntake, label: str | None = None) -> None:
    """Tell an agency's intake (or, with ``label``, that of some of its files) in its
    log, one line per fact an operator acts on.

    Each file rejected whole with its reason and each file waiting for its manifest
    is a warning; then one line with the files taken and their rows loaded, ignored
    and rejected, added up.
    """
    agency = label or result.agency
    for file in result.files:
        if file.status == "rejected":
            log.warning("%s: %s rejected whole: %s", agency, file.name, file.error)
        elif file.status == "duplicate":
            log.info("%s: %s is a copy of a file already loaded: ignored", agency, file.name)
    for name in result.waiting:
        log.warning("%s: %s waits for its manifest: not taken yet", agency, name)
    taken = [f for f in result.files if f.status == "loaded"]
    log.info(
        "%s: %d file(s) loaded, %d rejected whole, %d duplicate(s), %d waiting; "
        "rows: %d read, %d loaded, %d ignored, %d rejected",
        agency,
        len(taken),
        sum(f.status == "rejected" for f in result.files),
        sum(f.status == "duplicate" for f in result.files),
        len(result.waiting),
        sum(f.rows for f in taken),
        sum(f.loaded for f in taken),
        sum(f.ignored for f in taken),
        sum(f.rejected for f in taken),
    )
