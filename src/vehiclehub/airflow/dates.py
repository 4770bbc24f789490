"""The business date a DAG run processes, and the run's name on the store's lease.

Business dates are Asia/Shanghai days (ICD §1), half-open ``[00:00, 24:00)``: a run
processes the local day before the one holding its scheduled time, unless the DAG
param ``business_date`` names the day (reruns, backfills).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

#: Business dates are Asia/Shanghai days (ICD §1); the DAG is scheduled in this zone too.
BUSINESS_TIMEZONE = "Asia/Shanghai"
#: The DAG param that overrides the business date (reruns, backfills).
BUSINESS_DATE_PARAM = "business_date"


def previous_local_day(instant: datetime, timezone: str = BUSINESS_TIMEZONE) -> date:
    """The local day before the one holding ``instant``, days being half-open ``[00:00, 24:00)``.

    A run at 02:30 on 4 November (Shanghai) processes 3 November; so does a run at
    exactly 00:00 on 4 November, which belongs to the 4th.
    """
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"need a timezone-aware instant, got {instant!r}")
    local = instant.astimezone(ZoneInfo(timezone))
    # A plain date: Airflow hands out pendulum instants, whose Date the DB drivers refuse.
    return date(local.year, local.month, local.day) - timedelta(days=1)


def lease_holder(context: Mapping[str, Any]) -> str:
    """The store-lease holder of a DAG run: every task of the run holds the store's lease
    under this one name, so the run's four intakes share it and run in parallel."""
    dag_run = context.get("dag_run")
    dag_id = getattr(dag_run, "dag_id", None) or "vehiclehub_nightly"
    return f"airflow {dag_id} run {context.get('run_id') or getattr(dag_run, 'run_id', '?')}"


def business_date_of_run(context: Mapping[str, Any]) -> date:
    """The business date a DAG run processes.

    The param ``business_date`` (``YYYY-MM-DD``) wins when given. Otherwise the run's
    scheduled time is ``data_interval_end`` (for the DAG's cron trigger timetable the
    same instant as ``logical_date``; for an interval timetable the end of the interval,
    when the run starts), falling back to ``logical_date`` and then to the run's
    ``run_after`` for a run triggered without a logical date; the business date is the
    Asia/Shanghai day before the local day holding that instant.
    """
    override = (context.get("params") or {}).get(BUSINESS_DATE_PARAM)
    if override:
        try:
            return date.fromisoformat(str(override))
        except ValueError as exc:
            raise ValueError(
                f"param {BUSINESS_DATE_PARAM}={override!r} is not a date YYYY-MM-DD"
            ) from exc
    dag_run = context.get("dag_run")
    for instant in (
        context.get("data_interval_end"),
        context.get("logical_date"),
        getattr(dag_run, "run_after", None),
    ):
        if instant is not None:
            return previous_local_day(instant)
    raise ValueError("the run has neither a data interval, a logical date nor a run_after")
