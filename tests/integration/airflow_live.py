"""A real Airflow for tests: scheduler, DAG processor and API server, talked to over REST.

:func:`live_airflow` migrates a fresh PostgreSQL metadata database (on the machine's
server, as ``docker/compose.yaml`` configures Airflow: ``postgresql+psycopg://``),
starts ``airflow scheduler``, ``airflow dag-processor`` and ``airflow api-server`` on
127.0.0.1 with ports chosen free, under an AIRFLOW_HOME of their own, logs in through
the simple auth manager (``POST /auth/token``) and hands back a :class:`LiveAirflow`
that triggers and watches DAG runs through the REST API. The executor is a parameter
(``LocalExecutor`` here; a Celery test passes its own and its extra settings).

Every process is started in a session of its own and is stopped with its children
(its process group) when the block ends; the metadata database is dropped.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tests.conftest import postgres_database
from tests.deployment import AIRFLOW_COMMANDS
from tests.integration.airflow_env import AIRFLOW, DAG_FILE, airflow_environment, instance_key

from vehiclehub.airflow.workers import WORKER_HOSTNAME_VARIABLE
from vehiclehub.config import AGENCIES

#: The Airflow processes a deployment runs (docker/compose.yaml): name -> CLI arguments.
#: The API server reads the task logs from this host's disk: the scheduler's log server
#: (which would listen on every interface, on a fixed port) is not needed.
PROCESSES: dict[str, tuple[str, ...]] = {
    "scheduler": ("scheduler", "--skip-serve-logs"),
    "dag-processor": ("dag-processor",),
    "api-server": ("api-server",),
}
#: Airflow's settings sized for a 2-core, 8 GiB host, as the README documents them.
SMALL_HOST_SETTINGS = {
    "AIRFLOW__CORE__PARALLELISM": "4",
    "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "4",
    "AIRFLOW__API__WORKERS": "1",
    "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
    "AIRFLOW__CORE__DEFAULT_TIMEZONE": "Asia/Shanghai",
}
TERMINAL_STATES = ("success", "failed")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class AirflowFailed(AssertionError):
    """An Airflow process or call did not do what the test needs; carries the logs' tails."""


