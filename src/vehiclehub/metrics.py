"""The hub's metrics, sent by the stage functions themselves so that ``vhub run`` and
the nightly DAG report the same numbers: StatsD over UDP, nothing when no
``[metrics] statsd_host`` is configured. A metric that cannot be sent is lost, never
an error of the run.

Names, below the configured prefix (``vehiclehub``):

- ``intake.<agency>.<feed>.rows`` (counter): data rows in the files taken, as their
  manifests count them; ``.loaded``, ``.ignored`` (older or identical versions) and
  ``.rejected``: rows by outcome.
- ``intake.<agency>.files.<status>`` (counter): files taken, by outcome: ``loaded``,
  ``rejected`` (whole), ``duplicate``.
- ``intake.<agency>.not_received`` (counter): 1 when the agency's exchange could not be
  reached.
- ``findings.<rule_id>`` and ``findings.total`` (gauges): findings that hold after the
  run.
- ``delivery.<agency>.failed`` (counter): 1 per publish that left drops to the agency
  pending.
- ``stage.intake.<agency>``, ``stage.reconcile``, ``stage.publish`` (timers, ms): wall
  time of each stage; under Airflow, ``stage.intake.<agency>.<feed>`` for each feed's
  intake instead of the agency's.

A file whose feed could not be told (a name outside the ICD's pattern) counts under the
feed ``unknown``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from typing import Protocol

from vehiclehub.config import MetricsSettings, Settings
from vehiclehub.intake.take import FileOutcome

log = logging.getLogger(__name__)


class _Client(Protocol):
    def incr(self, stat: str, count: int = 1, rate: float = 1) -> None: ...
    def gauge(self, stat: str, value: float, rate: float = 1, delta: bool = False) -> None: ...
    def timing(self, stat: str, delta: float, rate: float = 1) -> None: ...


class _Silent:
    """Where metrics go when none are configured."""

    def incr(self, stat: str, count: int = 1, rate: float = 1) -> None:
        return None

    def gauge(self, stat: str, value: float, rate: float = 1, delta: bool = False) -> None:
        return None

    def timing(self, stat: str, delta: float, rate: float = 1) -> None:
        return None


@cache
def _client(config: MetricsSettings) -> _Client:
    if not config.statsd_host:
        return _Silent()
    from statsd import StatsClient

    try:
        client: _Client = StatsClient(
            config.statsd_host, config.statsd_port, prefix=config.statsd_prefix
        )
        return client
    except OSError as exc:  # the host name does not resolve: run on, without metrics
        log.warning("metrics not sent: statsd host %s: %s", config.statsd_host, exc)
        return _Silent()


def record_intake(settings: Settings, agency: str, files: Iterable[FileOutcome]) -> None:
    """Rows in, loaded, ignored and rejected per feed, and files per outcome."""
    client = _client(settings.metrics)
    for taken in files:
        feed = taken.feed or "unknown"
        for measure, count in (
            ("rows", taken.rows),
            ("loaded", taken.loaded),
            ("ignored", taken.ignored),
            ("rejected", taken.rejected),
        ):
            if count:
                client.incr(f"intake.{agency}.{feed}.{measure}", count)
        client.incr(f"intake.{agency}.files.{taken.status}")


def record_not_received(settings: Settings, agency: str) -> None:
    """The agency's exchange could not be reached by the intake."""
    _client(settings.metrics).incr(f"intake.{agency}.not_received")


def record_findings(settings: Settings, per_rule: Mapping[str, int]) -> None:
    """How many findings of each rule hold after the run, and in all."""
    client = _client(settings.metrics)
    for rule_id, count in per_rule.items():
        client.gauge(f"findings.{rule_id}", count)
    client.gauge("findings.total", sum(per_rule.values()))


def record_delivery_failure(settings: Settings, agency: str) -> None:
    """Drops to the agency were left pending by a publish."""
    _client(settings.metrics).incr(f"delivery.{agency}.failed")


@contextmanager
def timed_stage(settings: Settings, stage: str) -> Iterator[None]:
    """Send the wall time of a stage (``intake.<agency>``, ``reconcile``, ``publish``)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        elapsed_ms = (time.perf_counter() - started) * 1000
        _client(settings.metrics).timing(f"stage.{stage}", elapsed_ms)
