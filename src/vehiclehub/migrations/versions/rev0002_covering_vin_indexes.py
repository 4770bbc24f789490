"""Covering VIN indexes in the stores of releases before the baseline.

Releases before the baseline indexed the VIN alone (``ix_<table>_vin``); the baseline's
index also holds what the rules read of a record found by VIN. A store stamped at the
baseline may still hold the old index: it goes, and the covering one is made where it
is missing. A no-op on any other store.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: Each table's covering VIN index, as the baseline made it.
COVERING = {
    "police_events": ["vin", "event_type", "record_status", "dereg_reason", "event_date",
                      "event_id"],
    "customs_declarations": ["vin", "record_status", "status", "exported_at", "decl_no", "item_no"],
    "commerce_licences": ["vin", "record_status", "uscc"],
}  # fmt: skip


def upgrade() -> None:
    for table, columns in COVERING.items():
        op.drop_index(f"ix_{table}_vin", table_name=table, if_exists=True)
        op.create_index(f"ix_{table}_vin_lookup", table, columns, if_not_exists=True)
