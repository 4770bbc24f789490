"""The review desk's web application: the JSON API and the server-rendered pages.

One FastAPI application, run alone by ``vhub serve`` or mounted into the Airflow UI
by ``plugins/vehiclehub_review.py``; paths are relative to where it is mounted. It
protects itself: Airflow does not guard plugin endpoints. An anonymous visitor of a
page is sent to the login page, an anonymous API request gets 401; a signed-in user
without the role gets 403; bad input 422 with a message. Every state-changing request
but the login carries the session's CSRF token, in the ``X-CSRF-Token`` header or a
form's ``csrf_token`` field, equal to the ``csrftoken`` cookie set at login.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from sqlalchemy import Connection, Engine, func, select

from vehiclehub.config import AGENCIES, Settings
from vehiclehub.crypto import session_key
from vehiclehub.review.auth import Sessions, User, audit, log_in, user_named
from vehiclehub.review.cases import (
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
from vehiclehub.review.queue import PER_PAGE_MAX, SORTS, CaseFilter, get_case, list_cases
from vehiclehub.review.tables import audit_log
from vehiclehub.rules.base import SEVERITIES
from vehiclehub.store import connect

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
SESSION_COOKIE = "vhub_session"
CSRF_COOKIE = "csrftoken"
CSRF_HEADER = "X-CSRF-Token"


class Unauthenticated(Exception):
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
        with self.engine.begin() as conn:
            yield conn


def _desk(request: Request) -> Desk:
    desk: Desk = request.app.state.desk
    return desk


def optional_user(request: Request) -> User | None:
    """The signed-in user, or None."""
    desk = _desk(request)
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
    desk = _desk(request)
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
    status: Annotated[str | None, _choice(("new", "open", "resolved"))] = None,
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
    status: Literal["new", "open", "resolved"]
    review: Literal["unreviewed", "confirmed", "dismissed", "escalated"]
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
    review: Literal["confirmed", "dismissed", "escalated"]
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


def _case_or_404(conn: Connection, user: User, case_id: int) -> dict[str, Any]:
    found = get_case(conn, user, case_id)
    if found is None:
        raise HTTPException(404, f"no case {case_id}")
    return found


def decide_case(desk: Desk, user: User, case_id: int, decision: Decision) -> dict[str, Any]:
    """Record a user's decision on a case they may see; the case as it now stands."""
    with desk.write() as conn:
        _case_or_404(conn, user, case_id)
        stored = decide(conn, case_id, user.name, decision, supervisor=user.is_supervisor)
        detail = stored.review + (f" ({stored.reason})" if stored.reason else "")
        if stored.assignee:
            detail += f" to {stored.assignee}"
        audit(conn, user.name, "decision", f"case {case_id}", detail)
        return _case_or_404(conn, user, case_id)


def reopen_case(desk: Desk, user: User, case_id: int) -> dict[str, Any]:
    with desk.write() as conn:
        _case_or_404(conn, user, case_id)
        reopen(conn, case_id, user.name)
        audit(conn, user.name, "reopen", f"case {case_id}")
        return _case_or_404(conn, user, case_id)


def assign_case(desk: Desk, user: User, case_id: int, assignee: str | None) -> dict[str, Any]:
    with desk.write() as conn:
        _case_or_404(conn, user, case_id)
        assign(conn, case_id, user.name, assignee)
        audit(conn, user.name, "assign", f"case {case_id}", f"to {assignee or 'nobody'}")
        return _case_or_404(conn, user, case_id)


def comment_case(desk: Desk, user: User, case_id: int, text: str) -> dict[str, Any]:
    with desk.write() as conn:
        _case_or_404(conn, user, case_id)
        comment(conn, case_id, user.name, text)
        audit(conn, user.name, "comment", f"case {case_id}")
        return _case_or_404(conn, user, case_id)


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


