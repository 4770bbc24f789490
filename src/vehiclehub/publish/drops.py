"""Drops (ICD §4): the hub's files into each agency's inbox, with the agencies' protocol.

Every drop is written once under ``work_dir/drops/<date>/`` and then uploaded: data file
first, manifest last, each as ``.part`` then renamed. Every manifest carries the exchange
log's head and the agencies whose evidence is missing, and is signed by the hub (ICD §4,
§6); every drop written, delivered or not delivered is an entry of the exchange log. A
verification drop's rows are read from the store, checked, written and hashed a chunk of
rows at a time: a first verification drop, which carries every vehicle, is never held whole.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow as pa
import pyarrow.json as pa_json
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    and_,
    delete,
    insert,
    or_,
    select,
    update,
)

from vehiclehub.config import AGENCIES, RuleParameters
from vehiclehub.exchange.base import Exchange
from vehiclehub.icd.drops import (
    AGENCY_REPORTS,
    FINDINGS_COLUMNS,
    REJECTIONS_COLUMNS,
    REPORT_COLUMNS,
    check_drop,
)
from vehiclehub.icd.manifest import SCHEMA_VERSION, Manifest
from vehiclehub.icd.names import FileName, manifest_name
from vehiclehub.review.cases import counted_decisions, review_columns
from vehiclehub.rules.base import read_frame, read_frames
from vehiclehub.rules.runner import FINDING_FIELDS
from vehiclehub.rules.subsidy import export_subsidy
from vehiclehub.signing import HubKey, SignatureRejected, sign_manifest, verify_manifest
from vehiclehub.store.batches import fetch_batches
from vehiclehub.store.exchange_log import LogHead, append_entry, log_head
from vehiclehub.store.schema import deliveries, findings, intake_files, rejections, verdict_history
from vehiclehub.store.verdicts import previous_run, verdict_holds_on
from vehiclehub.workfiles import written_whole

#: Rows read from the store, and written to a drop, at a time: at 1M vehicles a steady
#: publish peaks at 0.70 GiB with 50,000 (0.82-0.87 GiB with 100,000) in the same time.
CHUNK_ROWS = 50_000


def drop_name(agency: str, report: str, day: date) -> str:
    """The file name of a drop (ICD §4): ``hub_<agency>_<report>_<YYYYMMDD>_001.csv``."""
    return str(FileName.of_drop(agency, report, day))


#: A drop's rows in order, a frame of at most :data:`CHUNK_ROWS` at a time; each call
#: reads them anew.
Parts = Callable[[], Iterator[pd.DataFrame]]


@dataclass(frozen=True)
class Drop:
    """One drop of a run (ICD §4), its rows read a chunk at a time when it is written."""

    agency: str
    report: str
    day: date
    parts: Parts

    @property
    def name(self) -> str:
        return drop_name(self.agency, self.report, self.day)

    @property
    def manifest_name(self) -> str:
        return manifest_name(self.name)


@dataclass(frozen=True)
class WrittenDrop:
    """A drop as written: its data file and manifest, the data's SHA-256 and its rows."""

    data: Path
    manifest: Path
    sha256: str
    rows: int


def columns_of(conn: Connection, query: Select[Any], names: list[str]) -> pd.DataFrame:
    """A query's result as a frame, built column by column rather than row objects."""
    rows = conn.execute(query).fetchall()
    if not rows:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in names})
    return pd.DataFrame(dict(zip(names, map(list, zip(*rows, strict=True)), strict=True)))


def holds_on(day: date) -> ColumnElement[bool]:
    """A finding holds at the end of the run for ``day``: seen then and not resolved."""
    return and_(
        findings.c.first_seen <= day,
        findings.c.last_seen >= day,
        or_(findings.c.resolved_on.is_(None), findings.c.resolved_on > day),
    )


def open_findings_query(day: date) -> Select[Any]:
    """Every finding that holds at the end of the run for ``day``, by rule and record,
    with its case ``id`` and ``first_seen`` (ISO text)."""
    names = ["id", *FINDING_FIELDS, "first_seen"]
    return (
        select(*(findings.c[c] for c in names))
        .where(holds_on(day))
        .order_by(findings.c.rule_id, findings.c.record_key)
    )


