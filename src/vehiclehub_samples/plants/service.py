"""Planted cases of the service-level rules (SLA, ``vehiclehub.rules.service``), counted
in working days of the hub's calendar.
"""

from __future__ import annotations

import numpy as np

from vehiclehub_samples.plants.registry import Planted, near_miss, plant
from vehiclehub_samples.reference import LICENCE_VALID_DAYS
from vehiclehub_samples.stories import Stories


@plant("SLA-001")
def _licence_issued_late(s: Stories, count: int) -> Planted:
    """A licence issued one to three working days past the limit after the application."""
    limit = s.params.licence_wd
    applied = s.step("applied")
    latest = s.working_day_after(applied, limit + 3)
    rows = s.take(count, s.complete() & (latest <= s.step("declared")))
    issued = s.working_day_after(applied[rows], limit + s.rng.integers(1, 4, len(rows)))
    s.set(rows, issued=issued, valid_to=issued + LICENCE_VALID_DAYS - 1)
    return [(rows, "licence")]


@plant("SLA-001")
def _licence_still_not_issued(s: Stories, count: int) -> Planted:
    """Applied for one to four working days more than the limit before the last date, and
    not issued."""
    limit = s.params.licence_wd
    rows = s.take(count, s.complete())
    applied = s.working_day_before_last(limit + s.rng.integers(1, 5, len(rows)))
    s.set(rows, pending=applied - s.days(rows, 0, 10), applied=applied, issued=np.nan)
    s.set(rows, valid_to=np.nan)
    s.never_declared(rows)
    return [(rows, "licence")]


@near_miss("SLA-001")
def _licence_issued_on_the_last_working_day(s: Stories, count: int) -> None:
    """Issued exactly the limit of working days after the application, over a weekend or
    holiday (more calendar days than that)."""
    limit = s.params.licence_wd
    applied = s.step("applied")
    issued = s.working_day_after(applied, limit)
    rows = s.take(count, s.complete() & (issued - applied > limit) & (issued <= s.step("declared")))
    s.set(rows, issued=issued[rows], valid_to=issued[rows] + LICENCE_VALID_DAYS - 1)


def _refund_limit(s: Stories) -> np.ndarray:
    """Each vehicle's refund limit in working days, by the claimant's class."""
    first_classes = s.vehicles["refund_class"].isin(["1", "2"]).to_numpy()
    return np.where(first_classes, s.params.refund_wd_class12, s.params.refund_wd_other)


@plant("SLA-002")
def _refund_approved_late(s: Stories, count: int) -> Planted:
    """A refund approved one to three working days past its class's limit."""
    applied, limit = s.step("refund_applied"), _refund_limit(s)
    rows = s.take(count, s.refunded() & (s.working_day_after(applied, limit + 3) <= s.last))
    extra = s.rng.integers(1, 4, len(rows))
    s.set(rows, refund_decided=s.working_day_after(applied[rows], limit[rows] + extra))
    return [(rows, "refund1")]


@plant("SLA-002")
def _refund_left_pending(s: Stories, count: int) -> Planted:
    """A refund still pending one to three working days past its class's limit."""
    limit = _refund_limit(s)
    earliest = s.working_day_before_last(limit + 3)
    rows = s.take(count, s.refunded() & (s.step("exported") < earliest))
    applied = s.working_day_before_last(limit[rows] + s.rng.integers(1, 4, len(rows)))
    s.set(rows, refund_applied=applied, refund_decided=np.nan)
    return [(rows, "refund1")]


@near_miss("SLA-002")
def _refund_class3_on_its_last_working_day(s: Stories, count: int) -> None:
    """A class 3 refund approved exactly refund_wd_other working days after the application
    (late for classes 1 and 2, in time for 3)."""
    applied, limit = s.step("refund_applied"), s.params.refund_wd_other
    decided = s.working_day_after(applied, limit)
    rows = s.take(count, s.refunded() & (decided <= s.last))
    s.set(rows, refund_class="3", refund_decided=decided[rows])


@near_miss("SLA-002")
def _refund_rejected_late(s: Stories, count: int) -> None:
    """A refund rejected long after the limit: rejected lines are outside SLA-002."""
    applied = s.step("refund_applied")
    decided = s.working_day_after(applied, s.params.refund_wd_other + 5)
    rows = s.take(count, s.refunded() & (decided <= s.last))
    s.set(rows, refund_status="rejected", refund_decided=decided[rows])
