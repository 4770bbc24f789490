"""Planted cases of the export-deregistration rules (EXP, ``vehiclehub.rules.export``)."""

from __future__ import annotations

import numpy as np

from vehiclehub_samples.plants.registry import Planted, near_miss, plant
from vehiclehub_samples.stories import Stories


@plant("EXP-001")
def _deregistered_never_cleared(s: Stories, count: int) -> Planted:
    """Deregistered for export, but the customs item never cleared (and no refund)."""
    rows = s.take(count, s.complete())
    s.set(rows, exported=np.nan, refund_applied=np.nan, refund_decided=np.nan)
    return [(rows, "dereg")]


@plant("EXP-002")
def _deregistered_before_export(s: Stories, count: int) -> Planted:
    """Deregistered for export a few days before the vehicle left the country."""
    rows = s.take(count, s.complete())
    s.set(rows, deregistered=s.step("exported")[rows] - s.days(rows, 1, 10))
    return [(rows, "dereg")]


@plant("EXP-003")
def _exported_never_deregistered(s: Stories, count: int) -> Planted:
    """Exported more than the deregistration window ago and never deregistered."""
    window = s.params.dereg_window_days
    rows = s.take(count, s.complete() & (s.step("exported") + window < s.last))
    s.set(rows, deregistered=np.nan)
    return [(rows, "item1")]


@near_miss("EXP-002")
def _deregistered_on_export_day(s: Stories, count: int) -> None:
    """Deregistered on the very day of export: verified."""
    rows = s.take(count, s.complete())
    s.set(rows, deregistered=s.step("exported")[rows])


@near_miss("EXP-003")
def _exported_exactly_window_ago(s: Stories, count: int) -> None:
    """Exported exactly the deregistration window before the last date, not deregistered."""
    rows = s.take(count, s.complete())
    s.shift(rows, s.last - s.params.dereg_window_days - s.step("exported")[rows])
    s.set(rows, deregistered=np.nan)
