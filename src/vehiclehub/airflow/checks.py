"""The run's checks and accounts in its task logs.

``preflight`` makes the checks ``vhub run`` makes before anything is taken;
``files_accepted`` ends *skipped* on a night when files were rejected whole, so the
grid shows it while the run succeeds; ``prune`` says what it removed and kept.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

from vehiclehub.config import Settings

if TYPE_CHECKING:
    from vehiclehub.results import PruneResult

log = logging.getLogger(__name__)


def check_before_taking(settings: Settings, day: date) -> dict[str, Any]:
    """The body of ``preflight``: every check of :data:`vehiclehub.preflight.CHECKS`.

    Each problem found is an error line of the task's log, and the task fails with
    ``PreflightFailed`` listing them all, as ``vhub run`` does: a configuration error,
    which the retry policy never retries. Nothing has been taken by then.
    """
    from vehiclehub.preflight import CHECKS, PreflightFailed, preflight

    try:
        preflight(settings, day)
    except PreflightFailed as exc:
        for problem in exc.problems:
            log.error("preflight: %s", problem)
        raise
    passed = [check.__name__ for check in CHECKS]
    log.info("preflight: %d checks passed for %s: %s", len(passed), day, ", ".join(passed))
    return {"business_date": day.isoformat(), "passed": passed}


def log_pruned(pruned: PruneResult) -> None:
    """Say in the task's log what ``prune`` removed and kept, as ``vhub prune`` prints it
    (each path removed has its own line before these)."""
    for line in pruned.summary:
        log.info("prune: %s", line)


def files_rejected_whole(intakes: Iterable[Mapping[str, Any] | None]) -> list[str]:
    """``<agency>/<file>: <reason>`` for every file the night's intakes (their XCom
    values, :func:`intake_summary`) rejected whole."""
    from vehiclehub.intake.take import FileStatus
    from vehiclehub.results import IntakeResult

    taken = [IntakeResult.from_dict(i) for i in intakes if i]
    return [
        f"{intake.agency}/{file.name}: {file.error}"
        for intake in taken
        for file in intake.files_with(FileStatus.REJECTED)
    ]


def check_files_accepted(intakes: Iterable[Mapping[str, Any] | None]) -> dict[str, Any]:
    """The body of ``files_accepted``: done when every file taken was accepted.

    When files were rejected whole, each is logged with its reason and the task ends
    *skipped*: the night's row in the grid shows it (filter on the task's state)
    while the run, whose drops carry the rejections to their senders, succeeds.
    """
    from airflow.sdk.exceptions import AirflowSkipException

    rejected = files_rejected_whole(intakes)
    for line in rejected:
        log.warning("rejected whole: %s", line)
    if rejected:
        raise AirflowSkipException(f"{len(rejected)} file(s) rejected whole; see the log")
    log.info("every file taken was accepted")
    return {"rejected_whole": 0}
