"""Trade-in subsidies 以旧换新: claims against the police chain and customs (RULES.md)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Subquery, and_, exists, extract, literal, select, union_all

from vehiclehub.icd.codes import ClaimType, DeregReason, EventType
from vehiclehub.rules.base import RuleContext, days_between, item_key, ref, rule
from vehiclehub.rules.police import police_events
from vehiclehub.rules.reach import BY_APPLICANT, BY_VIN


def _claims(ctx: RuleContext, claim_type: str | None, name: str) -> Subquery:
    """Trade-in claims that are evidence, of one type or (None) of both."""
    claims = ctx.evidence("commerce", "tradein_claims")
    query = select(claims)
    if claim_type is not None:
        query = query.where(claims.c.claim_type == claim_type)
    return query.subquery(name)


def _scrap_deregistrations(ctx: RuleContext, name: str) -> Subquery:
    events = ctx.evidence("police", "events")
    return (
        select(events)
        .where(
            events.c.event_type == EventType.DEREGISTER,
            events.c.dereg_reason == DeregReason.SCRAP,
        )
        .subquery(name)
    )


def _claims_lacking(
    ctx: RuleContext, claims: Subquery, evidence: ColumnElement[bool], detail: str
) -> pd.DataFrame:
    """The claims, on their old VIN, for which ``evidence`` does not hold; ``detail``
    is worded with the claim's application date."""
    found = ctx.frame(
        select(
            claims.c.old_vin.label("vin"),
            claims.c.claim_no.label("record_key"),
            claims.c.applied_at,
            literal(None).label("related"),
        ).where(ctx.reached(claims.c.old_vin), ~evidence)
    )
    prefix, suffix = detail.split("{}")
    found["detail"] = prefix + found["applied_at"] + suffix
    return found


@rule("TRD-001", "error", on="commerce", reach=(BY_VIN,))
def find_scrap_claims_without_scrapping(ctx: RuleContext) -> pd.DataFrame:
    """A 报废更新 claim whose old vehicle was never deregistered as scrapped."""
    claims, scrapped = (
        _claims(ctx, ClaimType.SCRAP, "claim"),
        _scrap_deregistrations(ctx, "scrapped"),
    )
    return _claims_lacking(
        ctx,
        claims,
        exists().where(scrapped.c.vin == claims.c.old_vin),
        "scrap claim applied for on {}, but the old vehicle has no deregistration for scrap",
    )


@rule("TRD-002", "error", on="customs", reach=(BY_VIN,))
def find_exports_of_scrapped_vehicles(ctx: RuleContext) -> pd.DataFrame:
    """A cleared export of a vehicle that was scrapped, or whose scrapping was subsidised."""
    cleared = ctx.cleared_items()
    scrapped = _scrap_deregistrations(ctx, "scrapped")
    claims = _claims(ctx, ClaimType.SCRAP, "claim")
    by_police = (
        select(
            cleared.c.vin,
            item_key(cleared).label("record_key"),
            ref("police", scrapped.c.event_id).label("related"),
            literal("deregistered for scrap on ").label("how"),
            scrapped.c.event_date.label("when"),
        )
        .join(scrapped, scrapped.c.vin == cleared.c.vin)
        .where(ctx.reached(cleared.c.vin))
    )
    by_claim = (
        select(
            cleared.c.vin,
            item_key(cleared).label("record_key"),
            ref("commerce", claims.c.claim_no).label("related"),
            literal("the old vehicle of a scrap trade-in claim applied for on ").label("how"),
            claims.c.applied_at.label("when"),
        )
        .join(claims, claims.c.old_vin == cleared.c.vin)
        .where(ctx.reached(cleared.c.vin))
    )
    found = ctx.frame(union_all(by_police, by_claim))
    found["detail"] = "exported, but the vehicle was scrapped: " + found["how"] + found["when"]
    return found


@rule("TRD-003", "error", on="commerce", reach=(BY_VIN,))
def find_replace_claims_without_sale(ctx: RuleContext) -> pd.DataFrame:
    """A 置换更新 claim whose old vehicle was never transferred out of the applicant's hands."""
    claims = _claims(ctx, ClaimType.REPLACE, "claim")
    sale = police_events(ctx, EventType.TRANSFER, "sale")
    events = ctx.evidence("police", "events")
    ownership = (
        select(events)
        .where(events.c.event_type.in_((EventType.REGISTER, EventType.TRANSFER)))
        .subquery
    )
    before, between = ownership("before"), ownership("between")
    # The transfer's preceding ownership event is the register or transfer of the VIN on the
    # latest earlier date; the applicant must be its owner (both sides are keyed hashes).
    sold_by_applicant = exists().where(
        sale.c.vin == claims.c.old_vin,
        before.c.vin == sale.c.vin,
        before.c.event_date < sale.c.event_date,
        before.c.owner_id == claims.c.applicant_id,
        ~exists().where(
            between.c.vin == sale.c.vin,
            between.c.event_date > before.c.event_date,
            between.c.event_date < sale.c.event_date,
        ),
    )
    return _claims_lacking(
        ctx,
        claims,
        sold_by_applicant,
        "replace claim applied for on {}, but the old vehicle has no transfer out of the "
        "applicant's hands",
    )


