"""The SFTP exchange (``sftp://user@host:port/path`` urls): how the hub reaches the agencies.

The path is the agency root holding ``outbox/`` and ``inbox/`` (port 22 when omitted).

Host keys are always verified against the endpoint's own ``known_hosts`` file (never the
user's ``~/.ssh``, never ``AutoAddPolicy``): an unknown or changed key refuses the
connection at once, without retries, naming the key the server offered by its OpenSSH
``SHA256:`` fingerprint so an operator can check it with the agency. Network trouble
(refused, timeouts, dropped connections) and authentication failures are retried with
exponential backoff (tenacity) before the exchange is declared unavailable.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, NoReturn, TypeVar
from urllib.parse import unquote, urlparse

import paramiko
import tenacity

from vehiclehub.config import AgencyEndpoint
from vehiclehub.exchange.base import PART_SUFFIX, ExchangeMisconfigured, ExchangeUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Errors that mean the network or the SSH session let us down (worth retrying).
_TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    paramiko.SSHException,
    paramiko.SFTPError,
)

#: Bytes of read-ahead queued at a time while downloading (0: no read-ahead). paramiko's
#: prefetch is asked for one window at a time, so the pending requests and buffered
#: replies stay bounded whatever the file size, and a failed download leaves at most one
#: window of requests behind. See benchmarks/sftp_throughput.py for the measurements.
PREFETCH_WINDOW = 8 << 20
#: Upload chunk read from the local source.
UPLOAD_CHUNK = 1 << 20


class HostKeyRejected(ExchangeUnavailable):
    """The server's host key is unknown or differs from known_hosts; never retried."""


