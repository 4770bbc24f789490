"""Licence against declaration, commerce and customs (RULES.md)."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import ColumnElement, Subquery, and_, exists, literal, or_, select

from vehiclehub.rules.base import RuleContext, item_key, joined, ref, rule


def _items_with_licence(ctx: RuleContext) -> tuple[Subquery, Subquery, ColumnElement[bool]]:
    items = ctx.evidence("customs", "declarations", "item")
    licences = ctx.evidence("commerce", "licences", "licence")
    on_licence = and_(licences.c.licence_no == items.c.licence_no, licences.c.vin == items.c.vin)
    return items, licences, on_licence


@rule("LIC-001", "error", on="customs")
def find_items_without_licence(ctx: RuleContext) -> pd.DataFrame:
    """A customs item whose licence number and VIN are on no licence row."""
    items, _, on_licence = _items_with_licence(ctx)
    found = ctx.frame(
        select(
            items.c.vin,
            item_key(items).label("record_key"),
            items.c.licence_no,
            literal(None).label("related"),
        ).where(~exists().where(on_licence))
    )
    found["detail"] = "no export licence row has licence " + found["licence_no"] + " for this VIN"
    return found


@rule("LIC-002", "error", on="customs")
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
            or_(
                licences.c.issued_at.is_(None),
                items.c.declared_at < licences.c.issued_at,
                items.c.declared_at > licences.c.valid_to,
            )
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


@rule("LIC-003", "error", on="customs")
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
        .where(items.c.uscc != licences.c.uscc)
    )
    found["detail"] = (
        "declared by " + found["item_uscc"] + " but the licence is held by " + found["licence_uscc"]
    )
    return found


@rule("LIC-004", "error", on="commerce")
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
            licences.c.issued_at.is_not(None),
            ~exists().where(
                filings.c.uscc == licences.c.uscc,
                filings.c.status == "active",
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


@rule("LIC-005", "error", on="customs")
def find_vins_declared_more_than_once(ctx: RuleContext) -> pd.DataFrame:
    """Each customs item of a VIN that is on more than one customs item."""
    items = ctx.evidence("customs", "declarations", "item")
    others = ctx.evidence("customs", "declarations", "other")
    found = ctx.frame(
        select(
            items.c.vin,
            item_key(items).label("record_key"),
            ref("customs", item_key(others)).label("related"),
        ).join(
            others,
            and_(
                others.c.vin == items.c.vin,
                or_(others.c.decl_no != items.c.decl_no, others.c.item_no != items.c.item_no),
            ),
        )
    )
    count = found.groupby("record_key")["related"].transform("count") + 1
    found["detail"] = "this VIN is on " + count.astype(str) + " customs items"
    return found