@rule("TRD-004", "error", on="commerce", reach=(BY_VIN, BY_APPLICANT))
def find_duplicate_tradein_claims(ctx: RuleContext) -> pd.DataFrame:
    """Each claim on a twice-claimed old vehicle, or of one applicant's replace claims in a year."""
    claims, others = _claims(ctx, None, "claim"), _claims(ctx, None, "other")
    other_claim = others.c.claim_no != claims.c.claim_no
    same_vehicle = select(
        claims.c.old_vin.label("vin"),
        claims.c.claim_no.label("record_key"),
        ref("commerce", others.c.claim_no).label("related"),
        literal("vehicle").label("why"),
    ).join(others, and_(others.c.old_vin == claims.c.old_vin, other_claim))
    same_vehicle = same_vehicle.where(ctx.reached(claims.c.old_vin))
    replaces, other_replaces = (
        _claims(ctx, ClaimType.REPLACE, "replace"),
        _claims(ctx, ClaimType.REPLACE, "also"),
    )
    same_year = select(
        replaces.c.old_vin.label("vin"),
        replaces.c.claim_no.label("record_key"),
        ref("commerce", other_replaces.c.claim_no).label("related"),
        literal("year").label("why"),
    ).join(
        other_replaces,
        and_(
            other_replaces.c.applicant_id == replaces.c.applicant_id,
            other_replaces.c.claim_no != replaces.c.claim_no,
            extract("year", other_replaces.c.applied_at) == extract("year", replaces.c.applied_at),
        ),
    )
    same_year = same_year.where(ctx.reached(replaces.c.old_vin))
    found = ctx.frame(union_all(same_vehicle, same_year))
    vehicle = found["why"].eq("vehicle").groupby(found["record_key"]).transform("any")
    year = found["why"].eq("year").groupby(found["record_key"]).transform("any")
    found["detail"] = ""
    found.loc[vehicle, "detail"] = "the old vehicle is on more than one trade-in claim"
    found.loc[vehicle & year, "detail"] += "; "
    found.loc[year, "detail"] += (
        "the applicant has more than one replace claim applied for in the same year"
    )
    return found.drop(columns="why")


@rule("TRD-005", "warning", on="commerce", reach=(BY_VIN,))
def find_new_cars_bought_for_export(ctx: RuleContext) -> pd.DataFrame:
    """A subsidised new car that is on its way out of the country soon after the claim."""
    claims = _claims(ctx, None, "claim")
    pending = police_events(ctx, EventType.TRANSFER_PENDING_EXPORT, "pending")
    items = ctx.evidence("customs", "declarations", "item")
    limit = ctx.params.new_car_days

    def soon_after(day: ColumnElement[Any]) -> ColumnElement[bool]:
        waited = days_between(day, claims.c.applied_at)
        return and_(waited >= 0, waited <= limit)

    pending_soon = select(
        claims.c.new_vin.label("vin"),
        claims.c.claim_no.label("record_key"),
        ref("police", pending.c.event_id).label("related"),
        literal("transferred pending export on ").label("how"),
        pending.c.event_date.label("when"),
    ).join(pending, and_(pending.c.vin == claims.c.new_vin, soon_after(pending.c.event_date)))
    pending_soon = pending_soon.where(ctx.reached(claims.c.new_vin))
    declared_soon = select(
        claims.c.new_vin.label("vin"),
        claims.c.claim_no.label("record_key"),
        ref("customs", item_key(items)).label("related"),
        literal("declared for export on ").label("how"),
        items.c.declared_at.label("when"),
    ).join(items, and_(items.c.vin == claims.c.new_vin, soon_after(items.c.declared_at)))
    declared_soon = declared_soon.where(ctx.reached(claims.c.new_vin))
    found = ctx.frame(union_all(pending_soon, declared_soon))
    earliest = found.sort_values(["when", "how"]).drop_duplicates("record_key")
    first = (earliest["how"] + earliest["when"]).set_axis(earliest["record_key"])
    found["detail"] = (
        "the new car bought with the subsidy was "
        + found["record_key"].map(first)
        + f", within {limit} days after the claim"
    )
    return found
