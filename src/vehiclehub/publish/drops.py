"""Drops (ICD §4): the hub's files into each agency's inbox, with the agencies' protocol.

Every drop is built as a frame, written once under ``work_dir/drops/<date>/`` and
then uploaded: data file first, manifest last, each as ``.part`` then renamed.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import Connection, Engine, and_, delete, func, insert, or_, select, update

from vehiclehub.config import AGENCIES, RuleParameters
from vehiclehub.exchange.base import MANIFEST_SUFFIX, Exchange
from vehiclehub.publish.subsidy import SUBSIDY_COLUMNS, export_subsidy
from vehiclehub.rules.engine import FINDING_FIELDS, POLICE_COLUMNS, TAX_COLUMNS
from vehiclehub.store.schema import deliveries, findings, intake_files, rejections, verdicts

FINDINGS_COLUMNS = ["rule_id", "severity", "vin", "record_key", "related", "detail"]
REJECTIONS_COLUMNS = ["file", "line", "column", "value", "error"]

#: Reports each agency receives, beyond findings and rejections.
AGENCY_REPORTS: dict[str, list[str]] = {
    "commerce": ["export_subsidy"],
    "police": ["export_verification"],
    "customs": [],
    "tax": ["refund_verification"],
}
REPORT_COLUMNS = {
    "findings": FINDINGS_COLUMNS,
    "rejections": REJECTIONS_COLUMNS,
    "export_verification": POLICE_COLUMNS,
    "refund_verification": TAX_COLUMNS,
    "export_subsidy": SUBSIDY_COLUMNS,
}


@dataclass(frozen=True)
class Drop:
    agency: str
    report: str
    day: date
    frame: pd.DataFrame

    @property
    def name(self) -> str:
        return f"hub_{self.agency}_{self.report}_{self.day:%Y%m%d}_001.csv"

    @property
    def manifest_name(self) -> str:
        return self.name[: -len(".csv")] + ".manifest.json"


def open_findings(conn: Connection, day: date) -> pd.DataFrame:
    """Every finding that holds at the end of the run for ``day``."""
    result = conn.execute(
        select(*(findings.c[c] for c in FINDING_FIELDS))
        .where(
            findings.c.first_seen <= day,
            findings.c.last_seen >= day,
            or_(findings.c.resolved_on.is_(None), findings.c.resolved_on > day),
        )
        .order_by(findings.c.rule_id, findings.c.record_key)
    )
    return pd.DataFrame(result.all(), columns=FINDING_FIELDS)


def findings_for(agency: str, found: pd.DataFrame) -> pd.DataFrame:
    """Findings on the agency's records, and those citing one of its records."""
    cites = found["related"].str.contains(f"(?:^|;){agency}:", regex=True)
    return found.loc[(found["agency"] == agency) | cites, FINDINGS_COLUMNS]


def rejections_for(conn: Connection, agency: str, day: date) -> pd.DataFrame:
    """Rejections of the agency's files taken in the run for ``day``."""
    result = conn.execute(
        select(*(rejections.c[c] for c in REJECTIONS_COLUMNS))
        .join(intake_files, intake_files.c.id == rejections.c.file_id)
        .where(intake_files.c.agency == agency, intake_files.c.run_date == day)
        .order_by(rejections.c.file, rejections.c.line, rejections.c.column, rejections.c.id)
    )
    frame = pd.DataFrame(result.all(), columns=REJECTIONS_COLUMNS)
    frame["line"] = frame["line"].astype("Int64")
    return frame


def changed_verdicts(conn: Connection, report: str, day: date) -> pd.DataFrame:
    """The day's verdict rows that are new or changed since the previous drop."""
    previous_day = conn.execute(
        select(func.max(verdicts.c.run_date)).where(
            verdicts.c.report == report, verdicts.c.run_date < day
        )
    ).scalar()
    current = verdicts.alias("current")
    previous = verdicts.alias("previous")
    query = select(current.c.row_json).where(current.c.report == report, current.c.run_date == day)
    if previous_day is not None:
        query = query.outerjoin(
            previous,
            and_(
                previous.c.report == report,
                previous.c.run_date == previous_day,
                previous.c.record_key == current.c.record_key,
            ),
        ).where(or_(previous.c.verdict.is_(None), previous.c.verdict != current.c.verdict))
    lines = [row for (row,) in conn.execute(query.order_by(current.c.record_key))]
    columns = REPORT_COLUMNS[report]
    if not lines:
        return pd.DataFrame(columns=columns)
    frame = pd.read_json(
        io.StringIO("\n".join(lines)), lines=True, dtype=False, convert_dates=False
    )
    return frame[columns]


