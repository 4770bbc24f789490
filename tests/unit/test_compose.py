"""``docker/compose.yaml`` checked as a file (no Docker engine here): valid by the
Compose Specification's JSON schema, and running what the native CeleryExecutor test
runs — same commands, same shared settings, the same per-site variables — plus what
that test does not start (triggerer, flower, the staging SFTP servers)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from tests.deployment import (
    AIRFLOW_COMMANDS,
    AIRFLOW_ENV_FILE,
    COMPOSE_FILE,
    DOCKER,
    REPO,
    SITE_VARIABLES,
    TEST_ONLY_SETTINGS,
    read_env_file,
    shared_airflow_settings,
)

from vehiclehub.config import AGENCIES

SCHEMA = Path(__file__).resolve().parents[1] / "data" / "compose-spec.json"
HUB_CONFIG_MOUNT = "./hub.toml:/etc/vehiclehub/hub.toml:ro"
HUB_KEYS_MOUNT = "./keys:/etc/vehiclehub/keys:ro"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def test_valid_by_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.validate(compose, schema, cls=jsonschema.Draft7Validator)


def test_the_schema_rejects_a_broken_file(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    broken = {**compose, "services": {**compose["services"], "redis": {"healthcheck": "yes"}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema, cls=jsonschema.Draft7Validator)


def test_airflow_services_run_the_native_commands(services: dict[str, Any]) -> None:
    for name, arguments in AIRFLOW_COMMANDS.items():
        command = services[name]["command"]
        assert command[: 1 + len(arguments)] == ["airflow", *arguments], name


def test_airflow_services_share_airflow_env_and_site_variables(services: dict[str, Any]) -> None:
    for name in AIRFLOW_COMMANDS:
        service = services[name]
        assert service["env_file"] == AIRFLOW_ENV_FILE.name, name
        assert set(service["environment"]) - {"AIRFLOW__CELERY__FLOWER_BASIC_AUTH"} == set(
            SITE_VARIABLES
        ), name
        assert HUB_CONFIG_MOUNT in service["volumes"], name
        assert HUB_KEYS_MOUNT in service["volumes"], name


def test_the_shared_settings_are_celery_and_the_test_changes_only_timing() -> None:
    shared = shared_airflow_settings()
    assert shared["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert not set(shared) & SITE_VARIABLES
    timing = re.compile(r"HEARTBEAT_TIMEOUT|RETRY_DELAY")
    assert all(timing.search(key) for key in TEST_ONLY_SETTINGS)


def test_every_service_has_a_healthcheck(services: dict[str, Any]) -> None:
    lacking = [n for n, s in services.items() if n != "airflow-init" and "healthcheck" not in s]
    assert lacking == []


def test_workers_scale(services: dict[str, Any]) -> None:
    worker = services["airflow-worker"]
    assert "container_name" not in worker and "ports" not in worker and "hostname" not in worker
    assert services["airflow-worker"]["depends_on"]["airflow-apiserver"] == {
        "condition": "service_healthy"
    }


def test_optional_services_sit_behind_profiles(services: dict[str, Any]) -> None:
    assert services["flower"]["profiles"] == ["flower"]
    hosts = re.findall(
        r"sftp://vhub@([\w-]+):22/exchange", (DOCKER / "hub.toml.example").read_text()
    )
    assert sorted(hosts) == sorted(f"{a}-exchange" for a in AGENCIES)
    for host in hosts:
        assert services[host]["profiles"] == ["staging"], host
        assert services[host]["volumes"][0] == f"{host}:/exchange", host
        assert all(m.endswith(":ro") for m in services[host]["volumes"][1:]), host
    unprofiled = {n for n, s in services.items() if "profiles" not in s}
    assert unprofiled == {"postgres", "redis", *AIRFLOW_COMMANDS} - {"flower"}


def test_servers_publish_on_loopback_only(services: dict[str, Any]) -> None:
    published = [p for s in services.values() for p in s.get("ports", [])]
    assert published and all(p.startswith("127.0.0.1:") for p in published)


def literal_secrets(services: dict[str, Any]) -> list[str]:
    """Variables holding a secret, or a URL with credentials, written into the file."""
    secret_name = re.compile(r"PASSWORD|KEY|SECRET|AUTH")
    return [
        f"{name}: {key}"
        for name, service in services.items()
        for key, value in service.get("environment", {}).items()
        if (secret_name.search(key) or "@" in value) and "${" not in value
    ]


def test_secrets_come_from_a_documented_ignored_env_file(services: dict[str, Any]) -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    used = set(re.findall(r"(?<!\$)\$\{(\w+)", text))
    assert used == set(read_env_file(DOCKER / ".env.example"))
    assert "/docker/.env" in (REPO / ".gitignore").read_text().splitlines()
    assert literal_secrets(services) == []
    leaked = {"redis": {"environment": {"REDIS_PASSWORD": "hunter2"}}}
    assert literal_secrets(leaked) == ["redis: REDIS_PASSWORD"]


def test_init_script_creates_the_databases_compose_connects_to(services: dict[str, Any]) -> None:
    script = (DOCKER / "init-db.sh").read_text(encoding="utf-8")
    environment = services["airflow-scheduler"]["environment"]
    for url in (
        environment["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"],
        environment["VHUB_DATABASE_URL"],
    ):
        role, database = re.fullmatch(
            r"postgresql\+psycopg://(\w+):.*@postgres/(\w+)", url
        ).groups()
        assert f"CREATE ROLE {role} LOGIN" in script
        assert f"CREATE DATABASE {database} OWNER {role}" in script
