"""Planted cases of the police rules (POL, ``vehiclehub.rules.police``)."""

from __future__ import annotations

import numpy as np

from vehiclehub_samples.plants.registry import Planted, near_miss, plant
from vehiclehub_samples.stories import Stories, by_story


@plant("POL-001")
def _pending_export_never_declared(s: Stories, count: int) -> Planted:
    """Transferred pending export and licensed, then never declared; the window is over."""
    window = s.params.pending_export_days
    rows = s.take(count, s.complete() & (s.step("pending") + window < s.last))
    s.never_declared(rows)
    return [(rows, "pending")]


@near_miss("POL-001")
def _pending_export_exactly_window_ago(s: Stories, count: int) -> None:
    """Transferred pending export exactly the window before the last date, not declared yet."""
    rows = s.take(count, s.complete())
    s.shift(rows, s.last - s.params.pending_export_days - s.step("pending")[rows])
    s.never_declared(rows)


@plant("POL-002")
def _sold_after_pending_export(s: Stories, count: int) -> Planted:
    """Sold to a person again days after the transfer pending export (转让待出口)."""
    pending = s.step("pending")
    resold = ~np.isnan(s.step("transferred"))
    rows = s.take(count, s.complete() & resold & (pending + 10 <= s.last))
    s.set(rows, transferred=pending[rows] + s.days(rows, 1, 10))
    return [(rows, "transfer")]


@near_miss("POL-002")
def _sold_on_pending_export_day(s: Stories, count: int) -> None:
    """A sale registered the same day as the transfer pending export: it does not follow."""
    rows = s.take(count, s.complete() & ~np.isnan(s.step("transferred")))
    s.set(rows, transferred=s.step("pending")[rows])


def _exporter_uscc(s: Stories, exporters: np.ndarray) -> np.ndarray:
    usccs: np.ndarray = s.exporters["uscc"].to_numpy()[exporters]
    return usccs


@plant("POL-003")
def _pending_export_to_unlicensed_exporter(s: Stories, count: int) -> Planted:
    """Transferred pending export to an exporter that holds none of the vehicle's licences."""
    rows = s.take(count, s.complete())
    other = _exporter_uscc(s, s.other_exporter(s.step("exporter")[rows]))
    s.override("pending", rows, owner_id=by_story(rows, other))
    return [(rows, "pending")]


@near_miss("POL-003")
def _pending_export_before_any_licence(s: Stories, count: int) -> None:
    """Transferred pending export to another exporter days ago; no licence applied for yet."""
    rows = s.take(count, s.complete())
    s.set(rows, pending=s.last - s.days(rows, 0, 20), applied=np.nan, issued=np.nan)
    s.set(rows, valid_to=np.nan)
    s.never_declared(rows)
    other = _exporter_uscc(s, s.other_exporter(s.step("exporter")[rows]))
    s.override("pending", rows, owner_id=by_story(rows, other))
