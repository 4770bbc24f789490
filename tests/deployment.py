"""What the compose deployment runs, declared once for the native CeleryExecutor test
and for the test of ``docker/compose.yaml``.

The Airflow settings every process shares live in ``docker/airflow.env``, which compose
reads as its ``env_file`` and the native test puts into each process's environment.
Everything else a process needs differs per site (addresses, secrets) and is named in
``SITE_VARIABLES``: compose sets them from ``.env`` and its service names, the native
test to its local database, Redis, ports and throw-away keys. ``TEST_ONLY_SETTINGS``
are the only values the native test changes, so that a killed task is noticed and
retried in seconds instead of minutes.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
COMPOSE_FILE = DOCKER / "compose.yaml"
AIRFLOW_ENV_FILE = DOCKER / "airflow.env"

# Per-site variables of every Airflow process (and of the hub's tasks inside them).
SITE_VARIABLES = frozenset(
    {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CELERY__BROKER_URL",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY",
        "VHUB_DATABASE_URL",
        "VHUB_PSEUDONYM_KEY",
        "VHUB_ARCHIVE_KEY",
    }
)

# The native test's departures from airflow.env, and why: a SIGKILLed task process is
# detected by its missing heartbeats, and retried after the retry delay.
TEST_ONLY_SETTINGS = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
    "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "1",
}

# Compose service -> the ``airflow`` command it runs (arguments after it that bind
# addresses and ports may differ: containers listen on their network, the native
# processes on 127.0.0.1 and free ports).
AIRFLOW_COMMANDS: dict[str, tuple[str, ...]] = {
    "airflow-init": ("db", "migrate"),
    "airflow-apiserver": ("api-server",),
    "airflow-scheduler": ("scheduler",),
    "airflow-dag-processor": ("dag-processor",),
    "airflow-triggerer": ("triggerer", "--skip-serve-logs"),
    "airflow-worker": ("celery", "worker", "--skip-serve-logs"),
    "flower": ("celery", "flower"),
}


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of an env file as compose reads them (``#`` comments, blanks)."""
    settings: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{path.name} line {number}: not KEY=VALUE: {line!r}")
        settings[key.strip()] = value.strip()
    return settings


def shared_airflow_settings() -> dict[str, str]:
    """The settings every Airflow process of the deployment runs with."""
    return read_env_file(AIRFLOW_ENV_FILE)
