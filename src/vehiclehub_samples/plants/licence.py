"""Planted cases of the export-licence rules (LIC, ``vehiclehub.rules.licence``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from vehiclehub_samples.columns import iso
from vehiclehub_samples.plants.registry import Planted, near_miss, plant
from vehiclehub_samples.stories import Stories, by_story


@plant("LIC-001")
def _declared_on_mistyped_licence(s: Stories, count: int) -> Planted:
    """The declaration cites the licence number with two digits swapped."""
    rows = s.take(count, s.complete())
    s.override("item1", rows, licence_no=_mistyped)
    return [(rows, "item1")]


@plant("LIC-002")
def _declared_on_licence_not_issued(s: Stories, count: int) -> Planted:
    """Declared on the last date on a licence applied for the day before, not issued yet."""
    applied_by_then = (s.step("applied") <= s.last) & (s.step("declared") > s.last)
    rows = s.take(count, applied_by_then)
    applied = np.full(len(rows), s.last - 1.0)
    s.set(
        rows,
        pending=np.fmin(s.step("pending")[rows], applied),
        applied=applied,
        issued=np.nan,
        valid_to=np.nan,
        declared=float(s.last),
        exported=np.nan,
        deregistered=np.nan,
        refund_applied=np.nan,
        refund_decided=np.nan,
    )
    return [(rows, "item1")]


@plant("LIC-002")
def _declared_after_licence_expired(s: Stories, count: int) -> Planted:
    """The licence ran out the day before the declaration."""
    rows = s.take(count, s.complete() & (s.step("declared") - s.step("issued") >= 2))
    s.set(rows, valid_to=s.step("declared")[rows] - 1)
    return [(rows, "item1")]


@plant("LIC-003")
def _declared_by_another_exporter(s: Stories, count: int) -> Planted:
    """Another exporter declares (and claims the refund on) a vehicle licensed to the first."""
    rows = s.take(count, s.complete())
    other = s.other_exporter(s.step("exporter")[rows])
    s.set(rows, item_exporter=other, refund_exporter=other)
    return [(rows, "item1")]


@plant("LIC-004")
def _licensed_without_active_filing(s: Stories, count: int) -> Planted:
    """The exporter's filing was revoked, or lapsed years ago."""
    rows = s.take(count, s.complete())
    without = np.flatnonzero((s.exporters["standing"] != "active").to_numpy())
    exporter = without[np.arange(len(rows)) % len(without)]
    s.set(rows, exporter=exporter, item_exporter=exporter, refund_exporter=exporter)
    return [(rows, "licence")]


@plant("LIC-005")
def _declared_twice(s: Stories, count: int) -> Planted:
    """An earlier declaration of the same vehicle that never cleared, still on file."""
    issued, declared = s.step("issued"), s.step("declared")
    rows = s.take(count, s.complete() & (declared - issued >= 2))
    s.set(rows, declared2=issued[rows] + np.floor((declared[rows] - issued[rows]) / 2))
    return [(rows, "item1"), (rows, "item2")]


@near_miss("LIC-002")
def _declared_on_licence_last_day(s: Stories, count: int) -> None:
    """Declared on the last day the licence is valid."""
    rows = s.take(count, s.complete())
    s.set(rows, valid_to=s.step("declared")[rows])


@plant("LIC-006")
def _licence_names_another_model(s: Stories, count: int) -> Planted:
    """The licence names the model otherwise than the police pending-export registration."""
    rows = s.take(count, s.complete())
    s.override("licence", rows, model=lambda models: models + " Pro")
    return [(rows, "licence")]


@plant("LIC-006")
def _licence_gives_another_pending_date(s: Stories, count: int) -> Planted:
    """The licence gives a pending-export date days before the police registered it."""
    rows = s.take(count, s.complete())
    earlier = iso(s.step("pending")[rows] - s.days(rows, 1, 5))
    s.override("licence", rows, pending_export_date=by_story(rows, earlier))
    return [(rows, "licence")]


@near_miss("LIC-006")
def _licence_model_with_trailing_spaces(s: Stories, count: int) -> None:
    """The licence's model typed with trailing spaces: fields are trimmed, the text agrees."""
    rows = s.take(count, s.complete())
    s.override("licence", rows, model=lambda models: models + "  ")


def _registered_before_application(
    s: Stories, count: int, ages: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Vehicles (never resold) first registered ``ages(rows)`` days before the licence
    application; returns them."""
    rows = s.take(count, s.complete() & np.isnan(s.step("transferred")))
    s.set(rows, registered=s.step("applied")[rows] - ages(rows))
    return rows


@plant("LIC-007")
def _near_new_car_exported(s: Stories, count: int) -> Planted:
    """A car registered at most new_car_days before the licence application (the first
    of them exactly new_car_days)."""
    limit = s.params.new_car_days

    def ages(rows: np.ndarray) -> np.ndarray:
        days = s.days(rows, 30, limit)
        days[:1] = limit
        return days

    return [(_registered_before_application(s, count, ages), "licence")]


@near_miss("LIC-007")
def _car_a_day_older_than_near_new(s: Stories, count: int) -> None:
    """Registered new_car_days + 1 days before the licence application."""
    limit = s.params.new_car_days
    _registered_before_application(s, count, lambda rows: np.full(len(rows), limit + 1.0))


def _mistyped(numbers: pd.Series) -> pd.Series:
    """The last two characters swapped (the last one changed when both are the same digit)."""
    a, b = numbers.str.slice(-2, -1), numbers.str.slice(-1)
    bumped = ((b.astype(np.int64) + 1) % 10).astype("str")
    same = a == b
    return numbers.str.slice(0, -2) + b.where(~same, a) + a.where(~same, bumped)
