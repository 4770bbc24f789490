"""The agencies' SFTP endpoints from Airflow connections.

An Airflow connection ``sftp_<agency>`` (type sftp or ssh), when it exists, replaces
the configuration file's ``[agencies.<agency>]`` url: host, port and login; the
exchange root in ``schema`` (or the extra ``path``); the client key in the extra
``private_key`` (the key itself or a path) or ``key_file``; the server's host key in
the extra ``host_key`` (``ssh-ed25519 AAAA...``), or a known_hosts file in
``known_hosts``. Host keys are always verified: a connection asking to skip the check
is a configuration error.

The extras are read here, not by the SSH provider's ``SSHHook`` (7.x), which cannot do
it for us: it only parses a connection it looks up itself by id, so a connection handed
in cannot be checked; a ``no_host_key_check`` extra makes it use ``AutoAddPolicy``, so it
would have to be refused here anyway; it takes the key file and proxy command from the
worker's ``~/.ssh/config`` and the login from the worker's user when the connection
lacks them; it reads one host key only, and a bare key without its type as RSA; and it
gives paramiko objects where the exchange takes a key file and a known_hosts file.
Nothing else of the SFTP and SSH providers is used, so they are not dependencies:
Airflow reads a connection of type sftp or ssh (``airflow connections add``,
``AIRFLOW_CONN_SFTP_<AGENCY>``, a secrets backend) without them.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from vehiclehub.config import AGENCIES, AgencyEndpoint, ConfigError, Settings


def connection_id(agency: str) -> str:
    """The Airflow connection that, when defined, gives the agency's SFTP endpoint."""
    return f"sftp_{agency}"


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
