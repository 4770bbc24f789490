"""The pytest fixtures of the real OpenSSH ``sshd`` (``vehiclehub_samples.sshd``):
``sshd_server`` (function scope: a running server with empty agency roots) and
``sshd_session`` (one server for the session)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vehiclehub_samples.sshd import SshdServer, ensure_openssh, running_sshd


@pytest.fixture(scope="session")
def sshd_session() -> Iterator[SshdServer]:
    """One sshd for the whole test session (skipped if OpenSSH cannot be installed)."""
    reason = ensure_openssh()
    if reason:
        pytest.skip(reason)
    with running_sshd() as server:
        yield server


@pytest.fixture
def sshd_server(sshd_session: SshdServer) -> Iterator[SshdServer]:
    """The session's sshd, running, with empty agency roots."""
    sshd_session.start()
    sshd_session.reset()
    yield sshd_session
    if not sshd_session.running:
        sshd_session.start()
