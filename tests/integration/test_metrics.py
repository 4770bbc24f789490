"""The hub's metrics as a StatsD server receives them (a real UDP socket on 127.0.0.1):
the numbers the stages send are the numbers the run reports."""

from __future__ import annotations

import socket
import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest
from tests.conftest import write_config
from tests.factories import Vehicle, send

from vehiclehub.config import MetricsSettings, Settings, load_settings
from vehiclehub.metrics import record_findings
from vehiclehub.pipeline import run_cycle

D1 = date(2025, 11, 3)


@dataclass
class StatsdListener:
    """Collects StatsD datagrams (``name:value|type``) sent to 127.0.0.1:``port``."""

    sock: socket.socket
    lines: list[str] = field(default_factory=list)
    stopped: threading.Event = field(default_factory=threading.Event)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def receive(self) -> None:
        self.sock.settimeout(0.05)
        while not self.stopped.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            self.lines += data.decode().splitlines()

    def values(self, kind: str) -> dict[str, list[float]]:
        """Metric name -> values received, of one type (``c``, ``g``, ``ms``)."""
        seen: dict[str, list[float]] = defaultdict(list)
        for line in self.lines:
            name, _, rest = line.partition(":")
            value, _, sent_kind = rest.partition("|")
            if sent_kind == kind:
                seen[name].append(float(value))
        return seen


@pytest.fixture
def statsd() -> Iterator[StatsdListener]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    listener = StatsdListener(sock)
    thread = threading.Thread(target=listener.receive, daemon=True)
    thread.start()
    yield listener
    listener.stopped.set()
    thread.join(timeout=5)
    sock.close()


def _wait_for(listener: StatsdListener, name: str) -> None:
    for _ in range(200):
        if any(line.startswith(f"{name}:") for line in listener.lines):
            return
        threading.Event().wait(0.01)


def _closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _make_unreachable(config: Path, agency: str, root: Path) -> None:
    """Point ``agency`` at an SFTP server that refuses connections (it passes preflight)."""
    key, known_hosts = root / f"{agency}_key", root / f"{agency}_known_hosts"
    key.write_text("", encoding="utf-8")
    known_hosts.write_text("", encoding="utf-8")
    local = f'url = "file://{root / "exchange" / agency}"'
    remote = (
        f'url = "sftp://vhub@127.0.0.1:{_closed_port()}/exchange"\n'
        f'private_key = "{key}"\nknown_hosts = "{known_hosts}"\nretries = 0'
    )
    text = config.read_text(encoding="utf-8")
    assert local in text
    config.write_text(text.replace(local, remote), encoding="utf-8")


def test_a_run_sends_what_it_reports(tmp_path: Path, statsd: StatsdListener) -> None:
    config = write_config(
        tmp_path,
        f"sqlite:///{tmp_path / 'hub.db'}",
        metrics=f'{{ statsd_host = "127.0.0.1", statsd_port = {statsd.port} }}',
    )
    ok, missing = Vehicle(), Vehicle()
    send(tmp_path, "commerce", "licences", [ok.licence(), missing.licence()])
    send(tmp_path, "police", "events", [ok.export_deregistration("E1")])
    send(tmp_path, "police", "events", [missing.export_deregistration("E2")], seq=2)
    send(tmp_path, "tax", "refunds", [ok.refund("R1"), missing.refund("R2", uscc="12345")])
    _make_unreachable(config, "customs", tmp_path)  # not received, not delivered

    summary = run_cycle(load_settings(config), D1).to_dict()
    _wait_for(statsd, "vehiclehub.stage.publish")

    counters, gauges, timers = statsd.values("c"), statsd.values("g"), statsd.values("ms")
    for intake in summary["intake"]:
        agency = intake["agency"]
        for measure in ("rows", "loaded", "ignored", "rejected"):
            sent = sum(
                sum(v)
                for k, v in counters.items()
                if k.startswith(f"vehiclehub.intake.{agency}.")
                and k.endswith(f".{measure}")
                and ".files." not in k
            )
            assert sent == sum(f[measure] for f in intake["files"]), (agency, measure)
        for status in ("loaded", "rejected", "duplicate"):
            taken = sum(1 for f in intake["files"] if f["status"] == status)
            assert sum(counters.get(f"vehiclehub.intake.{agency}.files.{status}", [])) == taken
    assert sum(counters["vehiclehub.intake.police.events.loaded"]) == 2
    assert sum(counters["vehiclehub.intake.tax.refunds.rejected"]) >= 1
    assert counters["vehiclehub.intake.customs.not_received"] == [1]
    assert counters["vehiclehub.delivery.customs.failed"] == [1]
    assert [k for k in counters if k.startswith("vehiclehub.delivery.")] == [
        "vehiclehub.delivery.customs.failed"
    ]

    per_rule = summary["reconcile"]["per_rule"]
    assert {k: v[-1] for k, v in gauges.items() if k != "vehiclehub.findings.total"} == {
        f"vehiclehub.findings.{rule}": count for rule, count in per_rule.items()
    }
    assert gauges["vehiclehub.findings.total"] == [summary["reconcile"]["findings"]]
    stages = [f"intake.{a}" for a in ("commerce", "police", "customs", "tax")]
    assert sorted(timers) == sorted(
        f"vehiclehub.stage.{s}" for s in [*stages, "reconcile", "publish"]
    )


def test_nothing_is_sent_without_a_statsd_host(settings: Settings, statsd: StatsdListener) -> None:
    without_host = MetricsSettings(statsd_port=statsd.port)
    record_findings(settings.model_copy(update={"metrics": without_host}), {"VIN-001": 1})
    with_host = without_host.model_copy(update={"statsd_host": "127.0.0.1"})
    record_findings(settings.model_copy(update={"metrics": with_host}), {"VIN-001": 2})
    _wait_for(statsd, "vehiclehub.findings.total")
    assert statsd.lines == ["vehiclehub.findings.VIN-001:2|g", "vehiclehub.findings.total:2|g"]
