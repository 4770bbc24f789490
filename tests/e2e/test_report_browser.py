"""The run report in headless Chromium: renders without console errors, main sections there.

Chromium (Debian's ``chromium``, see scripts/system-deps.sh) runs headless with a fresh
profile; the test drives it over the DevTools protocol (a websocket) to collect console
messages, exceptions and failed loads, query the page, and take a full-page screenshot
(left in the test's tmp directory, and copied to ``$VHUB_SCREENSHOTS`` when set).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.factories import Vehicle, send

from vehiclehub.config import Settings
from vehiclehub.pipeline import run_cycle

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
D1 = date(2025, 11, 3)
SECTIONS = ["summary", "completeness", "intake", "feeds", "findings", "verdicts", "downloads"]


class DevTools:
    """One headless Chromium and a DevTools session on its first page."""

    def __init__(self, profile: Path) -> None:
        from websockets.sync.client import connect

        self.process = subprocess.Popen(
            [
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-dev-shm-usage",
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                "--window-size=1280,1000",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.is_file() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.process.kill()
                raise RuntimeError("Chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            page = next(t for t in json.load(answer) if t["type"] == "page")
        self.socket = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
        self.events: list[dict[str, Any]] = []
        self._next = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next += 1
        ident = self._next
        self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            self.events.append(message)

    def wait_for(self, event: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == event for e in self.events):
            self.events.append(json.loads(self.socket.recv(timeout=deadline - time.monotonic())))

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def open(self, url: str) -> None:
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")
        self.evaluate("new Promise(r => requestAnimationFrame(() => r(1)))")

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions and failed loads since the last ``open``."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(json.dumps(params["exceptionDetails"])[:500])
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                found.append(json.dumps(params["args"])[:500])
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(f"{params['entry']['text']} {params['entry'].get('url', '')}")
        return found

    def screenshot(self, target: Path) -> Path:
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        shot = self.call(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": 1280, "height": min(size["height"], 12000), "scale": 1},
        )
        target.write_bytes(base64.b64decode(shot["data"]))
        return target

    def close(self) -> None:
        try:
            self.socket.close()
        finally:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[DevTools]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (scripts/system-deps.sh installs it)")
    pytest.importorskip("websockets.sync.client")
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    session = DevTools(profile)
    session.call("Runtime.enable")
    session.call("Log.enable")
    session.call("Page.enable")
    try:
        yield session
    finally:
        session.close()


def _history(settings: Settings) -> date:
    """Four runs: findings open and resolve, volumes move, a file is rejected whole,
    a number is skipped and tax never sends. Returns the last run's date."""
    root = settings.work_dir.parent
    vehicles = [Vehicle() for _ in range(6)]
    day = D1
    for n in range(3):
        items = [v.item(decl_no=f"530420250{n:03d}{i:06d}") for i, v in enumerate(vehicles)]
        send(root, "customs", "declarations", items[: 3 + n], day=day)
        send(root, "commerce", "licences", [v.licence() for v in vehicles[: 2 + n]], day=day)
        send(
            root,
            "police",
            "events",
            [v.export_deregistration(f"E{n}{i}") for i, v in enumerate(vehicles[:4])],
            day=day,
        )
        run_cycle(settings, day)
        day += timedelta(days=1)
    send(root, "customs", "declarations", [vehicles[0].item(status="released")], day=day)
    send(root, "customs", "declarations", [Vehicle().item()], day=day, seq=3)
    send(
        root,
        "commerce",
        "licences",
        [v.licence() for v in vehicles],
        day=day,
        manifest={"rows": 99},
    )
    send(root, "commerce", "licences", [v.licence() for v in vehicles], day=day, seq=2)
    run_cycle(settings, day)
    return day


