"""The hub's errors and exit codes, declared once.

Every error the hub raises on purpose derives from :class:`HubError` and carries the
exit code that says what became of the work. ``vhub`` prints such an error in one line
(``vhub: <message>``) and exits with its code; anything else is a defect and shows its
traceback. ``vhub health`` and the Airflow DAG read the same table.

===== ===================== ==========================================================
code  name                  meaning
===== ===================== ==========================================================
0     ``COMPLETED``         the run completed (``vhub health``: every check passed)
1     ``FAILED``            a run failed part-way, with its message; recorded as failed
                            (``vhub health``: the hub itself is not healthy)
2     ``CANNOT_START``      nothing was taken: configuration, store or keys unusable,
                            or a preflight check failed; the message says what to fix
3     ``AGENCY_UNREACHABLE`` ``vhub health`` only: the hub is healthy but an agency's
                            exchange cannot be reached
75    ``STORE_BUSY``        another run holds the store (EX_TEMPFAIL): try again later
===== ===================== ==========================================================
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What a ``vhub`` command's exit status says (the table above)."""

    COMPLETED = 0
    FAILED = 1
    CANNOT_START = 2
    AGENCY_UNREACHABLE = 3
    STORE_BUSY = 75


class HubError(Exception):
    """An error the hub raises on purpose; its message is for the operator."""

    #: The exit status of a command this error ends.
    exit_code: ExitCode = ExitCode.FAILED


class CannotStart(HubError):
    """Nothing can be taken until the operator fixes what the message says."""

    exit_code = ExitCode.CANNOT_START


def exit_code_of(exc: BaseException) -> ExitCode | None:
    """The exit code an error ends a command with; None for a defect (not a HubError)."""
    return exc.exit_code if isinstance(exc, HubError) else None
