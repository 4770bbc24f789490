"""SUB-001, the export subsidy report to commerce: vehicles whose export police verified.

Not a finding but a report (RULES.md, Export subsidy): per exporter (the customs
item's ``uscc``) and calendar year of ``exported_at``, the distinct VINs with a
cleared item that an export deregistration verifies — one dated on or after the
item's ``exported_at``. Every exporter-year with such a vehicle is in every drop.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
from sqlalchemy import Connection, Integer, and_, cast, distinct, extract, func, select

from vehiclehub.config import RuleParameters
from vehiclehub.icd.drops import EXPORT_SUBSIDY_COLUMNS
from vehiclehub.rules.base import RuleContext


def export_subsidy(
    conn: Connection, day: date, params: RuleParameters, uscc: str | None = None
) -> pd.DataFrame:
    """One row per exporter and year: verified vehicles, eligibility and amount (SUB-001);
    one exporter's rows only when ``uscc`` is given."""
    ctx = RuleContext(conn, day, params)
    cleared, dereg = ctx.cleared_items(), ctx.export_deregistrations()
    year = cast(extract("year", cleared.c.exported_at), Integer)
    verifies = and_(dereg.c.vin == cleared.c.vin, cleared.c.exported_at <= dereg.c.event_date)
    # A join, not EXISTS: an item that several deregistrations verify counts once all the
    # same (distinct VINs), and SQLite then walks the deregistrations' covering index in
    # VIN order instead of seeking it once per cleared item.
    rows = ctx.frame(
        select(
            cleared.c.uscc,
            year.label("year"),
            func.count(distinct(cleared.c.vin)).label("vehicles"),
        )
        .join_from(cleared, dereg, verifies)
        .where(*([cleared.c.uscc == uscc] if uscc else []))
        .group_by(cleared.c.uscc, year)
        .order_by(cleared.c.uscc, year)
    )
    if rows.empty:
        return pd.DataFrame(columns=EXPORT_SUBSIDY_COLUMNS)
    rows["year"] = rows["year"].astype("int64")
    rows["vehicles"] = rows["vehicles"].astype("int64")
    rows["eligible"] = rows["vehicles"] >= params.subsidy_min_vehicles
    rows["amount_cny"] = (rows["vehicles"] * params.subsidy_per_vehicle_cny).where(
        rows["eligible"], 0
    )
    return rows[EXPORT_SUBSIDY_COLUMNS]
