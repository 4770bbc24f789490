"""The review desk's state and guards, shared by its API and its pages.

:class:`Desk` holds the settings, the store and the sessions; the guards
(:func:`signed_in`, :func:`deciding`, :func:`supervising`, :func:`csrf_checked`) are
FastAPI dependencies; the case actions record a decision, an assignment or a comment
and its audit entry in one transaction.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import Connection, Engine, func, select

from vehiclehub.config import AGENCIES, Settings
from vehiclehub.crypto import session_key
from vehiclehub.errors import HubError
from vehiclehub.review.auth import Sessions, User, audit, user_named
from vehiclehub.review.cases import (
    DECISIONS,
    REASONS,
    REVIEWS,
    CaseError,
    Decision,
    as_utc,
    assign,
    comment,
    decide,
    reopen,
)
from vehiclehub.review.queue import CASE_STATUSES, PER_PAGE_MAX, SORTS, CaseFilter, get_case
from vehiclehub.rules.base import SEVERITIES
from vehiclehub.store import connect
from vehiclehub.store.db import WriteLockHeld, take_write_lock
from vehiclehub.store.review import audit_log

log = logging.getLogger(__name__)
SESSION_COOKIE = "vhub_session"
CSRF_COOKIE = "csrftoken"
CSRF_HEADER = "X-CSRF-Token"
#: How long a desk write waits for the nightly run to let go of SQLite's write lock.
WRITE_WAIT_S = 20.0
RUN_WRITING = "the nightly run is writing to the store: nothing was recorded; try again in a minute"


class Unauthenticated(HubError):
    """No valid session: pages redirect to the login page, the API answers 401."""


class Desk:
    """What every request of one desk application shares: settings, store, sessions."""

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self._engine = engine
        self.sessions = Sessions(session_key(settings), settings.review.session_hours * 3600)

    @property
    def engine(self) -> Engine:
        # Connected on first use: the Airflow plugin builds the app at import time.
        if self._engine is None:
            self._engine = connect(self.settings.database_url)
        return self._engine

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction recording what a user did, its reads and writes seeing one store.

        On SQLite it takes the store's write lock first (see
        :func:`~vehiclehub.store.db.take_write_lock`), waiting at most
        :data:`WRITE_WAIT_S` for a writer holding it: the nightly run recording its
        findings and verdicts may hold it for minutes. Then nothing is recorded and the
        user is told so (CaseError, 503) rather than left waiting or shown an error page.
        """
        with self.engine.begin() as conn:
            try:
                take_write_lock(conn, WRITE_WAIT_S)
            except WriteLockHeld as exc:
                raise CaseError(RUN_WRITING, 503) from exc
            yield conn


def desk_of(request: Request) -> Desk:
    desk: Desk = request.app.state.desk
    return desk


