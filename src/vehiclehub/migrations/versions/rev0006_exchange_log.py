"""The exchange log (ICD §6), each entry holding the hash of the one before, and which
files came signed (``file_signatures``)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exchange_log",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("agency", sa.String(16), nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("file", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("rows", sa.BigInteger(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("prev", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        if_not_exists=True,
    )
    op.create_index("ix_exchange_log_agency", "exchange_log", ["agency", "seq"], if_not_exists=True)
    op.create_table(
        "file_signatures",
        sa.Column("file_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("agency", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=True),
        sa.PrimaryKeyConstraint("file_id"),
        if_not_exists=True,
    )
