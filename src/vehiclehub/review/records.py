"""The agencies' records as the desk shows them: cited records, a vehicle's timeline.

Personal data never appears: a pseudonymised resident ID (``owner_id``,
``applicant_id``) is shown as ``person <first 12 hex digits of its pseudonym>``, and
free text is masked as everywhere else (ICD §5).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, Integer, and_, cast, exists, func, or_, select

from vehiclehub.contract import agency_feeds, feeds
from vehiclehub.icd.codes import EventType
from vehiclehub.review.cases import mask_personal
from vehiclehub.review.evidence import candidate_feeds, typed_key
from vehiclehub.store.schema import feed_table, intake_files

#: Columns the bookkeeping of a feed table adds, not shown as a record's fields.
HIDDEN = {"content_hash", "file_id", "line", "record_version", "record_status"}
PERSONAL = {"owner_id", "applicant_id"}

#: The fields each rule compares (RULES.md), highlighted on the cited records.
COMPARED: dict[str, tuple[str, ...]] = {
    "EXP-001": ("vin", "event_type", "dereg_reason"),
    "EXP-002": ("event_date", "exported_at"),
    "EXP-003": ("exported_at",),
    "LIC-001": ("licence_no", "vin"),
    "LIC-002": ("declared_at", "issued_at", "valid_to"),
    "LIC-003": ("uscc",),
    "LIC-004": ("issued_at", "status", "valid_from", "valid_to"),
    "LIC-005": ("vin",),
    "LIC-006": ("brand", "model", "registration_date", "event_date", "pending_export_date"),
    "LIC-007": ("applied_at", "registration_date"),
    "POL-001": ("event_date",),
    "POL-002": ("event_type", "event_date"),
    "POL-003": ("owner_id", "uscc"),
    "TAX-001": ("decl_ref", "status"),
    "TAX-002": ("decl_ref",),
    "TAX-003": ("decl_ref",),
    "TAX-004": ("uscc",),
    "TRD-001": ("claim_type", "old_vin", "dereg_reason"),
    "TRD-002": ("vin", "old_vin", "dereg_reason"),
    "TRD-003": ("claim_type", "old_vin", "applicant_id", "owner_id"),
    "TRD-004": ("old_vin", "applicant_id", "applied_at"),
    "TRD-005": ("new_vin", "applied_at", "declared_at", "event_date"),
    "VIN-001": ("vin_raw", "old_vin_raw", "new_vin_raw"),
    "VIN-002": ("vin", "old_vin", "new_vin"),
    "VIN-003": ("vin", "old_vin", "new_vin"),
    "SLA-001": ("applied_at", "issued_at"),
    "SLA-002": ("enterprise_class", "applied_at", "approved_at", "status"),
}


def shown(name: str, value: Any) -> str:
    """A stored value as the desk shows it."""
    if value is None:
        return ""
    if name in PERSONAL and isinstance(value, str) and len(value) == 64:
        return f"person {value[:12]}"
    return mask_personal(str(value))


@dataclass(frozen=True)
class RecordRow:
    """One record the hub holds: its feed, version, file and fields."""

    feed: str
    version: int
    status: str
    file: str | None
    fields: list[tuple[str, str]]
    vin: str | None


def _rows_of(conn: Connection, agency: str, feed_name: str, where: Any) -> list[RecordRow]:
    table = feed_table(agency, feed_name)
    result = conn.execute(
        select(table, intake_files.c.name.label("file_name"))
        .outerjoin(intake_files, intake_files.c.id == table.c.file_id)
        .where(where)
    )
    out = []
    for row in result:
        values = row._mapping
        fields = [
            (c.name, shown(c.name, values[c.name]))
            for c in table.columns
            if c.name not in HIDDEN and not c.name.endswith(("_substituted", "_check_ok"))
        ]
        vin = values.get("vin") or values.get("old_vin")
        out.append(
            RecordRow(
                feed_name,
                values["record_version"],
                values["record_status"],
                values["file_name"],
                fields,
                vin,
            )
        )
    return out


def record_rows(conn: Connection, ref: str) -> list[RecordRow]:
    """The record ``agency:key`` in every feed of the agency that holds that key."""
    agency, _, key = ref.partition(":")
    parts = key.split("/")
    out: list[RecordRow] = []
    for spec in candidate_feeds(agency, key):
        table = feed_table(agency, spec.feed)
        columns = [table.c[name] for name in spec.key]
        where = and_(*(c == typed_key(c, v) for c, v in zip(columns, parts, strict=True)))
        out += _rows_of(conn, agency, spec.feed, where)
    return out


def differing(vin: str, other: str) -> list[tuple[str, bool]]:
    """The characters of ``other``, each with whether it differs from ``vin`` there."""
    return [(ch, i >= len(vin) or vin[i] != ch) for i, ch in enumerate(other)]


#: What a dated field of a record means on a vehicle's timeline.
TIMELINE: dict[tuple[str, str], list[tuple[str, str]]] = {
    ("commerce", "licences"): [
        ("registration_date", "registration (per licence)"),
        ("pending_export_date", "pending export (per licence)"),
        ("applied_at", "licence applied"),
        ("issued_at", "licence issued"),
    ],
    ("commerce", "tradein_claims"): [("applied_at", "trade-in claim")],
    ("police", "events"): [("event_date", "")],
    ("customs", "declarations"): [("declared_at", "declaration"), ("exported_at", "clearance")],
    ("tax", "refunds"): [("applied_at", "refund applied"), ("approved_at", "refund approved")],
}
EVENT_WORDS = {
    EventType.REGISTER: "registration",
    EventType.TRANSFER: "transfer",
    EventType.TRANSFER_PENDING_EXPORT: "transfer pending export",
    EventType.DEREGISTER: "deregistration",
}


@dataclass(frozen=True)
class TimelineEntry:
    day: date
    agency: str
    what: str
    record: str
    version: int
    status: str


def _key_of(agency: str, feed_name: str, row: Any) -> str:
    spec = feeds()[agency, feed_name]
    return f"{agency}:" + "/".join(str(row[k]) for k in spec.key)


def vehicle_timeline(conn: Connection, vin: str) -> list[TimelineEntry]:
    """Every record of the VIN across the four agencies, one entry per dated event."""
    entries: list[TimelineEntry] = []
    items = feed_table("customs", "declarations")
    for agency in ("commerce", "police", "customs", "tax"):
        for spec in agency_feeds(agency):
            plan = TIMELINE.get((agency, spec.feed))
            if not plan:
                continue
            table = feed_table(agency, spec.feed)
            if spec.vin_columns:
                where = or_(*(table.c[c] == vin for c in spec.vin_columns))
            elif (agency, spec.feed) == ("tax", "refunds"):
                # A refund line cites its item as decl_no + 3-digit item_no (ICD §2).
                where = exists().where(
                    items.c.vin == vin,
                    items.c.decl_no == func.substr(table.c.decl_ref, 1, 18),
                    items.c.item_no == cast(func.substr(table.c.decl_ref, 19, 3), Integer),
                )
            else:
                continue
            for row in conn.execute(select(table).where(where)).mappings():
                for column, what in plan:
                    day = row[column]
                    if day is None:
                        continue
                    if isinstance(day, str):
                        day = date.fromisoformat(day)
                    label = what or EVENT_WORDS.get(row["event_type"], row["event_type"])
                    if spec.feed == "events" and row["dereg_reason"]:
                        label += f" ({row['dereg_reason']})"
                    if spec.feed == "tradein_claims":
                        side = "old" if row["old_vin"] == vin else "new"
                        label = f"trade-in claim ({row['claim_type']}, {side} vehicle)"
                    entries.append(
                        TimelineEntry(
                            day,
                            agency,
                            label,
                            _key_of(agency, spec.feed, row),
                            row["record_version"],
                            row["record_status"],
                        )
                    )
    return sorted(entries, key=lambda e: (e.day, e.agency, e.record))
