"""The exporter page's and the programme view's figures, read from the store.

The programme view follows the provincial measures' "daily report, weekly dispatch"
(日报告、周调度): per day and per ISO week, trade-in claims by type and amount, TRD
findings and verified exports; claims by province and city from the plate prefix of the
new vehicle's latest registration (the prefixes are data: ``data/plate_prefixes.csv``);
exports by the exporter's prefecture (``region_code``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Connection, and_, distinct, exists, func, or_, select

from vehiclehub.config import RuleParameters
from vehiclehub.icd.codes import ClaimType, EventType, RecordStatus
from vehiclehub.review.auth import User
from vehiclehub.review.queue import CaseFilter, case_conditions, latest_run, visible_to
from vehiclehub.review.records import shown
from vehiclehub.rules import RuleContext
from vehiclehub.rules.subsidy import export_subsidy
from vehiclehub.store.review import review_runs
from vehiclehub.store.schema import feed_table, findings

PLATE_PREFIXES = Path(__file__).parent / "data" / "plate_prefixes.csv"
UNKNOWN = "unknown"


@cache
def plate_prefixes() -> dict[str, tuple[str, str]]:
    """Plate prefix (province character, or it and the city letter) -> (province, city)."""
    with PLATE_PREFIXES.open(encoding="utf-8") as source:
        return {row["prefix"]: (row["province"], row["city"]) for row in csv.DictReader(source)}


def place_of(plate: str | None) -> tuple[str, str]:
    """The province and city a plate was issued in; ``unknown`` for what is not known."""
    if not plate:
        return UNKNOWN, UNKNOWN
    table = plate_prefixes()
    if plate[:2] in table:
        return table[plate[:2]]
    province, city = table.get(plate[:1], (UNKNOWN, UNKNOWN))
    return province, city or UNKNOWN


def _day(value: Any) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _frame(conn: Connection, query: Any, columns: list[str]) -> pd.DataFrame:
    rows = conn.execute(query).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=columns)


@dataclass(frozen=True)
class Programme:
    start: date
    end: date
    daily: (
        pd.DataFrame
    )  # day, scrap_claims, replace_claims, amount_cny, trd_findings, exports_verified
    weekly: pd.DataFrame  # iso_week and the same sums
    places: pd.DataFrame  # province, city, claims, amount_cny
    prefectures: pd.DataFrame  # prefecture, exports


def programme(conn: Connection, start: date, end: date) -> Programme:
    """The programme's figures for the days ``start`` .. ``end``."""
    claims = feed_table("commerce", "tradein_claims")
    in_period = and_(claims.c.applied_at >= start, claims.c.applied_at <= end)
    active = claims.c.record_status == RecordStatus.ACTIVE
    by_day = _frame(
        conn,
        select(
            claims.c.applied_at,
            claims.c.claim_type,
            func.count(),
            func.coalesce(func.sum(claims.c.amount_cny), 0),
        )
        .where(in_period, active)
        .group_by(claims.c.applied_at, claims.c.claim_type),
        ["day", "claim_type", "claims", "amount_cny"],
    )
    trd = _frame(
        conn,
        select(findings.c.first_seen, func.count())
        .where(
            findings.c.rule_id.like("TRD-%"),
            findings.c.first_seen >= start,
            findings.c.first_seen <= end,
        )
        .group_by(findings.c.first_seen),
        ["day", "trd_findings"],
    )
    ctx = RuleContext(conn, end, RuleParameters())
    cleared, dereg = ctx.cleared_items(), ctx.export_deregistrations()
    verified = exists().where(
        dereg.c.vin == cleared.c.vin, cleared.c.exported_at <= dereg.c.event_date
    )
    exports = _frame(
        conn,
        select(cleared.c.exported_at, func.count(distinct(cleared.c.vin)))
        .where(verified, cleared.c.exported_at >= start, cleared.c.exported_at <= end)
        .group_by(cleared.c.exported_at),
        ["day", "exports_verified"],
    )
    days = pd.DataFrame({"day": pd.date_range(start, end, freq="D").date})
    daily = days.copy()
    for kind in ClaimType:
        part = by_day[by_day["claim_type"] == kind]
        daily[f"{kind}_claims"] = days["day"].map(
            dict(zip(part["day"].map(_day), part["claims"], strict=True))
        )
    daily["amount_cny"] = days["day"].map(
        by_day.assign(day=by_day["day"].map(_day), amount_cny=by_day["amount_cny"].astype(float))
        .groupby("day")["amount_cny"]
        .sum()
    )
    for frame, column in ((trd, "trd_findings"), (exports, "exports_verified")):
        daily[column] = days["day"].map(
            dict(zip(frame["day"].map(_day), frame[column], strict=True))
        )
    counts = ["scrap_claims", "replace_claims", "trd_findings", "exports_verified"]
    daily[counts] = daily[counts].fillna(0).astype("int64")
    daily["amount_cny"] = daily["amount_cny"].fillna(0.0).round(2)
    iso = pd.to_datetime(daily["day"]).dt.isocalendar()
    weekly = (
        daily.assign(iso_week=iso["year"].astype(str) + "-W" + iso["week"].astype(str).str.zfill(2))
        .groupby("iso_week", as_index=False)[[*counts, "amount_cny"]]
        .sum()
    )
    return Programme(
        start,
        end,
        daily,
        weekly,
        _places(conn, in_period, active),
        _prefectures(conn, ctx, start, end),
    )


