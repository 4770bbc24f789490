"""A small world of agency records for the rule tests, loaded through the real intake.

A test adds records (``tests.factories`` rows: valid by default, any field
overridable) and :meth:`World.load` writes them as agency files with
``samples.files.write_feed`` and runs ``pipeline.intake_agency`` — so VIN
normalisation, pseudonyms and record versions are the hub's own, not a test's
imitation. :meth:`World.vehicle` lays down one complete, clean export chain that
fires no rule; a test then changes the one thing its rule is about.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pandas as pd
from tests.factories import RNG, Vehicle, columns

from vehiclehub import pipeline
from vehiclehub.config import RuleParameters, Settings
from vehiclehub.rules.runner import Evaluation, evaluate
from vehiclehub.store import connect
from vehiclehub_samples import write_feed
from vehiclehub_samples.identifiers import make_resident_id

D = date(2025, 11, 3)  # the business date of the tests' runs, a Monday

FEEDS = {
    "filing": ("commerce", "enterprises"),
    "licence": ("commerce", "licences"),
    "claim": ("commerce", "tradein_claims"),
    "event": ("police", "events"),
    "item": ("customs", "declarations"),
    "refund": ("tax", "refunds"),
}


class World:
    """Agency records waiting to be loaded into a hub, grouped by feed."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._serial = 0
        self._seq: dict[tuple[str, date], int] = defaultdict(int)
        self._filed: set[str] = set()

    def serial(self, prefix: str) -> str:
        """A fresh identifier (event_id, claim_no, refund_no) for this world."""
        self._serial += 1
        return f"{prefix}{self._serial:05d}"

    def add(self, kind: str, *rows: dict[str, Any]) -> dict[str, Any]:
        """Add rows of one feed (``licence``, ``event``, ...); return the last."""
        self.rows[kind].extend(rows)
        return rows[-1]

    def event(self, v: Vehicle, event_type: str, event_date: str, **kw: Any) -> dict[str, Any]:
        return self.add("event", v.event(self.serial("E"), event_type, event_date, **kw))

    def claim(self, old_vin: str, new_vin: str, **kw: Any) -> dict[str, Any]:
        """A trade-in claim, by default a ``replace`` claim of a fresh applicant."""
        row = {
            "claim_no": self.serial("C"),
            "claim_type": "replace",
            "applicant_id": make_resident_id(RNG),
            "old_vin": old_vin,
            "new_vin": new_vin,
            "amount_cny": "15000",
            "applied_at": "2025-06-10",
            **kw,
        }
        return self.add("claim", row)

    def vehicle(self, v: Vehicle | None = None, **changes: dict[str, Any]) -> dict[str, Any]:
        """A clean export chain of one vehicle, its records by name: ``filing``, ``licence``,
        ``register`` and ``pending`` (events), ``item``, ``dereg`` (the export
        deregistration) and ``refund``. ``changes`` override fields of those records, e.g.
        ``item={"vin": typo}``; the events follow the licence's brand, model and dates."""
        v = v or Vehicle()
        lic = v.licence(**changes.get("licence", {}))
        same = {k: lic[k] for k in ("brand", "model", "registration_date")}

        def event(name: str, event_type: str, day: str, **kw: Any) -> dict[str, Any]:
            row = v.event(self.serial("E"), event_type, day, **same, **kw)
            return {**row, **changes.get(name, {})}

        records = {
            "vehicle": v,
            "licence": lic,
            "register": event("register", "register", lic["registration_date"]),
            "pending": event("pending", "transfer_pending_export", lic["pending_export_date"]),
            "item": v.item(**changes.get("item", {})),
            "dereg": event(
                "dereg", "deregister", "2025-10-20", dereg_reason="export", decl_no=v.decl_no
            ),
            "refund": v.refund(self.serial("R"), **changes.get("refund", {})),
        }
        if v.uscc not in self._filed:
            self._filed.add(v.uscc)
            self.add("filing", v.filing())
        for name, record in records.items():
            if name != "vehicle":
                self.add("event" if name in ("register", "pending", "dereg") else name, record)
        return records

    def load(self, settings: Settings, day: date = D) -> None:
        """Write each feed's rows as one agency file and take them through intake."""
        for kind, rows in self.rows.items():
            agency, feed_name = FEEDS[kind]
            root = Path(urlparse(settings.agencies[agency].url).path)  # type: ignore[index]
            self._seq[kind, day] += 1
            write_feed(
                root,
                agency,
                feed_name,
                day,
                self._seq[kind, day],
                columns(agency, feed_name),
                rows,
            )
        for agency in sorted({FEEDS[kind][0] for kind in self.rows}):
            outcome = pipeline.intake_agency(settings, agency, day).to_dict()
            problems = [f for f in outcome["files"] if f["status"] == "rejected" or f["rejected"]]
            assert not problems, f"the world's files did not load cleanly: {problems}"
        self.rows.clear()


def evaluation(
    settings: Settings, day: date = D, only: list[str] | None = None, **params: Any
) -> Evaluation:
    """Run the rules (all, or those named) over the hub's store."""
    engine = connect(settings.database_url)
    try:
        with engine.connect() as conn:
            return evaluate(conn, day, RuleParameters(**params), only)
    finally:
        engine.dispose()


def findings(settings: Settings, rule_id: str, day: date = D, **params: Any) -> pd.DataFrame:
    """The findings of one rule, one row per finding, sorted by record."""
    found = evaluation(settings, day, [rule_id], **params).findings
    return found.sort_values(["record_key", "vin"], ignore_index=True)
