"""The agencies behind a real OpenSSH ``sshd`` on 127.0.0.1: for ``vhub demo --sftp``, the
SFTP tests and the SFTP benchmark.

Runs as root with its own config, host keys (ed25519, ecdsa, rsa), pid file and log in a
temporary directory, in the foreground (``-D -e``). Each agency gets its own unix account
``vhub_<agency>`` (created with ``useradd`` when missing, kept afterwards) and its own root
``<tmp>/agencies/<agency>`` with ``outbox/`` and ``inbox/``. sftp is ``internal-sftp``.

Use ``running_sshd()`` as a context manager; the tests' fixtures are in
``tests/integration/sshd.py``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from vehiclehub.config import AGENCIES, AgencyEndpoint

SSHD = "/usr/sbin/sshd"
KEY_TYPES = ("ed25519", "ecdsa", "rsa")
HOST = "127.0.0.1"


def unix_user(agency: str) -> str:
    return f"vhub_{agency}"


def ensure_openssh() -> str | None:
    """Install openssh-server if sshd is missing; return a reason to skip, or None."""
    if os.geteuid() != 0:
        return "the sshd tests run a real sshd with several accounts and need root"
    if Path(SSHD).exists() and shutil.which("ssh-keygen"):
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-q"],
        [
            "apt-get",
            "install",
            "-y",
            "-q",
            "-o",
            "DPkg::Lock::Timeout=120",
            "--no-install-recommends",
            "openssh-server",
        ],
    ):
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"openssh-server is not installed and {' '.join(command)} failed: {exc}"
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
            return f"openssh-server is not installed and {' '.join(command)} failed: {tail}"
    if not Path(SSHD).exists():
        return "openssh-server installed but /usr/sbin/sshd is still missing"
    return None


def _ensure_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    # '*' (not the default '!') so that sshd without PAM does not see a locked account.
    command = ["useradd", "--no-create-home", "--home-dir", "/nonexistent"]
    command += ["--shell", "/usr/sbin/nologin", "--password", "*", name]
    for _ in range(20):  # another process may hold the /etc/passwd lock for a moment
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode in (0, 9):  # 9: created meanwhile by someone else
            return pwd.getpwnam(name)
        time.sleep(0.25)
    raise RuntimeError(f"useradd {name} failed: {done.stderr.strip()}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _keygen(path: Path, key_type: str, comment: str) -> Path:
    bits = ["-b", "3072"] if key_type == "rsa" else []
    subprocess.run(
        ["ssh-keygen", "-q", "-t", key_type, *bits, "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path


def fingerprint_of(public_key: Path) -> str:
    """``SHA256:...`` of a public key file, as OpenSSH's own ssh-keygen prints it."""
    out = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(public_key)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.split()[1]


