"""``vhub run``, stopped at a chosen point of a stage for a test to kill it there.

    python -m tests.integration.killed_run CONFIG DATE STAGE

runs the real command in this process with one change: at ``STAGE``'s stopping point
(see :data:`STOPS`) it prints ``stopped <intake worker pid or ->`` and sleeps, holding
whatever it holds (a transaction open, the store's lease, the intake worker) until it
is killed. The intake's worker process serves every file, not only big ones, so that a
kill during intake finds it busy.
"""

from __future__ import annotations

import importlib
import sys
import time
from typing import Any

from vehiclehub import pipeline
from vehiclehub.cli import main
from vehiclehub.intake.chunks import Preparer

#: stage -> (module, function, which call stops): the points where the run is killed.
STOPS = {
    # The third chunk loaded: earlier files committed, this one's transaction open.
    "intake": ("vehiclehub.intake.load", "load_records", 3),
    # Findings recorded in reconcile's transaction, verdicts not yet.
    "reconcile": ("vehiclehub.rules.engine", "store_verdicts", 1),
    # The drops written and the first agency's delivered, the others' not.
    "publish": ("vehiclehub.pipeline", "_deliver_agency", 2),
}


#: The run's preparers: the intake's worker process serves every file, not only big ones.
PREPARERS: list[Preparer] = []


class EveryFile(Preparer):
    def __init__(self, use_worker: bool | None = None, worker_rows: int = 0) -> None:
        super().__init__(use_worker=True, worker_rows=0)
        PREPARERS.append(self)


def worker_pid() -> int | None:
    return next((p.worker_pid for p in PREPARERS if p.worker_pid), None)


def stop_at(stage: str) -> None:
    module_name, name, nth = STOPS[stage]
    module = importlib.import_module(module_name)
    real = getattr(module, name)
    calls = 0

    def stopping(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == nth:
            print(f"stopped {worker_pid() or '-'}", flush=True)
            time.sleep(600)
        return real(*args, **kwargs)

    setattr(module, name, stopping)


if __name__ == "__main__":
    config, day, stage = sys.argv[1:]
    pipeline.Preparer = EveryFile  # type: ignore[misc]
    stop_at(stage)
    sys.exit(main(["run", "--config", config, "--date", day]))
