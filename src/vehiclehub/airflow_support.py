"""What the Airflow DAG needs beyond the pipeline: settings, business date, endpoints, retries.

The DAG file (``dags/vehiclehub_nightly.py``) only wires tasks; each task body calls
the helpers here and then one stage of :mod:`vehiclehub.pipeline`.

- **Settings**: the TOML file named by the Airflow Variable ``vehiclehub_config``,
  else by ``VHUB_CONFIG`` in the worker's environment (:func:`hub_settings`).
- **Preflight**: the checks ``vhub run`` makes before it takes a file, as the run's
  first task (:func:`check_before_taking`).
- **Business date**: the local Asia/Shanghai day before the run's scheduled time
  (:func:`business_date_of_run`), or the DAG param ``business_date``.
- **Endpoints**: an Airflow connection ``sftp_<agency>``, when it exists, replaces the
  configuration file's ``[agencies.<agency>]`` url (:func:`endpoint_from_connection`).
- **Late files**: ``wait_<agency>`` pokes the agency's outbox until its files for the
  business date are there or its arrival deadline passes (:func:`poke_arrivals`).
- **Assets**: one Airflow asset per feed (:func:`feed_asset`), updated through the
  agency's alias (:func:`feed_alias`) only when a file of the feed loads
  (:func:`intake_summary`).
- **Retries**: only faults that may pass by themselves are retried
  (:class:`TransientOnlyRetryPolicy`); a configuration error fails at once.
- **Retention**: what the run's last task pruned, in its log (:func:`log_pruned`).
- **Logs**: libraries that chat at INFO (Great Expectations) are kept at WARNING in
  task logs (:func:`quiet_library_logs`).

Importing this module touches no file, database or network (the DAG imports it at
parse time): the pipeline, the store and Airflow's runtime are imported when used.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import socket
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote
from zoneinfo import ZoneInfo

from airflow.sdk import Asset, AssetAlias, RetryDecision, RetryPolicy

from vehiclehub.config import AGENCIES, AgencyEndpoint, ConfigError, Settings, load_settings
from vehiclehub.errors import ExitCode, exit_code_of

if TYPE_CHECKING:
    from airflow.sdk import Context, PokeReturnValue

    from vehiclehub.results import IntakeResult, PruneResult

log = logging.getLogger(__name__)

#: Business dates are Asia/Shanghai days (ICD §1); the DAG is scheduled in this zone too.
BUSINESS_TIMEZONE = "Asia/Shanghai"
#: The Airflow Variable naming the hub's TOML configuration file.
CONFIG_VARIABLE = "vehiclehub_config"
#: The DAG param that overrides the business date (reruns, backfills).
BUSINESS_DATE_PARAM = "business_date"
#: Scheme of the feeds' asset URIs: Airflow gives ``x-`` schemes no meaning of its own.
ASSET_SCHEME = "x-vehiclehub"
#: How often ``wait_<agency>`` looks into the agency's outbox (reschedule mode: no
#: worker slot is held in between).
ARRIVAL_POKE_INTERVAL = timedelta(minutes=10)
#: A backstop only: the configured arrival deadline, at most a day after the run's
#: scheduled time, ends the wait first.
ARRIVAL_SENSOR_TIMEOUT = timedelta(hours=24)
#: Loggers kept at WARNING in task logs: Great Expectations logs about a hundred INFO
#: lines when it is first imported, which would bury the intake's own lines.
QUIET_LOGGERS = ("great_expectations",)


def connection_id(agency: str) -> str:
    """The Airflow connection that, when defined, gives the agency's SFTP endpoint."""
    return f"sftp_{agency}"


# --- settings ---------------------------------------------------------------------------


def config_path(get_variable: Callable[[str], str | None] | None = None) -> str | None:
    """The configuration file: the Airflow Variable if set, else None (``VHUB_CONFIG``)."""
    value = (get_variable or _airflow_variable)(CONFIG_VARIABLE)
    return (value.strip() or None) if value else None


