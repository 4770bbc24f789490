"""The hub's settings in a task: the Airflow Variable, else ``VHUB_CONFIG``; quiet logs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from vehiclehub.airflow.settings import config_path, hub_settings
from vehiclehub.config import ConfigError


def test_config_from_the_airflow_variable_else_vhub_config(
    hub_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert config_path(lambda key: f" {hub_config} " if key == "vehiclehub_config" else None) == (
        str(hub_config)
    )
    assert config_path(lambda key: None) is None
    assert config_path(lambda key: "") is None

    monkeypatch.setenv("VHUB_CONFIG", "/nowhere/hub.toml")
    with hub_settings(get_variable=lambda key: str(hub_config), agencies=[]) as settings:
        assert settings.source == hub_config.resolve()  # the Variable wins

    monkeypatch.setenv("VHUB_CONFIG", str(hub_config))
    with hub_settings(get_variable=lambda key: None, get_connection=lambda c: None) as settings:
        assert settings.source == hub_config.resolve()

    monkeypatch.delenv("VHUB_CONFIG")
    with (
        pytest.raises(ConfigError, match="VHUB_CONFIG"),
        hub_settings(get_variable=lambda key: None, agencies=[]),
    ):
        pass


def test_task_logs_keep_great_expectations_quiet(hub_config: Path) -> None:
    chatty = logging.getLogger("great_expectations")
    level = chatty.level
    chatty.setLevel(logging.NOTSET)
    try:
        with hub_settings(get_variable=lambda key: str(hub_config), get_connection=lambda c: None):
            assert logging.getLogger("great_expectations._docs_decorators").getEffectiveLevel() == (
                logging.WARNING
            )
    finally:
        chatty.setLevel(level)
