"""The desk's JSON API as documented: sessions, CSRF, roles, scopes, 401/403/422."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import make_url

from vehiclehub.config import Settings
from vehiclehub.review import desk as desk_module
from vehiclehub.review.app import create_app
from vehiclehub.review.desk import RUN_WRITING
from vehiclehub.store import connect

from .desk import DECL, PASSWORD, build


@pytest.fixture
def desk(settings: Settings) -> Iterator[tuple[TestClient, dict[str, int]]]:
    engine = connect(settings.database_url)
    ids = build(engine)
    with TestClient(create_app(settings, engine)) as client:
        yield client, ids
    engine.dispose()


def _login(client: TestClient, name: str) -> dict[str, str]:
    """Sign in; the CSRF header to send with state-changing requests."""
    answer = client.post("/login", data={"username": name, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    token = answer.json()["csrf_token"]
    assert client.cookies["csrftoken"] == token
    return {"X-CSRF-Token": token}


def test_anonymous_requests_get_401_and_pages_send_to_the_login(desk) -> None:
    client, ids = desk
    assert client.get("/api/cases").status_code == 401
    assert client.get(f"/api/cases/{ids['exp002']}").status_code == 401
    page = client.get("/", follow_redirects=False)
    assert page.status_code == 303 and "/login?next=" in page.headers["location"]
    assert client.get("/login").status_code == 200
    wrong = client.post("/login", data={"username": "op1", "password": "nope"})
    assert wrong.status_code == 401 and wrong.json() == {"detail": "wrong user name or password"}
    # A resident ID typed as a user name is not kept in the clear by the audit trail.
    client.post("/login", data={"username": "110101199003077777", "password": "nope"})
    _login(client, "boss")
    actors = [e["actor"] for e in client.get("/api/audit").json()["items"]]
    assert "110101************" in actors and "110101199003077777" not in actors


def test_the_queue_filters_sorts_and_pages(desk) -> None:
    client, ids = desk
    _login(client, "op1")
    everything = client.get("/api/cases").json()
    assert everything["total"] == 3
    first = everything["items"][0]
    assert set(first) >= {
        "id", "rule_id", "severity", "vin", "agency", "record_key", "related", "status",
        "review", "assignee", "first_seen", "last_seen",
    }  # fmt: skip
    by_rule = client.get("/api/cases", params={"rule_id": "EXP-002"}).json()
    assert [c["id"] for c in by_rule["items"]] == [ids["exp002"]]
    assert by_rule["items"][0]["status"] == "open"
    new = client.get("/api/cases", params={"status": "new", "sort": "id", "order": "asc"})
    assert [c["id"] for c in new.json()["items"]] == [ids["lic001"], ids["tax001"]]
    citing_customs = client.get("/api/cases", params={"agency": "customs"}).json()
    assert {c["id"] for c in citing_customs["items"]} == {ids["exp002"], ids["lic001"]}
    paged = client.get("/api/cases", params={"per_page": 2, "page": 2}).json()
    assert (paged["total"], len(paged["items"])) == (3, 1)
    assert client.get("/api/cases", params={"vin_prefix": "LSVAM4187C2184848"}).json()["total"] == 1
    assert client.get("/api/cases", params={"exporter": "91120000MA05XXXXXX"}).json()["total"] == 2
    bad = client.get("/api/cases", params={"per_page": 1000, "status": "closed"})
    assert bad.status_code == 422
    assert "status" in bad.json()["detail"] and "per_page" in bad.json()["detail"]


def test_decisions_need_the_csrf_token_and_the_role(desk) -> None:
    client, ids = desk
    case = f"/api/cases/{ids['exp002']}"
    headers = _login(client, "op1")
    dismissal = {"review": "dismissed", "reason": "false_positive"}
    refused = client.post(f"{case}/decision", json=dismissal)
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    wrong = client.post(f"{case}/decision", json=dismissal, headers={"X-CSRF-Token": "x"})
    assert wrong.status_code == 403
    no_reason = client.post(f"{case}/decision", json={"review": "dismissed"}, headers=headers)
    assert no_reason.status_code == 422 and "reason" in no_reason.json()["detail"]
    done = client.post(f"{case}/decision", json=dismissal, headers=headers)
    assert done.status_code == 200, done.text
    assert (done.json()["review"], done.json()["reason"]) == ("dismissed", "false_positive")
    again = client.post(f"{case}/decision", json={"review": "confirmed"}, headers=headers)
    assert again.status_code == 409
    assert client.post(f"{case}/reopen", headers=headers).status_code == 403

    headers = _login(client, "boss")
    reopened = client.post(f"{case}/reopen", headers=headers)
    assert reopened.status_code == 200 and reopened.json()["review"] == "unreviewed"
    kinds = [e["kind"] for e in client.get(case).json()["history"]]
    assert kinds == ["decision", "reopen"]
    trail = client.get("/api/audit").json()
    actions = [(e["actor"], e["action"]) for e in reversed(trail["items"])]
    assert actions == [("op1", "login"), ("op1", "decision"), ("boss", "login"), ("boss", "reopen")]

    headers = _login(client, "viewer1")
    assert client.get(case).status_code == 200
    viewer = client.post(f"{case}/decision", json=dismissal, headers=headers)
    assert viewer.status_code == 403
    assert client.get("/api/audit").status_code == 403


def test_an_agency_scoped_operator_sees_and_decides_only_cases_citing_its_records(desk) -> None:
    client, ids = desk
    headers = _login(client, "police_op")
    seen = client.get("/api/cases").json()
    assert [c["id"] for c in seen["items"]] == [ids["exp002"]]
    assert client.get(f"/api/cases/{ids['lic001']}").status_code == 404
    other = client.post(
        f"/api/cases/{ids['tax001']}/decision", json={"review": "confirmed"}, headers=headers
    )
    assert other.status_code == 404
    mine = client.post(
        f"/api/cases/{ids['exp002']}/decision",
        json={"review": "confirmed", "note": f"请核对 {DECL}"},
        headers=headers,
    )
    # Any 18 id-shaped characters are masked in what is shown (ICD §5), a declaration
    # number too.
    assert mine.status_code == 200 and mine.json()["note"] == f"请核对 {DECL[:6]}{'*' * 12}"


def test_repeated_failed_logins_lock_the_user_out(desk) -> None:
    client, _ = desk
    for _ in range(4):
        assert client.post("/login", data={"username": "op1", "password": "x"}).status_code == 401
    locked = client.post("/login", data={"username": "op1", "password": "x"})
    assert "locked out" in locked.json()["detail"]
    still = client.post("/login", data={"username": "op1", "password": PASSWORD})
    assert still.status_code == 401 and "locked out" in still.json()["detail"]
    assert client.post("/login", data={"username": "boss", "password": PASSWORD}).status_code == 200


def test_the_openapi_document_describes_the_api(desk) -> None:
    client, _ = desk
    paths = client.get("/api/openapi.json").json()["paths"]
    assert {
        "/login", "/api/cases", "/api/cases/{case_id}", "/api/cases/{case_id}/decision",
        "/api/cases/{case_id}/reopen", "/api/audit",
    } <= set(paths)  # fmt: skip
    assert "/cases/{case_id}" not in paths  # pages are not API


def test_pages_show_forms_only_to_those_who_may_use_them(desk, tmp_path: Path) -> None:
    client, ids = desk
    _login(client, "viewer1")
    page = client.get(f"/cases/{ids['exp002']}")
    assert page.status_code == 200 and 'id="decision"' not in page.text
    assert "version 2" in page.text and "person aaaaaaaaaaaa" in page.text
    assert 'name="ids"' not in client.get("/").text
    _login(client, "op1")
    page = client.get(f"/cases/{ids['exp002']}")
    assert 'id="decision"' in page.text
    token = client.cookies["csrftoken"]
    without = client.post(f"/cases/{ids['exp002']}/decision", data={"review": "confirmed"})
    assert without.status_code == 403
    decided = client.post(
        f"/cases/{ids['exp002']}/decision",
        data={"review": "confirmed", "note": "请更正", "csrf_token": token},
    )
    assert decided.status_code == 200 and 'id="review" class="review-confirmed"' in decided.text
    export = client.get("/export/cases.csv", params={"review": "confirmed"})
    assert export.text.splitlines()[0].startswith("id,rule_id,severity,vin")
    assert len(export.text.splitlines()) == 2
    xlsx = client.get("/export/cases.xlsx")
    (tmp_path / "cases.xlsx").write_bytes(xlsx.content)
    import openpyxl

    sheet = openpyxl.load_workbook(tmp_path / "cases.xlsx").active
    assert sheet is not None and sheet.max_row == 4


def test_vehicle_exporter_and_programme_pages(desk, tmp_path: Path) -> None:
    client, ids = desk
    _login(client, "viewer1")
    vehicle = client.get("/vehicles/LSVAM4187C2184847")
    assert vehicle.status_code == 200
    assert "deregistration (export)" in vehicle.text and "clearance" in vehicle.text
    assert f'/cases/{ids["exp002"]}"' in vehicle.text
    exporter = client.get("/exporters/91120000MA05XXXXXX")
    assert exporter.status_code == 200 and "Open cases by rule" in exporter.text
    assert ">EXP-002</a></td><td>1<" in exporter.text
    programme = client.get("/programme", params={"from": "2025-11-01", "to": "2025-11-09"})
    assert programme.status_code == 200 and "2025-W45" in programme.text
    assert (
        client.get("/programme", params={"from": "2025-11-09", "to": "2025-11-01"}).status_code
        == 422
    )
    weekly = client.get("/programme/weekly.xlsx", params={"from": "2025-11-01", "to": "2025-11-09"})
    (tmp_path / "weekly.xlsx").write_bytes(weekly.content)
    import openpyxl

    book = openpyxl.load_workbook(tmp_path / "weekly.xlsx")
    assert book.sheetnames == ["weekly", "daily", "provinces", "prefectures"]
    assert book["weekly"]["A2"].value == "2025-W44"


def test_a_decision_while_the_nightly_run_writes_is_refused_with_a_message(
    desk, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, ids = desk
    case = f"/api/cases/{ids['exp002']}"
    headers = _login(client, "op1")
    token = client.cookies["csrftoken"]
    monkeypatch.setattr(desk_module, "WRITE_WAIT_S", 0.2)
    run = sqlite3.connect(make_url(settings.database_url).database)
    run.execute("BEGIN IMMEDIATE")  # the nightly run recording its findings

    api = client.post(f"{case}/decision", json={"review": "confirmed"}, headers=headers)
    assert api.status_code == 503 and api.json() == {"detail": RUN_WRITING}
    page = client.post(
        f"/cases/{ids['exp002']}/decision",
        data={"review": "confirmed", "note": "请更正", "csrf_token": token},
    )
    assert page.status_code == 503 and "try again in a minute" in page.text
    assert 'value="请更正"' in page.text  # the decision asked for, shown again to resend
    started = time.monotonic()
    bulk = client.post(
        "/queue/bulk",
        data={
            "action": "dismiss",
            "ids": [ids["exp002"], ids["lic001"]],
            "reason": "false_positive",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    refused = parse_qs(urlsplit(bulk.headers["location"]).query)["refused"][0]
    assert refused == f"case {ids['exp002']}: {RUN_WRITING} | case {ids['lic001']}: not done"
    assert time.monotonic() - started < 5  # waited for once, not once per case
    run.rollback()
    assert client.get(case).json()["review"] == "unreviewed"  # nothing half-recorded

    again = client.post(f"{case}/decision", json={"review": "confirmed"}, headers=headers)
    assert again.status_code == 200 and again.json()["review"] == "confirmed"
    run.close()
