"""PostgreSQL: findings pages keep half their room for the next night's row versions
(fillfactor 50), so that marking the open findings seen each night updates them in
place instead of growing the table by every open finding. Pages already full take it
when the table is next rewritten (``VACUUM FULL findings``). Nothing to do on SQLite."""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE findings SET (fillfactor = 50)")
