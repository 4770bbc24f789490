"""Verdicts kept as changes: each record's verification row once per stretch it holds.

The release before copied every verdict per night (``verdicts``). This revision adds
``verdict_history`` and ``reconcile_runs``, turns the copies into history (one row per
stretch of consecutive runs in which a record's row stayed the same, see
:mod:`vehiclehub.store.upgrade`) and drops the copies, so that every earlier date's
verdicts, and so the next drops, read the same as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: The copies are turned into history by the hub's code, not SQL (see upgrade_sql).
MOVES_DATA = True


def upgrade() -> None:
    op.create_table(
        "verdict_history",
        sa.Column("report", sa.String(32), nullable=False),
        sa.Column("record_key", sa.String(255), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("verdict", sa.String(32), nullable=False),
        sa.Column("row_hash", sa.BigInteger(), nullable=False),
        sa.Column("row_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("report", "record_key", "valid_from"),
        if_not_exists=True,
    )
    op.create_index(
        "ix_verdict_history_from",
        "verdict_history",
        ["report", "valid_from"],
        if_not_exists=True,
    )
    op.create_table(
        "reconcile_runs",
        sa.Column("run_date", sa.Date(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("run_date"),
        if_not_exists=True,
    )
    if context.is_offline_mode():
        # Only written as SQL from an empty database: the baseline's table holds nothing.
        op.drop_table("verdicts")
        return
    from vehiclehub.store.upgrade import upgrade_verdict_snapshots

    upgrade_verdict_snapshots(op.get_bind())
