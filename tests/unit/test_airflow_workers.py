"""The host name a task instance records."""

from __future__ import annotations

import socket

import pytest

from vehiclehub.airflow.workers import worker_hostname


def test_a_worker_named_in_its_environment_records_that_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VHUB_WORKER_HOSTNAME", "vhub-worker-2")
    assert worker_hostname() == "vhub-worker-2"
    monkeypatch.delenv("VHUB_WORKER_HOSTNAME")
    assert worker_hostname() == socket.getfqdn()