@dataclass
class LiveAirflow:
    """A running Airflow and a logged-in REST client for it."""

    home: Path
    env: dict[str, str]
    base_url: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    client: httpx.Client = field(default_factory=httpx.Client)

    # --- processes ---------------------------------------------------------------------

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.home / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return f"--- {name} ---\n" + "\n".join(text.splitlines()[-lines:])

    def diagnose(self) -> str:
        return "\n".join(self.log_tail(name) for name in self.processes)

    def check_running(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise AirflowFailed(
                    f"airflow {name} exited ({process.returncode})\n{self.diagnose()}"
                )

    def pids(self) -> list[int]:
        """The process ids of the Airflow processes started here (not their children)."""
        return [p.pid for p in self.processes.values()]

    # --- REST --------------------------------------------------------------------------

    def api(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """Call ``/api/v2<path>``; the decoded JSON answer (AirflowFailed unless 2xx)."""
        answer = self.client.request(method, f"{self.base_url}/api/v2{path}", json=body)
        if answer.status_code >= 300:
            raise AirflowFailed(f"{method} {path}: HTTP {answer.status_code}: {answer.text[:2000]}")
        return answer.json() if answer.content else None

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> dict[str, Any]:
        """The DAG once the DAG processor has parsed it (import errors fail at once)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_running()
            errors = self.api("GET", "/importErrors")
            if errors["total_entries"]:
                raise AirflowFailed(f"import errors: {json.dumps(errors['import_errors'])[:3000]}")
            answer = self.client.get(f"{self.base_url}/api/v2/dags/{dag_id}")
            if answer.status_code == 200:
                return dict(answer.json())
            time.sleep(1)
        raise AirflowFailed(f"DAG {dag_id} not parsed within {timeout} s\n{self.diagnose()}")

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.api("PATCH", f"/dags/{dag_id}", {"is_paused": paused})

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        answer = self.api("GET", f"/dags/{dag_id}/dagRuns?order_by=run_after&limit=100")
        return list(answer["dag_runs"])

    def trigger(
        self, dag_id: str, conf: Mapping[str, Any] | None = None, note: str | None = None
    ) -> str:
        """Trigger a run now (no logical date, as the UI's trigger button); its run id."""
        body: dict[str, Any] = {"logical_date": None, "conf": dict(conf or {})}
        if note is not None:
            body["note"] = note
        return str(self.api("POST", f"/dags/{dag_id}/dagRuns", body)["dag_run_id"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 600) -> dict[str, Any]:
        """The run once it succeeded or failed (AirflowFailed after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_running()
            run = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in TERMINAL_STATES:
                return dict(run)
            time.sleep(1)
        raise AirflowFailed(f"run {run_id} not finished within {timeout} s\n{self.diagnose()}")

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        """The run's task instances by task id; a mapped task's as ``task_id[label]``."""
        answer = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=200")
        return {
            instance_key(ti["task_id"], ti["map_index"], ti.get("rendered_map_index")): ti
            for ti in answer["task_instances"]
        }

    def return_value(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        return self.api("GET", f"{path}?deserialize=true&map_index={map_index}")["value"]

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1
    ) -> str:
        """The task's log as text: one line per event, its message first."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        answer = self.client.get(
            f"{self.base_url}/api/v2{path}?full_content=true&map_index={map_index}",
            headers={"Accept": "application/json"},
        )
        if answer.status_code >= 300:
            raise AirflowFailed(f"log of {task_id}: HTTP {answer.status_code}: {answer.text[:500]}")
        content = answer.json()["content"]
        if isinstance(content, str):
            return content
        return "\n".join(
            str(event.get("event", "")) if isinstance(event, dict) else str(event)
            for event in content
        )


def live_environment(
    home: Path,
    metadata_url: str,
    executor: str,
    extra: Mapping[str, str] | None = None,
    dag_file: Path = DAG_FILE,
) -> tuple[dict[str, str], int]:
    """The environment of every Airflow process of a live Airflow under ``home``, and
    its API server's port. A login ``vhub`` (admin) with a random password is set up."""
    dags_folder = home / "dags"
    dags_folder.mkdir(exist_ok=True)
    (dags_folder / DAG_FILE.name).write_bytes(dag_file.read_bytes())
    port = free_port()
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({"vhub": secrets.token_urlsafe(16)}))
    env = airflow_environment(home, dags_folder)
    env.update(SMALL_HOST_SETTINGS)
    env.update(
        {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
            "AIRFLOW__CORE__EXECUTOR": executor,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "vhub:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            # The test's DAG file does not change: parse it once, look for new files rarely.
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        }
    )
    env.update(extra or {})
    return env, port


def _stop(process: subprocess.Popen[bytes], grace: float = 20) -> None:
    """SIGTERM to the process's group (it and the workers it started), SIGKILL after ``grace``."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # what is left of the group
    process.wait()


def _login(client: httpx.Client, base_url: str, home: Path, timeout: float) -> str:
    """A JWT for the ``vhub`` login, once the API server answers."""
    password = json.loads((home / "passwords.json").read_text())["vhub"]
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            answer = client.post(
                f"{base_url}/auth/token", json={"username": "vhub", "password": password}
            )
            if answer.status_code in (200, 201):
                return str(answer.json()["access_token"])
            last = f"HTTP {answer.status_code}: {answer.text[:300]}"
        except httpx.TransportError as exc:
            last = repr(exc)
        time.sleep(1)
    raise AirflowFailed(f"no token from the API server within {timeout} s: {last}")


@contextmanager
def live_airflow(
    home: Path,
    *,
    executor: str = "LocalExecutor",
    extra_env: Mapping[str, str] | None = None,
    processes: Mapping[str, tuple[str, ...]] = PROCESSES,
    startup_timeout: float = 240,
    dag_file: Path = DAG_FILE,
) -> Iterator[LiveAirflow]:
    """A migrated metadata DB and the running Airflow ``processes`` under ``home``, with
    ``dag_file`` (the repository's nightly DAG unless told) as the only DAG."""
    with postgres_database("vhub_airflow") as metadata_url:
        env, port = live_environment(home, metadata_url, executor, extra_env, dag_file)
        migrated = subprocess.run(
            [str(AIRFLOW), "db", "migrate"],
            env=env,
            cwd=home,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=600,
        )
        if migrated.returncode != 0:
            raise AirflowFailed(f"airflow db migrate failed:\n{migrated.stdout[-4000:]}")
        base_url = f"http://127.0.0.1:{port}"
        airflow = LiveAirflow(home, env, base_url, client=httpx.Client(timeout=60))
        try:
            for name, arguments in processes.items():
                with (home / f"{name}.log").open("wb") as log:
                    airflow.processes[name] = subprocess.Popen(
                        [str(AIRFLOW), *arguments],
                        env=env,
                        cwd=home,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,  # stopped with the workers it starts
                    )
            token = _login(airflow.client, base_url, home, startup_timeout)
            airflow.client.headers["Authorization"] = f"Bearer {token}"
            yield airflow
        finally:
            for process in reversed(list(airflow.processes.values())):
                _stop(process)
            airflow.client.close()


def start_celery_worker(airflow: LiveAirflow, name: str) -> None:
    """``airflow celery worker`` as compose runs it, named ``name`` for Celery and for
    the task instances it runs (``VHUB_WORKER_HOSTNAME``); stopped with the live Airflow."""
    log = (airflow.home / f"{name}.log").open("wb")
    command = ["celery", "worker", *AIRFLOW_COMMANDS["airflow-worker"][2:], "-H", f"{name}@%h"]
    airflow.processes[name] = subprocess.Popen(
        [str(AIRFLOW), *command],
        env={**airflow.env, WORKER_HOSTNAME_VARIABLE: name},
        cwd=airflow.home,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()


def wait_for_celery_workers(
    airflow: LiveAirflow, names: Sequence[str], timeout: float = 180
) -> None:
    """Until every named worker has said it is ready (AirflowFailed after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        airflow.check_running()
        logs = [(airflow.home / f"{name}.log").read_text(errors="replace") for name in names]
        if all(
            f"{name}@" in log and "ready." in log for name, log in zip(names, logs, strict=True)
        ):
            return
        time.sleep(1)
    tails = "\n".join(airflow.log_tail(name) for name in names)
    raise AirflowFailed(f"Celery workers not ready within {timeout} s\n{tails}")


def delivered_drops(root: Path) -> dict[str, object]:
    """Every drop delivered to every agency: data files by bytes, manifests as JSON
    without what differs from run to run (``generated_at``, ``signature``, ``log_head``)."""
    drops: dict[str, object] = {}
    for agency in AGENCIES:
        for path in sorted((root / "exchange" / agency / "inbox").iterdir()):
            if path.name.endswith(".json"):
                manifest = json.loads(path.read_text(encoding="utf-8"))
                for varying in ("generated_at", "signature", "log_head"):
                    manifest.pop(varying, None)
                drops[f"{agency}/{path.name}"] = manifest
            else:
                drops[f"{agency}/{path.name}"] = path.read_bytes()
    return drops
