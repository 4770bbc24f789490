"""The queue of cases: filtered, sorted and paged by indexed queries on the store.

A case is a finding (its id is the finding's) with its review state (``case_states``,
absent while nobody touched it). A user scoped to agencies sees the cases on one of
their records or citing one (``related``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    case,
    false,
    func,
    literal,
    or_,
    select,
    union,
)

from vehiclehub.icd.codes import FindingStatus, Review
from vehiclehub.icd.codes import values as code_values
from vehiclehub.review.auth import User
from vehiclehub.review.cases import as_utc
from vehiclehub.store.review import case_events, case_states, review_runs
from vehiclehub.store.schema import feed_table, findings

PER_PAGE_MAX = 200
SORTS = ("id", "rule_id", "severity", "vin", "first_seen", "last_seen", "review", "assignee")
#: A case's finding no longer holds.
RESOLVED = "resolved"
#: A case's status on the desk: its finding's status in the findings drops, or resolved.
CASE_STATUSES = (*code_values(FindingStatus), RESOLVED)


@dataclass(frozen=True)
class CaseFilter:
    """The queue's filters; ``None`` (or empty) leaves one out."""

    rule_id: str | None = None
    agency: str | None = None
    severity: str | None = None
    status: str | None = None  # new | open | resolved
    review: str | None = None  # unreviewed | confirmed | dismissed | escalated
    exporter: str | None = None  # USCC
    assignee: str | None = None
    min_age: int | None = None  # days open, at least
    max_age: int | None = None  # days open, at most
    vin_prefix: str | None = None

    def as_params(self) -> dict[str, Any]:
        """The filters set, as query parameters."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}


def latest_run(conn: Connection) -> date | None:
    """The business date of the latest run (the day ``new`` means)."""
    day = conn.execute(select(func.max(review_runs.c.run_date))).scalar()
    if day is None:
        day = conn.execute(select(func.max(findings.c.last_seen))).scalar()
    if isinstance(day, str):
        day = date.fromisoformat(day)
    return day


def visible_to(user: User) -> ColumnElement[bool]:
    """The cases a user may see: all, or those on or citing the user's agencies' records."""
    if not user.agencies:
        return literal(True) == literal(True)
    return or_(
        findings.c.agency.in_(user.agencies),
        *(findings.c.related.like(f"%{agency}:%") for agency in user.agencies),
    )


def _exporter_vins(uscc: str) -> Select[Any]:
    """VINs on the exporter's licence rows or customs items."""
    licences = feed_table("commerce", "licences")
    items = feed_table("customs", "declarations")
    return (
        union(
            select(licences.c.vin).where(licences.c.uscc == uscc),
            select(items.c.vin).where(items.c.uscc == uscc),
        )
        .subquery("exporter_vins")
        .select()
    )


def _status(day: date | None) -> ColumnElement[str]:
    return case(
        (findings.c.resolved_on.is_not(None), RESOLVED),
        (findings.c.first_seen == day, FindingStatus.NEW.value),
        else_=FindingStatus.OPEN.value,
    )


def case_conditions(f: CaseFilter, day: date | None, today: date) -> list[ColumnElement[bool]]:
    """The filters as conditions on ``findings`` joined with ``case_states``."""
    review = func.coalesce(case_states.c.review, Review.UNREVIEWED.value)
    out: list[ColumnElement[bool]] = []
    if f.rule_id:
        out.append(findings.c.rule_id == f.rule_id)
    if f.agency:
        out.append(or_(findings.c.agency == f.agency, findings.c.related.like(f"%{f.agency}:%")))
    if f.severity:
        out.append(findings.c.severity == f.severity)
    if f.status == RESOLVED:
        out.append(findings.c.resolved_on.is_not(None))
    elif f.status in (FindingStatus.NEW, FindingStatus.OPEN):
        out.append(findings.c.resolved_on.is_(None))
        out.append(
            findings.c.first_seen == day
            if f.status == FindingStatus.NEW
            else findings.c.first_seen != day
        )
    elif f.status:
        out.append(false())
    if f.review:
        out.append(review == f.review)
    if f.exporter:
        # A finding on the exporter's filing has a record key ``uscc/filing_no``.
        on_filing = and_(
            findings.c.agency == "commerce", findings.c.record_key.like(f"{f.exporter}/%")
        )
        out.append(or_(findings.c.vin.in_(_exporter_vins(f.exporter)), on_filing))
    if f.assignee:
        out.append(case_states.c.assignee == f.assignee)
    if f.min_age is not None:
        out.append(findings.c.first_seen <= today - timedelta(days=f.min_age))
    if f.max_age is not None:
        out.append(findings.c.first_seen >= today - timedelta(days=f.max_age))
    if f.vin_prefix:
        out.append(findings.c.vin.like(f"{f.vin_prefix.upper()}%"))
    return out


