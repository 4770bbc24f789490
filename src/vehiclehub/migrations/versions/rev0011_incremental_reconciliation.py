"""Incremental reconciliation: the change journal (``record_changes``), what the last
reconciliation took into account (``reconcile_bases``), the scope of the one under way
(``reconcile_scope``), the records the rules could not evaluate (``records_not_evaluated``),
and the indexes its look-ups use. A store upgraded here has no basis yet: its next
reconciliation runs in full."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

#: The look-ups of an incremental reconciliation: (index, table, columns).
INDEXES = [
    ("ix_commerce_licences_uscc", "commerce_licences", ["uscc"]),
    ("ix_commerce_licences_pending", "commerce_licences", ["issued_at", "applied_at"]),
    ("ix_commerce_tradein_claims_applicant", "commerce_tradein_claims", ["applicant_id"]),
    ("ix_customs_declarations_exported", "customs_declarations", ["exported_at"]),
    ("ix_tax_refunds_pending", "tax_refunds", ["status", "applied_at"]),
    ("ix_findings_vin", "findings", ["vin"]),
]


def upgrade() -> None:
    op.create_table(
        "record_changes",
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.String(64), nullable=True),
        if_not_exists=True,
    )
    op.create_index("ix_record_changes_file", "record_changes", ["file_id"], if_not_exists=True)
    op.create_table(
        "reconcile_bases",
        sa.Column("run_date", sa.Date(), nullable=False),
        sa.Column("files_through", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("run_date"),
        if_not_exists=True,
    )
    op.create_table(
        "reconcile_scope",
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("kind", "value"),
        if_not_exists=True,
    )
    op.create_table(
        "records_not_evaluated",
        sa.Column("rule_id", sa.String(16), nullable=False),
        sa.Column("agency", sa.String(16), nullable=False),
        sa.Column("record_key", sa.String(255), nullable=False),
        sa.Column("vin", sa.String(32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        if_not_exists=True,
    )
    op.create_index(
        "ix_records_not_evaluated_vin", "records_not_evaluated", ["vin"], if_not_exists=True
    )
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, if_not_exists=True)
