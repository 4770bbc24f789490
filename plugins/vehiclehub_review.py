"""The review desk inside the Airflow UI: the desk's FastAPI app mounted at /vehiclehub,
and a navigation entry to it.

The hub's configuration comes from ``VHUB_CONFIG``, else the Airflow Variable
``vehiclehub_config`` (as for the DAG). The desk authenticates its own users: Airflow
does not protect plugin endpoints.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/vehiclehub"


def _config_path() -> str | None:
    if os.environ.get("VHUB_CONFIG"):
        return os.environ["VHUB_CONFIG"]
    try:
        from airflow.models import Variable

        value = Variable.get("vehiclehub_config", default_var=None)
    except Exception:  # no metadata database reachable here: the environment decides
        return None
    return str(value).strip() or None if value else None


def desk_app() -> Any:
    """The desk for the configured hub, or a stand-in saying what is missing."""
    from vehiclehub.config import ConfigError, load_settings
    from vehiclehub.review.app import create_app, unconfigured_app

    try:
        settings = load_settings(_config_path())
    except ConfigError as exc:
        return unconfigured_app(str(exc))
    return create_app(settings)


class VehiclehubReviewPlugin(AirflowPlugin):
    name = "vehiclehub_review"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"app": desk_app(), "url_prefix": URL_PREFIX, "name": "vehiclehub review desk"}
    ]
    external_views: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "Review desk",
            "href": URL_PREFIX.lstrip("/") + "/",
            "destination": "nav",
        }
    ]