CASE_COLUMNS = (
    "id",
    "rule_id",
    "severity",
    "vin",
    "agency",
    "record_key",
    "related",
    "detail",
    "status",
    "review",
    "reason",
    "assignee",
    "first_seen",
    "last_seen",
    "resolved_on",
    "age_days",
)


def _columns(day: date | None, today: date) -> list[ColumnElement[Any]]:
    return [
        findings.c.id,
        findings.c.rule_id,
        findings.c.severity,
        findings.c.vin,
        findings.c.agency,
        findings.c.record_key,
        findings.c.related,
        findings.c.detail,
        _status(day).label("status"),
        func.coalesce(case_states.c.review, Review.UNREVIEWED.value).label("review"),
        case_states.c.reason,
        case_states.c.assignee,
        findings.c.first_seen,
        findings.c.last_seen,
        findings.c.resolved_on,
    ]


def _row(row: Any, today: date) -> dict[str, Any]:
    out = dict(row._mapping)
    for name in ("first_seen", "last_seen", "resolved_on"):
        if isinstance(out[name], str):
            out[name] = date.fromisoformat(out[name])
    end = out["resolved_on"] or today
    out["age_days"] = (end - out["first_seen"]).days
    return out


def _today(day: date | None) -> date:
    return day or date.today()


@dataclass(frozen=True)
class Page:
    total: int
    items: list[dict[str, Any]]
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def list_cases(
    conn: Connection,
    user: User,
    f: CaseFilter,
    *,
    sort: str = "id",
    descending: bool = True,
    page: int = 1,
    per_page: int = 50,
) -> Page:
    """One page of the cases the user sees that pass the filters, and how many pass."""
    day = latest_run(conn)
    today = _today(day)
    joined = findings.outerjoin(case_states, case_states.c.finding_id == findings.c.id)
    where = [visible_to(user), *case_conditions(f, day, today)]
    total = conn.execute(select(func.count()).select_from(joined).where(*where)).scalar_one()
    order_column: Any = {
        "review": func.coalesce(case_states.c.review, Review.UNREVIEWED.value),
        "assignee": case_states.c.assignee,
    }.get(sort, findings.c.get(sort, findings.c.id))
    order = [order_column.desc() if descending else order_column.asc()]
    if sort != "id":
        order.append(findings.c.id.desc() if descending else findings.c.id.asc())
    rows = conn.execute(
        select(*_columns(day, today))
        .select_from(joined)
        .where(*where)
        .order_by(*order)
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return Page(total, [_row(r, today) for r in rows], page, per_page)


def get_case(conn: Connection, user: User, case_id: int) -> dict[str, Any] | None:
    """A case the user may see, with its history (oldest first); None otherwise."""
    day = latest_run(conn)
    today = _today(day)
    row = conn.execute(
        select(*_columns(day, today), case_states.c.note, case_states.c.decided_by)
        .select_from(findings.outerjoin(case_states, case_states.c.finding_id == findings.c.id))
        .where(findings.c.id == case_id, visible_to(user))
    ).first()
    if row is None:
        return None
    out = _row(row, today)
    events = conn.execute(
        select(case_events).where(case_events.c.finding_id == case_id).order_by(case_events.c.id)
    ).all()
    out["history"] = [
        {
            "at": as_utc(e.at),
            "actor": e.actor,
            "kind": e.kind,
            "review": e.review,
            "reason": e.reason,
            "note": e.note,
            "assignee": e.assignee,
        }
        for e in events
    ]
    return out
