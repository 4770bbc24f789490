"""The nightly cycle's stages, as the CLI, the DAG and the tests call them.

    intake_agency (per agency, in parallel) -> reconcile -> publish

The DAG fans intake out further, feed by feed (:mod:`vehiclehub.feed_intake`).

and ``prune`` (``[retention]``, ``vhub prune``) for the hub's own files.

Each stage takes the settings and the business date and returns a small typed result
(:mod:`vehiclehub.results`, JSON-able by its ``to_dict()``); nothing large passes
between stages but the store.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from contextvars import ContextVar
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, insert, update

from vehiclehub.config import AGENCIES, Settings
from vehiclehub.errors import HubError
from vehiclehub.exchange import (
    ExchangeUnavailable,
    complete_files,
    open_exchange,
)
from vehiclehub.feed_intake import log_intake, record_not_taken
from vehiclehub.heap import give_back_memory, map_large_blocks
from vehiclehub.intake.chunks import Preparer
from vehiclehub.intake.take import take_agency
from vehiclehub.metrics import (
    record_delivery_failure,
    record_findings,
    record_intake,
    record_not_received,
    timed_stage,
)
from vehiclehub.preflight import preflight
from vehiclehub.publish.drops import (
    PendingDrop,
    Seal,
    deliver_pending,
    each_drop,
    log_delivery,
    pending_deliveries,
    register_deliveries,
    write_findings_data,
    write_logged_drop,
)
from vehiclehub.publish.report import write_report
from vehiclehub.publish.report.workbook import FindingsSheet
from vehiclehub.quality.completeness import (
    Completeness,
    arrival_check,
    feed_completeness,
    missing_evidence,
    not_arrived,
    taken_feeds,
)
from vehiclehub.quality.datadocs import DocsBuild
from vehiclehub.results import (
    IntakeResult,
    IntakeStatus,
    PruneResult,
    PublishResult,
    ReconcileStage,
    RunResult,
    RunStatus,
    SigningKey,
)
from vehiclehub.retention import prune as prune_files
from vehiclehub.review.cases import counted_decisions, lapse_changed, mark_run
from vehiclehub.rules.engine import reconcile as run_rules
from vehiclehub.signing import hub_signing_key, hub_verification_keys
from vehiclehub.store.checkpoints import checkpoints_aside
from vehiclehub.store.db import one_writer_at_a_time, stage_engine, writing
from vehiclehub.store.db import upgrade as upgrade_schema
from vehiclehub.store.exchange_log import log_head
from vehiclehub.store.intakes import record_agency_intake
from vehiclehub.store.lease import holding
from vehiclehub.store.schema import runs
from vehiclehub.workdays import WorkingDays
from vehiclehub.workfiles import private_dir

log = logging.getLogger(__name__)
_T = TypeVar("_T")


#: Set while a run holds the store: its stages use the store it began on, and never
#: make a new, empty one where it was (see :func:`~vehiclehub.store.db.connect`).
_RUN_BEGUN: ContextVar[bool] = ContextVar("vhub_run_begun", default=False)


@contextmanager
def _run_begun() -> Iterator[None]:
    began = _RUN_BEGUN.set(True)
    try:
        yield
    finally:
        _RUN_BEGUN.reset(began)


@contextmanager
def _store(settings: Settings, *, create: bool = True) -> Iterator[Engine]:
    """The store for one stage, in the hub's work directory. Without ``create`` it is
    only read, never set up."""
    private_dir(settings.work_dir)
    with stage_engine(settings.database_url, create=create, made=_RUN_BEGUN.get()) as engine:
        yield engine


def _now() -> datetime:
    return datetime.now(UTC)


def intake_agency(
    settings: Settings, agency: str, day: date, preparer: Preparer | None = None
) -> IntakeResult:
    """Fetch, validate and load every new file of one agency.

    Its files are prepared by ``preparer``, whose worker process serves the intakes of a
    whole run; without one, the intake starts its own and stops it when it ends.

    An unreachable agency is recorded as not received for the day, and its files
    are picked up by the next run. An exchange that answers without the configured
    root is recorded as a configuration error: nothing was received either, but no
    waiting mends it. On SQLite, intakes running at the same time (the DAG's) take
    their turns (:func:`~vehiclehub.store.db.one_writer_at_a_time`).
    """
    map_large_blocks()
    with (
        timed_stage(settings, f"intake.{agency}"),
        nullcontext(preparer) if preparer is not None else Preparer() as worker,
    ):
        result = _take_agency(settings, agency, day, worker)
    if result.received:
        record_intake(settings, agency, result.files)
    else:
        record_not_received(settings, agency)
    return result


def _take_agency(settings: Settings, agency: str, day: date, preparer: Preparer) -> IntakeResult:
    with _store(settings) as engine, one_writer_at_a_time(settings.database_url):
        try:
            with open_exchange(agency, settings.agencies[agency]) as exchange:  # type: ignore[index]
                result = take_agency(settings, engine, exchange, day, preparer)
        except ExchangeUnavailable as exc:
            status = record_not_taken(engine, day, agency, exc)
            return IntakeResult(agency, status, detail=str(exc))
        record_agency_intake(engine, day, agency, IntakeStatus.RECEIVED, waiting=result.waiting)
    log_intake(result)
    return IntakeResult(agency, IntakeStatus.RECEIVED, result.files, result.waiting)


def _arrivals(settings: Settings, agency: str, day: date) -> tuple[list[str], str | None]:
    """Expected feeds of ``agency`` not arrived for ``day`` (neither taken nor complete in
    its outbox), and why its outbox could not be listed (None when it could). A sensor
    pokes here: the store is only read (the run set it up before)."""
    with _store(settings, create=False) as engine, engine.connect() as conn:
        taken = taken_feeds(conn, agency, day)
    unreachable: str | None = None
    try:
        with open_exchange(agency, settings.agencies[agency]) as exchange:  # type: ignore[index]
            names = [entry.data_name for entry in complete_files(exchange.list_outbox())]
    except ExchangeUnavailable as exc:
        names, unreachable = [], str(exc)
    return not_arrived(settings, agency, day, taken, names), unreachable


def feeds_not_arrived(settings: Settings, agency: str, day: date) -> list[str]:
    """Expected feeds of ``agency`` with no complete file for ``day``, in the outbox or taken.

    What a late-file sensor pokes before intake: an empty list means everything expected
    for the date is there (data file and manifest). An unreachable exchange counts as
    nothing arrived (the sensor keeps waiting until its deadline).
    """
    return _arrivals(settings, agency, day)[0]


def late_file_check(
    settings: Settings, agency: str, day: date, now: datetime | None = None
) -> dict[str, Any]:
    """What a late-file sensor pokes: :func:`~vehiclehub.quality.completeness.arrival_check`
    on the agency's outbox and the files taken."""
    missing, unreachable = _arrivals(settings, agency, day)
    return arrival_check(settings, agency, day, missing, unreachable, now)


def agency_feed_states(settings: Settings, agency: str, day: date) -> dict[str, str]:
    """The state for ``day`` of each feed ``agency`` is expected to send
    (:mod:`vehiclehub.quality.completeness`).

    Read after the agency's intake: a feed that has not come is *not received*.
    """
    with _store(settings) as engine, engine.connect() as conn:
        found = feed_completeness(conn, settings, day)
    return {f.feed: f.state for f in found.feeds if f.agency == agency}


def completeness(settings: Settings, day: date) -> Completeness:
    """Which expected feeds arrived for the day, and which file numbers are missing."""
    with _store(settings) as engine, engine.connect() as conn:
        return feed_completeness(conn, settings, day)


def reconcile(
    settings: Settings, day: date, began: datetime | None = None, full: bool = False
) -> ReconcileStage:
    """Run the rules over what the night changed (everything, with ``full``); record
    findings and verdicts for the day.

    The run counts the review desk's decisions made before ``began`` (when the run
    began; this stage's start when not given); decisions whose evidence changed lapse.
    Records a rule could not evaluate (the working-day calendar lacks a year) and the
    calendar years to configure soon are logged as warnings and returned.
    """
    map_large_blocks()
    with timed_stage(settings, "reconcile"), _store(settings) as engine:
        with engine.begin() as conn:
            mark_run(conn, day, began or _now())
        result = run_rules(engine, day, settings.rules, WorkingDays(settings.calendar), full)
        # What it reads of the decisions holds when it writes: a decision the desk records
        # meanwhile waits, rather than being overwritten.
        with writing(engine) as conn:
            lapsed = lapse_changed(conn)
    for rule_id, reasons in result.not_evaluated.items():
        for reason, records in reasons.items():
            log.warning("%s: %d record(s) not evaluated: %s", rule_id, records, reason)
    for warning in result.calendar_warnings:
        log.warning("%s", warning)
    record_findings(settings, result.per_rule)
    return ReconcileStage(result, lapsed)


def _deliver_agency(settings: Settings, engine: Engine, agency: str, day: date) -> str:
    """Push the agency's pending drops; return its delivery status for summary and report.

    When the exchange fails, every drop still pending for the agency is logged
    ``delivery_failed`` (ICD §6); the next publish tries them again.
    """
    drops_root = settings.work_dir / "drops"
    try:
        with open_exchange(agency, settings.agencies[agency]) as exchange:  # type: ignore[index]
            outcome = deliver_pending(engine, exchange, drops_root, hub_verification_keys(settings))
    except ExchangeUnavailable as exc:
        with engine.begin() as conn:
            left_behind = pending_deliveries(conn, agency)
            for drop in left_behind:
                log_delivery(conn, drops_root, drop, "delivery_failed")
        left = len(left_behind)
        log.warning("drops to %s not delivered (%d pending): %s", agency, left, exc)
        return f"not delivered: {exc} ({left} drop(s) pending for the next publish)"
    if outcome.unsendable:
        log.error("drops to %s: %s", agency, "; ".join(outcome.unsendable))
        return "partly delivered: " + "; ".join(outcome.unsendable)
    earlier = [d for d in outcome.delivered if d.run_date != day]
    if earlier:
        dates = ", ".join(sorted({d.run_date.isoformat() for d in earlier}))
        return f"delivered, including {len(earlier)} drop(s) of {dates} left pending before"
    return "delivered"


@contextmanager
def _docs(engine: Engine, settings: Settings, day: date) -> Iterator[DocsBuild | None]:
    """The run's Data Docs, built by a process of their own beside the rest of the publish
    where there is a second core and this process has not loaded GX (a publish task, or
    a run whose intake had a worker): loading it takes seconds, which the other process
    spends beside the drops. None otherwise: the report builds them, at the cost of
    their rendering alone. Stopped if the publish fails before the report takes them."""
    if (os.cpu_count() or 1) < 2 or "great_expectations" in sys.modules:
        yield None
        return
    build = DocsBuild.start(engine, settings.reports_dir, day)
    try:
        yield build
    finally:
        build.cancel()


def publish(settings: Settings, day: date) -> PublishResult:
    """Write the day's drops, deliver them to the agency inboxes, and write the report.

    Each drop's manifest commits to the exchange log's head before it and is signed with
    the hub's key; each drop is then logged as written. Every drop is registered for
    delivery before any is pushed. Each agency then gets
    what is pending for it, oldest business date first: drops an earlier publish could
    not deliver, then the day's. A failed delivery leaves the rest for the next publish.
    """
    directory = settings.work_dir / "drops" / day.isoformat()
    key = hub_signing_key(settings)
    map_large_blocks()
    with (
        timed_stage(settings, "publish"),
        _store(settings) as engine,
        _docs(engine, settings, day) as docs,
        FindingsSheet(day) as sheet,
    ):
        counts: dict[str, int] = {}
        written = []
        with engine.connect() as conn:
            decisions = counted_decisions(conn, day)
            # The findings drops and the workbook's findings: one read of the findings.
            together = write_findings_data(conn, day, directory, decisions, sheet.add)
            seal = Seal(missing_evidence(feed_completeness(conn, settings, day)), key)
            for drop in each_drop(conn, day, settings.rules, decisions):
                data = together.get(drop.name)
                done = write_logged_drop(engine, drop, directory, settings.timezone, seal, data)
                counts[drop.name] = done.rows
                written.append(PendingDrop(drop.agency, drop.name, drop.day, done.sha256))
        with engine.begin() as conn:
            register_deliveries(conn, written)
        delivered = {a: _deliver_agency(settings, engine, a, day) for a in AGENCIES}
        for agency, status in delivered.items():
            if not status.startswith("delivered"):
                record_delivery_failure(settings, agency)
        report = write_report(engine, settings, day, delivered, sheet.section(), docs)
        with engine.connect() as conn:
            head = log_head(conn)
    # Last, each on a line of its own: where an operator looks next.
    log.info("drops: %s", directory)
    log.info("report: %s", report)
    return PublishResult(
        drops=counts,
        delivered=delivered,
        drops_dir=str(directory),
        report=str(report),
        missing_evidence=seal.missing_evidence,
        signing_key=SigningKey(key.key_id, key.origin),
        log_head=head.as_json(),
    )


def prune(settings: Settings, day: date) -> PruneResult:
    """Remove the archived files, drops and reports ``[retention]`` no longer keeps,
    counted back from ``day``; say what went and what was kept for delivery."""
    with _store(settings) as engine, engine.connect() as conn:
        pruned = prune_files(settings, conn, day)
    return PruneResult(pruned)


def upgrade_store(settings: Settings) -> dict[str, Any]:
    """Bring the store to this release's schema: once per run, before anything else.

    A new store is created; one that is current is left alone. Each revision applied
    is logged, and each stored value cleaned as a warning.
    """
    private_dir(settings.work_dir)
    upgraded = upgrade_schema(settings.database_url)
    for line in upgraded.lines(cleaned=False):
        log.info("%s", line)
    return upgraded.to_dict()


@contextmanager
def hold_store(settings: Settings, holder: str, *, release: bool = True) -> Iterator[None]:
    """Hold the store's lease (one run at a time per store) while the block runs.

    Raises StoreBusy when another run holds it for longer than ``lease_wait_s``. Steps
    of one run that hold it one after the other pass the same ``holder``; all but the
    last leave it unreleased (``release=False``), so that no other run slips in between.
    """
    with (
        _store(settings) as engine,
        holding(
            engine,
            holder,
            ttl_s=settings.lease_ttl_s,
            wait_s=settings.lease_wait_s,
            release_after=release,
        ),
    ):
        yield


def this_process() -> str:
    """A lease holder naming this process, for a run made of one process."""
    return f"vhub run, pid {os.getpid()} on {socket.gethostname()}"


class RunFailed(HubError):
    """A run failed part-way; the message says at which stage and why, and what was kept."""

    def __init__(self, day: date, stage: str, cause: BaseException) -> None:
        self.stage = stage
        said = str(cause).splitlines()[0][:200] if str(cause) else ""
        super().__init__(
            f"the run for {day} failed at {stage}: {type(cause).__name__}"
            f"{': ' + said if said else ''}. What it took is kept; the rejections of its "
            "files go out with the next run's drops. Run it again once the cause is fixed"
        )


#: What a run that ended without finishing is recorded with by the next run.
ENDED_UNFINISHED = (
    "ended without finishing: its process was killed or lost its store, and its lease ran out"
)


def _begin_run(settings: Settings, day: date, holder: str) -> int:
    """Record the run as running. A run still recorded as running holds no lease any
    more (this one holds it): it was killed, and is recorded as failed."""
    with _store(settings) as engine, engine.begin() as conn:
        conn.execute(
            update(runs)
            .where(runs.c.status == RunStatus.RUNNING, runs.c.holder != holder)
            .values(status=RunStatus.FAILED, error=ENDED_UNFINISHED)
        )
        inserted = conn.execute(
            insert(runs).values(
                run_date=day, holder=holder, started_at=_now(), status=RunStatus.RUNNING
            )
        ).inserted_primary_key
    assert inserted is not None
    return int(inserted[0])


def _end_run(settings: Settings, run_id: int, status: RunStatus, **failure: str) -> None:
    with _store(settings) as engine, engine.begin() as conn:
        conn.execute(
            update(runs)
            .where(runs.c.id == run_id)
            .values(ended_at=_now(), status=status, **failure)
        )


def run_cycle(
    settings: Settings, day: date, holder: str | None = None, full: bool = False
) -> RunResult:
    """One whole nightly cycle for a business date, with each stage's wall time; ``full``
    reconciles everything rather than what the night changed.

    Nothing is taken before every preflight check passes (PreflightFailed otherwise);
    then the store is brought to this release's schema (:func:`upgrade_store`); then
    the run holds the store's lease throughout (StoreBusy if another run holds it) and
    is recorded in ``runs``: completed, or failed with the stage it failed at
    (RunFailed; whatever it took stays taken, and the next run picks up from there).
    """
    preflight(settings, day)
    upgrade_store(settings)
    holder = holder or this_process()
    with hold_store(settings, holder), _run_begun():
        run_id = _begin_run(settings, day, holder)
        reached = ["intake"]
        try:
            summary = _cycle(settings, day, reached, full)
        except Exception as exc:
            # The caller says what failed in one line; the traceback is for -vv.
            log.debug("the run for %s failed at %s", day, reached[-1], exc_info=True)
            failed = RunFailed(day, reached[-1], exc)
            with suppress(Exception):  # the store may be what failed
                _end_run(settings, run_id, RunStatus.FAILED, stage=reached[-1], error=str(failed))
            raise failed from exc
        _end_run(settings, run_id, RunStatus.COMPLETED)
        return summary


def _cycle(settings: Settings, day: date, reached: list[str], full: bool) -> RunResult:
    seconds: dict[str, float] = {}

    def timed(stage: str, call: Callable[[], _T]) -> _T:
        reached.append(stage)
        started = time.perf_counter()
        result = call()
        seconds[stage] = round(time.perf_counter() - started, 1)
        give_back_memory()
        return result

    def intake_all() -> list[IntakeResult]:
        # One worker serves every agency's intake; it is stopped when they are done, since
        # its process holds memory the later stages need.
        # The loads' write-ahead log is copied into the store beside them, not by them.
        with Preparer() as preparer, checkpoints_aside(settings.database_url):
            return [intake_agency(settings, agency, day, preparer) for agency in AGENCIES]

    began = _now()
    intakes = timed("intake", intake_all)
    reached.append("completeness")
    checked = completeness(settings, day)
    reconciled = timed("reconcile", lambda: reconcile(settings, day, began, full))
    published = timed("publish", lambda: publish(settings, day))
    return RunResult(day, intakes, checked, reconciled, published, seconds)
