"""SftpExchange against a real OpenSSH sshd on 127.0.0.1 (vehiclehub_samples.sshd)."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import time
from pathlib import Path

import pytest

from vehiclehub.exchange import ExchangeUnavailable, complete_files, open_exchange
from vehiclehub.exchange.sftp import HostKeyRejected, SftpExchange
from vehiclehub_samples.sshd import KEY_TYPES, SshdServer, unix_user

pytestmark = pytest.mark.sshd

AGENCY = "customs"
DATA = "customs_declarations_20251103_001.csv"
MANIFEST = "customs_declarations_20251103_001.manifest.json"
LARGE = 48 << 20  # big enough that a kill lands mid-transfer, whatever the windows


def snapshot(directory: Path) -> dict[str, tuple[int, int, int, str]]:
    """Everything that would show a modification: name, size, mtime, mode, content."""
    return {
        p.name: (
            p.stat().st_size,
            p.stat().st_mtime_ns,
            p.stat().st_mode,
            hashlib.sha256(p.read_bytes()).hexdigest(),
        )
        for p in sorted(directory.iterdir())
    }


class KillAfter(io.BytesIO):
    """A sink that kills the server once ``limit`` bytes have been written to it."""

    def __init__(self, server: SshdServer, limit: int) -> None:
        super().__init__()
        self.server, self.limit = server, limit

    def write(self, data: bytes) -> int:  # type: ignore[override]
        written = super().write(data)
        if self.server.running and self.tell() >= self.limit:
            self.server.kill()
        return written


class KillingSource(io.BytesIO):
    """A source that kills the server once ``limit`` bytes have been read from it."""

    def __init__(self, data: bytes, server: SshdServer, limit: int) -> None:
        super().__init__(data)
        self.server, self.limit = server, limit

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        if self.server.running and self.tell() >= self.limit:
            self.server.kill()
        return chunk


def test_list_read_copy_put_round_trip(sshd_server: SshdServer) -> None:
    data = b"declaration_no,vin\n" + b"531620251000000001,LSVAU2180N2183294\n" * 1000
    sshd_server.put_outbox(AGENCY, DATA, data)
    sshd_server.put_outbox(AGENCY, MANIFEST, b'{"file": "%s"}' % DATA.encode())
    (sshd_server.root(AGENCY) / "outbox" / "archive").mkdir()

    with open_exchange(AGENCY, sshd_server.endpoint(AGENCY)) as exchange:
        assert isinstance(exchange, SftpExchange)
        assert exchange.description == (
            f"customs at sftp://{unix_user(AGENCY)}@127.0.0.1:{sshd_server.port}"
            f"{sshd_server.root(AGENCY)}"
        )
        assert exchange.list_outbox() == [DATA, MANIFEST]  # the directory is not listed
        assert exchange.read_outbox(MANIFEST) == b'{"file": "%s"}' % DATA.encode()
        sink = io.BytesIO()
        assert exchange.copy_outbox(DATA, sink, chunk_size=4096) == len(data)
        assert sink.getvalue() == data

        assert exchange.list_inbox() == []
        exchange.put_inbox("hub_drop_20251103_001.csv", io.BytesIO(b"first"))
        exchange.put_inbox("hub_drop_20251103_001.csv", io.BytesIO(b"second, replacing"))
        assert exchange.list_inbox() == ["hub_drop_20251103_001.csv"]
    inbox = sshd_server.root(AGENCY) / "inbox"
    assert (inbox / "hub_drop_20251103_001.csv").read_bytes() == b"second, replacing"


def test_missing_inbox_is_created_and_listed_empty_before(sshd_server: SshdServer) -> None:
    (sshd_server.root(AGENCY) / "inbox").rmdir()
    with open_exchange(AGENCY, sshd_server.endpoint(AGENCY)) as exchange:
        assert exchange.list_inbox() == []
        exchange.put_inbox("x.csv", io.BytesIO(b"x"))
        assert exchange.list_inbox() == ["x.csv"]


def test_incomplete_files_are_listed_but_not_complete(sshd_server: SshdServer) -> None:
    names = [
        DATA,
        MANIFEST,
        "customs_declarations_20251103_002.csv",  # manifest not arrived yet
        "customs_declarations_20251103_003.csv.part",  # still uploading
        "customs_declarations_20251103_004.csv",
        "customs_declarations_20251103_004.manifest.json.part",
    ]
    for name in names:
        sshd_server.put_outbox(AGENCY, name, b"x")
    with open_exchange(AGENCY, sshd_server.endpoint(AGENCY)) as exchange:
        listed = exchange.list_outbox()
    assert listed == sorted(names)
    assert [entry.data_name for entry in complete_files(listed)] == [DATA]


def test_missing_outbox_is_unavailable(sshd_server: SshdServer) -> None:
    (sshd_server.root(AGENCY) / "outbox").rmdir()
    with pytest.raises(ExchangeUnavailable, match="no outbox/"):
        SftpExchange(AGENCY, sshd_server.endpoint(AGENCY))


def test_changed_host_key_is_refused_at_once(sshd_server: SshdServer) -> None:
    endpoint = sshd_server.endpoint(
        AGENCY, known_hosts=sshd_server.foreign_known_hosts(), retries=3, backoff_s=2.0
    )
    started = time.monotonic()
    with pytest.raises(HostKeyRejected) as refused:
        SftpExchange(AGENCY, endpoint)
    assert time.monotonic() - started < 1.5  # not retried (a retry would sleep 2 s)
    message = str(refused.value)
    assert AGENCY in message
    assert f"127.0.0.1:{sshd_server.port}" in message
    # The key the server offered, fingerprinted exactly as OpenSSH's ssh-keygen -l does.
    assert sshd_server.host_fingerprint("ed25519") in message
    assert "CHANGED" in message
    assert isinstance(refused.value, ExchangeUnavailable)


def test_unknown_host_is_refused_at_once(sshd_server: SshdServer, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("# nothing known yet\n")
    endpoint = sshd_server.endpoint(AGENCY, known_hosts=empty, retries=3, backoff_s=2.0)
    started = time.monotonic()
    with pytest.raises(HostKeyRejected) as refused:
        SftpExchange(AGENCY, endpoint)
    assert time.monotonic() - started < 1.5
    message = str(refused.value)
    assert AGENCY in message and f"127.0.0.1:{sshd_server.port}" in message
    assert any(sshd_server.host_fingerprint(kind) in message for kind in KEY_TYPES)


def test_user_known_hosts_is_not_consulted(
    sshd_server: SshdServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "known_hosts").write_text(sshd_server.known_hosts_path.read_text())
    monkeypatch.setenv("HOME", str(home))
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(HostKeyRejected):
        SftpExchange(AGENCY, sshd_server.endpoint(AGENCY, known_hosts=empty))


def test_connection_refused_is_retried_then_unavailable(
    sshd_server: SshdServer, caplog: pytest.LogCaptureFixture
) -> None:
    sshd_server.stop()  # nothing listens on the port now
    endpoint = sshd_server.endpoint(AGENCY, retries=2, backoff_s=0.2)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING), pytest.raises(ExchangeUnavailable) as failed:
        SftpExchange(AGENCY, endpoint)
    elapsed = time.monotonic() - started
    assert not isinstance(failed.value, HostKeyRejected)
    assert elapsed >= 0.2 + 0.4  # two backoffs, the second doubled
    message = str(failed.value)
    assert AGENCY in message and f"127.0.0.1:{sshd_server.port}" in message
    assert "3 attempt(s)" in message and "Unable to connect" in message
    retried = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    address = f"127.0.0.1:{sshd_server.port}"
    assert [line.split(" failed (")[0] for line in retried] == [
        f"{AGENCY}: connecting to {address}"
    ] * 2
    assert [line.split("); ")[-1] for line in retried] == ["retry 1/2 in 0.2s", "retry 2/2 in 0.4s"]


def test_refused_then_server_back_within_retries(sshd_server: SshdServer) -> None:
    """A server that comes back during the backoff is reached by a later attempt."""
    import threading

    sshd_server.stop()
    restart = threading.Timer(0.5, sshd_server.start)
    restart.start()
    try:
        with open_exchange(AGENCY, sshd_server.endpoint(AGENCY, retries=4, backoff_s=0.4)) as ex:
            assert ex.list_outbox() == []
    finally:
        restart.join()


def test_auth_failure_is_retried_then_unavailable(
    sshd_server: SshdServer, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint = sshd_server.endpoint(
        AGENCY, private_key=sshd_server.unauthorized_key(), retries=1, backoff_s=0.1
    )
    with caplog.at_level(logging.WARNING), pytest.raises(ExchangeUnavailable) as failed:
        SftpExchange(AGENCY, endpoint)
    assert not isinstance(failed.value, HostKeyRejected)
    assert "AuthenticationException" in str(failed.value)
    assert "2 attempt(s)" in str(failed.value)


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_client_key_types(sshd_server: SshdServer, key_type: str) -> None:
    # OpenSSH 9 accepts RSA only with SHA-2 signatures, so rsa passing proves rsa-sha2.
    sshd_server.put_outbox("police", "a.csv", b"a")
    with open_exchange("police", sshd_server.endpoint("police", key_type)) as exchange:
        assert exchange.list_outbox() == ["a.csv"]
    assert f"Accepted publickey for {unix_user('police')}" in sshd_server.log_tail(200)


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_host_key_types(sshd_server: SshdServer, key_type: str) -> None:
    known = sshd_server.known_hosts((key_type,))
    with open_exchange("tax", sshd_server.endpoint("tax", known_hosts=known)) as exchange:
        assert exchange.list_inbox() == []


def test_agencies_are_separate_accounts(sshd_server: SshdServer) -> None:
    # The police key does not open the commerce account.
    endpoint = sshd_server.endpoint(
        "commerce", private_key=sshd_server.client_key("police"), retries=0
    )
    with pytest.raises(ExchangeUnavailable, match="AuthenticationException"):
        SftpExchange("commerce", endpoint)


def test_server_killed_mid_download_raises_then_recovers(sshd_server: SshdServer) -> None:
    data = os.urandom(LARGE)
    sshd_server.put_outbox(AGENCY, DATA, data)
    outbox_before = snapshot(sshd_server.root(AGENCY) / "outbox")
    exchange = SftpExchange(AGENCY, sshd_server.endpoint(AGENCY, retries=0))
    try:
        sink = KillAfter(sshd_server, limit=4 << 20)
        with pytest.raises(ExchangeUnavailable, match=f"copying outbox/{DATA}") as cut:
            exchange.copy_outbox(DATA, sink)
        assert len(sink.getvalue()) < len(data)
        assert f"of {len(data)} bytes" in str(cut.value)

        sshd_server.start()  # same port, same host keys
        again = io.BytesIO()
        assert exchange.copy_outbox(DATA, again) == len(data)  # reconnects by itself
        assert hashlib.sha256(again.getvalue()).digest() == hashlib.sha256(data).digest()
    finally:
        exchange.close()
    assert snapshot(sshd_server.root(AGENCY) / "outbox") == outbox_before


def test_put_interrupted_leaves_no_final_file_and_retry_leaves_one(
    sshd_server: SshdServer,
) -> None:
    data = os.urandom(LARGE)
    name = "hub_drop_20251103_001.csv"
    inbox = sshd_server.root(AGENCY) / "inbox"
    exchange = SftpExchange(AGENCY, sshd_server.endpoint(AGENCY, retries=0))
    try:
        with pytest.raises(ExchangeUnavailable, match=f"uploading inbox/{name}"):
            exchange.put_inbox(name, KillingSource(data, sshd_server, limit=8 << 20))
        assert not (inbox / name).exists()
        assert {p.name for p in inbox.iterdir()} <= {name + ".part"}

        sshd_server.start()
        exchange.put_inbox(name, io.BytesIO(data))  # the retried push
        assert [p.name for p in inbox.iterdir()] == [name]
        assert hashlib.sha256((inbox / name).read_bytes()).digest() == (
            hashlib.sha256(data).digest()
        )
        assert exchange.list_inbox() == [name]
    finally:
        exchange.close()


def test_put_interrupted_keeps_the_previous_version(sshd_server: SshdServer) -> None:
    name = "hub_drop_20251103_001.csv"
    with open_exchange(AGENCY, sshd_server.endpoint(AGENCY)) as exchange:
        exchange.put_inbox(name, io.BytesIO(b"version 1"))
        with pytest.raises(ExchangeUnavailable):
            exchange.put_inbox(name, KillingSource(os.urandom(LARGE), sshd_server, 8 << 20))
    assert (sshd_server.root(AGENCY) / "inbox" / name).read_bytes() == b"version 1"


def test_short_transfer_is_detected(sshd_server: SshdServer) -> None:
    """A file that shrinks under us gives fewer bytes than stat said: that must raise."""
    data = os.urandom(LARGE)
    path = sshd_server.put_outbox(AGENCY, DATA, data)

    class Truncating(io.BytesIO):
        def write(self, chunk: bytes) -> int:  # type: ignore[override]
            if self.tell() == 0:
                os.truncate(path, 1 << 20)
            return super().write(chunk)

    with (
        open_exchange(AGENCY, sshd_server.endpoint(AGENCY)) as exchange,
        pytest.raises(ExchangeUnavailable, match="server reports"),
    ):
        exchange.copy_outbox(DATA, Truncating())


def test_names_cannot_leave_the_box(sshd_server: SshdServer) -> None:
    with open_exchange(AGENCY, sshd_server.endpoint(AGENCY)) as exchange:
        for bad in ("../inbox/x", "", "..", "a/b"):
            with pytest.raises(ValueError):
                exchange.read_outbox(bad)
            with pytest.raises(ValueError):
                exchange.put_inbox(bad, io.BytesIO(b""))


def test_missing_outbox_file_is_a_plain_error(sshd_server: SshdServer) -> None:
    with open_exchange(AGENCY, sshd_server.endpoint(AGENCY)) as exchange:
        with pytest.raises(FileNotFoundError):
            exchange.read_outbox("nope.csv")
        assert exchange.list_outbox() == []  # the session is still usable


def test_outbox_is_never_modified(sshd_server: SshdServer) -> None:
    outbox = sshd_server.root(AGENCY) / "outbox"
    for name in (DATA, MANIFEST, "customs_x_20251103_001.csv.part"):
        sshd_server.put_outbox(AGENCY, name, os.urandom(200_000))
    before = snapshot(outbox)
    dir_before = outbox.stat().st_mtime_ns
    with open_exchange(AGENCY, sshd_server.endpoint(AGENCY)) as exchange:
        for name in exchange.list_outbox():
            exchange.read_outbox(name)
            exchange.copy_outbox(name, io.BytesIO())
            exchange.put_inbox(name, io.BytesIO(b"echo"))
        exchange.list_inbox()
    assert snapshot(outbox) == before
    assert outbox.stat().st_mtime_ns == dir_before
