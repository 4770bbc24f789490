"""Late files: the ``wait_<agency>`` sensor's pokes, and what ``feeds_<agency>`` hands on.

``wait_<agency>`` pokes the agency's outbox until every feed it is expected to send for
the business date has a complete file there (or already taken), or until the agency's
arrival deadline passes; an exchange that cannot be reached is waited for like a late
file. ``feeds_<agency>`` then lists the outbox once, and ``intake_<agency>`` is mapped
over the feeds found.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from vehiclehub.config import Settings

if TYPE_CHECKING:
    from airflow.sdk import PokeReturnValue

log = logging.getLogger(__name__)

#: How often ``wait_<agency>`` looks into the agency's outbox (reschedule mode: no
#: worker slot is held in between).
ARRIVAL_POKE_INTERVAL = timedelta(minutes=10)
#: A backstop only: the configured arrival deadline, at most a day after the run's
#: scheduled time, ends the wait first.
ARRIVAL_SENSOR_TIMEOUT = timedelta(hours=24)


def poke_arrivals(
    settings: Settings, agency: str, day: date, now: datetime | None = None
) -> PokeReturnValue:
    """One poke of ``wait_<agency>``: are the agency's files for business date ``day`` there?

    Done (with the check as its XCom) once every feed the agency is expected to send has
    a complete file in its outbox or already taken. Before the agency's arrival deadline
    (``quality.arrival_deadlines``) it is not done yet, also while the exchange cannot be
    reached: that is waited for like a late file. Past the deadline with feeds missing it
    raises ``AirflowSensorTimeout``, which the sensor's ``soft_fail`` turns into
    *skipped*; intake then takes what is there and the rest is *not received*.
    """
    from airflow.sdk import PokeReturnValue
    from airflow.sdk.exceptions import AirflowSensorTimeout

    from vehiclehub.pipeline import late_file_check

    check = late_file_check(settings, agency, day, now)
    if not check["missing"]:
        log.info("%s: every expected file for %s is there", agency, check["business_date"])
        return PokeReturnValue(is_done=True, xcom_value=check)
    missing = ", ".join(check["missing"])
    if check["unreachable"]:
        log.warning("%s: exchange unreachable: %s", agency, check["unreachable"])
    if check["done"]:
        message = (
            f"{agency}: arrival deadline {check['deadline']} passed; "
            f"not arrived for {check['business_date']}: {missing}"
        )
        log.warning("%s", message)
        raise AirflowSensorTimeout(message)
    log.info("%s: waiting until %s for %s", agency, check["deadline"], missing)
    return PokeReturnValue(is_done=False)


def feeds_to_take(
    listed: Mapping[str, Any], states: Mapping[str, str], day: date
) -> list[dict[str, Any]]:
    """What ``feeds_<agency>`` returns for ``intake_<agency>`` to map over: per feed with
    complete files, ``agency``, ``feed`` and the ``files`` in name order.

    ``states`` (each expected feed's state for the business date, read after the
    listing) tells the feeds with nothing to take this night: each one not received is
    logged as a warning here, since no intake of it runs.
    """
    found = list(listed.get("feeds") or [])
    taking = {str(each["feed"]) for each in found}
    agency = str(listed["agency"])
    for feed, state in sorted(states.items()):
        if feed not in taking and state != "received":
            log.warning("%s/%s for %s: %s", agency, feed, day.isoformat(), state)
    return found
