"""Progress of a run's long steps, drawn for a person at a terminal, silent otherwise.

The stages announce their long steps here — files taken, rows loaded, rules
evaluated — and go on at full speed when nobody watches: only the ``vhub`` command,
on a terminal and not inside an Airflow task, installs a display (rich's).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

#: Moves a step on by that many units (files, rows, rules).
Advance = Callable[[int], None]

_shown: Any = None  # the rich Progress while a display is installed


def _ignore(units: int = 1) -> None:
    """Nobody watches: nothing to draw."""


@contextmanager
def step(description: str, total: int | None = None) -> Iterator[Advance]:
    """A long step of ``total`` units (unknown when None); yields its advance callable."""
    shown = _shown
    if shown is None:
        yield _ignore
        return
    task = shown.add_task(description, total=total)

    def advance(units: int = 1) -> None:
        shown.advance(task, units)

    try:
        yield advance
    finally:
        # Ends full at what was done (rows rejected on the way never come).
        shown.update(task, completed=shown.tasks[task].completed, total=shown.tasks[task].completed)


def watched(stream: TextIO) -> bool:
    """Whether a person watches ``stream``: a terminal, and not an Airflow task's log."""
    return stream.isatty() and "AIRFLOW_CTX_DAG_ID" not in os.environ


@contextmanager
def shown_on(stream: TextIO) -> Iterator[None]:
    """Draw the steps announced meanwhile on ``stream`` when a person watches it."""
    global _shown
    if not watched(stream):
        yield
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(file=stream)) as shown:
        _shown = shown
        try:
            yield
        finally:
            _shown = None
