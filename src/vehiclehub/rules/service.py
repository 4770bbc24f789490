"""Service levels: licences and tax refunds handled within so many working days (RULES.md).

Working days follow the State Council calendar with its 调休 (``workdays``). Working
days never outnumber calendar days, so only records more than the limit in calendar
days can breach it: the query keeps those and the calendar counts the rest exactly —
or, where it lacks a year the count needs, declares the record not evaluated.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Select, case, func, literal, select

from vehiclehub.icd.codes import EnterpriseClass, RefundStatus
from vehiclehub.rules.base import (
    NOT_EVALUATED,
    Night,
    Reach,
    RuleContext,
    days_between,
    joined,
    rule,
    same_item,
)
from vehiclehub.rules.reach import BY_DECLARATION_REF, BY_VIN
from vehiclehub.store.schema import feed_table
from vehiclehub.workdays import uncovered


def _late(ctx: RuleContext, found: pd.DataFrame, start: str, end: str, limit: Any) -> pd.DataFrame:
    """The rows more than ``limit`` working days late (``working_days``), and the rows
    whose count needs a year the calendar lacks: those are not evaluated, with the
    configuration to add as the reason (never a guessed count)."""
    missing = ctx.calendar.missing_years(found[start], found[end])
    found["working_days"] = ctx.calendar.working_days_after(found[start], found[end])
    found[NOT_EVALUATED] = missing.map({m: uncovered(m) for m in missing.unique() if m})
    late = found["working_days"].gt(limit).fillna(False)
    return found[late | found[NOT_EVALUATED].notna()].reset_index(drop=True)


def _licences_pending_past_limit(night: Night) -> Select[Any]:
    """The licences not issued for more than the limit in calendar days: each night counts
    their working days anew, up to the business date."""
    licences = feed_table("commerce", "licences")
    limit = timedelta(days=night.ctx.params.licence_wd)
    return select(licences.c.vin).where(
        licences.c.issued_at.is_(None), licences.c.applied_at < night.ctx.day - limit
    )


def _refunds_pending_past_limit(night: Night) -> Select[Any]:
    """The refund lines pending for more than the shorter limit in calendar days."""
    refunds = feed_table("tax", "refunds")
    params = night.ctx.params
    limit = timedelta(days=min(params.refund_wd_class12, params.refund_wd_other))
    return select(refunds.c.decl_ref).where(
        refunds.c.status == RefundStatus.PENDING, refunds.c.applied_at < night.ctx.day - limit
    )


#: The business date lengthens the wait of every licence not yet issued (SLA-001).
LICENCES_PENDING_PAST_LIMIT = Reach(
    "licences pending past the limit", "vin", _licences_pending_past_limit
)
#: The business date lengthens the wait of every refund line pending (SLA-002).
REFUNDS_PENDING_PAST_LIMIT = Reach(
    "refunds pending past the limit", "decl_ref", _refunds_pending_past_limit
)


@rule("SLA-001", "warning", on="commerce", reach=(BY_VIN, LICENCES_PENDING_PAST_LIMIT))
def find_licences_issued_late(ctx: RuleContext) -> pd.DataFrame:
    """A licence issued, or still not issued, later than the working days commerce allows."""
    licences = ctx.evidence("commerce", "licences", "licence")
    limit = ctx.params.licence_wd
    until = func.coalesce(licences.c.issued_at, literal(ctx.day))
    found = ctx.frame(
        select(
            licences.c.vin,
            joined(licences.c.licence_no, licences.c.vin).label("record_key"),
            licences.c.applied_at,
            licences.c.issued_at,
            until.label("until"),
            literal(None).label("related"),
        ).where(ctx.reached(licences.c.vin), days_between(until, licences.c.applied_at) > limit)
    )
    found = _late(ctx, found, "applied_at", "until", limit)
    waited = found["working_days"].astype("str") + f" working days (at most {limit})"
    found["detail"] = (
        "applied for on "
        + found["applied_at"]
        + ", issued on "
        + found["issued_at"]
        + " after "
        + waited
    ).where(
        found["issued_at"].notna(),
        "applied for on " + found["applied_at"] + " and still not issued after " + waited,
    )
    return found


@rule("SLA-002", "warning", on="tax", reach=(BY_DECLARATION_REF, REFUNDS_PENDING_PAST_LIMIT))
def find_refunds_approved_late(ctx: RuleContext) -> pd.DataFrame:
    """A refund line approved, or still pending, later than its class's working-day limit."""
    refund = ctx.refund_lines()
    items = ctx.latest("customs", "declarations", "item")
    class12, other = ctx.params.refund_wd_class12, ctx.params.refund_wd_other
    class_1_or_2 = refund.c.enterprise_class.in_((EnterpriseClass.ONE, EnterpriseClass.TWO))
    limit = case((class_1_or_2, class12), else_=other)
    until = case(
        (refund.c.status == RefundStatus.PENDING, literal(ctx.day)), else_=refund.c.approved_at
    )
    found = ctx.frame(
        select(
            items.c.vin,
            joined(refund.c.refund_no, refund.c.decl_ref).label("record_key"),
            refund.c.enterprise_class,
            refund.c.status,
            refund.c.applied_at,
            until.label("until"),
            limit.label("limit"),
            literal(None).label("related"),
        )
        .outerjoin(items, same_item(refund, items))
        .where(
            ctx.reached(refund.c.decl_ref, "decl_ref"),
            days_between(until, refund.c.applied_at) > limit,
        )
    )
    found = _late(ctx, found, "applied_at", "until", found["limit"])
    waited = (
        found["working_days"].astype("str")
        + " working days (class "
        + found["enterprise_class"]
        + ": at most "
        + found["limit"].astype("str")
        + ")"
    )
    found["detail"] = (
        "applied for on "
        + found["applied_at"]
        + ", approved on "
        + found["until"]
        + " after "
        + waited
    ).where(
        found["status"] == RefundStatus.APPROVED,
        "applied for on " + found["applied_at"] + " and still pending after " + waited,
    )
    return found
