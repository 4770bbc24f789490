"""The hub's nightly cycle: intake per agency (in parallel) -> reconcile -> publish.

Wiring only: each task computes the business date, resolves the settings and calls
one stage of ``vehiclehub.pipeline``. Nothing here reads a file, a database or the
network at import; the pipeline itself is imported inside the task bodies.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, CronTriggerTimetable, Param, get_current_context, task

from vehiclehub.airflow_support import (
    BUSINESS_DATE_PARAM,
    BUSINESS_TIMEZONE,
    TransientOnlyRetryPolicy,
    business_date_of_run,
    hub_settings,
)
from vehiclehub.config import AGENCIES

DAG_DOC = """
### vehiclehub nightly cycle

Takes every agency's new files, cross-checks everything the hub holds, and returns
drops and the run report (ICD §1, §4).

`intake_<agency>` ×4 (in parallel) → `reconcile` → `publish`

**Schedule.** Daily at 02:30 Asia/Shanghai (`CronTriggerTimetable("30 2 * * *")`
in that zone), no catch-up, one run at a time (runs share the store).

**Business date.** Days are half-open Asia/Shanghai days `[D 00:00, D+1 00:00)`.
A run processes the day *before* the local day holding its scheduled time, which is
the run's `data_interval_end` (for this cron trigger timetable equal to its
`logical_date`; `run_after` for a run triggered without one): the run at
2025-11-04 02:30+08:00 (2025-11-03 18:30 UTC) processes **2025-11-03**, and so does a
manual run triggered at any time on 4 November, Shanghai time. The param
`business_date` (`YYYY-MM-DD`) overrides it for reruns and backfills; running a date
again replaces that date's drops.

**Configuration.** The hub's TOML file is named by the Airflow Variable
`vehiclehub_config` when it is set, else by `VHUB_CONFIG` in the worker's
environment. When an Airflow connection `sftp_<agency>` exists (type sftp or ssh),
it replaces that agency's `[agencies.<agency>]` url: host, port, login; the exchange
root in `schema` (or extra `path`); the client key in extra `private_key` or
`key_file`; the server's host key in extra `host_key` (`ssh-ed25519 AAAA...`).

**Failures.** An unreachable agency is recorded as *not received* and the run goes
on; bad rows and files become rejections. Neither fails a task. Transient faults
(connection reset, timeouts, database operational errors) are retried 3 times with
exponential backoff; anything else (a configuration error, an unusable store, a bug)
fails the task at once, without retries: fix it and clear the task.
"""

INTAKE_DOC = """
Fetch, verify, validate and load every new complete file in **{agency}**'s outbox
(`vehiclehub.pipeline.intake_agency`). Returns the business date and, per file, its
status and row counts. An unreachable exchange is *not received*, not a failure.
"""

RECONCILE_DOC = """
Run every rule of RULES.md over everything stored and record the day's findings and
verdicts (`vehiclehub.pipeline.reconcile`). Returns counts per rule and verdict.
"""

PUBLISH_DOC = """
Write the day's drops, deliver each agency's to its inbox (data first, manifest
last) and write the run report (`vehiclehub.pipeline.publish`). Returns the drops'
row counts, the delivery status per agency and where the report is.
"""

default_args: dict[str, Any] = {
    "owner": "vehiclehub",
    "retries": 3,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=30),
    "retry_policy": TransientOnlyRetryPolicy(),
    "execution_timeout": timedelta(hours=3),
}


def _intake(agency: str) -> Any:
    @task(task_id=f"intake_{agency}", doc_md=INTAKE_DOC.format(agency=agency))
    def intake() -> dict[str, Any]:
        from vehiclehub.pipeline import intake_agency

        day = business_date_of_run(get_current_context())
        with hub_settings(agencies=[agency]) as settings:
            return {"business_date": day.isoformat(), **intake_agency(settings, agency, day)}

    return intake()


@task(doc_md=RECONCILE_DOC)
def reconcile() -> dict[str, Any]:
    from vehiclehub.pipeline import reconcile as reconcile_stage

    day = business_date_of_run(get_current_context())
    with hub_settings(agencies=[]) as settings:
        return {"business_date": day.isoformat(), **reconcile_stage(settings, day)}


@task(doc_md=PUBLISH_DOC)
def publish() -> dict[str, Any]:
    from vehiclehub.pipeline import publish as publish_stage

    day = business_date_of_run(get_current_context())
    with hub_settings() as settings:
        return {"business_date": day.isoformat(), **publish_stage(settings, day)}


with DAG(
    dag_id="vehiclehub_nightly",
    description="Nightly intake, reconciliation and drops of the used-car export hub",
    doc_md=DAG_DOC,
    schedule=CronTriggerTimetable("30 2 * * *", timezone=BUSINESS_TIMEZONE),
    start_date=pendulum.datetime(2025, 1, 1, tz=BUSINESS_TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    params={
        BUSINESS_DATE_PARAM: Param(
            None,
            type=["null", "string"],
            pattern=r"^\d{4}-\d{2}-\d{2}$",
            title="Business date",
            description="YYYY-MM-DD to process instead of the day before the run (reruns).",
        )
    },
    tags=["vehiclehub"],
) as dag:
    [_intake(agency) for agency in AGENCIES] >> reconcile() >> publish()
