"""A small store for the desk's tests: records of two vehicles, findings on them, users."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import Engine, insert

from vehiclehub.review.auth import add_user
from vehiclehub.review.cases import mark_run
from vehiclehub.store import feed_table
from vehiclehub.store.schema import findings

D1, D2 = date(2025, 11, 3), date(2025, 11, 4)
VIN = "LSVAM4187C2184847"
OTHER_VIN = "LSVAM4187C2184848"
DECL = "530420250040970934"
PASSWORD = "correct horse battery"
#: name -> (role, agencies)
USERS = {
    "viewer1": ("viewer", []),
    "op1": ("operator", []),
    "police_op": ("operator", ["police"]),
    "boss": ("supervisor", []),
}


def _vin(vin: str, column: str = "vin") -> dict[str, object]:
    return {
        column: vin,
        f"{column}_raw": vin,
        f"{column}_substituted": False,
        f"{column}_check_ok": True,
    }


def build(engine: Engine) -> dict[str, int]:
    """The store's records, findings (by name) and users; the findings' ids."""
    common = {"record_status": "active", "content_hash": 1, "file_id": 1, "line": 2}
    with engine.begin() as conn:
        conn.execute(
            insert(feed_table("police", "events")).values(
                event_id="E1",
                event_type="deregister",
                dereg_reason="export",
                event_date=D1,
                owner_id="a" * 64,
                record_version=1,
                **_vin(VIN),
                **common,
            )
        )
        conn.execute(
            insert(feed_table("customs", "declarations")).values(
                decl_no=DECL,
                item_no=1,
                uscc="91120000MA05XXXXXX",
                exported_at=D2,
                record_version=2,
                **_vin(VIN),
                **common,
            )
        )
        rows = {
            "exp002": ("EXP-002", "police", "E1", f"customs:{DECL}/1", VIN, D1),
            "lic001": ("LIC-001", "customs", f"{DECL}/1", "", VIN, D2),
            "tax001": ("TAX-001", "tax", f"R1/{DECL}002", "", OTHER_VIN, D2),
        }
        ids = {}
        for name, (rule, agency, key, related, vin, first) in rows.items():
            ids[name] = int(
                conn.execute(
                    insert(findings).values(
                        identity=name.ljust(64, "0"),
                        rule_id=rule,
                        severity="error",
                        vin=vin,
                        agency=agency,
                        record_key=key,
                        related=related,
                        detail=f"{rule} on {key}",
                        first_seen=first,
                        last_seen=D2,
                    )
                ).inserted_primary_key[0]
            )
        for name, (role, agencies) in USERS.items():
            add_user(conn, name, role, agencies, PASSWORD)
        mark_run(conn, D2, datetime(2025, 11, 4, 18, tzinfo=UTC))
    return ids
