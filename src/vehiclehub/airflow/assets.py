"""The feeds as Airflow assets: one asset per feed of ICD §3, changed only when a file loads.

``intake_<agency>`` has the agency's asset alias as its outlet and emits, through it,
one event per file of a feed that loaded; rejected and duplicate files emit nothing. A
DAG that works on a feed's new data schedules on the feed's asset,
``x-vehiclehub://<agency>/<feed>``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, AssetAlias

if TYPE_CHECKING:
    from vehiclehub.results import IntakeResult

log = logging.getLogger(__name__)

#: Scheme of the feeds' asset URIs: Airflow gives ``x-`` schemes no meaning of its own.
ASSET_SCHEME = "x-vehiclehub"


def feed_asset(agency: str, feed: str) -> Asset:
    """The Airflow asset of one feed of ICD §3, ``x-vehiclehub://<agency>/<feed>``.

    ``intake_<agency>`` emits an event for it each time one of the feed's files loads;
    a DAG that works on a feed's new data schedules on this asset. Until a DAG refers
    to it, Airflow creates the asset with its first event (with a warning in the
    intake's log): an alias's assets are not known when the DAG is parsed.
    """
    return Asset(name=f"vehiclehub.{agency}.{feed}", uri=f"{ASSET_SCHEME}://{agency}/{feed}")


def feed_alias(agency: str) -> AssetAlias:
    """The outlet of ``intake_<agency>``, through which it emits its feeds' asset events.

    An alias, not the feed assets: Airflow emits an event for every asset among a
    task's outlets when it succeeds, and a feed's asset must change only when one of
    its files loaded. The feeds are read from ``schemas/`` at run time, not at parse.
    """
    return AssetAlias(name=f"vehiclehub.{agency}.feeds")


def feed_asset_events(intake: IntakeResult, day: date) -> list[tuple[Asset, dict[str, Any]]]:
    """One asset event per file an intake loaded: the feed's asset and the event's extra.

    Rejected and duplicate files change nothing in the store and emit nothing. The
    extra names the file, its own business date (a late file may be of an earlier
    day), the run's business date (``run_date``) and the file's row counts.
    """
    from vehiclehub.icd.names import FileName
    from vehiclehub.intake.take import FileStatus

    events: list[tuple[Asset, dict[str, Any]]] = []
    for file in intake.files_with(FileStatus.LOADED):
        if not file.feed:
            continue
        name = file.name
        read = FileName.read(name)
        extra = {
            "file": name,
            "business_date": read.business_date.isoformat() if read else None,
            "run_date": day.isoformat(),
            "rows": file.rows,
            "loaded": file.loaded,
            "rejected": file.rejected,
            "ignored": file.ignored,
        }
        events.append((feed_asset(intake.agency, file.feed), extra))
    return events


def intake_summary(
    outlet_events: Any, intake: IntakeResult, states: Mapping[str, str], day: date
) -> dict[str, Any]:
    """Emit the loaded feeds' asset events, and return what ``intake_<agency>`` returns.

    ``outlet_events`` is the task context's accessor; the events go through the
    agency's alias. ``states`` (the state for the business date of each expected feed
    the intake took) is returned as ``feeds``, and every feed not received is logged as
    a warning.
    """
    agency = intake.agency
    alias = feed_alias(agency)
    assets = []
    for asset, extra in feed_asset_events(intake, day):
        outlet_events[alias].add(asset, extra=extra)
        assets.append(asset.uri)
        log.info("asset %s updated: %s", asset.uri, extra)
    for feed, state in sorted(states.items()):
        if state != "received":
            log.warning("%s/%s for %s: %s", agency, feed, day.isoformat(), state)
    return {
        "business_date": day.isoformat(),
        **intake.to_dict(),
        "feeds": dict(states),
        "assets": assets,
    }