def _airflow_variable(key: str) -> str | None:
    from airflow.sdk import Variable

    value = Variable.get(key, default=None)
    return None if value is None else str(value)


# --- business date ----------------------------------------------------------------------


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


# --- endpoints from Airflow connections -------------------------------------------------


class ConnectionLike(Protocol):
    """The fields read off an Airflow connection (``airflow.sdk`` or ``airflow.models``)."""

    conn_id: Any
    conn_type: Any
    host: Any
    port: Any
    login: Any
    schema: Any

    @property
    def extra_dejson(self) -> dict[str, Any]: ...


def _airflow_connection(conn_id: str) -> ConnectionLike | None:
    """The Airflow connection ``conn_id`` (secrets backends included), None if undefined."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        connection: ConnectionLike | None = Connection.get(conn_id)
        return connection
    except AirflowNotFoundException:
        return None


def known_hosts_line(host: str, port: int, host_key: str, conn_id: str = "") -> str:
    """A known_hosts line for ``host:port`` from an OpenSSH public key line.

    ``host_key`` is ``<type> <base64> [comment]`` (as in ``ssh_host_ed25519_key.pub``
    or the output of ``ssh-keyscan`` without the host) or the bare base64 blob. The
    key is parsed, so a mangled or unsupported key (DSA) fails here, not at connect.
    """
    import paramiko

    where = f"{conn_id}: " if conn_id else ""
    parts = host_key.split()
    if not parts:
        raise ConfigError(f"{where}host_key is empty")
    declared, blob = (parts[0], parts[1]) if len(parts) >= 2 else (None, parts[0])
    try:
        raw = base64.b64decode(blob, validate=True)
        key_type = paramiko.Message(raw).get_text()
        paramiko.PKey.from_type_string(key_type, raw)
    except (
        binascii.Error,
        ValueError,
        UnicodeDecodeError,
        paramiko.SSHException,
        paramiko.pkey.UnknownKeyType,  # e.g. ssh-dss, which paramiko 5 dropped
    ) as exc:
        raise ConfigError(
            f"{where}host_key is not an OpenSSH public key line "
            f"('ssh-ed25519 AAAA...'): {type(exc).__name__}: {exc}"
        ) from exc
    if declared is not None and declared != key_type:
        raise ConfigError(f"{where}host_key says {declared} but the key is {key_type}")
    name = host if port == 22 else f"[{host}]:{port}"
    return f"{name} {key_type} {blob}\n"


def _private_key_file(value: str, directory: Path, agency: str) -> Path:
    """The key file: ``value`` is a path, or the key itself (the SSH provider's habit)."""
    if "PRIVATE KEY-----" in value:
        path = directory / f"{agency}_id"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as sink:
            sink.write(value.strip() + "\n")
        return path
    return Path(value).expanduser()


def endpoint_from_connection(
    connection: ConnectionLike,
    agency: str,
    directory: Path,
    base: AgencyEndpoint | None = None,
) -> AgencyEndpoint:
    """The agency's SFTP endpoint as an Airflow connection describes it.

    host, port (22 if empty) and login make ``sftp://login@host:port/path``; the
    exchange root's path is the connection's ``schema``, else its extra ``path``, taken
    as absolute on the server. The client key is the extra ``private_key`` (a path, or
    the PEM text itself, written to a private file) or ``key_file``; the server's host
    key is the extra ``host_key``, written to a known_hosts file for that host:port
    under ``directory`` (or the extra ``known_hosts``, a path to such a file). Host keys
    are always verified: ``no_host_key_check`` is refused. Timeouts and retries come
    from ``base`` (the configuration file's endpoint), the extra ``conn_timeout``
    overriding the connect timeout.
    """
    conn_id = str(connection.conn_id or connection_id(agency))
    extra = dict(connection.extra_dejson or {})
    if connection.conn_type and connection.conn_type not in ("sftp", "ssh"):
        raise ConfigError(f"{conn_id} is a {connection.conn_type!r} connection, not sftp")
    host = (connection.host or "").strip()
    login = (connection.login or "").strip()
    if not host or not login:
        raise ConfigError(f"{conn_id}: the connection needs a host and a login")
    try:
        port = int(connection.port or 22)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{conn_id}: port {connection.port!r} is not a number") from exc
    if str(extra.get("no_host_key_check", "false")).lower() in ("true", "1", "yes"):
        raise ConfigError(f"{conn_id}: no_host_key_check is refused; give the host_key")

    path = str(connection.schema or extra.get("path") or "").strip()
    host_part = f"[{host}]" if ":" in host else host
    url_path = quote("/" + path.lstrip("/")) if path else ""
    url = f"sftp://{quote(login, safe='')}@{host_part}:{port}{url_path}"

    key_value = extra.get("private_key") or extra.get("key_file")
    if not key_value:
        raise ConfigError(f"{conn_id}: give the client key as extra private_key or key_file")
    private_key = _private_key_file(str(key_value), directory, agency)

    if extra.get("host_key"):
        lines = [
            known_hosts_line(host, port, line, conn_id)
            for line in str(extra["host_key"]).splitlines()
            if line.strip()
        ]
        known_hosts = directory / f"{agency}_known_hosts"
        known_hosts.write_text("".join(lines), encoding="ascii")
    elif extra.get("known_hosts"):
        known_hosts = Path(str(extra["known_hosts"])).expanduser()
    else:
        raise ConfigError(
            f"{conn_id}: give the server's host key as extra host_key "
            "('ssh-ed25519 AAAA...'); host keys are always verified"
        )

    defaults = base or AgencyEndpoint(url=url)
    timeout = extra.get("conn_timeout")
    return AgencyEndpoint(
        url=url,
        private_key=private_key,
        known_hosts=known_hosts,
        connect_timeout_s=float(timeout) if timeout else defaults.connect_timeout_s,
        retries=defaults.retries,
        backoff_s=defaults.backoff_s,
        public_keys=defaults.public_keys,  # a connection moves the exchange, not the keys
    )


def with_connection_endpoints(
    settings: Settings,
    directory: Path,
    agencies: Iterable[str] = AGENCIES,
    get_connection: Callable[[str], ConnectionLike | None] | None = None,
) -> Settings:
    """``settings`` with each agency that has a ``sftp_<agency>`` connection using it."""
    lookup = get_connection or _airflow_connection
    replaced = {}
    for agency in agencies:
        connection = lookup(connection_id(agency))
        if connection is not None:
            replaced[agency] = endpoint_from_connection(
                connection,
                agency,
                directory,
                settings.agencies.get(agency),  # type: ignore[call-overload]
            )
    if not replaced:
        return settings
    return settings.model_copy(update={"agencies": {**settings.agencies, **replaced}})


@contextmanager
def hub_settings(
    agencies: Iterable[str] = AGENCIES,
    get_variable: Callable[[str], str | None] | None = None,
    get_connection: Callable[[str], ConnectionLike | None] | None = None,
) -> Iterator[Settings]:
    """The hub's settings for a task, the agencies' Airflow connections applied.

    Key and known_hosts files made from connections live in a private temporary
    directory that is removed when the block ends. Every task opens this block first,
    so it also keeps chatty libraries out of the task's log (:func:`quiet_library_logs`).
    """
    quiet_library_logs()
    settings = load_settings(config_path(get_variable))
    with tempfile.TemporaryDirectory(prefix="vhub-airflow-") as directory:
        yield with_connection_endpoints(settings, Path(directory), agencies, get_connection)


def quiet_library_logs(names: Iterable[str] = QUIET_LOGGERS) -> None:
    """Keep the named libraries' loggers at WARNING: their INFO lines are not the run's news."""
    for name in names:
        logging.getLogger(name).setLevel(logging.WARNING)


# --- preflight and retention -----------------------------------------------------------


def check_before_taking(settings: Settings, day: date) -> dict[str, Any]:
    """The body of ``preflight``: every check of :data:`vehiclehub.preflight.CHECKS`.

    Each problem found is an error line of the task's log, and the task fails with
    ``PreflightFailed`` listing them all, as ``vhub run`` does: a configuration error,
    which the retry policy never retries. Nothing has been taken by then.
    """
    from vehiclehub.preflight import CHECKS, PreflightFailed, preflight

    try:
        preflight(settings, day)
    except PreflightFailed as exc:
        for problem in exc.problems:
            log.error("preflight: %s", problem)
        raise
    passed = [check.__name__ for check in CHECKS]
    log.info("preflight: %d checks passed for %s: %s", len(passed), day, ", ".join(passed))
    return {"business_date": day.isoformat(), "passed": passed}


def log_pruned(pruned: PruneResult) -> None:
    """Say in the task's log what ``prune`` removed and kept, as ``vhub prune`` prints it
    (each path removed has its own line before these)."""
    for line in pruned.summary:
        log.info("prune: %s", line)


# --- late files -------------------------------------------------------------------------


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


# --- assets -----------------------------------------------------------------------------


def feed_asset(agency: str, feed: str) -> Asset:
    """The Airflow asset of one feed of ICD §3, ``x-vehiclehub://<agency>/<feed>``.

    ``intake_<agency>`` emits an event for it each time one of the feed's files loads;
    a DAG that works on a feed's new data schedules on this asset. Until a DAG refers
    to it, Airflow creates the asset with its first event (with a warning in the
    intake's log): an alias's assets are not known when the DAG is parsed.
    """
    return Asset(name=f"vehiclehub.{agency}.{feed}", uri=f"{ASSET_SCHEME}://{agency}/{feed}")


def feed_alias(agency: str) -> AssetAlias:
    """The outlet of ``intake_<agency>``, through which it emits its feeds' asset events.

    An alias, not the feed assets: Airflow emits an event for every asset among a
    task's outlets when it succeeds, and a feed's asset must change only when one of
    its files loaded. The feeds are read from ``schemas/`` at run time, not at parse.
    """
    return AssetAlias(name=f"vehiclehub.{agency}.feeds")


def feed_asset_events(intake: IntakeResult, day: date) -> list[tuple[Asset, dict[str, Any]]]:
    """One asset event per file an intake loaded: the feed's asset and the event's extra.

    Rejected and duplicate files change nothing in the store and emit nothing. The
    extra names the file, its own business date (a late file may be of an earlier
    day), the run's business date (``run_date``) and the file's row counts.
    """
    from vehiclehub.icd.names import FileName
    from vehiclehub.intake.take import FileStatus

    events: list[tuple[Asset, dict[str, Any]]] = []
    for file in intake.files_with(FileStatus.LOADED):
        if not file.feed:
            continue
        name = file.name
        read = FileName.read(name)
        extra = {
            "file": name,
            "business_date": read.business_date.isoformat() if read else None,
            "run_date": day.isoformat(),
            "rows": file.rows,
            "loaded": file.loaded,
            "rejected": file.rejected,
            "ignored": file.ignored,
        }
        events.append((feed_asset(intake.agency, file.feed), extra))
    return events


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


def intake_summary(
    outlet_events: Any, intake: IntakeResult, states: Mapping[str, str], day: date
) -> dict[str, Any]:
    """Emit the loaded feeds' asset events, and return what ``intake_<agency>`` returns.

    ``outlet_events`` is the task context's accessor; the events go through the
    agency's alias. ``states`` (the state for the business date of each expected feed
    the intake took) is returned as ``feeds``, and every feed not received is logged as
    a warning.
    """
    agency = intake.agency
    alias = feed_alias(agency)
    assets = []
    for asset, extra in feed_asset_events(intake, day):
        outlet_events[alias].add(asset, extra=extra)
        assets.append(asset.uri)
        log.info("asset %s updated: %s", asset.uri, extra)
    for feed, state in sorted(states.items()):
        if state != "received":
            log.warning("%s/%s for %s: %s", agency, feed, day.isoformat(), state)
    return {
        "business_date": day.isoformat(),
        **intake.to_dict(),
        "feeds": dict(states),
        "assets": assets,
    }


# --- the grid ---------------------------------------------------------------------------


def files_rejected_whole(intakes: Iterable[Mapping[str, Any] | None]) -> list[str]:
    """``<agency>/<file>: <reason>`` for every file the night's intakes (their XCom
    values, :func:`intake_summary`) rejected whole."""
    from vehiclehub.intake.take import FileStatus
    from vehiclehub.results import IntakeResult

    taken = [IntakeResult.from_dict(i) for i in intakes if i]
    return [
        f"{intake.agency}/{file.name}: {file.error}"
        for intake in taken
        for file in intake.files_with(FileStatus.REJECTED)
    ]


def check_files_accepted(intakes: Iterable[Mapping[str, Any] | None]) -> dict[str, Any]:
    """The body of ``files_accepted``: done when every file taken was accepted.

    When files were rejected whole, each is logged with its reason and the task ends
    *skipped*: the night's row in the grid shows it (filter on the task's state)
    while the run, whose drops carry the rejections to their senders, succeeds.
    """
    from airflow.sdk.exceptions import AirflowSkipException

    rejected = files_rejected_whole(intakes)
    for line in rejected:
        log.warning("rejected whole: %s", line)
    if rejected:
        raise AirflowSkipException(f"{len(rejected)} file(s) rejected whole; see the log")
    log.info("every file taken was accepted")
    return {"rejected_whole": 0}


# --- retries ----------------------------------------------------------------------------


def is_transient(exc: BaseException) -> bool:
    """True for a fault that may pass by itself: the network or the database let us down.

    Data errors never get here (the pipeline records them as rejections). The store
    refusing or dropping connections, a serialisation failure or a deadlock is
    transient (:func:`vehiclehub.store.db.is_transient_store_fault`), also when it
    stopped the store from opening (``StoreUnavailable.transient``). A bad
    configuration, a store that cannot work as configured (wrong URL, password or
    database), a refused host key or a bug is not: retrying it only delays the alarm.
    """
    from sqlalchemy import exc as sa_exc

    from vehiclehub.store.db import StoreUnavailable, is_transient_store_fault

    if isinstance(exc, StoreUnavailable):
        return exc.transient
    code = exit_code_of(exc)  # the hub's own errors, by the exit code table
    if code is not None:
        # Another run (a manual one) holding the store will end; a configuration, a
        # preflight check or a failed run will not mend by waiting.
        return code is ExitCode.STORE_BUSY
    if isinstance(exc, sa_exc.DBAPIError | sa_exc.DisconnectionError):
        return isinstance(exc, sa_exc.DisconnectionError) or is_transient_store_fault(exc)
    return isinstance(
        exc,
        (
            ConnectionError,  # refused, reset, broken pipe
            TimeoutError,
            sa_exc.TimeoutError,  # connection pool exhausted
        ),
    )


class TransientOnlyRetryPolicy(RetryPolicy):
    """Retry transient faults with the task's backoff; fail anything else at once.

    Airflow 3.3's retry policy (AIP-105) decides per exception in the worker; it takes
    the place of wrapping every task body to raise ``AirflowFailException``.
    """

    def evaluate(
        self,
        exception: BaseException,
        try_number: int,
        max_tries: int,
        context: Context | None = None,
    ) -> RetryDecision:
        name = type(exception).__name__
        if is_transient(exception):
            return RetryDecision.retry(reason=f"transient {name}: retrying with backoff")
        return RetryDecision.fail(
            reason=f"{name} is not transient: not retried; fix the cause and clear the task"
        )


#: Names the Celery worker whose task processes run with it (docker/airflow.env).
WORKER_HOSTNAME_VARIABLE = "VHUB_WORKER_HOSTNAME"


def worker_hostname() -> str:
    """The host name a task instance records (Airflow's ``[core] hostname_callable``):
    ``VHUB_WORKER_HOSTNAME`` when set, so that several workers on one host are told
    apart, else the host's fully qualified name, as Airflow's default."""
    return os.environ.get(WORKER_HOSTNAME_VARIABLE) or socket.getfqdn()
