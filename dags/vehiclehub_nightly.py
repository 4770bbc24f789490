"""The hub's nightly cycle: preflight; per agency (in parallel) wait for its files ->
list its feeds -> intake of each feed found (mapped, in parallel); then reconcile ->
publish -> prune.

Wiring only: each task computes the business date, resolves the settings and calls
one stage of ``vehiclehub.pipeline`` (or the late-file check). Nothing here reads a
file, a database or the network at import; the pipeline itself is imported inside
the task bodies.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import (
    DAG,
    Param,
    PokeReturnValue,
    TriggerRule,
    get_current_context,
    task,
)

from vehiclehub.airflow.assets import feed_alias, intake_summary
from vehiclehub.airflow.checks import check_before_taking, check_files_accepted, log_pruned
from vehiclehub.airflow.dates import (
    BUSINESS_DATE_PARAM,
    BUSINESS_TIMEZONE,
    business_date_of_run,
    lease_holder,
)
from vehiclehub.airflow.retry import TransientOnlyRetryPolicy
from vehiclehub.airflow.schedule import NightlyTimetable
from vehiclehub.airflow.sensors import (
    ARRIVAL_POKE_INTERVAL,
    ARRIVAL_SENSOR_TIMEOUT,
    feeds_to_take,
    poke_arrivals,
)
from vehiclehub.airflow.settings import hub_settings
from vehiclehub.config import AGENCIES

DAG_DOC = """
### vehiclehub nightly cycle

Takes every agency's new files, cross-checks everything the hub holds, and returns
drops and the run report (ICD §1, §4).

`preflight` → `upgrade_store` → `wait_<agency>` → `feeds_<agency>` →
`intake_<agency>` (mapped: one task instance per feed found) → `reconcile` → `publish`
→ `prune`, the four agencies in parallel up to reconcile, and beside them
`files_accepted`: *skipped* on a night when files were rejected whole.

**Fan-out.** `feeds_<agency>` lists the agency's outbox once and returns, per feed with
complete files, their names; `intake_<agency>` is mapped over that list (dynamic task
mapping), one task instance per feed, labelled with the feed. A feed's files are taken
one after the other in name order, each in a transaction of its own, so a backlog
spreads over the workers while two files of one feed never load at once. Files that
complete after the listing are taken by the next run. An agency with nothing to take
has its `intake_<agency>` *skipped* (no instance). On PostgreSQL the feeds load in
parallel; on SQLite they take turns.

**Preflight.** Before anything is taken, `preflight` makes the checks `vhub run`
makes (`vehiclehub.preflight.CHECKS`: business date, work directory, exchange roots,
SFTP credentials, archive key, store). A problem fails the run there, at once and
without retries, its log listing every problem with what to fix; nothing was taken.

**Schedule.** Daily at 02:30 Asia/Shanghai (`NightlyTimetable("30 2 * * *")` in
that zone, `vehiclehub.airflow.schedule`), one run at a time (runs share the store).
No catch-up: unpausing or first deploying the DAG creates no run for a night
already past (a scheduled time more than an hour old is passed over for the next
one). A missed night is caught up by an operator: trigger the DAG with the param
`business_date` (`YYYY-MM-DD`). Scheduled run ids carry the business date
(`scheduled__2025-11-03__...`); a manual run's date is its `business_date` param, or
the day before it was triggered, Shanghai time.

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

**Late files.** `wait_<agency>` (a sensor in reschedule mode, every 10 minutes) waits
until every feed the agency is expected to send for the business date has a complete
file (data and manifest) in its outbox or already taken, or until the agency's
arrival deadline: the local time on D + 1 given in the hub's TOML file,
`[quality.arrival_deadlines]` per agency (`police = "05:00"`), else
`quality.default_arrival_deadline` (06:00). The feeds expected are
`[quality.expected_feeds]` (default: every feed of the agency, ICD §3). An exchange
that cannot be reached is waited for like a late file. At the deadline the sensor
gives up and is *skipped* (`soft_fail`); `feeds_<agency>` runs anyway (trigger rule
`none_failed`) and the agency's feeds are taken from what is there; what has not come
is *not received* in `feeds_<agency>`'s log and in the run report. A rerun of an
earlier date is past its deadline: the sensor looks once and does not wait. The
sensor's own 24 h timeout is only a backstop.

