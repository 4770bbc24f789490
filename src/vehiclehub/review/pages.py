"""The desk's server-rendered pages: login, queue, case, vehicle, audit trail.

Pages are plain HTML forms and links (no script needed), each form carrying the
session's CSRF token as a hidden field. They call the same functions as the JSON API.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

import pandas as pd
from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import select

from vehiclehub.config import AGENCIES
from vehiclehub.icd.codes import Review
from vehiclehub.review.auth import User, audit
from vehiclehub.review.cases import REASONS, REVIEWS, CaseError, Decision
from vehiclehub.review.desk import (
    RUN_WRITING,
    assign_case,
    audit_page,
    case_filter,
    comment_case,
    csrf_checked,
    decide_case,
    desk_of,
    reopen_case,
    safe_next,
    signed_in,
)
from vehiclehub.review.evidence import cited_records
from vehiclehub.review.programme import Programme, default_period, exporter, programme
from vehiclehub.review.queue import (
    CASE_COLUMNS,
    PER_PAGE_MAX,
    RESOLVED,
    SORTS,
    CaseFilter,
    get_case,
    list_cases,
)
from vehiclehub.review.records import COMPARED, differing, record_rows, vehicle_timeline
from vehiclehub.rules import RULES
from vehiclehub.store.review import review_users
from vehiclehub.xlsx import write_tables

#: Cases an export lists at most (the filtered queue; narrower filters for more).
EXPORT_MAX = 100_000
QUEUE_COLUMNS = [
    ("id", "Case"),
    ("rule_id", "Rule"),
    ("severity", "Severity"),
    ("vin", "VIN"),
    ("agency", "Agency"),
    ("record_key", "Record"),
    ("related", "Related"),
    ("status", "Status"),
    ("review", "Review"),
    ("assignee", "Assignee"),
    ("age", "Age (days)"),
    ("first_seen", "First seen"),
]


def _render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    templates = request.app.state.templates
    base = {
        "user": None,
        "csrf_token": request.cookies.get("csrftoken", ""),
        "message": None,
        "notice": None,
    }
    response: HTMLResponse = templates.TemplateResponse(
        request, name, base | context, status_code=status_code
    )
    return response


def login_form(
    request: Request, message: str | None, next_path: str, status_code: int = 200
) -> HTMLResponse:
    return _render(
        request, "login.html", {"message": message, "next": next_path}, status_code=status_code
    )


def _users(request: Request, roles: tuple[str, ...]) -> list[str]:
    with desk_of(request).read() as conn:
        rows = conn.execute(
            select(review_users.c.name).where(review_users.c.role.in_(roles)).order_by("name")
        )
        return [r for (r,) in rows]


Signed = Annotated[User, Depends(signed_in)]
csrf = csrf_checked


def register(app: FastAPI) -> None:
    """Add the pages to the desk's application."""

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request, next: str | None = None) -> Response:
        return login_form(request, None, safe_next(request, next))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def queue_page(
        request: Request,
        user: Signed,
        f: Annotated[CaseFilter, Depends(case_filter)],
        sort: str = "id",
        order: str = "desc",
        page: Annotated[int, Query(ge=1)] = 1,
        per_page: Annotated[int, Query(ge=1, le=PER_PAGE_MAX)] = 50,
    ) -> Response:
        sort = sort if sort in SORTS else "id"
        order = order if order in ("asc", "desc") else "desc"
        with desk_of(request).read() as conn:
            found = list_cases(
                conn, user, f, sort=sort, descending=order == "desc", page=page, per_page=per_page
            )
        params = f.as_params()

        def sort_query(column: str) -> str:
            flip = "asc" if sort == column and order == "desc" else "desc"
            return urlencode(params | {"sort": column, "order": flip})

        def page_query(number: int) -> str:
            return urlencode(
                params | {"sort": sort, "order": order, "page": number, "per_page": per_page}
            )

        return _render(
            request,
            "queue.html",
            {
                "user": user,
                "found": found,
                "f": f,
                "p": {"sort": sort, "order": order},
                "query": urlencode(params | {"sort": sort, "order": order}),
                "back": str(request.url.path)
                + ("?" + request.url.query if request.url.query else ""),
                "sort_query": sort_query,
                "page_query": page_query,
                "columns": QUEUE_COLUMNS,
                "sorts": SORTS,
                "rule_ids": sorted(RULES),
                "agencies": AGENCIES,
                "reviews": REVIEWS,
                "reasons": REASONS,
                "deciders": _users(request, ("operator", "supervisor")),
            },
        )

    @app.get("/export/cases.{fmt}", include_in_schema=False)
    def export_cases(
        request: Request,
        fmt: str,
        user: Signed,
        f: Annotated[CaseFilter, Depends(case_filter)],
        sort: str = "id",
        order: str = "desc",
    ) -> Response:
        if fmt not in ("csv", "xlsx"):
            raise HTTPException(404, "export as cases.csv or cases.xlsx")
        desk = desk_of(request)
        with desk.read() as conn:
            found = list_cases(
                conn,
                user,
                f,
                sort=sort if sort in SORTS else "id",
                descending=order != "asc",
                page=1,
                per_page=EXPORT_MAX,
            )
        with desk.write() as conn:
            audit(
                conn,
                user.name,
                "export",
                f"cases.{fmt}",
                f"{len(found.items)} of {found.total} cases; filters {f.as_params() or 'none'}",
            )
        frame = pd.DataFrame(found.items, columns=list(CASE_COLUMNS))
        frame = frame.astype({c: "string" for c in frame.columns if c not in ("id", "age_days")})
        if fmt == "csv":
            text = io.StringIO()
            frame.to_csv(text, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
            return Response(
                text.getvalue().encode("utf-8"),
                media_type="text/csv; charset=utf-8",
                headers={"content-disposition": 'attachment; filename="cases.csv"'},
            )
        book = io.BytesIO()
        write_tables(book, {"cases": frame.astype({"id": "int64", "age_days": "int64"})})
        return StreamingResponse(
            iter([book.getvalue()]),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"content-disposition": 'attachment; filename="cases.xlsx"'},
        )

    @app.post("/queue/bulk", include_in_schema=False, dependencies=[Depends(csrf)])
    def bulk_page(
        request: Request,
        user: Signed,
        action: Annotated[str, Form()],
        ids: Annotated[list[int], Form()] = [],  # noqa: B006 -- FastAPI's form default
        assignee: Annotated[str, Form()] = "",
        reason: Annotated[str, Form()] = "",
        note: Annotated[str, Form()] = "",
        back: Annotated[str, Form()] = "",
    ) -> Response:
        if not user.can_decide:
            raise HTTPException(403, f"a {user.role} reads cases; operators decide them")
        desk = desk_of(request)
        done, refused = 0, []
        for position, case_id in enumerate(ids):
            try:
                if action == "assign":
                    assign_case(desk, user, case_id, assignee or None)
                elif action == "dismiss":
                    decide_case(
                        desk,
                        user,
                        case_id,
                        Decision(Review.DISMISSED.value, reason or None, note or None),
                    )
                else:
                    raise CaseError(f"unknown action {action!r}")
                done += 1
            except (CaseError, HTTPException) as exc:
                text = exc.detail if isinstance(exc, HTTPException) else str(exc)
                refused.append(f"case {case_id}: {text}")
                if text == RUN_WRITING:  # so would every case after it: none is waited for
                    refused += [f"case {left}: not done" for left in ids[position + 1 :]]
                    break
        target = safe_next(request, back)
        query = urlencode({"done": done, "refused": " | ".join(refused)[:1500]})
        return RedirectResponse(f"{target}{'&' if '?' in target else '?'}{query}", 303)

    def _case_view(
        request: Request,
        user: User,
        case_id: int,
        message: str | None = None,
        status_code: int = 200,
        asked: dict[str, str] | None = None,
    ) -> Response:
        with desk_of(request).read() as conn:
            c = get_case(conn, user, case_id)
            if c is None:
                raise HTTPException(404, f"no case {case_id}")
            refs = cited_records(c["agency"], c["record_key"], c["related"])
            records = []
            for i, ref in enumerate(refs):
                rows = record_rows(conn, ref)
                views = []
                for row in rows:
                    marks = None
                    if c["rule_id"] == "VIN-003" and i > 0 and row.vin and c["vin"]:
                        marks = differing(c["vin"], row.vin)
                    views.append({**row.__dict__, "marks": marks})
                role = "on" if i == 0 else ("candidate" if c["rule_id"] == "VIN-003" else "related")
                records.append({"ref": ref, "role": role, "rows": views})
        doc = (RULES[c["rule_id"]].find.__doc__ or "").strip()
        title, _, body = doc.partition("\n")
        open_case = c["status"] != RESOLVED
        can_decide = open_case and (
            (user.can_decide and c["review"] == Review.UNREVIEWED)
            or (user.is_supervisor and c["review"] == Review.ESCALATED)
        )
        return _render(
            request,
            "case.html",
            {
                "user": user,
                "c": c,
                "statement_title": title,
                "statement_body": " ".join(body.split()),
                "records": records,
                "compared": COMPARED.get(c["rule_id"], ()),
                "vin_marks": ("vin", "old_vin", "new_vin"),
                "can_decide": can_decide,
                "can_reopen": user.is_supervisor and c["review"] != Review.UNREVIEWED,
                "reasons": REASONS,
                "supervisors": _users(request, ("supervisor",)),
                "deciders": _users(request, ("operator", "supervisor")),
                "message": message,
                # A decision not recorded is shown again as it was asked for.
                "asked": asked or {},
                "notice": request.query_params.get("notice"),
            },
            status_code,
        )

    @app.get("/cases/{case_id}", response_class=HTMLResponse, include_in_schema=False)
    def case_page(request: Request, case_id: int, user: Signed) -> Response:
        return _case_view(request, user, case_id)

    def _acted(
        request: Request,
        user: User,
        case_id: int,
        act: Callable[[], Any],
        done: str,
        asked: dict[str, str] | None = None,
    ) -> Response:
        try:
            act()
        except CaseError as exc:
            return _case_view(request, user, case_id, str(exc), exc.status, asked)
        except HTTPException as exc:
            if exc.status_code == 404:
                raise
            return _case_view(request, user, case_id, str(exc.detail), exc.status_code, asked)
        target = request.url_for("case_page", case_id=case_id).include_query_params(notice=done)
        return RedirectResponse(str(target), 303)

    @app.post("/cases/{case_id}/decision", include_in_schema=False, dependencies=[Depends(csrf)])
    def decide_page(
        request: Request,
        case_id: int,
        user: Signed,
        review: Annotated[str, Form()],
        reason: Annotated[str, Form()] = "",
        note: Annotated[str, Form()] = "",
        assignee: Annotated[str, Form()] = "",
    ) -> Response:
        def act() -> None:
            if not user.can_decide:
                raise HTTPException(403, f"a {user.role} reads cases; operators decide them")
            decision = Decision(review, reason or None, note or None, assignee or None)
            decide_case(desk_of(request), user, case_id, decision)

        asked = {"review": review, "reason": reason, "note": note, "assignee": assignee}
        return _acted(request, user, case_id, act, f"decided: {review}", asked)

    @app.post("/cases/{case_id}/reopen", include_in_schema=False, dependencies=[Depends(csrf)])
    def reopen_page(request: Request, case_id: int, user: Signed) -> Response:
        def act() -> None:
            if not user.is_supervisor:
                raise HTTPException(403, "only a supervisor may do this")
            reopen_case(desk_of(request), user, case_id)

        return _acted(request, user, case_id, act, "re-opened")

    @app.post("/cases/{case_id}/assign", include_in_schema=False, dependencies=[Depends(csrf)])
    def assign_page(
        request: Request, case_id: int, user: Signed, assignee: Annotated[str, Form()] = ""
    ) -> Response:
        def act() -> None:
            if not user.can_decide:
                raise HTTPException(403, f"a {user.role} reads cases; operators assign them")
            assign_case(desk_of(request), user, case_id, assignee or None)

        return _acted(request, user, case_id, act, f"assigned to {assignee or 'nobody'}")

    @app.post("/cases/{case_id}/comment", include_in_schema=False, dependencies=[Depends(csrf)])
    def comment_page(
        request: Request, case_id: int, user: Signed, text: Annotated[str, Form()]
    ) -> Response:
        def act() -> None:
            if not user.can_decide:
                raise HTTPException(403, f"a {user.role} reads cases; operators comment")
            comment_case(desk_of(request), user, case_id, text)

        return _acted(request, user, case_id, act, "comment added")

    @app.get("/vehicles/{vin}", response_class=HTMLResponse, include_in_schema=False)
    def vehicle_page(request: Request, vin: str, user: Signed) -> Response:
        vin = vin.strip().upper()
        with desk_of(request).read() as conn:
            timeline = vehicle_timeline(conn, vin)
            if user.agencies:
                timeline = [e for e in timeline if e.agency in user.agencies]
            cases = list_cases(
                conn, user, CaseFilter(vin_prefix=vin), sort="first_seen", per_page=PER_PAGE_MAX
            )
        return _render(
            request,
            "vehicle.html",
            {"user": user, "vin": vin, "timeline": timeline, "cases": cases.items},
        )

    @app.get("/exporters/{uscc}", response_class=HTMLResponse, include_in_schema=False)
    def exporter_page(request: Request, uscc: str, user: Signed) -> Response:
        desk = desk_of(request)
        with desk.read() as conn:
            found = exporter(conn, user, uscc.strip().upper(), desk.settings.rules)
        return _render(request, "exporter.html", {"user": user, "e": found})

    def _period(request: Request, start: date | None, end: date | None) -> Programme:
        with desk_of(request).read() as conn:
            first, last = default_period(conn)
            start, end = start or first, end or last
            if start > end or (end - start).days > 366:
                raise HTTPException(422, "period: from on or before to, at most a year")
            return programme(conn, start, end)

    @app.get("/programme", response_class=HTMLResponse, include_in_schema=False)
    def programme_page(
        request: Request,
        user: Signed,
        start: Annotated[date | None, Query(alias="from")] = None,
        end: Annotated[date | None, Query(alias="to")] = None,
    ) -> Response:
        return _render(request, "programme.html", {"user": user, "p": _period(request, start, end)})

    @app.get("/programme/weekly.xlsx", include_in_schema=False)
    def programme_xlsx(
        request: Request,
        user: Signed,
        start: Annotated[date | None, Query(alias="from")] = None,
        end: Annotated[date | None, Query(alias="to")] = None,
    ) -> Response:
        found = _period(request, start, end)
        book = io.BytesIO()
        write_tables(
            book,
            {
                "weekly": found.weekly,
                "daily": found.daily.astype({"day": "string"}),
                "provinces": found.places,
                "prefectures": found.prefectures,
            },
        )
        with desk_of(request).write() as conn:
            audit(conn, user.name, "export", "programme weekly.xlsx", f"{found.start}..{found.end}")
        name = f"programme_{found.start:%Y%m%d}_{found.end:%Y%m%d}.xlsx"
        return Response(
            book.getvalue(),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )

    @app.get("/audit", response_class=HTMLResponse, include_in_schema=False)
    def audit_html(
        request: Request, user: Signed, page: Annotated[int, Query(ge=1)] = 1
    ) -> Response:
        if not user.is_supervisor:
            raise HTTPException(403, "only a supervisor reads the audit trail")
        with desk_of(request).read() as conn:
            total, items = audit_page(conn, page, 100)
        return _render(
            request,
            "audit.html",
            {"user": user, "total": total, "items": items, "page": page, "per_page": 100},
        )