LOGIN_REFUSED = {
    "bad": "wrong user name or password",
    "locked": "too many failed logins: this user is locked out for a while",
}


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """The review desk for the hub configured by ``settings``."""
    app = FastAPI(
        title="vehiclehub review desk",
        version="1",
        description=__doc__,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    app.state.desk = Desk(settings, engine)
    app.state.templates = Jinja2Templates(directory=HERE / "templates")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(Unauthenticated)
    async def _unauthenticated(request: Request, _exc: Unauthenticated) -> Response:
        if is_page(request):
            target = request.url_for("login_page").include_query_params(next=str(request.url.path))
            return RedirectResponse(str(target), status_code=303)
        return JSONResponse({"detail": "not signed in: POST /login first"}, status_code=401)

    @app.exception_handler(CaseError)
    async def _case_error(request: Request, exc: CaseError) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = [
            f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}"
            for e in exc.errors()
        ]
        return JSONResponse({"detail": "; ".join(problems)}, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("review desk: %s on %s", type(exc).__name__, request.url.path)
        return JSONResponse({"detail": "internal error"}, status_code=500)

    @app.post("/login", response_model=LoginOut, tags=["session"])
    def login(
        request: Request,
        username: Annotated[str, Form(max_length=64)],
        password: Annotated[str, Form(max_length=1024)],
        next: Annotated[str | None, Form()] = None,
    ) -> Response:
        """Sign in (exempt from CSRF). Sets the session cookie and the ``csrftoken``
        cookie; a form with ``next`` is redirected there."""
        desk = _desk(request)
        with desk.write() as conn:
            user, outcome = log_in(conn, username, password, desk.settings.review)
        if user is None:
            if next is not None:
                from vehiclehub.review.pages import login_form

                return login_form(request, LOGIN_REFUSED[outcome], next, 401)
            return JSONResponse({"detail": LOGIN_REFUSED[outcome]}, status_code=401)
        if next is not None:
            response: Response = RedirectResponse(safe_next(request, next), 303)
            start_session(desk, request, response, user)
            return response
        cookie, token = desk.sessions.issue(user.name)
        out = LoginOut(
            user=user.name, role=user.role, agencies=list(user.agencies), csrf_token=token
        )
        response = JSONResponse(out.model_dump())
        set_session_cookies(desk, request, response, cookie, token)
        return response

    @app.post("/logout", tags=["session"], dependencies=[Depends(csrf_checked)])
    def logout(request: Request, user: Annotated[User, Depends(signed_in)]) -> Response:
        """Sign out."""
        with _desk(request).write() as conn:
            audit(conn, user.name, "logout")
        response = RedirectResponse(str(request.url_for("login_page")), 303)
        end_session(request, response)
        return response

    @app.get("/api/cases", response_model=CasePage, tags=["cases"])
    def api_cases(
        request: Request,
        user: Annotated[User, Depends(signed_in)],
        f: Annotated[CaseFilter, Depends(case_filter)],
        p: Annotated[Paging, Depends(paging)],
    ) -> dict[str, Any]:
        """The queue: the cases the user sees that pass the filters, a page at a time."""
        with _desk(request).read() as conn:
            found = list_cases(
                conn,
                user,
                f,
                sort=p.sort,
                descending=p.order == "desc",
                page=p.page,
                per_page=p.per_page,
            )
        return {"total": found.total, "items": found.items}

    @app.get("/api/cases/{case_id}", response_model=CaseDetail, tags=["cases"])
    def api_case(
        request: Request, case_id: int, user: Annotated[User, Depends(signed_in)]
    ) -> dict[str, Any]:
        """A case with its history."""
        with _desk(request).read() as conn:
            return _case_or_404(conn, user, case_id)

    @app.post(
        "/api/cases/{case_id}/decision",
        response_model=CaseDetail,
        tags=["cases"],
        dependencies=[Depends(csrf_checked)],
    )
    def api_decide(
        request: Request, case_id: int, body: DecisionIn, user: Annotated[User, Depends(deciding)]
    ) -> dict[str, Any]:
        """Decide a case: ``confirmed`` (the agencies are asked to correct; the note goes
        to them), ``dismissed`` (with a reason; ``other`` needs a note) or ``escalated``
        (to the supervisor named in ``assignee``)."""
        decision = Decision(body.review, body.reason, body.note, body.assignee)
        return decide_case(_desk(request), user, case_id, decision)

    @app.post(
        "/api/cases/{case_id}/reopen",
        response_model=CaseDetail,
        tags=["cases"],
        dependencies=[Depends(csrf_checked)],
    )
    def api_reopen(
        request: Request, case_id: int, user: Annotated[User, Depends(supervising)]
    ) -> dict[str, Any]:
        """Re-open a decided case (supervisors)."""
        return reopen_case(_desk(request), user, case_id)

    @app.post(
        "/api/cases/{case_id}/assign",
        response_model=CaseDetail,
        tags=["cases"],
        dependencies=[Depends(csrf_checked)],
    )
    def api_assign(
        request: Request, case_id: int, body: AssignIn, user: Annotated[User, Depends(deciding)]
    ) -> dict[str, Any]:
        """Give a case to an operator or supervisor (``null``: to nobody)."""
        return assign_case(_desk(request), user, case_id, body.assignee)

    @app.post(
        "/api/cases/{case_id}/comments",
        response_model=CaseDetail,
        tags=["cases"],
        dependencies=[Depends(csrf_checked)],
    )
    def api_comment(
        request: Request, case_id: int, body: CommentIn, user: Annotated[User, Depends(deciding)]
    ) -> dict[str, Any]:
        """An internal comment on a case (never sent to the agencies)."""
        return comment_case(_desk(request), user, case_id, body.text)

    @app.get("/api/audit", response_model=AuditPage, tags=["audit"])
    def api_audit(
        request: Request,
        _user: Annotated[User, Depends(supervising)],
        page: Annotated[int, Query(ge=1)] = 1,
        per_page: Annotated[int, Query(ge=1, le=PER_PAGE_MAX)] = 50,
    ) -> dict[str, Any]:
        """The audit trail, newest first (supervisors)."""
        with _desk(request).read() as conn:
            total, items = audit_page(conn, page, per_page)
        return {"total": total, "items": items}

    # The pages' module builds on this one's guards and actions.
    from vehiclehub.review.pages import register

    register(app)
    return app


def unconfigured_app(reason: str) -> FastAPI:
    """A stand-in desk when the hub's configuration cannot be read: every path answers
    503 saying what to fix (the Airflow plugin mounts it rather than break the UI)."""
    app = FastAPI(title="vehiclehub review desk (not configured)", openapi_url=None)

    @app.api_route("/{path:path}", methods=["GET", "POST"], include_in_schema=False)
    def not_configured(path: str) -> Response:
        return JSONResponse({"detail": f"review desk not configured: {reason}"}, 503)

    return app
