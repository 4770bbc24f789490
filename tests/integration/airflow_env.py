"""A throw-away Airflow installation for the DAG tests: its home, metadata DB and CLI.

One ``airflow db migrate`` per test session (SQLite under a temporary AIRFLOW_HOME);
each ``airflow dags test`` runs the real CLI in a subprocess with that environment.
The ambient ``AIRFLOW_*`` variables are dropped so that nothing of the machine's own
Airflow leaks in, and the DAG folder is a copy of the repository's DAG file (Python
writes nothing into the checkout, and no other DAG slows the run down).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "dags" / "vehiclehub_nightly.py"
AIRFLOW = Path(sys.executable).with_name("airflow")
DAG_ID = "vehiclehub_nightly"


@dataclass
class AirflowRun:
    """What one CLI call did."""

    args: list[str]
    returncode: int
    output: str
    seconds: float

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


@dataclass
class AirflowEnv:
    """An AIRFLOW_HOME with a migrated SQLite metadata DB and the DAG folder."""

    home: Path
    dags_folder: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def database(self) -> Path:
        return self.home / "airflow.db"

    def run(
        self, *args: str, extra_env: Mapping[str, str] | None = None, timeout: float = 300
    ) -> AirflowRun:
        """Run ``airflow <args>`` in this environment; output is stdout and stderr merged."""
        command = [str(AIRFLOW), *args]
        started = time.monotonic()
        done = subprocess.run(
            command,
            env={**self.env, **(extra_env or {})},
            cwd=self.home,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
        return AirflowRun(command, done.returncode, done.stdout, time.monotonic() - started)

    def _query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True) as db:
            return db.execute(sql, params).fetchall()

    def latest_run_id(self, dag_id: str = DAG_ID) -> str:
        rows = self._query(
            "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", dag_id
        )
        assert rows, f"no run of {dag_id} in the metadata DB"
        return str(rows[0][0])

    def task_states(self, run_id: str, dag_id: str = DAG_ID) -> dict[str, tuple[str, int]]:
        """task_id -> (state, try_number) of a run's task instances; a mapped task's
        instances as ``task_id[label]`` (its rendered map index, e.g. the feed)."""
        rows = self._query(
            "SELECT task_id, map_index, rendered_map_index, state, try_number FROM task_instance"
            " WHERE dag_id = ? AND run_id = ?",
            dag_id,
            run_id,
        )
        return {
            instance_key(str(t), int(m), r): (str(s), int(n))  # type: ignore[call-overload]
            for t, m, r, s, n in rows
        }

    def return_values(self, run_id: str, dag_id: str = DAG_ID) -> dict[str, object]:
        """task_id (``task_id[label]`` for a mapped task's instance) -> the value the task
        returned (its ``return_value`` XCom)."""
        rows = self._query(
            "SELECT xcom.task_id, xcom.map_index, ti.rendered_map_index, xcom.value FROM xcom"
            " LEFT JOIN task_instance ti ON ti.dag_id = xcom.dag_id AND ti.run_id = xcom.run_id"
            " AND ti.task_id = xcom.task_id AND ti.map_index = xcom.map_index"
            " WHERE xcom.dag_id = ? AND xcom.run_id = ? AND xcom.key = 'return_value'",
            dag_id,
            run_id,
        )
        return {
            instance_key(str(t), int(m), r): (  # type: ignore[call-overload]
                json.loads(v) if isinstance(v, (str, bytes)) else v
            )
            for t, m, r, v in rows
        }


def instance_key(task_id: str, map_index: int, rendered_map_index: object = None) -> str:
    """How the tests name a task instance: its task id, and for an instance of a mapped
    task its label (``intake_police[events]``), else its map index."""
    if map_index < 0:
        return task_id
    return f"{task_id}[{rendered_map_index or map_index}]"


def airflow_environment(home: Path, dags_folder: Path) -> dict[str, str]:
    """The process environment of an isolated Airflow under ``home``."""
    from cryptography.fernet import Fernet

    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.pop("VHUB_CONFIG", None)
    (home / "plugins").mkdir(exist_ok=True)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            # Neither UTC nor Shanghai: the business date must not depend on the OS zone.
            "TZ": "America/New_York",
        }
    )
    return env


@pytest.fixture(scope="session")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowEnv]:
    """One migrated Airflow metadata DB for the session (``airflow db migrate`` once)."""
    if not AIRFLOW.exists():
        pytest.skip(f"no airflow command next to {sys.executable}")
    home = tmp_path_factory.mktemp("airflow_home")
    dags_folder = home / "dags"
    dags_folder.mkdir()
    shutil.copy2(DAG_FILE, dags_folder / DAG_FILE.name)
    environment = AirflowEnv(home, dags_folder, airflow_environment(home, dags_folder))
    migrated = environment.run("db", "migrate", timeout=600)
    assert migrated.returncode == 0, f"airflow db migrate failed:\n{migrated.tail()}"
    yield environment
