"""Service levels: licences and tax refunds handled within so many working days (RULES.md).

Working days follow the State Council calendar with its 调休 (``workdays``). Working
days never outnumber calendar days, so only records more than the limit in calendar
days can breach it: the query keeps those and the calendar counts the rest exactly —
or, where it lacks a year the count needs, declares the record not evaluated.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import case, func, literal, select

from vehiclehub.icd.codes import EnterpriseClass, RefundStatus
from vehiclehub.rules.base import (
    NOT_EVALUATED,
    RuleContext,
    days_between,
    joined,
    rule,
    same_item,
)
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


@rule("SLA-001", "warning", on="commerce")
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
        ).where(days_between(until, licences.c.applied_at) > limit)
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


@rule("SLA-002", "warning", on="tax")
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
        .where(days_between(until, refund.c.applied_at) > limit)
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
