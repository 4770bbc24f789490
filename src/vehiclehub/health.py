"""``vhub health``: can this hub run tonight? For container and load-balancer probes.

Three checks, each with a one-line verdict: the store is reachable and at this version's
schema, the work directory is writable, and every agency's exchange answers (its outbox
can be listed). Nothing is changed: the store is not created or upgraded (a
run does that), and the probe file written into the work directory is removed.

Exit codes (``HealthReport.exit_code``, from the table of :mod:`vehiclehub.errors`): 0 all
healthy; 1 the hub itself is not (store or work directory); 3 the hub is healthy but an
agency's exchange cannot be reached (an agency's outage, not a reason to restart the
hub). An unusable configuration exits 2, like every ``vhub`` command.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Literal

from vehiclehub.config import Settings
from vehiclehub.errors import ExitCode
from vehiclehub.exchange import ExchangeUnavailable, open_exchange
from vehiclehub.store import StoreUnavailable, connect
from vehiclehub.store.db import schema_lag

HEALTHY = ExitCode.COMPLETED
HUB_UNHEALTHY = ExitCode.FAILED
AGENCY_UNREACHABLE = ExitCode.AGENCY_UNREACHABLE

Scope = Literal["hub", "agency"]


@dataclass(frozen=True)
class Check:
    """One health check's verdict; ``scope`` says whose problem a failure is."""

    name: str
    scope: Scope
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"


@dataclass(frozen=True)
class HealthReport:
    checks: list[Check]

    @property
    def exit_code(self) -> int:
        failed = {c.scope for c in self.checks if not c.ok}
        if "hub" in failed:
            return HUB_UNHEALTHY
        return AGENCY_UNREACHABLE if failed else HEALTHY


def check_store(settings: Settings) -> Check:
    """The store answers and holds every table, column and index of this version."""
    try:
        engine = connect(settings.database_url, create=False)
    except StoreUnavailable as exc:
        return Check("store", "hub", False, str(exc))
    try:
        with engine.connect() as conn:
            lag = schema_lag(conn)
    finally:
        engine.dispose()
    if lag:
        shown = "; ".join(lag[:5]) + (f"; and {len(lag) - 5} more" if len(lag) > 5 else "")
        return Check(
            "store",
            "hub",
            False,
            f"not at the latest schema ({shown}); `vhub db upgrade` (or a run) upgrades it",
        )
    return Check("store", "hub", True, "reachable, at the latest schema")


def check_work_dir(settings: Settings) -> Check:
    """The work directory exists and takes a file."""
    if not settings.work_dir.is_dir():
        return Check("work_dir", "hub", False, f"{settings.work_dir} is not a directory")
    try:
        with tempfile.NamedTemporaryFile(dir=settings.work_dir, prefix=".health-") as probe:
            probe.write(b"ok")
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        return Check("work_dir", "hub", False, f"{settings.work_dir} not writable: {exc}")
    return Check("work_dir", "hub", True, f"{settings.work_dir} writable")


def check_agency(settings: Settings, agency: str) -> Check:
    """The agency's exchange answers: its outbox is listed, in one attempt."""
    endpoint = settings.agencies[agency].model_copy(update={"retries": 0})  # type: ignore[index]
    try:
        with open_exchange(agency, endpoint) as exchange:
            waiting = len(exchange.list_outbox())
    except (ExchangeUnavailable, OSError) as exc:
        return Check(f"agency {agency}", "agency", False, f"unreachable: {exc}")
    return Check(f"agency {agency}", "agency", True, f"reachable, {waiting} names in the outbox")


def check_health(settings: Settings) -> HealthReport:
    """Every check, hub first."""
    return HealthReport(
        [
            check_store(settings),
            check_work_dir(settings),
            *(check_agency(settings, agency) for agency in settings.agencies),
        ]
    )
