"""Values stored by earlier releases that ICD §1 or §5 no longer allows, cleaned as
intake now treats a new row.

A record holding a resident ID where §5 allows none (a whole ``uscc`` value, free text),
a key or reference with white space or separators, a control character or a value
longer than its field may hold is removed; a rejection's value kept unmasked is masked
and cut (see :mod:`vehiclehub.intake.stored`). What was changed, and where, is reported
by the upgrade, never a value. Before the text sizes (0008): what is too long for them
is gone first.
"""

from __future__ import annotations

from alembic import context, op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

#: Stored values are read and judged by the hub's own checks, not SQL (see upgrade_sql).
MOVES_DATA = True


def upgrade() -> None:
    if context.is_offline_mode():
        return  # written as SQL only from an empty database: nothing stored to clean
    from vehiclehub.intake.stored import clean_stored_values

    cleaned = clean_stored_values(op.get_bind())
    context.config.attributes.setdefault("cleaned", []).extend(cleaned)