def open_findings(conn: Connection, day: date) -> pd.DataFrame:
    """:func:`open_findings_query`'s findings in one frame."""
    return read_frame(conn, open_findings_query(day))


def concerns(agency: str, found: pd.DataFrame) -> pd.Series:
    """Which findings are on one of the agency's records or cite one (``related``)."""
    cites = found["related"].fillna("").str.contains(f"(?:^|;){agency}:", regex=True)
    return (found["agency"] == agency) | cites


def findings_for(agency: str, found: pd.DataFrame) -> pd.DataFrame:
    """Findings on the agency's records, and those citing one of its records."""
    return found.loc[concerns(agency, found), FINDINGS_COLUMNS]


#: The agencies that receive a findings drop (ICD §4).
FINDINGS_AGENCIES = tuple(a for a in AGENCIES if "findings" in AGENCY_REPORTS[a])


@dataclass(frozen=True)
class FindingsChunk:
    """A chunk of the findings holding at the end of a run: as the store holds them
    (``held``, dismissed ones included) and each agency's findings drop rows of them."""

    held: pd.DataFrame
    drops: dict[str, pd.DataFrame]


def findings_chunks(
    conn: Connection, day: date, decisions: pd.DataFrame
) -> Iterator[FindingsChunk]:
    """The findings holding at the end of the run for ``day``, read a chunk of
    :data:`CHUNK_ROWS` at a time, in drop order, with each agency's drop rows: dismissed
    findings left out, the others with their review columns from ``decisions``
    (:func:`~vehiclehub.review.cases.counted_decisions`)."""
    for held in read_frames(conn, open_findings_query(day), CHUNK_ROWS):
        reviewed = review_columns(decisions, day, held)
        yield FindingsChunk(held, {a: findings_for(a, reviewed) for a in FINDINGS_AGENCIES})


def findings_drop(conn: Connection, day: date, decisions: pd.DataFrame, agency: str) -> Drop:
    """The agency's findings drop for ``day``: its rows of :func:`findings_chunks`."""

    def parts() -> Iterator[pd.DataFrame]:
        for chunk in findings_chunks(conn, day, decisions):
            yield chunk.drops[agency]

    return Drop(agency, "findings", day, parts)


def rejections_query(agency: str, day: date) -> Select[Any]:
    """The rejections of the agency's files taken in the run for ``day``, and of files
    taken by earlier runs that wrote no rejections drop (they failed before publishing),
    in drop order (ICD §4: nothing is lost when a run fails)."""
    drop_written = (
        select(deliveries.c.name)
        .where(
            deliveries.c.agency == agency,
            deliveries.c.run_date == intake_files.c.run_date,
            deliveries.c.name.like(f"hub_{agency}_rejections_%"),
        )
        .exists()
    )
    return (
        select(*(rejections.c[c] for c in REJECTIONS_COLUMNS))
        .join(intake_files, intake_files.c.id == rejections.c.file_id)
        .where(
            intake_files.c.agency == agency,
            or_(
                intake_files.c.run_date == day,
                and_(intake_files.c.run_date < day, ~drop_written),
            ),
        )
        .order_by(rejections.c.file, rejections.c.line, rejections.c.column, rejections.c.id)
    )


def rejections_for(conn: Connection, agency: str, day: date) -> pd.DataFrame:
    """Rejections of the agency's files taken in the run for ``day`` (and of earlier runs
    that wrote no rejections drop)."""
    frame = columns_of(conn, rejections_query(agency, day), REJECTIONS_COLUMNS)
    frame["line"] = frame["line"].astype("Int64")
    return frame


