"""Records a rule could not evaluate, per run date, rule and reason (``not_evaluated``)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "not_evaluated",
        sa.Column("run_date", sa.Date(), nullable=False),
        sa.Column("rule_id", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("run_date", "rule_id", "reason"),
        if_not_exists=True,
    )