**Assets.** Every feed is an Airflow asset `x-vehiclehub://<agency>/<feed>` (name
`vehiclehub.<agency>.<feed>`). `intake_<agency>` emits an event through its alias
`vehiclehub.<agency>.feeds` for each file that loaded, with extra `file`,
`business_date` (the file's), `run_date` (the run's business date), `rows`, `loaded`,
`rejected`, `ignored`. A rejected or duplicate file emits nothing. To run a DAG on a
feed's new data, schedule it on
`vehiclehub.airflow.assets.feed_asset("<agency>", "<feed>")`.

**Logs.** Great Expectations runs without progress bars and its INFO logging is
kept out of task logs; each file gets one line from the quality gate and one with
its row counts. Each file rejected whole (with its reason) is a warning in its feed's
`intake_<agency>` log, whose last line adds up the feed's files and rows (loaded,
ignored, rejected); each file waiting for its manifest, and each expected feed with
nothing to take that is not received, is a warning in `feeds_<agency>`'s log.
`publish`'s log ends with the drops' directory and the report's path, each on a line
of its own.

**Retention.** `prune` ends the run: it removes the archived agency files, drops and
reports older than `[retention]` keeps them, counted back from the run's business
date, never a drop still waiting for delivery nor any store record (`vhub prune`). Its
log names each path removed and ends with what was removed and kept.

