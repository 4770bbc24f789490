"""The customs items' VIN index also holds the item's exporter (``uscc``): the export
subsidy (SUB-001) counts each exporter's verified vehicles from the items it finds by
VIN, and with the exporter in the index it never reads the table's rows for it. The
index is made again with the column added."""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

INDEX = "ix_customs_declarations_vin_lookup"
COLUMNS = ["vin", "record_status", "status", "exported_at", "decl_no", "item_no", "uscc"]


def upgrade() -> None:
    op.drop_index(INDEX, table_name="customs_declarations", if_exists=True)
    op.create_index(INDEX, "customs_declarations", COLUMNS)