def test_the_report_renders_without_console_errors(
    settings: Settings, browser: DevTools, tmp_path: Path
) -> None:
    day = _history(settings)
    folder = settings.reports_dir / day.isoformat()
    browser.open((folder / "index.html").as_uri())
    shot = browser.screenshot(tmp_path / f"report-{day}.png")
    if os.environ.get("VHUB_SCREENSHOTS"):
        shutil.copy(shot, Path(os.environ["VHUB_SCREENSHOTS"]) / shot.name)
    assert browser.problems() == []
    assert shot.stat().st_size > 20_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    present = browser.evaluate(
        "JSON.stringify(Object.fromEntries(" + json.dumps(SECTIONS) + ".map(id => {"
        " const s = document.getElementById(id);"
        " return [id, s ? {h2: s.querySelector('h2') && s.querySelector('h2').textContent,"
        " height: s.getBoundingClientRect().height} : null]; })))"
    )
    sections = json.loads(present)
    for section in SECTIONS:
        assert sections[section] is not None, section
        assert sections[section]["h2"] and sections[section]["height"] > 30, section
    charts = browser.evaluate(
        "[...document.querySelectorAll('#findings-chart svg rect, #rows-chart svg rect')].length"
    )
    assert charts >= 8  # bars of the findings chart and of the rows chart
    sparks = browser.evaluate("document.querySelectorAll('svg.spark').length")
    assert sparks >= 10
    states = browser.evaluate(
        "[...document.querySelectorAll('#completeness .state')].map(e => e.textContent)"
    )
    assert "not received" in states and "received" in states
    gap = browser.evaluate("document.getElementById('gaps').nextElementSibling.textContent")
    assert f"customs_declarations_{day:%Y%m%d}_002.csv" in gap
    links = browser.evaluate(
        "[...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'))"
    )
    assert "datadocs/index.html" in links and f"vehiclehub_{day:%Y%m%d}.xlsx" in links
    for link in links:
        if not link.startswith("#"):
            assert (folder / link).resolve().is_file(), link  # every local link resolves
    assert not any(link.startswith(("http:", "https:")) for link in links)

    # The Data Docs the report links to open offline and without errors too.
    browser.open((folder / "datadocs" / "index.html").as_uri())
    assert browser.problems() == []
    first_page = browser.evaluate(
        "document.querySelector('table a') && document.querySelector('table a').href"
    )
    assert first_page
    browser.open(first_page)
    assert browser.problems() == []
    assert "Expectation Validation Result" in browser.evaluate("document.body.innerText")
    _renders_styled_offline(browser, tmp_path / f"datadocs-{day}.png")


def _settle(browser: DevTools, promise: str) -> None:
    """Wait until the page's promise resolves."""
    browser.call("Runtime.evaluate", expression=promise, awaitPromise=True)


def _passed_shown(browser: DevTools) -> int:
    """Passed expectations on show: GX marks a cell of each, and hides its row."""
    return int(
        browser.evaluate(
            "[...document.querySelectorAll('.hide-succeeded-validation-target-child')]"
            ".filter(e => getComputedStyle(e.parentElement).display !== 'none').length"
        )
    )


def _renders_styled_offline(browser: DevTools, shot: Path) -> None:
    """A Data Docs validation page: its vendored stylesheets and scripts load from the
    site itself, the status column shows its icons, the "Failed Only" switch hides the
    passed expectations, and nothing points outside."""
    sheets = browser.evaluate("[...document.styleSheets].map(s => s.href || '')")
    assert any(s.startswith("file:") and s.endswith("/bootstrap.min.css") for s in sheets)
    assert not any(s.startswith(("http:", "https:")) for s in sheets)
    # Bootstrap's rules apply (its sticky navbar), and Font Awesome's icon font is in use.
    assert browser.evaluate("getComputedStyle(document.querySelector('.navbar')).position") == (
        "sticky"
    )
    _settle(browser, "document.fonts.ready.then(() => 1)")
    icons = browser.evaluate(
        "[...document.querySelectorAll('table td i.fas, table td i.fa')].map(i => "
        "[getComputedStyle(i, '::before').content, getComputedStyle(i).fontFamily])"
    )
    assert icons and all(content not in ("none", "") for content, _ in icons)
    assert all("Font Awesome" in family for _, family in icons)
    assert browser.evaluate("document.fonts.check('900 16px \"Font Awesome 6 Free\"')")
    assert browser.evaluate("typeof jQuery") == "function"
    assert _passed_shown(browser) > 0
    browser.evaluate(
        "[...document.querySelectorAll('button, label, a')]"
        ".find(e => e.textContent.trim() === 'Failed Only').click()"
    )
    _settle(browser, "new Promise(r => setTimeout(() => r(1), 1200))")  # jQuery's fade
    assert _passed_shown(browser) == 0
    links = browser.evaluate(
        "[...document.querySelectorAll('a[href], img[src], script[src]')]"
        ".map(e => e.getAttribute('href') || e.getAttribute('src'))"
    )
    assert not any(link.startswith(("http:", "https:", "//")) for link in links)
    assert "newsletter" not in browser.evaluate("document.body.innerText").lower()
    assert browser.problems() == []
    browser.screenshot(shot)
