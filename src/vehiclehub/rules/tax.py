"""Tax refunds against customs items (RULES.md). Lines with status rejected are outside."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import ColumnElement, Subquery, and_, func, literal, or_, select

from vehiclehub.icd.codes import DeclarationStatus, RecordStatus
from vehiclehub.rules.base import RuleContext, item_key, joined, ref, rule, same_item
from vehiclehub.rules.reach import BY_DECLARATION_REF


def _refund_key(refund: Subquery) -> ColumnElement[str]:
    return joined(refund.c.refund_no, refund.c.decl_ref)


def _reached(ctx: RuleContext, refund: Subquery) -> ColumnElement[bool]:
    """A refund line in the run's scope, by the declaration reference it cites."""
    return ctx.reached(refund.c.decl_ref, "decl_ref")


@rule("TAX-001", "error", on="tax", reach=(BY_DECLARATION_REF,))
def find_refunds_without_export(ctx: RuleContext) -> pd.DataFrame:
    """A refund line citing no customs item, or an active item that has not cleared."""
    refund = ctx.refund_lines()
    items = ctx.latest("customs", "declarations", "item")
    found = ctx.frame(
        select(
            items.c.vin,
            _refund_key(refund).label("record_key"),
            refund.c.decl_ref,
            items.c.status,
            ref("customs", item_key(items)).label("related"),
        )
        .outerjoin(items, same_item(refund, items))
        .where(
            _reached(ctx, refund),
            or_(
                items.c.decl_no.is_(None),
                and_(
                    items.c.record_status == RecordStatus.ACTIVE,
                    or_(items.c.status != DeclarationStatus.CLEARED, items.c.exported_at.is_(None)),
                ),
            ),
        )
    )
    missing = found["related"].isna()
    found["detail"] = (
        "the declaration item " + found["decl_ref"] + " has not cleared export"
    ).where(~missing, "no customs declaration item " + found["decl_ref"])
    return found


@rule("TAX-002", "error", on="tax", reach=(BY_DECLARATION_REF,))
def find_refunds_on_cancelled_items(ctx: RuleContext) -> pd.DataFrame:
    """A refund line citing a customs item that has been withdrawn (修撤单)."""
    refund = ctx.refund_lines()
    items = ctx.latest("customs", "declarations", "item")
    found = ctx.frame(
        select(
            items.c.vin,
            _refund_key(refund).label("record_key"),
            refund.c.decl_ref,
            ref("customs", item_key(items)).label("related"),
        )
        .join(items, same_item(refund, items))
        .where(_reached(ctx, refund), items.c.record_status == RecordStatus.CANCELLED)
    )
    found["detail"] = "the declaration item " + found["decl_ref"] + " was cancelled by customs"
    return found


@rule("TAX-003", "error", on="tax", reach=(BY_DECLARATION_REF,))
def find_duplicate_refund_claims(ctx: RuleContext) -> pd.DataFrame:
    """Each refund line of a declaration item that more than one refund line cites."""
    refund, counted = ctx.refund_lines(), ctx.refund_lines("counted")
    items = ctx.latest("customs", "declarations", "item")
    repeated = (
        select(counted.c.decl_ref, func.count().label("line_count"))
        .where(_reached(ctx, counted))
        .group_by(counted.c.decl_ref)
        .having(func.count() > 1)
        .subquery("repeated")
    )
    found = ctx.frame(
        select(
            items.c.vin,
            _refund_key(refund).label("record_key"),
            refund.c.decl_ref,
            repeated.c.line_count,
            literal(None).label("related"),
        )
        .join(repeated, repeated.c.decl_ref == refund.c.decl_ref)
        .outerjoin(items, same_item(refund, items))
    )
    found["detail"] = (
        "declaration item "
        + found["decl_ref"]
        + " is claimed by "
        + found["line_count"].astype(str)
        + " refund lines"
    )
    return found


@rule("TAX-004", "error", on="tax", reach=(BY_DECLARATION_REF,))
def find_refunds_claimed_by_another_party(ctx: RuleContext) -> pd.DataFrame:
    """A refund line whose claimant is not the enterprise that declared the export."""
    refund = ctx.refund_lines()
    items = ctx.evidence("customs", "declarations", "item")
    found = ctx.frame(
        select(
            items.c.vin,
            _refund_key(refund).label("record_key"),
            refund.c.uscc.label("claimant"),
            items.c.uscc.label("exporter"),
            ref("customs", item_key(items)).label("related"),
        )
        .join(items, same_item(refund, items))
        .where(_reached(ctx, refund), items.c.uscc != refund.c.uscc)
    )
    found["detail"] = (
        "claimed by " + found["claimant"] + " but the export was declared by " + found["exporter"]
    )
    return found