def sha256_fingerprint(key: paramiko.PKey) -> str:
    """The key's fingerprint as OpenSSH prints it: ``SHA256:`` + unpadded base64."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


class _RejectUnknownHost(paramiko.RejectPolicy):
    """RejectPolicy, but the refusal says which key was offered."""

    def __init__(self, agency: str, address: str, known_hosts: Path) -> None:
        self.agency = agency
        self.address = address
        self.known_hosts = known_hosts

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> NoReturn:
        raise HostKeyRejected(
            f"{self.agency}: host key of {self.address} is not in {self.known_hosts}; "
            f"the server offered {key.get_name()} {sha256_fingerprint(key)}. Refusing to "
            "connect: confirm this fingerprint with the agency before adding it."
        )


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _check_name(name: str) -> str:
    """A bare file name: no directories, so nothing outside outbox/ or inbox/ is touched."""
    if not name or name in (".", "..") or "/" in name or "\x00" in name:
        raise ValueError(f"not a plain file name: {name!r}")
    return name


def _drop_stale_prefetch(remote: paramiko.SFTPFile, position: int) -> None:
    """Free read-ahead replies for offsets already read.

    paramiko's prefetch can declare itself done while its thread is still queueing
    requests (a race under load); reads then go synchronous and the late replies stay
    in the file's buffer until it is closed, so memory grows with the file size
    (measured: 83 MB buffered for a 1.5 GB file). Dropping them after each window keeps
    the buffer within about two windows. Uses paramiko internals, defensively.
    """
    buffered = getattr(remote, "_prefetch_data", None)
    lock = getattr(remote, "_prefetch_lock", None)
    if not isinstance(buffered, dict) or lock is None:
        return
    with lock:
        for offset in [offset for offset in buffered if offset < position]:
            del buffered[offset]


class SftpExchange:
    """An agency root on an SFTP server."""

    def __init__(self, agency: str, endpoint: AgencyEndpoint) -> None:
        self.agency = agency
        self.endpoint = endpoint
        parsed = urlparse(endpoint.url)
        if parsed.scheme != "sftp" or not parsed.hostname:
            raise ExchangeUnavailable(f"{agency}: not an sftp://user@host/path url")
        try:
            self.port = parsed.port or 22
        except ValueError as exc:
            raise ExchangeUnavailable(f"{agency}: bad port in exchange url: {exc}") from exc
        self.host = parsed.hostname
        self.user = unquote(parsed.username or "")
        self.root = unquote(parsed.path).rstrip("/") or "."
        host_part = f"[{self.host}]" if ":" in self.host else self.host
        self.address = f"{host_part}:{self.port}"
        self.description = f"{agency} at sftp://{self.user}@{self.address}{unquote(parsed.path)}"
        self.prefetch_window = PREFETCH_WINDOW
        if not self.user:
            raise ExchangeUnavailable(f"{self.description}: the url names no user")
        if endpoint.known_hosts is None:
            raise ExchangeUnavailable(
                f"{self.description}: no known_hosts configured; host keys are always verified"
            )
        if endpoint.private_key is None:
            raise ExchangeUnavailable(f"{self.description}: no private_key configured")
        self._pkey = self._load_key(endpoint.private_key)
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        sftp = self._session()
        try:
            outbox = sftp.stat(self._outbox())
        except FileNotFoundError:
            outbox = None
        except _TRANSIENT as exc:
            self.close()
            raise self._unavailable("checking outbox/", exc) from exc
        if outbox is None or not stat.S_ISDIR(outbox.st_mode or 0):
            self.close()
            raise ExchangeMisconfigured(f"{self.description}: no outbox/ under {self.root}")

    # --- the Exchange protocol ------------------------------------------------------

    def list_outbox(self) -> list[str]:
        return self._idempotent("listing outbox/", lambda sftp: self._list(sftp, self._outbox()))

    def read_outbox(self, name: str, limit: int | None = None) -> bytes:
        path = f"{self._outbox()}/{_check_name(name)}"

        def read(sftp: paramiko.SFTPClient) -> bytes:
            with sftp.open(path, "rb") as remote:
                size = remote.stat().st_size or 0
                if limit is not None and size > limit:
                    return remote.read(limit)
                data = remote.read()
            if len(data) != size:
                raise ExchangeUnavailable(
                    f"{self.description}: outbox/{name} read {len(data)} bytes "
                    f"but the server reports {size}"
                )
            return data

        return self._idempotent(f"reading outbox/{name}", read)

    def copy_outbox(self, name: str, sink: BinaryIO, chunk_size: int = 1 << 20) -> int:
        """Stream ``outbox/name`` into ``sink``; a cut transfer raises ExchangeUnavailable.

        Memory stays bounded by ``prefetch_window`` plus ``chunk_size``.
        """
        path = f"{self._outbox()}/{_check_name(name)}"
        sftp = self._session()
        copied = 0
        size = -1
        try:
            with sftp.open(path, "rb") as remote:
                size = remote.stat().st_size or 0
                for chunk in self._read_ahead(remote, size, chunk_size):
                    sink.write(chunk)
                    copied += len(chunk)
        except _TRANSIENT as exc:
            if self._file_level(exc):
                raise
            of = f" of {size}" if size >= 0 else ""
            raise self._unavailable(
                f"copying outbox/{name} (cut after {copied}{of} bytes)", exc
            ) from exc
        if copied != size:
            raise ExchangeUnavailable(
                f"{self.description}: outbox/{name} copied {copied} bytes "
                f"but the server reports {size}"
            )
        return copied

    def put_inbox(self, name: str, source: BinaryIO) -> None:
        """Upload to ``inbox/name.part``, check its size, then rename it over ``inbox/name``.

        The rename is posix-rename@openssh.com, so a repeated push replaces the old file.
        """
        inbox = self._inbox()
        final = f"{inbox}/{_check_name(name)}"
        part = final + PART_SUFFIX
        sftp = self._session()
        sent = 0
        try:
            try:
                sftp.stat(inbox)
            except FileNotFoundError:
                try:
                    sftp.mkdir(inbox)
                except OSError:
                    sftp.stat(inbox)  # made meanwhile by someone else, or a real error
            with contextlib.suppress(FileNotFoundError):
                sftp.remove(part)  # a stale part from an interrupted push
            with sftp.open(part, "wb") as remote:
                remote.set_pipelined(True)
                while chunk := source.read(UPLOAD_CHUNK):
                    remote.write(chunk)
                    sent += len(chunk)
            uploaded = sftp.stat(part).st_size
            if uploaded != sent:
                raise ExchangeUnavailable(
                    f"{self.description}: inbox/{name}.part holds {uploaded} bytes, sent {sent}"
                )
            sftp.posix_rename(part, final)
        except _TRANSIENT as exc:
            if self._file_level(exc):
                self._remove_quietly(part)
                raise
            raise self._unavailable(
                f"uploading inbox/{name} (cut after {sent} bytes)", exc
            ) from exc
        except BaseException:
            self._remove_quietly(part)
            raise

    def list_inbox(self) -> list[str]:
        def listing(sftp: paramiko.SFTPClient) -> list[str]:
            try:
                return self._list(sftp, self._inbox())
            except FileNotFoundError:
                return []

        return self._idempotent("listing inbox/", listing)

    def close(self) -> None:
        sftp, client = self._sftp, self._client
        self._sftp = self._client = None
        for resource in (sftp, client):
            if resource is not None:
                try:
                    resource.close()
                except Exception:  # closing a dead connection may fail; nothing to save
                    log.debug("%s: error while closing", self.description, exc_info=True)

    # --- connection -------------------------------------------------------------------

    def _load_key(self, path: Path) -> paramiko.PKey:
        try:
            return paramiko.PKey.from_path(path)
        except (OSError, paramiko.SSHException, ValueError) as exc:
            raise ExchangeUnavailable(
                f"{self.description}: cannot load private key {path}: {_describe(exc)}"
            ) from exc

    def _session(self) -> paramiko.SFTPClient:
        """The open SFTP session, (re)connecting with retries if there is none.

        ``endpoint.retries`` retries after the first attempt, waiting ``endpoint.backoff_s``
        and doubling it each time; a refused host key is never retried.
        """
        if self._sftp is not None and self._alive():
            return self._sftp
        self.close()
        retries = self.endpoint.retries
        attempts = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(retries + 1),
            wait=tenacity.wait_exponential(multiplier=self.endpoint.backoff_s, exp_base=2),
            # includes AuthenticationException, retried by spec
            retry=tenacity.retry_if_exception_type(_TRANSIENT),
            before_sleep=self._log_retry,
        )
        try:
            attempts(self._connect_checked)
        except tenacity.RetryError as exhausted:
            last = exhausted.last_attempt.exception()
            raise ExchangeUnavailable(
                f"{self.agency}: cannot reach {self.address} as {self.user} after "
                f"{retries + 1} attempt(s): {_describe(last or exhausted)}"
            ) from last
        assert self._sftp is not None
        return self._sftp

    def _connect_checked(self) -> None:
        """One attempt to connect; a changed host key becomes :class:`HostKeyRejected`."""
        try:
            self._connect_once()
        except HostKeyRejected:
            self.close()
            raise
        except paramiko.BadHostKeyException as exc:
            self.close()
            raise HostKeyRejected(
                f"{self.agency}: host key of {self.address} has CHANGED: the server "
                f"offered {exc.key.get_name()} {sha256_fingerprint(exc.key)} but "
                f"{self.endpoint.known_hosts} expects "
                f"{exc.expected_key.get_name()} {sha256_fingerprint(exc.expected_key)}. "
                "Refusing to connect (possible interception); confirm with the agency."
            ) from exc
        except _TRANSIENT:
            self.close()
            raise

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        """The warning before each retry: what failed, which retry comes, after how long."""
        failed = state.outcome.exception() if state.outcome is not None else None
        log.warning(
            "%s: connecting to %s failed (%s); retry %d/%d in %.1fs",
            self.agency,
            self.address,
            _describe(failed) if failed is not None else "?",
            state.attempt_number,
            self.endpoint.retries,
            state.next_action.sleep if state.next_action is not None else 0.0,
        )

    def _connect_once(self) -> None:
        known_hosts = self.endpoint.known_hosts
        assert known_hosts is not None
        timeout = self.endpoint.connect_timeout_s
        client = paramiko.SSHClient()
        self._client = client
        # Only this endpoint's file: never the user's ~/.ssh/known_hosts.
        client.load_host_keys(str(known_hosts))
        client.set_missing_host_key_policy(
            _RejectUnknownHost(self.agency, self.address, known_hosts)
        )
        client.connect(
            self.host,
            port=self.port,
            username=self.user,
            pkey=self._pkey,
            allow_agent=False,
            look_for_keys=False,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            channel_timeout=timeout,
        )
        sftp = client.open_sftp()
        # A stalled server must not hang a read forever.
        sftp.get_channel().settimeout(timeout)  # type: ignore[union-attr]
        self._sftp = sftp

    def _alive(self) -> bool:
        transport = self._client.get_transport() if self._client is not None else None
        channel = self._sftp.get_channel() if self._sftp is not None else None
        return bool(
            transport is not None
            and transport.is_active()
            and channel is not None
            and not channel.closed
        )

    def _file_level(self, exc: BaseException) -> bool:
        """True for a server's answer about a file (no such file, permission denied...).

        Those are SFTP status replies on a live session, reported as OSError with an
        errno; anything else (EOF, timeouts, SSH errors, a dead transport) is the link.
        """
        if not isinstance(exc, OSError) or isinstance(exc, TimeoutError):
            return False
        return exc.errno is not None and self._alive()

    def _idempotent(self, what: str, operation: Callable[[paramiko.SFTPClient], T]) -> T:
        """Run a read-only operation; if the connection dropped, reconnect and run it again."""
        for attempt in (1, 2):
            sftp = self._session()
            try:
                return operation(sftp)
            except _TRANSIENT as exc:
                if self._file_level(exc):
                    raise
                if attempt == 2:
                    raise self._unavailable(what, exc) from exc
                log.warning("%s: %s failed (%s); reconnecting", self.agency, what, _describe(exc))
                self.close()
        raise AssertionError("unreachable")

    def _unavailable(self, what: str, exc: BaseException) -> ExchangeUnavailable:
        self.close()  # the next call reconnects
        return ExchangeUnavailable(f"{self.description}: {what} failed: {_describe(exc)}")

    def _remove_quietly(self, path: str) -> None:
        if self._sftp is None or not self._alive():
            return
        with contextlib.suppress(*_TRANSIENT):
            self._sftp.remove(path)

    def _read_ahead(self, remote: paramiko.SFTPFile, size: int, chunk_size: int) -> Iterator[bytes]:
        """The file's bytes up to ``size`` (or EOF), read ahead one window at a time."""
        window = self.prefetch_window or size
        position = 0
        while position < size:
            end = min(position + window, size)
            if self.prefetch_window:
                remote.prefetch(end)  # queues reads from the current position up to ``end``
            while position < end:
                chunk = remote.read(min(chunk_size, end - position))
                if not chunk:
                    return  # EOF before ``size``: the caller sees the short count
                position += len(chunk)
                yield chunk
            _drop_stale_prefetch(remote, position)
        # Anything past the size stat gave us means the file changed under us.
        if extra := remote.read(1):
            yield extra

    def _list(self, sftp: paramiko.SFTPClient, directory: str) -> list[str]:
        return sorted(
            entry.filename
            for entry in sftp.listdir_attr(directory)
            if entry.st_mode is not None and stat.S_ISREG(entry.st_mode)
        )

    def _outbox(self) -> str:
        return f"{self.root}/outbox"

    def _inbox(self) -> str:
        return f"{self.root}/inbox"