def verdict_parts(conn: Connection, query: Select[Any], report: str) -> Iterator[pd.DataFrame]:
    """The drop rows of a query selecting ``verdict_history.row_json`` (text, no
    conversion), a frame of at most :data:`CHUNK_ROWS` at a time.

    The JSON lines are read a batch at a time (:func:`fetch_batches`) and each batch is
    parsed in one go by Arrow into string columns (every column of a verification report
    is text, null when empty), so a report of every vehicle never exists as row objects
    or Python objects per value.
    """
    columns = REPORT_COLUMNS[report]
    options = pa_json.ParseOptions(
        explicit_schema=pa.schema([(name, pa.string()) for name in columns]),
        unexpected_field_behavior="ignore",
    )
    for rows in fetch_batches(conn, query, CHUNK_ROWS):
        lines = io.BytesIO("\n".join([row for (row,) in rows]).encode("utf-8"))
        del rows
        frame: pd.DataFrame = (
            pa_json.read_json(lines, parse_options=options).select(columns).to_pandas()
        )
        yield frame


def verdict_rows(conn: Connection, query: Select[Any], report: str) -> pd.DataFrame:
    """:func:`verdict_parts`' rows in one frame."""
    parts = list(verdict_parts(conn, query, report))
    if not parts:
        return pd.DataFrame(columns=REPORT_COLUMNS[report])
    return pd.concat(parts, ignore_index=True)


def changed_verdicts_query(conn: Connection, report: str, day: date) -> Select[Any]:
    """The query of the rows holding on ``day`` whose verdict is new or changed since the
    previous run's (all of them when there is none)."""
    current = verdict_history.alias("current")
    query = select(current.c.row_json).where(
        current.c.report == report, verdict_holds_on(day, current)
    )
    previous_day = previous_run(conn, day)
    if previous_day is not None:
        # A row that began on or before the previous run held then unchanged.
        previous = verdict_history.alias("previous")
        query = (
            query.where(current.c.valid_from > previous_day)
            .outerjoin(
                previous,
                and_(
                    previous.c.report == report,
                    previous.c.record_key == current.c.record_key,
                    verdict_holds_on(previous_day, previous),
                ),
            )
            .where(or_(previous.c.verdict.is_(None), previous.c.verdict != current.c.verdict))
        )
    return query.order_by(current.c.record_key)


def changed_verdicts(conn: Connection, report: str, day: date) -> pd.DataFrame:
    """The rows holding on ``day`` whose verdict is new or changed since the previous
    run's (all of them when there is none), in one frame."""
    return verdict_rows(conn, changed_verdicts_query(conn, report, day), report)


def each_drop(
    conn: Connection,
    day: date,
    params: RuleParameters | None = None,
    decisions: pd.DataFrame | None = None,
) -> Iterator[Drop]:
    """Every drop of the run for ``day``, for every agency, in the order they are written.
    A drop's rows are read from ``conn`` as it is written, a chunk at a time.

    ``params`` are the rule parameters of the configuration (the subsidy's threshold and
    amount); RULES.md's defaults when not given. ``decisions`` are the review decisions
    the run counts (:func:`~vehiclehub.review.cases.counted_decisions`), read here when
    not given.
    """
    decisions = counted_decisions(conn, day) if decisions is None else decisions
    for agency in AGENCIES:
        for report in AGENCY_REPORTS[agency]:
            parts: Parts
            if report == "findings":
                yield findings_drop(conn, day, decisions, agency)
                continue
            if report == "rejections":
                parts = functools.partial(_one, rejections_for, conn, agency, day)
            elif report == "export_subsidy":  # every exporter-year, each run (ICD §4)
                parts = functools.partial(
                    _one, export_subsidy, conn, day, params or RuleParameters()
                )
            else:
                query = changed_verdicts_query(conn, report, day)
                parts = functools.partial(verdict_parts, conn, query, report)
            yield Drop(agency, report, day, parts)


def _one(make: Callable[..., pd.DataFrame], *args: Any) -> Iterator[pd.DataFrame]:
    yield make(*args)


