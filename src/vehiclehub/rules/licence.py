"""Licence against declaration, commerce and customs (RULES.md)."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import ColumnElement, Subquery, and_, exists, func, literal, or_, select

from vehiclehub.icd.codes import EnterpriseStatus, EventType
from vehiclehub.rules.base import RuleContext, days_between, item_key, joined, ref, rule
from vehiclehub.rules.police import police_events
from vehiclehub.rules.reach import BY_EXPORTER, BY_VIN


def _items_with_licence(ctx: RuleContext) -> tuple[Subquery, Subquery, ColumnElement[bool]]:
    items = ctx.evidence("customs", "declarations", "item")
    licences = ctx.evidence("commerce", "licences", "licence")
    on_licence = and_(licences.c.licence_no == items.c.licence_no, licences.c.vin == items.c.vin)
    return items, licences, on_licence


@rule("LIC-001", "error", on="customs", reach=(BY_VIN,))
def find_items_without_licence(ctx: RuleContext) -> pd.DataFrame:
    """A customs item whose licence number and VIN are on no licence row."""
    items, _, on_licence = _items_with_licence(ctx)
    found = ctx.frame(
        select(
            items.c.vin,
            item_key(items).label("record_key"),
            items.c.licence_no,
            literal(None).label("related"),
        ).where(ctx.reached(items.c.vin), ~exists().where(on_licence))
    )
    found["detail"] = "no export licence row has licence " + found["licence_no"] + " for this VIN"
    return found


@rule("LIC-002", "error", on="customs", reach=(BY_VIN,))
def find_items_outside_licence_validity(ctx: RuleContext) -> pd.DataFrame:
    """A customs item declared on a licence not issued, not yet issued, or expired."""
    items, licences, on_licence = _items_with_licence(ctx)
    found = ctx.frame(
        select(
            items.c.vin,
            item_key(items).label("record_key"),
            items.c.declared_at,
            licences.c.issued_at,
            licences.c.valid_to,
            ref("commerce", joined(licences.c.licence_no, licences.c.vin)).label("related"),
        )
        .join(licences, on_licence)
        .where(
            ctx.reached(items.c.vin),
            or_(
                licences.c.issued_at.is_(None),
                items.c.declared_at < licences.c.issued_at,
                items.c.declared_at > licences.c.valid_to,
            ),
        )
    )
    not_issued = found["issued_at"].isna()
    early = ~not_issued & (found["declared_at"] < found["issued_at"])
    found["detail"] = ("declared on " + found["declared_at"]).where(
        ~not_issued, "declared on a licence that is not issued"
    )
    found.loc[early, "detail"] += ", before the licence was issued on " + found["issued_at"]
    late = ~not_issued & ~early
    found.loc[late, "detail"] += ", after the licence expired on " + found["valid_to"]
    return found


@rule("LIC-003", "error", on="customs", reach=(BY_VIN,))
def find_items_declared_by_another_exporter(ctx: RuleContext) -> pd.DataFrame:
    """A customs item whose declaring enterprise is not the licence holder."""
    items, licences, on_licence = _items_with_licence(ctx)
    found = ctx.frame(
        select(
            items.c.vin,
            item_key(items).label("record_key"),
            items.c.uscc.label("item_uscc"),
            licences.c.uscc.label("licence_uscc"),
            ref("commerce", joined(licences.c.licence_no, licences.c.vin)).label("related"),
        )
        .join(licences, on_licence)
        .where(ctx.reached(items.c.vin), items.c.uscc != licences.c.uscc)
    )
    found["detail"] = (
        "declared by " + found["item_uscc"] + " but the licence is held by " + found["licence_uscc"]
    )
    return found


@rule("LIC-004", "error", on="commerce", reach=(BY_VIN, BY_EXPORTER))
def find_licences_without_active_filing(ctx: RuleContext) -> pd.DataFrame:
    """An issued licence whose exporter had no active filing covering the day of issue."""
    licences = ctx.evidence("commerce", "licences", "licence")
    filings = ctx.evidence("commerce", "enterprises", "filing")
    found = ctx.frame(
        select(
            licences.c.vin,
            joined(licences.c.licence_no, licences.c.vin).label("record_key"),
            licences.c.uscc,
            licences.c.issued_at,
            literal(None).label("related"),
        ).where(
            ctx.reached(licences.c.vin),
            licences.c.issued_at.is_not(None),
            ~exists().where(
                filings.c.uscc == licences.c.uscc,
                filings.c.status == EnterpriseStatus.ACTIVE,
                filings.c.valid_from <= licences.c.issued_at,
                filings.c.valid_to >= licences.c.issued_at,
            ),
        )
    )
    found["detail"] = (
        "issued on "
        + found["issued_at"]
        + " to "
        + found["uscc"]
        + ", which had no active export enterprise filing covering that day"
    )
    return found


@rule("LIC-005", "error", on="customs", reach=(BY_VIN,))
def find_vins_declared_more_than_once(ctx: RuleContext) -> pd.DataFrame:
    """Each customs item of a VIN that is on more than one customs item."""
    items = ctx.evidence("customs", "declarations", "item")
    counted = ctx.evidence("customs", "declarations", "counted")
    repeated = (
        select(counted.c.vin, func.count().label("item_count"))
        .where(ctx.reached(counted.c.vin))
        .group_by(counted.c.vin)
        .having(func.count() > 1)
        .subquery("repeated")
    )
    found = ctx.frame(
        select(
            items.c.vin,
            item_key(items).label("record_key"),
            repeated.c.item_count,
            literal(None).label("related"),
        ).join(repeated, repeated.c.vin == items.c.vin)
    )
    found["detail"] = "this VIN is on " + found["item_count"].astype(str) + " customs items"
    return found


@rule("LIC-006", "error", on="commerce", reach=(BY_VIN,))
def find_licences_differing_from_pending_export(ctx: RuleContext) -> pd.DataFrame:
    """A licence row whose vehicle differs from the VIN's latest 转让待出口 registration."""
    licences = ctx.evidence("commerce", "licences", "licence")
    pending = police_events(ctx, EventType.TRANSFER_PENDING_EXPORT, "pending")
    later = police_events(ctx, EventType.TRANSFER_PENDING_EXPORT, "later")
    # Several pending-export events on the latest date are all the latest: each is compared.
    found = ctx.frame(
        select(
            licences.c.vin,
            joined(licences.c.licence_no, licences.c.vin).label("record_key"),
            licences.c.brand,
            licences.c.model,
            licences.c.registration_date,
            licences.c.pending_export_date,
            pending.c.brand.label("police_brand"),
            pending.c.model.label("police_model"),
            pending.c.registration_date.label("police_registration_date"),
            pending.c.event_date.label("police_pending_export_date"),
            ref("police", pending.c.event_id).label("related"),
        )
        .join(pending, pending.c.vin == licences.c.vin)
        .where(
            ctx.reached(licences.c.vin),
            ~exists().where(
                later.c.vin == pending.c.vin, later.c.event_date > pending.c.event_date
            ),
            or_(
                licences.c.brand != pending.c.brand,
                licences.c.model != pending.c.model,
                licences.c.registration_date != pending.c.registration_date,
                licences.c.pending_export_date != pending.c.event_date,
            ),
        )
    )
    detail = pd.Series("", index=found.index, dtype="str")
    for field in ("brand", "model", "registration_date", "pending_export_date"):
        differs = found[field] != found[f"police_{field}"]
        detail[differs] += (
            field
            + " "
            + found[field]
            + " on the licence, "
            + found[f"police_{field}"]
            + " at police; "
        )
    found["detail"] = "differs from the pending-export registration: " + detail.str.removesuffix(
        "; "
    )
    return found


@rule("LIC-007", "warning", on="commerce", reach=(BY_VIN,))
def find_licences_for_near_new_cars(ctx: RuleContext) -> pd.DataFrame:
    """A licence for a near-new car exported as used: needs the maker's after-sales confirmation."""
    licences = ctx.evidence("commerce", "licences", "licence")
    limit = ctx.params.new_car_days
    age = days_between(licences.c.applied_at, licences.c.registration_date)
    found = ctx.frame(
        select(
            licences.c.vin,
            joined(licences.c.licence_no, licences.c.vin).label("record_key"),
            licences.c.registration_date,
            licences.c.applied_at,
            age.label("days"),
            literal(None).label("related"),
        ).where(ctx.reached(licences.c.vin), age <= limit)
    )
    found["detail"] = (
        "applied for on "
        + found["applied_at"]
        + ", "
        + found["days"].astype("str")
        + " days after first registration on "
        + found["registration_date"]
        + f" (at most {limit}): a near-new car exported as used needs the maker's "
        "after-sales confirmation"
    )
    return found
