"""Service levels: licences and tax refunds handled within so many working days (RULES.md).

Working days follow the State Council calendar with its 调休 (``workdays``). Working
days never outnumber calendar days, so only records more than the limit in calendar
days can breach it: the query keeps those and the calendar counts the rest exactly.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import case, func, literal, select

from vehiclehub.rules.base import RuleContext, days_between, joined, rule, same_item
from vehiclehub.workdays import CalendarError, working_days_after


def _working_days(rule_id: str, found: pd.DataFrame, start: str, end: str) -> pd.Series:
    """Working days strictly after ``start`` up to and including ``end``, per row.

    A date outside the calendar is a configuration error, never a guess: it is raised
    with the rule that needed it.
    """
    try:
        return working_days_after(found[start], found[end])
    except CalendarError as exc:
        raise CalendarError(
            f"{rule_id} cannot count working days: {exc}; install a chinesecalendar that "
            "covers this year"
        ) from exc


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
    found["working_days"] = _working_days("SLA-001", found, "applied_at", "until")
    found = found[found["working_days"] > limit].reset_index(drop=True)
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
    limit = case((refund.c.enterprise_class.in_(("1", "2")), class12), else_=other)
    until = case((refund.c.status == "pending", literal(ctx.day)), else_=refund.c.approved_at)
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
    found["working_days"] = _working_days("SLA-002", found, "applied_at", "until")
    found = found[found["working_days"] > found["limit"]].reset_index(drop=True)
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
        found["status"] == "approved",
        "applied for on " + found["applied_at"] + " and still pending after " + waited,
    )
    return found