def _csv(frame: pd.DataFrame, header: bool) -> Iterator[bytes]:
    """A frame's rows as ICD §4 CSV, :data:`CHUNK_ROWS` at a time, with the header first
    if asked for."""
    booleans = [n for n in frame.columns if pd.api.types.is_bool_dtype(frame[n])]
    for start in range(0, len(frame), CHUNK_ROWS):
        part = frame.iloc[start : start + CHUNK_ROWS]
        if booleans:
            true_false = {True: "true", False: "false"}
            part = part.assign(**{n: part[n].map(true_false) for n in booleans})
        yield part.to_csv(index=False, header=header, lineterminator="\r\n").encode("utf-8")
        header = False


def _header(columns: Iterable[str]) -> bytes:
    """The CSV of a drop without rows: its header alone."""
    return pd.DataFrame(columns=list(columns)).to_csv(index=False, lineterminator="\r\n").encode()


def render_csv(frames: Iterable[pd.DataFrame], columns: Iterable[str]) -> Iterator[bytes]:
    """UTF-8 without BOM, header first, empty for null, booleans true/false (ICD §4).

    Yields the CSV a chunk of rows at a time: the header with the first chunk, alone
    when there is no row. ``columns`` are the report's, in order.
    """
    header = True
    for frame in frames:
        if not frame.empty:
            yield from _csv(frame, header)
            header = False
    if header:
        yield _header(columns)


@dataclass(frozen=True)
class DropData:
    """A drop's data file as written: its path, SHA-256 and rows."""

    path: Path
    sha256: str
    rows: int


class _DataFile:
    """A drop's data file being written a part at a time: each part checked against the
    drop's ICD §4 schema, rendered, hashed and counted; the file appears whole, or not at
    all when writing fails."""

    def __init__(self, drop: Drop, path: Path, target: BinaryIO) -> None:
        self.drop, self.path, self.target = drop, path, target
        self.digest = hashlib.sha256()
        self.rows = 0

    @classmethod
    @contextmanager
    def open(cls, drop: Drop, directory: Path) -> Iterator[_DataFile]:
        path = directory / drop.name
        with written_whole(path) as partial, partial.open("wb") as target:
            data = cls(drop, path, target)
            yield data
            data.close()

    def add(self, part: pd.DataFrame) -> None:
        check_drop(self.drop.report, self.drop.name, part)
        if part.empty:
            return
        for data in _csv(part, header=self.rows == 0):
            self._write(data)
        self.rows += len(part)

    def close(self) -> None:
        if self.rows == 0:
            self._write(_header(REPORT_COLUMNS[self.drop.report]))

    def _write(self, data: bytes) -> None:
        self.digest.update(data)
        self.target.write(data)

    @property
    def written(self) -> DropData:
        return DropData(self.path, self.digest.hexdigest(), self.rows)


def write_data(drop: Drop, directory: Path) -> DropData:
    """Write a drop's data file under ``directory``, a part at a time; a drop that breaks
    its ICD §4 schema raises DropInvalid and is not written."""
    with _DataFile.open(drop, directory) as data:
        for part in drop.parts():
            data.add(part)
    return data.written


def write_findings_data(
    conn: Connection,
    day: date,
    directory: Path,
    decisions: pd.DataFrame,
    also: Callable[[pd.DataFrame], None] = lambda held: None,
) -> dict[str, DropData]:
    """Every agency's findings drop data for ``day`` written in one read of the findings
    holding at the end of the run (:func:`findings_chunks`), a chunk at a time; ``also``
    is given each chunk as held (the workbook lists them). By drop name."""
    drops = [findings_drop(conn, day, decisions, agency) for agency in FINDINGS_AGENCIES]
    with ExitStack() as stack:
        files = [stack.enter_context(_DataFile.open(drop, directory)) for drop in drops]
        for chunk in findings_chunks(conn, day, decisions):
            also(chunk.held)
            for drop, data in zip(drops, files, strict=True):
                data.add(chunk.drops[drop.agency])
    return {drop.name: data.written for drop, data in zip(drops, files, strict=True)}


@dataclass(frozen=True)
class Seal:
    """What completes every drop manifest of a run besides the drop itself (ICD §4, §6):
    the agencies whose evidence for the date is missing, and the key that signs."""

    missing_evidence: list[str]
    key: HubKey


