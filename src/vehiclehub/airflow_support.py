"""What the Airflow DAG needs beyond the pipeline: settings, business date, endpoints, retries.

The DAG file (``dags/vehiclehub_nightly.py``) only wires tasks; each task body calls
the helpers here and then one stage of :mod:`vehiclehub.pipeline`.

- **Settings**: the TOML file named by the Airflow Variable ``vehiclehub_config``,
  else by ``VHUB_CONFIG`` in the worker's environment (:func:`hub_settings`).
- **Business date**: the local Asia/Shanghai day before the run's scheduled time
  (:func:`business_date_of_run`), or the DAG param ``business_date``.
- **Endpoints**: an Airflow connection ``sftp_<agency>``, when it exists, replaces the
  configuration file's ``[agencies.<agency>]`` url (:func:`endpoint_from_connection`).
- **Retries**: only faults that may pass by themselves are retried
  (:class:`TransientOnlyRetryPolicy`); a configuration error fails at once.

Importing this module touches no file, database or network (the DAG imports it at
parse time): the pipeline, the store and Airflow's runtime are imported when used.
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote
from zoneinfo import ZoneInfo

from airflow.sdk import RetryDecision, RetryPolicy

from vehiclehub.config import AGENCIES, AgencyEndpoint, ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from airflow.sdk import Context

#: Business dates are Asia/Shanghai days (ICD §1); the DAG is scheduled in this zone too.
BUSINESS_TIMEZONE = "Asia/Shanghai"
#: The Airflow Variable naming the hub's TOML configuration file.
CONFIG_VARIABLE = "vehiclehub_config"
#: The DAG param that overrides the business date (reruns, backfills).
BUSINESS_DATE_PARAM = "business_date"


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
        return Connection.get(conn_id)
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
    directory that is removed when the block ends.
    """
    settings = load_settings(config_path(get_variable))
    with tempfile.TemporaryDirectory(prefix="vhub-airflow-") as directory:
        yield with_connection_endpoints(settings, Path(directory), agencies, get_connection)


# --- retries ----------------------------------------------------------------------------


def is_transient(exc: BaseException) -> bool:
    """True for a fault that may pass by itself: the network or the database let us down.

    Data errors never get here (the pipeline records them as rejections). A bad
    configuration, an unusable store (StoreUnavailable says what to fix), a refused
    host key or a bug is not transient: retrying it only delays the alarm.
    """
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, ConfigError):
        return False
    return isinstance(
        exc,
        (
            ConnectionError,  # refused, reset, broken pipe
            TimeoutError,
            sa_exc.OperationalError,  # DBAPI: the database's operation (lost connection, lock)
            sa_exc.DisconnectionError,
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
