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

import logging
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine

from vehiclehub.config import Settings
from vehiclehub.review.auth import User, audit, log_in
from vehiclehub.review.cases import (
    CaseError,
    Decision,
)
from vehiclehub.review.desk import (
    AssignIn,
    AuditPage,
    CaseDetail,
    CasePage,
    CommentIn,
    DecisionIn,
    Desk,
    LoginOut,
    Paging,
    Unauthenticated,
    assign_case,
    audit_page,
    case_filter,
    case_or_404,
    comment_case,
    csrf_checked,
    decide_case,
    deciding,
    desk_of,
    end_session,
    is_page,
    paging,
    reopen_case,
    safe_next,
    set_session_cookies,
    signed_in,
    start_session,
    supervising,
)
from vehiclehub.review.pages import login_form, register
from vehiclehub.review.queue import PER_PAGE_MAX, CaseFilter, list_cases

log = logging.getLogger(__name__)
HERE = Path(__file__).parent


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
        desk = desk_of(request)
        with desk.write() as conn:
            user, outcome = log_in(conn, username, password, desk.settings.review)
        if user is None:
            if next is not None:
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
        with desk_of(request).write() as conn:
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
        with desk_of(request).read() as conn:
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
        with desk_of(request).read() as conn:
            return case_or_404(conn, user, case_id)

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
        return decide_case(desk_of(request), user, case_id, decision)

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
        return reopen_case(desk_of(request), user, case_id)

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
        return assign_case(desk_of(request), user, case_id, body.assignee)

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
        return comment_case(desk_of(request), user, case_id, body.text)

    @app.get("/api/audit", response_model=AuditPage, tags=["audit"])
    def api_audit(
        request: Request,
        _user: Annotated[User, Depends(supervising)],
        page: Annotated[int, Query(ge=1)] = 1,
        per_page: Annotated[int, Query(ge=1, le=PER_PAGE_MAX)] = 50,
    ) -> dict[str, Any]:
        """The audit trail, newest first (supervisors)."""
        with desk_of(request).read() as conn:
            total, items = audit_page(conn, page, per_page)
        return {"total": total, "items": items}

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
