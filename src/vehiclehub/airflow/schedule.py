"""The nightly DAG's schedule: daily at 02:30 Asia/Shanghai, never a night already past.

Airflow's ``CronTriggerTimetable`` without catch-up still creates a run for the latest
scheduled time already past when the DAG is first deployed or unpaused: unpaused at
10:00, it runs 02:30 of the same day at once and delivers drops for the day before.
:class:`NightlyTimetable` runs a scheduled time only while it is at most
:data:`START_GRACE` old; otherwise the next run is the next scheduled time. A missed
night is caught up by an operator, by triggering the DAG with the param
``business_date``.

A custom timetable must be registered with Airflow through a plugin
(:class:`SchedulePlugin`, found through the package's ``airflow.plugins`` entry point)
so that the scheduler can read it back from the serialized DAG.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow._shared.timezones.timezone import coerce_datetime, parse_timezone, utcnow
from airflow.plugins_manager import AirflowPlugin
from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction
from airflow.timetables.trigger import CronTriggerTimetable

from vehiclehub.airflow.dates import previous_local_day

if TYPE_CHECKING:
    from airflow.utils.types import DagRunType
    from pendulum import DateTime

#: How late a scheduled run may still be created: a scheduler restarted within this
#: time after 02:30 still runs the night; later, the night waits for an operator.
START_GRACE = timedelta(hours=1)


class NightlyTimetable(CronTriggerTimetable):
    """A cron trigger in the business time zone that never starts a night already past.

    Without catch-up, a scheduled time more than ``grace`` in the past (the DAG was
    paused, or is new) is passed over for the next one. Scheduled run ids carry the
    business date they process (the local day before the scheduled time):
    ``scheduled__2025-11-03__2025-11-03T18:30:00+00:00``.
    """

    def __init__(self, cron: str, *, timezone: Any, grace: timedelta = START_GRACE) -> None:
        super().__init__(cron, timezone=timezone)
        self.grace = grace

    def serialize(self) -> dict[str, Any]:
        return {**super().serialize(), "grace_s": self.grace.total_seconds()}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> NightlyTimetable:
        return cls(
            data["expression"],
            timezone=parse_timezone(data["timezone"]),
            grace=timedelta(seconds=float(data.get("grace_s", START_GRACE.total_seconds()))),
        )

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
    ) -> DagRunInfo | None:
        info = super().next_dagrun_info(
            last_automated_data_interval=last_automated_data_interval, restriction=restriction
        )
        if info is None or restriction.catchup:
            return info
        now = coerce_datetime(utcnow())
        if info.run_after >= now - self.grace:
            return info
        upcoming = self._align_to_next(now)
        if restriction.latest is not None and restriction.latest < upcoming:
            return None
        return DagRunInfo.interval(coerce_datetime(upcoming - self._interval), upcoming)

    def generate_run_id(
        self,
        *,
        run_type: DagRunType,
        run_after: DateTime,
        data_interval: DataInterval | None,
        **extra: Any,
    ) -> str:
        from airflow.utils.types import DagRunType

        if run_type != DagRunType.SCHEDULED:
            # A manual run's date may come from its param, which is not known here.
            return super().generate_run_id(
                run_type=run_type, run_after=run_after, data_interval=data_interval, **extra
            )
        day = previous_local_day(run_after).isoformat()
        return run_type.generate_run_id(suffix=f"{day}__{run_after.isoformat()}")


class SchedulePlugin(AirflowPlugin):
    """Registers :class:`NightlyTimetable` with Airflow (scheduler, API server, DAG processor)."""

    name = "vehiclehub_schedule"
    timetables = [NightlyTimetable]  # noqa: RUF012 (AirflowPlugin declares it a list)
