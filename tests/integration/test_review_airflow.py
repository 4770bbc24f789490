"""The review desk under Airflow: the real ``airflow api-server`` with the hub's plugin
serves the desk at its mounted prefix, with the desk's own authentication."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from tests.conftest import write_config
from tests.integration.airflow_env import AIRFLOW, REPO, AirflowEnv, airflow_env

from vehiclehub.config import load_settings
from vehiclehub.review.auth import add_user
from vehiclehub.store import connect

pytestmark = [pytest.mark.airflow, pytest.mark.slow]
__all__ = ["airflow_env"]  # the session's Airflow installation, a fixture
PLUGIN = REPO / "plugins" / "vehiclehub_review.py"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_api_server_mounts_the_desk_at_its_prefix(
    airflow_env: AirflowEnv, tmp_path: Path
) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")
    engine = connect(load_settings(config).database_url)
    with engine.begin() as conn:
        add_user(conn, "op1", "operator", [], "correct horse battery")
    engine.dispose()
    shutil.copy2(PLUGIN, airflow_env.home / "plugins" / PLUGIN.name)
    port = _free_port()
    log = (tmp_path / "api-server.log").open("w")
    server = subprocess.Popen(
        [str(AIRFLOW), "api-server", "--host", "127.0.0.1", "--port", str(port)],
        env={**airflow_env.env, "VHUB_CONFIG": str(config)},
        cwd=airflow_env.home,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/vehiclehub"
    try:
        with httpx.Client(base_url=base, timeout=10) as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    page = client.get("/login")
                    break
                except httpx.TransportError:
                    assert server.poll() is None, (tmp_path / "api-server.log").read_text()
                    assert time.monotonic() < deadline, "api-server did not answer in 120 s"
                    time.sleep(1)
            assert page.status_code == 200 and "Log in" in page.text
            assert client.get("/api/cases").status_code == 401
            anonymous = client.get("/", follow_redirects=False)
            assert anonymous.status_code == 303
            assert anonymous.headers["location"].startswith(f"{base}/login")
            login = client.post(
                "/login", data={"username": "op1", "password": "correct horse battery"}
            )
            assert login.status_code == 200, login.text
            assert client.get("/api/cases").json() == {"total": 0, "items": []}
            queue = client.get("/")
            assert queue.status_code == 200 and f"{base}/static/desk.css" in queue.text
            assert client.get("/static/desk.css").status_code == 200
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
