"""Police chain: what the registration events of a vehicle bound for export must show (RULES.md)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Select, Subquery, and_, exists, literal, select

from vehiclehub.icd.codes import EventType
from vehiclehub.rules.base import Night, Reach, RuleContext, joined, ref, rule
from vehiclehub.rules.reach import BY_VIN
from vehiclehub.store.schema import feed_table


def police_events(ctx: RuleContext, event_type: str, name: str) -> Subquery:
    """Police events of one type that are evidence."""
    events = ctx.evidence("police", "events")
    return select(events).where(events.c.event_type == event_type).subquery(name)


def _pending_exports_crossing_window(night: Night) -> Select[Any]:
    """The 转让待出口 events whose window for a customs declaration closed between the
    last run's business date and tonight's."""
    events = feed_table("police", "events")
    window = timedelta(days=night.ctx.params.pending_export_days)
    return select(events.c.vin).where(
        events.c.event_type == EventType.TRANSFER_PENDING_EXPORT,
        events.c.event_date >= night.previous - window,
        events.c.event_date < night.ctx.day - window,
    )


#: The business date closes the window of pending exports to be declared (POL-001).
PAST_PENDING_EXPORT_WINDOW = Reach(
    "past the pending-export window", "vin", _pending_exports_crossing_window
)


@rule("POL-001", "warning", on="police", reach=(BY_VIN, PAST_PENDING_EXPORT_WINDOW))
def find_pending_exports_never_declared(ctx: RuleContext) -> pd.DataFrame:
    """A vehicle transferred pending export (转让待出口) but on no customs item after the window."""
    pending = police_events(ctx, EventType.TRANSFER_PENDING_EXPORT, "pending")
    items = ctx.evidence("customs", "declarations", "item")
    window = ctx.params.pending_export_days
    found = ctx.frame(
        select(
            pending.c.vin,
            pending.c.event_id.label("record_key"),
            pending.c.event_date,
            literal(None).label("related"),
        ).where(
            ctx.reached(pending.c.vin),
            pending.c.event_date < ctx.day - timedelta(days=window),
            ~exists().where(items.c.vin == pending.c.vin),
        )
    )
    found["detail"] = (
        "transferred pending export on "
        + found["event_date"]
        + f"; more than {window} days on, no customs declaration item carries this VIN"
    )
    return found


@rule("POL-002", "error", on="police", reach=(BY_VIN,))
def find_transfers_after_pending_export(ctx: RuleContext) -> pd.DataFrame:
    """A domestic transfer registered after the vehicle was transferred pending export."""
    transfer = police_events(ctx, EventType.TRANSFER, "transfer")
    pending = police_events(ctx, EventType.TRANSFER_PENDING_EXPORT, "pending")
    found = ctx.frame(
        select(
            transfer.c.vin,
            transfer.c.event_id.label("record_key"),
            transfer.c.event_date,
            pending.c.event_date.label("pending_date"),
            ref("police", pending.c.event_id).label("related"),
        )
        .join(
            pending,
            and_(pending.c.vin == transfer.c.vin, pending.c.event_date < transfer.c.event_date),
        )
        .where(ctx.reached(transfer.c.vin))
    )
    first_pending = found.groupby("record_key")["pending_date"].transform("min")
    found["detail"] = (
        "transferred on "
        + found["event_date"]
        + " although transferred pending export on "
        + first_pending
        + ": no domestic sale after 转让待出口"
    )
    return found


@rule("POL-003", "error", on="police", reach=(BY_VIN,))
def find_pending_exports_to_unlicensed_owner(ctx: RuleContext) -> pd.DataFrame:
    """A vehicle transferred pending export to an owner that holds none of its export licences."""
    pending = police_events(ctx, EventType.TRANSFER_PENDING_EXPORT, "pending")
    licences = ctx.evidence("commerce", "licences", "licence")
    owners_licence = ctx.evidence("commerce", "licences", "owners_licence")
    found = ctx.frame(
        select(
            pending.c.vin,
            pending.c.event_id.label("record_key"),
            pending.c.owner_id,
            licences.c.uscc,
            ref("commerce", joined(licences.c.licence_no, licences.c.vin)).label("related"),
        )
        .join(licences, licences.c.vin == pending.c.vin)
        .where(
            ctx.reached(pending.c.vin),
            ~exists().where(
                owners_licence.c.vin == pending.c.vin,
                owners_licence.c.uscc == pending.c.owner_id,
            ),
        )
    )
    holders = (
        found.drop_duplicates(["record_key", "uscc"])
        .sort_values("uscc")
        .groupby("record_key")["uscc"]
        .agg(", ".join)
    )
    found["detail"] = (
        "transferred pending export to "
        + found["owner_id"]
        + " but the vehicle's export licences are held by "
        + found["record_key"].map(holders)
    )
    return found
