"""The review desk in headless Chromium, served by ``vhub serve`` (a real process).

Playwright for Python drives Debian's ``chromium`` (``executable_path``; Playwright's own
browsers are never downloaded) at 1366x768. The desk shares the store with the nightly
cycles the test runs, so what is decided on the pages shows in the next drops.
Screenshots are left in the test's tmp directory (and copied to ``$VHUB_SCREENSHOTS``
when set).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from tests.factories import Vehicle, read_drop, send

from vehiclehub.config import Settings
from vehiclehub.pipeline import run_cycle
from vehiclehub.review.auth import add_user
from vehiclehub.store import connect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
VHUB = Path(sys.executable).with_name("vhub")
D1, D2, D3 = date(2025, 11, 3), date(2025, 11, 4), date(2025, 11, 5)
PASSWORD = "correct horse battery"
#: name -> (role, agencies)
USERS = {
    "op1": ("operator", []),
    "boss": ("supervisor", []),
    "viewer1": ("viewer", []),
    "taxop": ("operator", ["tax"]),
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def desk_url(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """``vhub serve`` on the test's hub and its users (``vhub users add`` has its own test)."""
    assert settings.source is not None
    config = str(settings.source)
    engine = connect(settings.database_url)
    with engine.begin() as conn:
        for name, (role, agencies) in USERS.items():
            add_user(conn, name, role, agencies, PASSWORD)
    engine.dispose()
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [str(VHUB), "serve", "--config", config, "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/login", timeout=5).close()
            break
        except OSError:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "vhub serve did not answer in 60 s"
            time.sleep(0.3)
    try:
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture
def browser() -> Iterator[object]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (scripts/system-deps.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _shot(page, tmp_path: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / f"desk-{name}.png"
    page.screenshot(path=str(target), full_page=True)
    if os.environ.get("VHUB_SCREENSHOTS"):
        shutil.copy(target, Path(os.environ["VHUB_SCREENSHOTS"]) / target.name)


def _login(browser, url: str, name: str):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.goto(f"{url}/")
    assert "/login" in page.url  # an anonymous visitor is sent to the login page
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")  # the form works from the keyboard
    page.wait_for_url(f"{url}/")
    return page


def _case_id(url: str) -> str:
    return url.split("/cases/", 1)[1].split("?", 1)[0]


def _drop_row(root: Path, agency: str, day: date, rule: str, key: str) -> list[dict]:
    drop = read_drop(root, agency, "findings", day)
    return drop[(drop["rule_id"] == rule) & (drop["record_key"] == key)].to_dict("records")


def test_the_desk_in_a_browser(settings: Settings, desk_url: str, browser, tmp_path: Path) -> None:
    root = settings.work_dir.parent
    gone, refunded = Vehicle(), Vehicle()
    send(root, "police", "events", [gone.export_deregistration("E2")])
    send(root, "tax", "refunds", [refunded.refund("R2")])
    run_cycle(settings, D1)
    refund_key = f"R2/{refunded.decl_ref}"

    page = _login(browser, desk_url, "op1")
    page.get_by_label("Rule").select_option("EXP-001")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("#queue tbody tr")
    assert rows.count() == 1 and "E2" in rows.first.inner_text()
    _shot(page, tmp_path, "queue")
    rows.first.get_by_role("link").first.click()
    page.get_by_label("Decision").select_option("dismissed")
    page.get_by_label("Reason (a dismissal)").select_option("known_exception")
    page.get_by_role("button", name="Decide").click()
    assert page.locator("#review").inner_text() == "dismissed"
    _shot(page, tmp_path, "case-dismissed")

    page.goto(f"{desk_url}/?rule_id=TAX-001")
    page.locator("#queue tbody tr").first.get_by_role("link").first.click()
    page.get_by_label("Decision").select_option("confirmed")
    page.get_by_label("Note (to the agencies", exact=False).fill("请核对报关单")
    page.get_by_role("button", name="Decide").click()
    assert page.locator("#review").inner_text() == "confirmed"

    # CSRF: a state-changing request without the token is refused.
    case_id = _case_id(page.url)
    refused = page.request.post(f"{desk_url}/api/cases/{case_id}/assign", data={"assignee": "op1"})
    assert refused.status == 403

    run_cycle(settings, D2)
    assert _drop_row(root, "police", D2, "EXP-001", "E2") == []
    (confirmed,) = _drop_row(root, "tax", D2, "TAX-001", refund_key)
    assert (confirmed["review"], confirmed["note"]) == ("confirmed", "请核对报关单")

    # A new version of the cited event: the dismissal lapses and the finding comes back.
    send(
        root,
        "police",
        "events",
        [gone.export_deregistration("E2", "2025-10-21", record_version="2")],
        day=D3,
    )
    run_cycle(settings, D3)
    (back,) = _drop_row(root, "police", D3, "EXP-001", "E2")
    assert (back["status"], back["review"]) == ("open", "")
    page.goto(f"{desk_url}/?rule_id=EXP-001")
    assert page.locator("#queue tbody tr").first.locator("td.review-unreviewed").count() == 1

    boss = _login(browser, desk_url, "boss")
    boss.get_by_role("link", name="Audit trail").click()
    trail = boss.locator("#audit").inner_text()
    assert "op1\tdecision" in trail and "dismissed (known_exception)" in trail
    assert "boss\tlogin" in trail
    _shot(boss, tmp_path, "audit")

    # A viewer reads but cannot decide: no form on the page, 403 from the API.
    viewer = _login(browser, desk_url, "viewer1")
    viewer.locator("#queue tbody tr").first.get_by_role("link").first.click()
    assert viewer.locator("form#decision").count() == 0
    case_id = _case_id(viewer.url)
    token = next(c["value"] for c in viewer.context.cookies() if c["name"] == "csrftoken")
    answer = viewer.request.post(
        f"{desk_url}/api/cases/{case_id}/decision",
        data={"review": "confirmed"},
        headers={"X-CSRF-Token": token},
    )
    assert answer.status == 403
    _shot(viewer, tmp_path, "viewer-case")

    # An operator scoped to tax never sees a case that cites no tax record.
    taxop = _login(browser, desk_url, "taxop")
    agencies = taxop.locator("#queue tbody tr td:nth-child(6)").all_inner_texts()
    related = taxop.locator("#queue tbody tr td:nth-child(8)").all_inner_texts()
    assert agencies and all(
        a == "tax" or "tax:" in r for a, r in zip(agencies, related, strict=True)
    )
    police_cases = viewer.request.get(f"{desk_url}/api/cases", params={"agency": "police"})
    police_id = police_cases.json()["items"][0]["id"]
    assert taxop.goto(f"{desk_url}/cases/{police_id}").status == 404
    _shot(taxop, tmp_path, "scoped-queue")
