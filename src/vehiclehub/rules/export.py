"""Export against deregistration — the networked verification (RULES.md)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Select, exists, literal, select

from vehiclehub.rules.base import Night, Reach, RuleContext, item_key, ref, rule
from vehiclehub.rules.reach import BY_VIN
from vehiclehub.store.schema import feed_table


@rule("EXP-001", "error", on="police", reach=(BY_VIN,))
def find_export_deregistrations_without_export(ctx: RuleContext) -> pd.DataFrame:
    """An export deregistration whose VIN has no cleared customs item at all."""
    dereg, cleared = ctx.export_deregistrations(), ctx.cleared_items()
    found = ctx.frame(
        select(dereg.c.vin, dereg.c.event_id.label("record_key"), dereg.c.event_date).where(
            ctx.reached(dereg.c.vin), ~exists().where(cleared.c.vin == dereg.c.vin)
        )
    )
    found["related"] = None
    found["detail"] = (
        "deregistered for export on "
        + found["event_date"]
        + " but no cleared export declaration item carries this VIN"
    )
    return found


@rule("EXP-002", "error", on="police", reach=(BY_VIN,))
def find_deregistrations_before_export(ctx: RuleContext) -> pd.DataFrame:
    """An export deregistration dated before every cleared export of its VIN."""
    dereg, cleared = ctx.export_deregistrations(), ctx.cleared_items()
    exported_in_time = ctx.cleared_items("in_time")
    found = ctx.frame(
        select(
            dereg.c.vin,
            dereg.c.event_id.label("record_key"),
            dereg.c.event_date,
            ref("customs", item_key(cleared)).label("related"),
            cleared.c.exported_at,
        )
        .join(cleared, cleared.c.vin == dereg.c.vin)
        .where(
            ctx.reached(dereg.c.vin),
            ~exists().where(
                exported_in_time.c.vin == dereg.c.vin,
                exported_in_time.c.exported_at <= dereg.c.event_date,
            ),
        )
    )
    first_export = found.groupby("record_key")["exported_at"].transform("min")
    found["detail"] = (
        "deregistered for export on "
        + found["event_date"]
        + ", before the vehicle left the country (first cleared export "
        + first_export
        + ")"
    )
    return found


def _exports_crossing_dereg_window(night: Night) -> Select[Any]:
    """The cleared exports whose deregistration window closed between the last run's
    business date and tonight's."""
    items = feed_table("customs", "declarations")
    window = timedelta(days=night.ctx.params.dereg_window_days)
    return select(items.c.vin).where(
        items.c.exported_at >= night.previous - window,
        items.c.exported_at < night.ctx.day - window,
    )


#: The business date closes the deregistration window of exports (EXP-003).
PAST_DEREG_WINDOW = Reach("past the deregistration window", "vin", _exports_crossing_dereg_window)


@rule("EXP-003", "error", on="customs", reach=(BY_VIN, PAST_DEREG_WINDOW))
def find_exports_overdue_for_deregistration(ctx: RuleContext) -> pd.DataFrame:
    """A cleared export whose VIN is still not deregistered after the deregistration window."""
    cleared, dereg = ctx.cleared_items(), ctx.export_deregistrations()
    window = ctx.params.dereg_window_days
    found = ctx.frame(
        select(
            cleared.c.vin,
            item_key(cleared).label("record_key"),
            cleared.c.exported_at,
            literal(None).label("related"),
        ).where(
            ctx.reached(cleared.c.vin),
            cleared.c.exported_at < ctx.day - timedelta(days=window),
            ~exists().where(dereg.c.vin == cleared.c.vin),
        )
    )
    found["detail"] = (
        "exported on "
        + found["exported_at"]
        + f" and not deregistered for export within {window} days"
    )
    return found
