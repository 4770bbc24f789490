"""Fixtures for the integration tests: a real OpenSSH sshd (see sshd.py)."""

from tests.integration.sshd import sshd_server, sshd_session

__all__ = ["sshd_server", "sshd_session"]
