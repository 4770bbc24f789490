"""Each agency's intake status per business date (``agency_intakes``): received, not
received, or a configuration error, with what was waiting and why."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite

from vehiclehub.store.schema import agency_intakes

#: What a later record of the same agency and date replaces.
_REPLACED = ("status", "detail", "waiting", "attempted_at")


def record_agency_intake(
    engine: Engine,
    day: date,
    agency: str,
    status: str,
    detail: str | None = None,
    waiting: list[str] | None = None,
) -> None:
    """Record the agency's intake status for ``day``, replacing an earlier one in one
    statement: intakes of an agency's feeds running at once may record it together."""
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    row = {
        "run_date": day,
        "agency": agency,
        "status": status,
        "detail": detail,
        "waiting": None if waiting is None else json.dumps(waiting),
        "attempted_at": datetime.now(UTC),
    }
    statement = dialect.insert(agency_intakes).values(**row)
    statement = statement.on_conflict_do_update(
        index_elements=[agency_intakes.c.run_date, agency_intakes.c.agency],
        set_={name: statement.excluded[name] for name in _REPLACED},
    )
    with engine.begin() as conn:
        conn.execute(statement)
