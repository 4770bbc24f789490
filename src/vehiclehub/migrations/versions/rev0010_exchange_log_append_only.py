"""PostgreSQL: the hub's own role loses UPDATE, DELETE and TRUNCATE on the exchange log
(ICD §6: its entries are never changed or deleted). Nothing to do on SQLite."""

from __future__ import annotations

from alembic import op

from vehiclehub.store.migrate import EXCHANGE_LOG_APPEND_ONLY

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(EXCHANGE_LOG_APPEND_ONLY)