def optional_user(request: Request) -> User | None:
    """The signed-in user, or None."""
    desk = desk_of(request)
    session = desk.sessions.read(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return None
    with desk.read() as conn:
        return user_named(conn, session[0])


def signed_in(request: Request) -> User:
    user = optional_user(request)
    if user is None:
        raise Unauthenticated
    return user


async def csrf_checked(request: Request) -> None:
    """A state-changing request carries the session's CSRF token (double submit)."""
    desk = desk_of(request)
    session = desk.sessions.read(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise Unauthenticated
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        sent = str((await request.form()).get("csrf_token") or "")
    cookie = request.cookies.get(CSRF_COOKIE) or ""
    if not sent or not (
        hmac.compare_digest(sent, cookie) and hmac.compare_digest(sent, session[1])
    ):
        raise HTTPException(403, "CSRF token missing or wrong: send the csrftoken cookie's value")


def is_page(request: Request) -> bool:
    """Whether a request is for a page (not the JSON API)."""
    root = request.scope.get("root_path", "")
    path = request.url.path
    relative = path[len(root) :] if root and path.startswith(root) else path
    return not relative.startswith("/api")


def safe_next(request: Request, target: str | None) -> str:
    """Where to go after logging in: a path of this app, else the queue."""
    root = request.scope.get("root_path", "")
    if target and target.startswith(root or "/") and not target.startswith("//"):
        return target
    return str(request.url_for("queue_page"))


def deciding(user: Annotated[User, Depends(signed_in)]) -> User:
    if not user.can_decide:
        raise HTTPException(403, f"a {user.role} reads cases; operators decide them")
    return user


def supervising(user: Annotated[User, Depends(signed_in)]) -> User:
    if not user.is_supervisor:
        raise HTTPException(403, "only a supervisor may do this")
    return user


def _choice(values: tuple[str, ...]) -> Any:
    """A query parameter holding one of ``values``; empty (a form left at "any") is none."""
    return Query(pattern=f"^({'|'.join(values)})?$", description=" | ".join(values))


#: An empty number field of a form is no filter.
_DAYS = Query(pattern="^[0-9]{0,5}$", description="days open")


def case_filter(
    rule_id: Annotated[str | None, Query(max_length=16)] = None,
    agency: Annotated[str | None, _choice(AGENCIES)] = None,
    severity: Annotated[str | None, _choice(SEVERITIES)] = None,
    status: Annotated[str | None, _choice(CASE_STATUSES)] = None,
    review: Annotated[str | None, _choice(REVIEWS)] = None,
    exporter: Annotated[str | None, Query(max_length=18, description="exporter USCC")] = None,
    assignee: Annotated[str | None, Query(max_length=64)] = None,
    min_age: Annotated[str | None, _DAYS] = None,
    max_age: Annotated[str | None, _DAYS] = None,
    vin_prefix: Annotated[str | None, Query(max_length=17, pattern="^[0-9A-Za-z]*$")] = None,
) -> CaseFilter:
    """The queue's filters, as query parameters (empty values left out)."""
    return CaseFilter(
        rule_id=rule_id or None,
        agency=agency or None,
        severity=severity or None,
        status=status or None,
        review=review or None,
        exporter=exporter or None,
        assignee=assignee or None,
        min_age=int(min_age) if min_age else None,
        max_age=int(max_age) if max_age else None,
        vin_prefix=vin_prefix or None,
    )


class Paging(BaseModel):
    sort: Literal[SORTS] = "id"  # type: ignore[valid-type]
    order: Literal["asc", "desc"] = "desc"
    page: int = Field(1, ge=1)
    per_page: int = Field(50, ge=1, le=PER_PAGE_MAX)


def paging(
    sort: Literal[SORTS] = "id",  # type: ignore[valid-type]
    order: Literal["asc", "desc"] = "desc",
    page: Annotated[int, Query(ge=1)] = 1,
    per_page: Annotated[int, Query(ge=1, le=PER_PAGE_MAX)] = 50,
) -> Paging:
    return Paging(sort=sort, order=order, page=page, per_page=per_page)


# --- JSON shapes --------------------------------------------------------------------------


class CaseItem(BaseModel):
    id: int
    rule_id: str
    severity: str
    vin: str | None
    agency: str
    record_key: str
    related: str
    status: Literal[CASE_STATUSES]  # type: ignore[valid-type]
    review: Literal[REVIEWS]  # type: ignore[valid-type]
    reason: str | None = None
    assignee: str | None
    first_seen: date
    last_seen: date
    age_days: int
    detail: str


class CasePage(BaseModel):
    total: int
    items: list[CaseItem]


class HistoryEntry(BaseModel):
    at: datetime
    actor: str
    kind: str
    review: str | None
    reason: str | None
    note: str | None
    assignee: str | None


class CaseDetail(CaseItem):
    resolved_on: date | None
    note: str | None
    decided_by: str | None
    history: list[HistoryEntry]


class DecisionIn(BaseModel):
    review: Literal[DECISIONS]  # type: ignore[valid-type]
    reason: Literal[REASONS] | None = None  # type: ignore[valid-type]
    note: str | None = Field(None, description="at most 500 characters, one line")
    assignee: str | None = Field(None, description="the supervisor an escalation goes to")


class AssignIn(BaseModel):
    assignee: str | None


class CommentIn(BaseModel):
    text: str = Field(min_length=1, max_length=500)


class LoginOut(BaseModel):
    user: str
    role: str
    agencies: list[str]
    csrf_token: str


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    detail: str | None


class AuditPage(BaseModel):
    total: int
    items: list[AuditEntry]


# --- the application ----------------------------------------------------------------------


def case_or_404(conn: Connection, user: User, case_id: int) -> dict[str, Any]:
    found = get_case(conn, user, case_id)
    if found is None:
        raise HTTPException(404, f"no case {case_id}")
    return found


def decide_case(desk: Desk, user: User, case_id: int, decision: Decision) -> dict[str, Any]:
    """Record a user's decision on a case they may see; the case as it now stands."""
    with desk.write() as conn:
        case_or_404(conn, user, case_id)
        stored = decide(conn, case_id, user.name, decision, supervisor=user.is_supervisor)
        detail = stored.review + (f" ({stored.reason})" if stored.reason else "")
        if stored.assignee:
            detail += f" to {stored.assignee}"
        audit(conn, user.name, "decision", f"case {case_id}", detail)
        return case_or_404(conn, user, case_id)


def reopen_case(desk: Desk, user: User, case_id: int) -> dict[str, Any]:
    with desk.write() as conn:
        case_or_404(conn, user, case_id)
        reopen(conn, case_id, user.name)
        audit(conn, user.name, "reopen", f"case {case_id}")
        return case_or_404(conn, user, case_id)


def assign_case(desk: Desk, user: User, case_id: int, assignee: str | None) -> dict[str, Any]:
    with desk.write() as conn:
        case_or_404(conn, user, case_id)
        assign(conn, case_id, user.name, assignee)
        audit(conn, user.name, "assign", f"case {case_id}", f"to {assignee or 'nobody'}")
        return case_or_404(conn, user, case_id)


def comment_case(desk: Desk, user: User, case_id: int, text: str) -> dict[str, Any]:
    with desk.write() as conn:
        case_or_404(conn, user, case_id)
        comment(conn, case_id, user.name, text)
        audit(conn, user.name, "comment", f"case {case_id}")
        return case_or_404(conn, user, case_id)


def audit_page(conn: Connection, page: int, per_page: int) -> tuple[int, list[dict[str, Any]]]:
    """The audit trail, newest first."""
    total = conn.execute(select(func.count()).select_from(audit_log)).scalar_one()
    rows = conn.execute(
        select(audit_log)
        .order_by(audit_log.c.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return total, [{**r._mapping, "at": as_utc(r.at)} for r in rows]


def start_session(desk: Desk, request: Request, response: Response, user: User) -> str:
    """Set the session and CSRF cookies on a response; the CSRF token."""
    cookie, token = desk.sessions.issue(user.name)
    set_session_cookies(desk, request, response, cookie, token)
    return token


def set_session_cookies(
    desk: Desk, request: Request, response: Response, cookie: str, token: str
) -> None:
    path = request.scope.get("root_path") or "/"
    secure = desk.settings.review.secure_cookies
    age = int(desk.sessions.max_age_s)
    response.set_cookie(
        SESSION_COOKIE, cookie, max_age=age, path=path, httponly=True, samesite="lax",
        secure=secure,
    )  # fmt: skip
    response.set_cookie(
        CSRF_COOKIE, token, max_age=age, path=path, httponly=False, samesite="strict",
        secure=secure,
    )  # fmt: skip


def end_session(request: Request, response: Response) -> None:
    path = request.scope.get("root_path") or "/"
    response.delete_cookie(SESSION_COOKIE, path=path)
    response.delete_cookie(CSRF_COOKIE, path=path)