**Failures.** An unreachable agency is recorded as *not received* and the run goes
on; bad rows and files become rejections. Neither fails a task. Transient faults
(connection reset, timeouts, a store that refuses or drops connections, a
serialisation failure or deadlock) are retried 3 times with exponential backoff;
anything else (a configuration error, a store that cannot work as configured, a bug)
fails the task at once, without retries: fix it and clear the task. A failed
`wait_<agency>` (its agency's feeds and intake are then *upstream failed*) stops the run
before reconcile, like a failed intake of one feed.
"""

WAIT_DOC = """
Wait until **{agency}**'s files for the business date are in its outbox: every feed it
is expected to send has a complete file (data and manifest), in the outbox or already
taken (`vehiclehub.pipeline.late_file_check`). Pokes every 10 minutes in
reschedule mode; an unreachable exchange is waited for like a late file. At
{agency}'s arrival deadline (`quality.arrival_deadlines.{agency}`, else
`quality.default_arrival_deadline`, a local time on D + 1) it gives up and is
*skipped*: `feeds_{agency}` and its intakes run on what is there. Returns the check (feeds missing,
deadline) when everything has arrived.
"""

FEEDS_DOC = """
List **{agency}**'s outbox once (`vehiclehub.feed_intake.list_feeds`); runs after
`wait_{agency}` succeeded or gave up at the deadline. Records the agency's intake
status for the night (received, not received, configuration error), logs the files
waiting for their manifest and each expected feed with nothing to take that is not
received, and returns what `intake_{agency}` maps over: per feed with complete files,
`agency`, `feed` and the `files` in name order. An unreachable exchange is *not
received* (nothing to map over), not a failure.
"""

INTAKE_DOC = """
Mapped over the feeds `feeds_{agency}` found, one task instance per feed: fetch,
verify, validate and load the feed's files one after the other in name order, each in
a transaction of its own (`vehiclehub.feed_intake.intake_feed`). For each file that
loaded it emits an event of the feed's asset `x-vehiclehub://{agency}/<feed>`
(through the alias `vehiclehub.{agency}.feeds`); rejected and duplicate files emit
none. Returns the business date, the feed, per file its status and row counts, the
feed's state for the night (`feeds`) and the assets updated. An exchange lost
part-way makes the agency *not received*, not a failure; the files left are taken by
the next run.
"""

UPGRADE_DOC = """
Bring the store to this release's schema once the preflight checks pass, before
anything else, once per run (`vehiclehub.pipeline.upgrade_store`): a new store is
created, one of an earlier release upgraded (each revision applied is in the log), a
current one left alone. The sensors' pokes only read the store.
"""

ACCEPTED_DOC = """
Done (*success*) when every file the night's intakes took was accepted; *skipped*
when files were rejected whole, each logged with its reason
(`vehiclehub.airflow.checks.check_files_accepted`). It marks such a night in the
grid without failing the run: the rejections go back to their senders in the drops.
"""

RECONCILE_DOC = """
Run the rules of RULES.md over what the night changed and record the day's findings and
verdicts (`vehiclehub.pipeline.reconcile`); with the param `full: true`, over everything
stored (recovery). Returns counts per rule and verdict. The
run counts the review desk's decisions made before this DAG run started; a decision made
while it is under way counts from the next run, and decisions whose evidence changed
lapse.
"""

PREFLIGHT_DOC = """
Check everything that can be checked before the first file is taken
(`vehiclehub.preflight.CHECKS`, as `vhub run`): the business date, the work directory,
every local exchange root with its `outbox/` and `inbox/`, the SFTP agencies' user,
key and known_hosts, the archive key, the store. Fails (without retries) listing every
problem with what to fix; nothing runs after it then. Returns the checks passed.
"""

PRUNE_DOC = """
Remove what `[retention]` no longer keeps, counted back from the business date
(`vehiclehub.pipeline.prune`, as `vhub prune`): archived agency files, drops and
reports; never a drop still pending delivery, never a store record. Logs each path
removed, then per kind of file how many went, what was kept for delivery and the
space freed. Returns the same.
"""

PUBLISH_DOC = """
Write the day's drops, deliver each agency's to its inbox (data first, manifest
last) and write the run report (`vehiclehub.pipeline.publish`). Returns the drops'
row counts, the delivery status per agency and where the report is.
"""

default_args: dict[str, Any] = {
    "owner": "vehiclehub",
    "retries": 3,
    # The first retry waits Airflow's [core] default_task_retry_delay (docker/airflow.env),
    # doubling from there.
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=30),
    "retry_policy": TransientOnlyRetryPolicy(),
    "execution_timeout": timedelta(hours=3),
}


def _agency(agency: str, checked: Any) -> Any:
    """``checked`` >> ``wait_<agency>`` >> ``feeds_<agency>`` >> ``intake_<agency>``
    mapped over the feeds found; returns the mapped intake."""

    @task.sensor(
        task_id=f"wait_{agency}",
        doc_md=WAIT_DOC.format(agency=agency),
        mode="reschedule",
        poke_interval=ARRIVAL_POKE_INTERVAL,
        timeout=ARRIVAL_SENSOR_TIMEOUT,
        soft_fail=True,
    )
    def wait() -> PokeReturnValue:
        day = business_date_of_run(get_current_context())
        with hub_settings(agencies=[agency]) as settings:
            return poke_arrivals(settings, agency, day)

    @task(
        task_id=f"feeds_{agency}",
        doc_md=FEEDS_DOC.format(agency=agency),
        trigger_rule=TriggerRule.NONE_FAILED,  # also after a sensor skipped at its deadline
    )
    def feeds() -> list[dict[str, Any]]:
        from vehiclehub.feed_intake import list_feeds
        from vehiclehub.pipeline import agency_feed_states, hold_store

        context = get_current_context()
        day = business_date_of_run(context)
        with (
            hub_settings(agencies=[agency]) as settings,
            hold_store(settings, lease_holder(context), release=False),
        ):
            found = list_feeds(settings, agency, day)
            states = agency_feed_states(settings, agency, day)
        return feeds_to_take(found, states, day)

    @task(
        task_id=f"intake_{agency}",
        doc_md=INTAKE_DOC.format(agency=agency),
        outlets=[feed_alias(agency)],
        map_index_template="{{ task.op_kwargs['found']['feed'] }}",
    )
    def intake(found: dict[str, Any]) -> dict[str, Any]:
        from vehiclehub.feed_intake import intake_feed
        from vehiclehub.pipeline import agency_feed_states, hold_store

        context = get_current_context()
        day = business_date_of_run(context)
        feed = str(found["feed"])
        with (
            hub_settings(agencies=[agency]) as settings,
            hold_store(settings, lease_holder(context), release=False),
        ):
            result = intake_feed(settings, agency, feed, list(found["files"]), day)
            states = agency_feed_states(settings, agency, day)
        own = {name: state for name, state in states.items() if name == feed}
        return {"feed": feed, **intake_summary(context["outlet_events"], result, own, day)}

    listed = feeds()
    checked >> wait() >> listed
    return intake.expand(found=listed)


@task(doc_md=UPGRADE_DOC)
def upgrade_store() -> dict[str, Any]:
    from vehiclehub.pipeline import upgrade_store as upgrade

    with hub_settings(agencies=[]) as settings:
        return upgrade(settings)


# Also when an agency had nothing to take (its mapped intake skipped, no instance).
@task(doc_md=ACCEPTED_DOC, trigger_rule=TriggerRule.NONE_FAILED)
def files_accepted() -> dict[str, Any]:
    ti = get_current_context()["ti"]
    return check_files_accepted(ti.xcom_pull(task_ids=[f"intake_{a}" for a in AGENCIES]))


@task(doc_md=PREFLIGHT_DOC)
def preflight() -> dict[str, Any]:
    day = business_date_of_run(get_current_context())
    with hub_settings() as settings:
        return check_before_taking(settings, day)


# Also when an agency had nothing to take (its mapped intake skipped, no instance).
@task(doc_md=RECONCILE_DOC, trigger_rule=TriggerRule.NONE_FAILED)
def reconcile() -> dict[str, Any]:
    from vehiclehub.pipeline import hold_store
    from vehiclehub.pipeline import reconcile as reconcile_stage

    context = get_current_context()
    day = business_date_of_run(context)
    # The run counts the review desk's decisions made before the DAG run started.
    began = context["dag_run"].start_date
    with (
        hub_settings(agencies=[]) as settings,
        hold_store(settings, lease_holder(context), release=False),
    ):
        reconciled = reconcile_stage(settings, day, began, bool(context["params"].get("full")))
    return {"business_date": day.isoformat(), **reconciled.to_dict()}


@task(doc_md=PUBLISH_DOC)
def publish() -> dict[str, Any]:
    from vehiclehub.pipeline import hold_store
    from vehiclehub.pipeline import publish as publish_stage

    context = get_current_context()
    day = business_date_of_run(context)
    with (
        hub_settings() as settings,
        hold_store(settings, lease_holder(context), release=False),
    ):
        published = publish_stage(settings, day)
    return {"business_date": day.isoformat(), **published.to_dict()}


@task(doc_md=PRUNE_DOC)
def prune() -> dict[str, Any]:
    from vehiclehub.pipeline import hold_store
    from vehiclehub.pipeline import prune as prune_stage

    context = get_current_context()
    day = business_date_of_run(context)
    # The run's last task: it gives the store's lease back.
    with hub_settings(agencies=[]) as settings, hold_store(settings, lease_holder(context)):
        pruned = prune_stage(settings, day)
    log_pruned(pruned)
    return {"business_date": day.isoformat(), **pruned.to_dict()}


with DAG(
    dag_id="vehiclehub_nightly",
    description="Nightly intake, reconciliation and drops of the used-car export hub",
    doc_md=DAG_DOC,
    schedule=NightlyTimetable("30 2 * * *", timezone=BUSINESS_TIMEZONE),
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
        ),
        "full": Param(
            False,
            type="boolean",
            title="Reconcile in full",
            description="Evaluate every rule over everything stored, not only what changed "
            "since the last reconciliation (recovery; the findings are the same).",
        ),
    },
    tags=["vehiclehub"],
) as dag:
    checked = preflight() >> upgrade_store()  # the store upgraded once the checks pass
    intakes = [_agency(agency, checked) for agency in AGENCIES]
    intakes >> reconcile() >> publish() >> prune()
    intakes >> files_accepted()
