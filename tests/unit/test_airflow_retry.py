"""Which faults a task retries: the transient ones only."""

from __future__ import annotations

from datetime import date

import pytest
from airflow.sdk import RetryAction
from sqlalchemy.exc import OperationalError, ProgrammingError

from vehiclehub.airflow.retry import TransientOnlyRetryPolicy, is_transient
from vehiclehub.config import ConfigError
from vehiclehub.exchange.sftp import HostKeyRejected
from vehiclehub.preflight import PreflightFailed
from vehiclehub.store import StoreUnavailable


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ConnectionResetError("reset by peer"), True),
        (TimeoutError("timed out"), True),
        (OperationalError("SELECT 1", {}, Exception("database is locked")), True),
        (ConfigError("configuration file x does not exist"), False),
        (
            PreflightFailed(date(2025, 11, 3), ["police: the exchange root /x does not exist"]),
            False,
        ),
        (StoreUnavailable("cannot use the store"), False),
        (StoreUnavailable("cannot use the store: refused", transient=True), True),
        (
            OperationalError("connect", {}, Exception('password authentication failed for "x"')),
            False,
        ),
        (HostKeyRejected("host key changed"), False),
        (ProgrammingError("SELECT", {}, Exception("no such column")), False),
        (FileNotFoundError("gone"), False),
        (ValueError("param business_date"), False),
        (KeyError("bug"), False),
    ],
)
def test_only_transient_faults_are_retried(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient
    decision = TransientOnlyRetryPolicy().evaluate(error, try_number=1, max_tries=4)
    assert decision.action == (RetryAction.RETRY if transient else RetryAction.FAIL)
    assert decision.retry_delay is None  # the task's exponential backoff applies
    assert type(error).__name__ in (decision.reason or "")
