"""Planted cases of the tax-refund rules (TAX, ``vehiclehub.rules.tax``)."""

from __future__ import annotations

import numpy as np

from vehiclehub_samples.plants.registry import Planted, near_miss, plant
from vehiclehub_samples.stories import Stories


@plant("TAX-001")
def _refund_citing_no_item(s: Stories, count: int) -> Planted:
    """The refund line cites an item number the declaration does not have."""
    rows = s.take(count, s.refunded())
    s.set(rows, refund_cites=0)
    return [(rows, "refund1")]


@plant("TAX-001")
def _refund_on_item_not_cleared(s: Stories, count: int) -> Planted:
    """A refund approved on a declared item that never cleared (nor was deregistered)."""
    declared = s.step("declared")
    rows = s.take(count, s.refunded() & (declared + 13 <= s.last))
    applied = declared[rows] + s.days(rows, 1, 10)
    s.set(
        rows,
        exported=np.nan,
        deregistered=np.nan,
        refund_applied=applied,
        refund_decided=applied + s.days(rows, 0, 3),
    )
    return [(rows, "refund1")]


@plant("TAX-002")
def _refund_on_withdrawn_item(s: Stories, count: int) -> Planted:
    """The item was withdrawn (修撤单) and declared again; the refund cites the withdrawn one."""
    rows = s.take(count, s.refunded())
    declared = s.step("declared")[rows]
    s.set(
        rows,
        declared2=declared,
        exported2=s.step("exported")[rows],
        declared=declared - 2,
        withdrawn=declared - 1,
        exported=np.nan,
        dereg_cites=2,
        refund_cites=1,
    )
    return [(rows, "refund1")]


@plant("TAX-003")
def _refund_claimed_twice(s: Stories, count: int) -> Planted:
    """A second refund line, days later, on the same declaration item."""
    decided = s.step("refund_decided")
    rows = s.take(count, s.refunded() & (decided + 8 <= s.last))
    applied = decided[rows] + s.days(rows, 1, 5)
    s.set(rows, refund2_applied=applied, refund2_decided=applied + s.days(rows, 0, 3))
    return [(rows, "refund1"), (rows, "refund2")]


@plant("TAX-004")
def _refund_claimed_by_another_party(s: Stories, count: int) -> Planted:
    """The refund is claimed by an enterprise that did not declare the export."""
    rows = s.take(count, s.refunded())
    s.set(rows, refund_exporter=s.other_exporter(s.step("item_exporter")[rows]))
    return [(rows, "refund1")]


@near_miss("TAX-001")
def _rejected_refund_citing_no_item(s: Stories, count: int) -> None:
    """A refund line citing no item, rejected by the tax office: outside the TAX rules."""
    rows = s.take(count, s.refunded())
    s.set(rows, refund_status="rejected", refund_cites=0)


@near_miss("TAX-002")
def _withdrawn_and_declared_again(s: Stories, count: int) -> None:
    """修撤单 across days: item 1 (sent the day before the first date) is withdrawn on the
    second business date and declared again; deregistration and refund cite the new item."""
    rows = s.take(count, s.complete())
    s.shift(rows, s.second - s.step("declared")[rows])
    s.set(
        rows,
        declared2=s.step("declared")[rows],
        exported2=s.step("exported")[rows],
        declared=s.first - 1.0,
        withdrawn=float(s.second),
        exported=np.nan,
        dereg_cites=2,
        refund_cites=2,
    )


@near_miss("TAX-003")
def _rejected_and_claimed_again(s: Stories, count: int) -> None:
    """A refund line rejected, then claimed again under a new refund number."""
    decided = s.step("refund_decided")
    rows = s.take(count, s.refunded() & (decided + 8 <= s.last))
    applied = decided[rows] + s.days(rows, 1, 5)
    s.set(
        rows,
        refund_status="rejected",
        refund2_applied=applied,
        refund2_decided=applied + s.days(rows, 0, 3),
    )
