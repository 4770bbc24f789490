"""Rows for hand-written test cases: valid by default, any field overridable.

A ``Vehicle`` carries a consistent story (filing, licence, customs item, police
events, refund) so a test changes only what its case is about.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from vehiclehub.contract import feed
from vehiclehub.intake.read import read_chunks, scan
from vehiclehub_samples import write_feed
from vehiclehub_samples.identifiers import make_decl_no, make_resident_id, make_uscc, make_vin

RNG = random.Random(20251103)


def columns(agency: str, feed_name: str) -> list[str]:
    return [c.name for c in feed(agency, feed_name).columns]


def send(
    root: Path,
    agency: str,
    feed_name: str,
    rows: list[dict[str, Any]],
    *,
    day: date = date(2025, 11, 3),
    seq: int = 1,
    **kwargs: Any,
) -> Path:
    """Put a file with its manifest into an agency's outbox under ``root/exchange``."""
    return write_feed(
        root / "exchange" / agency,
        agency,
        feed_name,
        day,
        seq,
        kwargs.pop("header", None) or columns(agency, feed_name),
        rows,
        **kwargs,
    )


@dataclass
class Vehicle:
    """One exported vehicle's consistent records."""

    vin: str = field(default_factory=lambda: make_vin(RNG))
    uscc: str = field(default_factory=lambda: make_uscc(RNG))
    decl_no: str = field(default_factory=lambda: make_decl_no(RNG, "5304", 2025))
    licence_no: str = field(default_factory=lambda: f"L2025{RNG.randrange(10**6):06d}")
    person: str = field(default_factory=lambda: make_resident_id(RNG))
    brand: str = "比亚迪"
    model: str = "秦PLUS"

    def filing(self, **kw: Any) -> dict[str, Any]:
        return {
            "uscc": self.uscc,
            "name": "天津某某汽车贸易有限公司",
            "filing_no": f"F-{self.uscc[-6:]}",
            "region_code": "120000",
            "valid_from": "2025-01-01",
            "valid_to": "2025-12-31",
            "status": "active",
            **kw,
        }

    def licence(self, **kw: Any) -> dict[str, Any]:
        return {
            "licence_no": self.licence_no,
            "uscc": self.uscc,
            "vin": self.vin,
            "brand": self.brand,
            "model": self.model,
            "hs_code": "87032342",
            "destination_country": "RUS",
            "port_code": "0201",
            "registration_date": "2023-03-01",
            "pending_export_date": "2025-09-26",
            "applied_at": "2025-09-26",
            "issued_at": "2025-09-29",
            "valid_to": "2025-12-29",
            **kw,
        }

    def item(self, **kw: Any) -> dict[str, Any]:
        return {
            "decl_no": self.decl_no,
            "item_no": "1",
            "vin": self.vin,
            "uscc": self.uscc,
            "licence_no": self.licence_no,
            "hs_code": "87032342",
            "goods_name": "旧比亚迪1.5L轿车",
            "declared_at": "2025-10-09",
            "exported_at": "2025-10-12",
            "status": "cleared",
            "port_code": "0201",
            "destination_country": "RUS",
            "fob_usd": "12500.00",
            **kw,
        }

    @property
    def item_key(self) -> str:
        return f"{self.decl_no}/1"

    @property
    def decl_ref(self) -> str:
        return f"{self.decl_no}001"

    def event(self, event_id: str, event_type: str, event_date: str, **kw: Any) -> dict[str, Any]:
        return {
            "event_id": event_id,
            "vin": self.vin,
            "plate_no": "津A12345",
            "event_type": event_type,
            "event_date": event_date,
            "owner_id": self.uscc if event_type != "register" else self.person,
            "dereg_reason": None,
            "decl_no": None,
            "registration_date": "2023-03-01",
            "brand": self.brand,
            "model": self.model,
            **kw,
        }

    def export_deregistration(
        self, event_id: str, event_date: str = "2025-10-20", **kw: Any
    ) -> dict[str, Any]:
        return self.event(
            event_id,
            "deregister",
            event_date,
            **{"dereg_reason": "export", "decl_no": self.decl_no, **kw},
        )

    def refund(self, refund_no: str = "R20251103001", **kw: Any) -> dict[str, Any]:
        return {
            "refund_no": refund_no,
            "uscc": self.uscc,
            "enterprise_class": "1",
            "decl_ref": self.decl_ref,
            "amount_cny": "13000.00",
            "applied_at": "2025-10-21",
            "approved_at": "2025-10-23",
            "status": "approved",
            **kw,
        }


def read_drop(root: Path, agency: str, report: str, day: date = date(2025, 11, 3)) -> Any:
    """A drop from the agency's inbox as text columns (empty string for null)."""
    import pandas as pd

    path = root / "exchange" / agency / "inbox" / f"hub_{agency}_{report}_{day:%Y%m%d}_001.csv"
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def loaded_file(conn: Any, agency: str, feed_name: str, day: date, seq: int = 1) -> int:
    """Book a loaded file of the feed in ``intake_files``, as intake does; its id."""
    from datetime import UTC, datetime

    from sqlalchemy import insert

    from vehiclehub.store.schema import intake_files

    inserted = conn.execute(
        insert(intake_files).values(
            agency=agency,
            feed=feed_name,
            name=f"{agency}_{feed_name}_{day:%Y%m%d}_{seq:03d}.csv",
            run_date=day,
            status="loaded",
            taken_at=datetime.now(UTC),
        )
    ).inserted_primary_key
    return int(inserted[0])


def read_whole(data: bytes, codec: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A sound data file read in one block the way intake reads it: (rows as text,
    malformed lines). Frame index ``i`` is line ``i + 2``; malformed lines are left null."""
    found = scan([data], codec)
    assert not found.problem, found.problem
    chunks = list(read_chunks([data], codec))
    malformed = pd.concat([c.malformed for c in chunks], ignore_index=True)
    frame = pd.concat([c.frame for c in chunks])
    return frame.reindex(pd.RangeIndex(sum(c.rows for c in chunks))), malformed