def _places(conn: Connection, in_period: Any, active: Any) -> pd.DataFrame:
    """Claims by province and city of the new vehicle's latest registration's plate."""
    claims = feed_table("commerce", "tradein_claims")
    events = feed_table("police", "events")
    registrations = (
        select(
            events.c.vin,
            events.c.plate_no,
            func.row_number()
            .over(
                partition_by=events.c.vin,
                order_by=(events.c.event_date.desc(), events.c.event_id.desc()),
            )
            .label("n"),
        )
        .where(
            events.c.event_type.in_((EventType.REGISTER, EventType.TRANSFER)),
            events.c.record_status == RecordStatus.ACTIVE,
        )
        .subquery("registrations")
    )
    latest = select(registrations).where(registrations.c.n == 1).subquery("latest")
    rows = _frame(
        conn,
        select(latest.c.plate_no, claims.c.amount_cny)
        .select_from(claims.outerjoin(latest, latest.c.vin == claims.c.new_vin))
        .where(in_period, active),
        ["plate_no", "amount_cny"],
    )
    if rows.empty:
        return pd.DataFrame(columns=["province", "city", "claims", "amount_cny"])
    places = rows["plate_no"].map(place_of)
    rows["province"] = places.str[0]
    rows["city"] = places.str[1]
    rows["amount_cny"] = rows["amount_cny"].astype(float)
    out = rows.groupby(["province", "city"], as_index=False).agg(
        claims=("plate_no", "size"), amount_cny=("amount_cny", "sum")
    )
    return out.sort_values(["claims", "province", "city"], ascending=[False, True, True])


def _prefectures(conn: Connection, ctx: RuleContext, start: date, end: date) -> pd.DataFrame:
    """Cleared exports in the period by the exporter's prefecture (region_code, 4 digits)."""
    cleared = ctx.cleared_items()
    filings = feed_table("commerce", "enterprises")
    region = (
        select(func.max(filings.c.region_code))
        .where(filings.c.uscc == cleared.c.uscc)
        .scalar_subquery()
    )
    rows = _frame(
        conn,
        select(region, func.count(distinct(cleared.c.vin)))
        .where(cleared.c.exported_at >= start, cleared.c.exported_at <= end)
        .group_by(region),
        ["region_code", "exports"],
    )
    rows["prefecture"] = rows["region_code"].map(
        lambda code: f"{code[:4]}00" if isinstance(code, str) and len(code) == 6 else UNKNOWN
    )
    out = pd.DataFrame(rows.groupby("prefecture", as_index=False)["exports"].sum())
    return out.sort_values(["exports", "prefecture"], ascending=[False, True])


def default_period(conn: Connection) -> tuple[date, date]:
    """The four weeks up to the latest run."""
    end = latest_run(conn) or date.today()
    return end - timedelta(days=27), end


@dataclass(frozen=True)
class Exporter:
    uscc: str
    filings: list[dict[str, str]]
    classes: list[tuple[str, int]]
    exported: list[tuple[int, int]]
    subsidy: list[dict[str, Any]]
    open_by_rule: list[tuple[str, int]]
    trend: list[tuple[date, int]]


def exporter(conn: Connection, user: User, uscc: str, params: RuleParameters) -> Exporter:
    """An exporter's filings, classes, exports per year, SUB-001 position, open cases by
    rule and the number of its findings that held at each of the last 90 runs."""
    filings_table = feed_table("commerce", "enterprises")
    filings = [
        {k: shown(k, v) for k, v in row._mapping.items() if k in (
            "filing_no", "name", "region_code", "valid_from", "valid_to", "status",
            "record_version", "record_status")}
        for row in conn.execute(select(filings_table).where(filings_table.c.uscc == uscc))
    ]  # fmt: skip
    refunds = feed_table("tax", "refunds")
    classes = [
        (str(c), int(n))
        for c, n in conn.execute(
            select(refunds.c.enterprise_class, func.count())
            .where(refunds.c.uscc == uscc)
            .group_by(refunds.c.enterprise_class)
            .order_by(refunds.c.enterprise_class)
        )
    ]
    ctx = RuleContext(conn, latest_run(conn) or date.today(), params)
    cleared = ctx.cleared_items()
    year = func.extract("year", cleared.c.exported_at)
    exported = [
        (int(y), int(n))
        for y, n in conn.execute(
            select(year, func.count(distinct(cleared.c.vin)))
            .where(cleared.c.uscc == uscc)
            .group_by(year)
            .order_by(year)
        )
    ]
    subsidy = [
        {str(k): v for k, v in row.items()}
        for row in export_subsidy(conn, ctx.day, params, uscc).to_dict("records")
    ]
    where = [visible_to(user), *case_conditions(CaseFilter(exporter=uscc), None, ctx.day)]
    open_by_rule = [
        (str(r), int(n))
        for r, n in conn.execute(
            select(findings.c.rule_id, func.count())
            .where(*where, findings.c.resolved_on.is_(None))
            .group_by(findings.c.rule_id)
            .order_by(findings.c.rule_id)
        )
    ]
    runs = (
        select(review_runs.c.run_date)
        .order_by(review_runs.c.run_date.desc())
        .limit(90)
        .subquery("runs")
    )
    holding = and_(
        findings.c.first_seen <= runs.c.run_date,
        findings.c.last_seen >= runs.c.run_date,
        or_(findings.c.resolved_on.is_(None), findings.c.resolved_on > runs.c.run_date),
    )
    trend = [
        (_day(d), int(n))
        for d, n in conn.execute(
            select(runs.c.run_date, func.count(findings.c.id))
            .select_from(runs.outerjoin(findings, and_(holding, *where)))
            .group_by(runs.c.run_date)
            .order_by(runs.c.run_date)
        )
    ]
    return Exporter(uscc, filings, classes, exported, subsidy, open_by_rule, trend)
