"""The text sizes ICD §1 sets for each field of a feed (free text 200, keys and
references 64, codes their code's length), so that whatever validation accepts loads.

The baseline made every feed text 128 characters. Only PostgreSQL enforces sizes; on
SQLite, which keeps the declared size as a comment, nothing is done.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

#: Per feed table, each text column's size, as the contract sets it.
SIZES = {
    "commerce_enterprises": {"uscc": 18, "name": 200, "filing_no": 64, "region_code": 6,
                             "status": 9},
    "commerce_licences": {"licence_no": 64, "uscc": 18, "vin": 17, "brand": 200, "model": 200,
                          "hs_code": 10, "destination_country": 3, "port_code": 4},
    "commerce_tradein_claims": {"claim_no": 64, "claim_type": 7, "applicant_id": 64,
                                "old_vin": 17, "new_vin": 17},
    "customs_declarations": {"decl_no": 18, "vin": 17, "uscc": 18, "licence_no": 64,
                             "hs_code": 10, "goods_name": 200, "status": 8, "port_code": 4,
                             "destination_country": 3},
    "police_events": {"event_id": 64, "vin": 17, "plate_no": 200, "event_type": 23,
                      "owner_id": 64, "dereg_reason": 6, "decl_no": 18, "brand": 200,
                      "model": 200},
    "tax_refunds": {"refund_no": 64, "uscc": 18, "enterprise_class": 1, "decl_ref": 21,
                    "status": 8},
}  # fmt: skip


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for table, columns in SIZES.items():
        for column, size in columns.items():
            op.alter_column(table, column, type_=sa.String(size))
