"""Which faults a task retries: only those that may pass by themselves.

The network or the database letting us down is retried with the task's backoff; a bad
configuration, a refused host key, a failed preflight or a bug fails at once, since
retrying it only delays the alarm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import RetryDecision, RetryPolicy

from vehiclehub.errors import ExitCode, exit_code_of

if TYPE_CHECKING:
    from airflow.sdk import Context


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
