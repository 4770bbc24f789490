"""PostgreSQL: an index of each VIN column's VINs of active records, in byte order (the
"C" collation), from which the VINs held are read each night already distinct and in
order (vehiclehub.store.schema's ``_held_vin_index``). Made on a store that lacks it;
its time follows the table (about half a minute for 30M police events). Nothing to do
on SQLite."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

#: The VIN columns of the feed tables.
VIN_COLUMNS = {
    "commerce_licences": ["vin"],
    "commerce_tradein_claims": ["old_vin", "new_vin"],
    "customs_declarations": ["vin"],
    "police_events": ["vin"],
}


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for table, columns in VIN_COLUMNS.items():
        for column in columns:
            op.create_index(
                f"ix_{table}_{column}_held",
                table,
                [sa.text(f'{column} COLLATE "C"')],
                postgresql_where=sa.text("record_status = 'active'"),
                if_not_exists=True,
            )