def manifest_for(
    drop: Drop, rows: int, sha256: str, timezone: str, seal: Seal, head: LogHead
) -> bytes:
    """The drop's signed manifest (ICD §1, §4, §6), for data of ``rows`` rows whose
    SHA-256 hex digest is ``sha256``, committing to the exchange log as it stood at
    ``head``."""
    manifest = Manifest(
        file=drop.name,
        agency=drop.agency,
        feed=drop.report,
        business_date=drop.day,
        seq=1,
        rows=rows,
        sha256=sha256,
        encoding="utf-8",
        schema_version=SCHEMA_VERSION,
        generated_at=datetime.now(ZoneInfo(timezone)).isoformat(timespec="seconds"),
        missing_evidence=sorted(seal.missing_evidence),
        log_head=head.as_json(),
    )
    signed = sign_manifest(manifest.dump(), seal.key.private)
    return (json.dumps(signed, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def write_drop(
    drop: Drop,
    directory: Path,
    timezone: str,
    seal: Seal,
    head: LogHead,
    data: DropData | None = None,
) -> WrittenDrop:
    """Write a drop and its manifest under ``directory``, the data a chunk of rows at a
    time (:func:`write_data`) unless already written (``data``); a drop that breaks its
    ICD §4 schema raises DropInvalid and is not written."""
    data = write_data(drop, directory) if data is None else data
    manifest_path = directory / drop.manifest_name
    manifest = manifest_for(drop, data.rows, data.sha256, timezone, seal, head)
    with written_whole(manifest_path) as partial:
        partial.write_bytes(manifest)
    return WrittenDrop(data.path, manifest_path, data.sha256, data.rows)


def write_logged_drop(
    engine: Engine,
    drop: Drop,
    directory: Path,
    timezone: str,
    seal: Seal,
    data: DropData | None = None,
) -> WrittenDrop:
    """Write a drop (its data unless already written, ``data``) whose manifest holds the
    log's head, then log it as ``written``."""
    with engine.connect() as conn:
        head = log_head(conn)
    written = write_drop(drop, directory, timezone, seal, head, data)
    with engine.begin() as conn:
        append_entry(
            conn,
            agency=drop.agency,
            direction="out",
            file=drop.name,
            sha256=written.sha256,
            rows=written.rows,
            outcome="written",
        )
    return written


def verify_drop(
    data_path: Path, manifest_path: Path, keys: dict[str, Ed25519PublicKey]
) -> str | None:
    """What is wrong with a drop on disk (None when nothing): its manifest must parse,
    name the data's sha256 and carry a signature under one of the hub's ``keys``."""
    try:
        document = json.loads(manifest_path.read_bytes())
    except (OSError, ValueError) as exc:
        return f"its manifest cannot be read: {exc}"
    if not isinstance(document, dict) or document.get("sha256") != _sha256_of(data_path):
        return "its data no longer has the sha256 its manifest names"
    try:
        verify_manifest(document, keys, "the hub")
    except SignatureRejected as exc:
        return str(exc)
    return None


def deliver(exchange: Exchange, data_path: Path, manifest_path: Path) -> None:
    """Upload a drop to the agency's inbox: data first, manifest last."""
    for path in (data_path, manifest_path):
        with path.open("rb") as source:
            exchange.put_inbox(path.name, source)


# --- delivery bookkeeping ---------------------------------------------------------------
#
# A drop is registered as pending when it is written and stamped delivered only once
# its manifest is in the inbox, so a delivery cut part-way loses nothing: the next
# publish pushes whatever is still pending, oldest business date first, before the
# day's own. Pushing a drop again is harmless (``put_inbox`` writes ``.part`` and
# renames over the old file), so nothing is doubled either.


@dataclass(frozen=True)
class PendingDrop:
    """A drop registered for delivery and not yet delivered."""

    agency: str
    name: str
    run_date: date
    sha256: str


@dataclass
class DeliveryOutcome:
    """What one agency's delivery pass pushed, and what it could not even try."""

    delivered: list[PendingDrop]
    unsendable: list[str]


def _sha256_of(path: Path) -> str:
    with path.open("rb") as source:
        return hashlib.file_digest(source, "sha256").hexdigest()


def register_deliveries(conn: Connection, written: Iterable[PendingDrop]) -> None:
    """Record written drops as not delivered yet; running a date again re-arms its drops."""
    for drop in written:
        conn.execute(
            delete(deliveries).where(
                deliveries.c.agency == drop.agency, deliveries.c.name == drop.name
            )
        )
        conn.execute(
            insert(deliveries).values(
                agency=drop.agency,
                name=drop.name,
                run_date=drop.run_date,
                sha256=drop.sha256,
                delivered_at=None,
            )
        )


def pending_deliveries(conn: Connection, agency: str) -> list[PendingDrop]:
    """The agency's undelivered drops, oldest business date first."""
    rows = conn.execute(
        select(deliveries.c.name, deliveries.c.run_date, deliveries.c.sha256)
        .where(deliveries.c.agency == agency, deliveries.c.delivered_at.is_(None))
        .order_by(deliveries.c.run_date, deliveries.c.name)
    )
    return [PendingDrop(agency, name, run_date, sha) for name, run_date, sha in rows]


def _manifest_path(drops_root: Path, drop: PendingDrop) -> Path:
    return drops_root / drop.run_date.isoformat() / manifest_name(drop.name)


def log_delivery(
    conn: Connection,
    drops_root: Path,
    drop: PendingDrop,
    outcome: Literal["delivered", "delivery_failed"],
) -> None:
    """Log a drop ``delivered`` or ``delivery_failed``, with the rows its manifest names."""
    try:
        rows = json.loads(_manifest_path(drops_root, drop).read_bytes()).get("rows")
    except (OSError, ValueError, AttributeError):
        rows = None  # the manifest is gone or damaged: the count is unknown
    append_entry(
        conn,
        agency=drop.agency,
        direction="out",
        file=drop.name,
        sha256=drop.sha256,
        rows=rows if isinstance(rows, int) else None,
        outcome=outcome,
    )


def deliver_pending(
    engine: Engine,
    exchange: Exchange,
    drops_root: Path,
    keys: dict[str, Ed25519PublicKey],
) -> DeliveryOutcome:
    """Push every pending drop of the exchange's agency from ``drops_root/<date>/``.

    Each drop is stamped delivered, and logged, as soon as its manifest is in the
    inbox. An ``ExchangeUnavailable`` stops the pass (what is left stays pending for the
    next publish); a drop whose files are missing, changed on disk since they were
    registered or not signed under one of the hub's ``keys`` (its current key and the
    previous ones) is not pushed, stays pending, is logged ``delivery_failed`` and
    reported.
    """
    with engine.connect() as conn:
        pending = pending_deliveries(conn, exchange.agency)
    outcome = DeliveryOutcome([], [])
    for drop in pending:
        data_path = drops_root / drop.run_date.isoformat() / drop.name
        manifest_path = _manifest_path(drops_root, drop)
        problem = None
        if not (data_path.is_file() and manifest_path.is_file()):
            problem = f"{drop.name} is missing from {data_path.parent}"
        elif _sha256_of(data_path) != drop.sha256:
            problem = f"{drop.name} changed on disk since it was written"
        elif (wrong := verify_drop(data_path, manifest_path, keys)) is not None:
            problem = f"{drop.name}: {wrong}"
        if problem is not None:
            outcome.unsendable.append(problem)
            with engine.begin() as conn:
                log_delivery(conn, drops_root, drop, "delivery_failed")
            continue
        deliver(exchange, data_path, manifest_path)
        with engine.begin() as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.agency == drop.agency, deliveries.c.name == drop.name)
                .values(delivered_at=datetime.now(UTC))
            )
            log_delivery(conn, drops_root, drop, "delivered")
        outcome.delivered.append(drop)
    return outcome