def _privsep_dir() -> None:
    """sshd refuses to start (even ``-t``) without its privilege separation directory."""
    Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class SshdServer:
    """One sshd with an account and an exchange root per agency."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = _free_port()
        self.etc = base / "etc"
        self.keys = base / "client_keys"
        self.authorized = base / "authorized_keys"
        self.agencies_dir = base / "agencies"
        self.log_path = base / "sshd.log"
        self.config_path = self.etc / "sshd_config"
        self.process: subprocess.Popen[bytes] | None = None
        for directory in (self.etc, self.keys, self.authorized, self.agencies_dir):
            directory.mkdir(parents=True)
        # The agency accounts must be able to reach their roots and authorized_keys.
        os.chmod(base, 0o755)
        os.chmod(self.authorized, 0o755)
        os.chmod(self.agencies_dir, 0o755)
        self.host_keys = {
            kind: _keygen(self.etc / f"ssh_host_{kind}_key", kind, f"vhub-test-host-{kind}")
            for kind in KEY_TYPES
        }
        self.users = {agency: _ensure_user(unix_user(agency)) for agency in AGENCIES}
        for agency in AGENCIES:
            (self.authorized / unix_user(agency)).touch(mode=0o644)
            self.client_key(agency, "ed25519")
        self.reset()
        self._write_config()
        self.known_hosts_path = self.known_hosts()

    # --- configuration ------------------------------------------------------------

    def _write_config(self) -> None:
        lines = [
            f"Port {self.port}",
            f"ListenAddress {HOST}",
            *(f"HostKey {path}" for path in self.host_keys.values()),
            f"PidFile {self.base / 'sshd.pid'}",
            "UsePAM no",
            "StrictModes no",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            f"AuthorizedKeysFile {self.authorized}/%u",
            "PermitRootLogin no",
            f"AllowUsers {' '.join(unix_user(a) for a in AGENCIES)}",
            "Subsystem sftp internal-sftp",
            "ForceCommand internal-sftp",
            "AllowTcpForwarding no",
            "X11Forwarding no",
            "MaxStartups 50",
            "LogLevel VERBOSE",
        ]
        self.config_path.write_text("\n".join(lines) + "\n")
        _privsep_dir()
        test = subprocess.run(
            [SSHD, "-t", "-f", str(self.config_path)], capture_output=True, text=True
        )
        if test.returncode != 0:
            raise RuntimeError(f"sshd rejects its test config: {test.stderr.strip()}")

    def client_key(self, agency: str, key_type: str = "ed25519") -> Path:
        """The agency's private key of that type, made and authorized on first use."""
        path = self.keys / f"{agency}_{key_type}"
        if not path.exists():
            _keygen(path, key_type, f"vhub-test-{agency}-{key_type}")
            public = path.with_suffix(".pub").read_text()
            with (self.authorized / unix_user(agency)).open("a") as authorized:
                authorized.write(public)
        return path

    def unauthorized_key(self) -> Path:
        """A key that no account accepts."""
        path = self.keys / "stranger_ed25519"
        if not path.exists():
            _keygen(path, "ed25519", "vhub-test-stranger")
        return path

    def known_hosts(self, key_types: tuple[str, ...] = KEY_TYPES, name: str = "") -> Path:
        """A known_hosts file with this server's host keys of the given types."""
        path = self.base / f"known_hosts{name or '_' + '_'.join(key_types)}"
        lines = []
        for kind in key_types:
            algorithm, blob = self.host_keys[kind].with_suffix(".pub").read_text().split()[:2]
            lines.append(f"[{HOST}]:{self.port} {algorithm} {blob}")
        path.write_text("\n".join(lines) + "\n")
        return path

    def foreign_known_hosts(self) -> Path:
        """A known_hosts naming this host:port with a key the server does not have."""
        key = self.keys / "impostor_ed25519"
        if not key.exists():
            _keygen(key, "ed25519", "vhub-test-impostor")
        algorithm, blob = key.with_suffix(".pub").read_text().split()[:2]
        path = self.base / "known_hosts_foreign"
        path.write_text(f"[{HOST}]:{self.port} {algorithm} {blob}\n")
        return path

    def host_fingerprint(self, key_type: str) -> str:
        return fingerprint_of(self.host_keys[key_type].with_suffix(".pub"))

    # --- agency roots -------------------------------------------------------------

    def root(self, agency: str) -> Path:
        return self.agencies_dir / agency

    def url(self, agency: str) -> str:
        return f"sftp://{unix_user(agency)}@{HOST}:{self.port}{self.root(agency)}"

    def endpoint(
        self,
        agency: str,
        key_type: str = "ed25519",
        *,
        known_hosts: Path | None = None,
        private_key: Path | None = None,
        url: str | None = None,
        connect_timeout_s: float = 5.0,
        retries: int = 1,
        backoff_s: float = 0.05,
    ) -> AgencyEndpoint:
        return AgencyEndpoint(
            url=url or self.url(agency),
            private_key=private_key or self.client_key(agency, key_type),
            known_hosts=known_hosts or self.known_hosts_path,
            connect_timeout_s=connect_timeout_s,
            retries=retries,
            backoff_s=backoff_s,
        )

    def reset(self) -> None:
        """Empty every agency root: fresh outbox/ and inbox/, owned by the agency account."""
        for agency, user in self.users.items():
            root = self.root(agency)
            if root.exists():
                shutil.rmtree(root)
            for directory in (root, root / "outbox", root / "inbox"):
                directory.mkdir()
                os.chown(directory, user.pw_uid, user.pw_gid)

    def put_outbox(self, agency: str, name: str, data: bytes) -> Path:
        """Drop a file in an outbox as the agency would (owned by its account)."""
        path = self.root(agency) / "outbox" / name
        path.write_bytes(data)
        user = self.users[agency]
        os.chown(path, user.pw_uid, user.pw_gid)
        return path

    # --- process control ----------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 15.0) -> None:
        if self.running:
            return
        _privsep_dir()
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited at start:\n{self.log_tail()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection((HOST, self.port), timeout=1) as probe,
            ):
                probe.settimeout(2)
                if probe.recv(4) == b"SSH-":
                    return
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"sshd did not answer on {HOST}:{self.port}:\n{self.log_tail()}")

    def _signal_all(self, signum: int) -> None:
        """Signal the listener and every session process under it."""
        if self.process is None:
            return
        master = self.process.pid
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(master, signal.SIGSTOP)  # no new sessions while we collect them
        for pid in [*_descendants(master), master]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
        with contextlib.suppress(ProcessLookupError):
            os.kill(master, signal.SIGCONT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Stop gracefully (SIGTERM), sessions included."""
        self._signal_all(signal.SIGTERM)

    def kill(self) -> None:
        """Kill at once (SIGKILL), sessions included: the connection drops mid-transfer."""
        self._signal_all(signal.SIGKILL)

    def restart(self) -> None:
        """Start again on the same port with the same host keys."""
        if self.running:
            self.stop()
        self.start()

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def running_sshd() -> Iterator[SshdServer]:
    """A started server in a fresh temporary directory, stopped and removed afterwards."""
    reason = ensure_openssh()
    if reason:
        raise RuntimeError(reason)
    base = Path(tempfile.mkdtemp(prefix="vhub-sshd-"))
    try:
        server = SshdServer(base)
        server.start()
        try:
            yield server
        finally:
            server.kill()
    finally:
        shutil.rmtree(base, ignore_errors=True)