def build_drops(conn: Connection, day: date, params: RuleParameters | None = None) -> list[Drop]:
    """Every drop of the run for ``day``, for every agency.

    ``params`` are the rule parameters of the configuration (the subsidy's threshold and
    amount); RULES.md's defaults when not given.
    """
    found = open_findings(conn, day)
    drops = []
    for agency in AGENCIES:
        drops.append(Drop(agency, "findings", day, findings_for(agency, found)))
        drops.append(Drop(agency, "rejections", day, rejections_for(conn, agency, day)))
        for report in AGENCY_REPORTS[agency]:
            if report == "export_subsidy":  # every exporter-year, each run (ICD §4)
                frame = export_subsidy(conn, day, params or RuleParameters())
            else:
                frame = changed_verdicts(conn, report, day)
            drops.append(Drop(agency, report, day, frame))
    return drops


def render_csv(frame: pd.DataFrame) -> bytes:
    """UTF-8 without BOM, header first, empty for null, booleans true/false (ICD §4)."""
    out = frame.copy()
    for name in out.columns:
        if pd.api.types.is_bool_dtype(out[name]):
            out[name] = out[name].map({True: "true", False: "false"})
    return out.to_csv(index=False, lineterminator="\r\n").encode("utf-8")


def manifest_for(drop: Drop, data: bytes, timezone: str) -> bytes:
    document = {
        "file": drop.name,
        "agency": drop.agency,
        "feed": drop.report,
        "business_date": drop.day.isoformat(),
        "seq": 1,
        "rows": len(drop.frame),
        "sha256": hashlib.sha256(data).hexdigest(),
        "encoding": "utf-8",
        "schema_version": "1",
        "generated_at": datetime.now(ZoneInfo(timezone)).isoformat(timespec="seconds"),
    }
    return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def write_drop(drop: Drop, directory: Path, timezone: str) -> tuple[Path, Path]:
    """Write a drop and its manifest under ``directory``; return both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    data = render_csv(drop.frame)
    data_path, manifest_path = directory / drop.name, directory / drop.manifest_name
    data_path.write_bytes(data)
    manifest_path.write_bytes(manifest_for(drop, data, timezone))
    return data_path, manifest_path


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


def register_deliveries(conn: Connection, written: Iterable[tuple[Drop, Path]]) -> None:
    """Record written drops as not delivered yet; running a date again re-arms its drops."""
    for drop, data_path in written:
        conn.execute(
            delete(deliveries).where(
                deliveries.c.agency == drop.agency, deliveries.c.name == drop.name
            )
        )
        conn.execute(
            insert(deliveries).values(
                agency=drop.agency,
                name=drop.name,
                run_date=drop.day,
                sha256=_sha256_of(data_path),
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


def deliver_pending(engine: Engine, exchange: Exchange, drops_root: Path) -> DeliveryOutcome:
    """Push every pending drop of the exchange's agency from ``drops_root/<date>/``.

    Each drop is stamped delivered as soon as its manifest is in the inbox. An
    ``ExchangeUnavailable`` stops the pass (what is left stays pending for the next
    publish); a drop whose files are missing or changed on disk since they were
    registered is not pushed, stays pending and is reported.
    """
    with engine.connect() as conn:
        pending = pending_deliveries(conn, exchange.agency)
    outcome = DeliveryOutcome([], [])
    for drop in pending:
        data_path = drops_root / drop.run_date.isoformat() / drop.name
        manifest_path = data_path.with_name(drop.name[: -len(".csv")] + MANIFEST_SUFFIX)
        if not (data_path.is_file() and manifest_path.is_file()):
            outcome.unsendable.append(f"{drop.name} is missing from {data_path.parent}")
            continue
        if _sha256_of(data_path) != drop.sha256:
            outcome.unsendable.append(f"{drop.name} changed on disk since it was written")
            continue
        deliver(exchange, data_path, manifest_path)
        with engine.begin() as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.agency == drop.agency, deliveries.c.name == drop.name)
                .values(delivered_at=datetime.now(UTC))
            )
        outcome.delivered.append(drop)
    return outcome
