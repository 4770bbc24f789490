"""The hub's settings in an Airflow task.

The hub's TOML file is named by the Airflow Variable ``vehiclehub_config`` when it is
set, else by ``VHUB_CONFIG`` in the worker's environment; the agencies' Airflow
connections then replace their configured urls (:mod:`vehiclehub.airflow.connections`).
Every task opens :func:`hub_settings` first, which also keeps libraries that chat at
INFO (Great Expectations) at WARNING in the task's log.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from vehiclehub.airflow.connections import ConnectionLike, with_connection_endpoints
from vehiclehub.config import AGENCIES, Settings, load_settings

#: The Airflow Variable naming the hub's TOML configuration file.
CONFIG_VARIABLE = "vehiclehub_config"
#: Loggers kept at WARNING in task logs: Great Expectations logs about a hundred INFO
#: lines when it is first imported, which would bury the intake's own lines.
QUIET_LOGGERS = ("great_expectations",)


def config_path(get_variable: Callable[[str], str | None] | None = None) -> str | None:
    """The configuration file: the Airflow Variable if set, else None (``VHUB_CONFIG``)."""
    value = (get_variable or _airflow_variable)(CONFIG_VARIABLE)
    return (value.strip() or None) if value else None


def _airflow_variable(key: str) -> str | None:
    from airflow.sdk import Variable

    value = Variable.get(key, default=None)
    return None if value is None else str(value)


@contextmanager
def hub_settings(
    agencies: Iterable[str] = AGENCIES,
    get_variable: Callable[[str], str | None] | None = None,
    get_connection: Callable[[str], ConnectionLike | None] | None = None,
) -> Iterator[Settings]:
    """The hub's settings for a task, the agencies' Airflow connections applied.

    Key and known_hosts files made from connections live in a private temporary
    directory that is removed when the block ends. Every task opens this block first,
    so it also keeps chatty libraries out of the task's log (:func:`quiet_library_logs`).
    """
    quiet_library_logs()
    settings = load_settings(config_path(get_variable))
    with tempfile.TemporaryDirectory(prefix="vhub-airflow-") as directory:
        yield with_connection_endpoints(settings, Path(directory), agencies, get_connection)


def quiet_library_logs(names: Iterable[str] = QUIET_LOGGERS) -> None:
    """Keep the named libraries' loggers at WARNING: their INFO lines are not the run's news."""
    for name in names:
        logging.getLogger(name).setLevel(logging.WARNING)
