"""Planted cases of the trade-in rules (TRD, ``vehiclehub.rules.tradein``)."""

from __future__ import annotations

import numpy as np

from vehiclehub_samples.plants.registry import Planted, near_miss, plant
from vehiclehub_samples.stories import Stories, by_story


def _old_car_never_ended(s: Stories, count: int, claim_type: str) -> Planted:
    """Claims of the type whose old car's end (its scrapping or its sale) the police never
    registered."""
    rows = s.take_claims(s.claim_count(count), s.claim_is(claim_type))
    s.set_claims(rows, old_ended=np.nan)
    return [(rows, "claim")]


def _old_car_ended_days_after(s: Stories, count: int, claim_type: str) -> None:
    """Claims of the type whose old car's end was registered days after the claim."""
    applied = s.claims["applied"].to_numpy()
    rows = s.take_claims(s.claim_count(count), s.claim_is(claim_type) & (applied + 10 <= s.last))
    s.set_claims(rows, old_ended=applied[rows] + s.days(rows, 1, 10))


#: What a claim says of each of its cars, as the vehicles frame has it.
CAR_COLUMNS = ("vin", "plate", "model")


def _cars_exported(s: Stories, claims: np.ndarray, car: str) -> tuple[np.ndarray, np.ndarray]:
    """The ``car`` (old or new) of the claims is an export vehicle (complete story), as far
    as there are such vehicles: (vehicles, claims)."""
    rows = s.take(len(claims), s.complete())
    claims = claims[: len(rows)]
    v = s.vehicles
    s.set_claims(
        claims, **{f"{car}_{column}": v[column].iloc[rows].to_numpy() for column in CAR_COLUMNS}
    )
    return rows, claims


@plant("TRD-001")
def _scrap_claim_never_deregistered(s: Stories, count: int) -> Planted:
    """A 报废更新 claim whose old car the police never deregistered."""
    return _old_car_never_ended(s, count, "scrap")


@plant("TRD-001")
def _scrap_claim_car_deregistered_otherwise(s: Stories, count: int) -> Planted:
    """A 报废更新 claim whose old car was deregistered for another reason, not scrapped."""
    rows = s.take_claims(s.claim_count(count), s.claim_is("scrap"))
    s.set_claims(rows, old_reason="other")
    return [(rows, "claim")]


@near_miss("TRD-001")
def _scrapped_after_the_claim(s: Stories, count: int) -> None:
    """The old car scrapped days after the 报废更新 claim was applied for."""
    _old_car_ended_days_after(s, count, "scrap")


def _scrap_claims_on_exports(s: Stories, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Scrap claims whose old car is an export vehicle (complete story): (vehicles, claims)."""
    claims = s.take_claims(s.claim_count(count), s.claim_is("scrap"))
    return _cars_exported(s, claims, "old")


@plant("TRD-002")
def _scrapped_car_exported(s: Stories, count: int) -> Planted:
    """A car scrapped with a 报废更新 subsidy (and deregistered for scrap), then exported."""
    rows, _ = _scrap_claims_on_exports(s, count)
    return [(rows, "item1")]


@near_miss("TRD-002")
def _scrapped_car_stopped_at_customs(s: Stories, count: int) -> None:
    """A scrapped car declared for export but never cleared (customs stopped it)."""
    rows, _ = _scrap_claims_on_exports(s, count)
    s.set(rows, exported=np.nan, deregistered=np.nan, refund_applied=np.nan)
    s.set(rows, refund_decided=np.nan)


@plant("TRD-003")
def _replaced_car_never_sold(s: Stories, count: int) -> Planted:
    """A 置换更新 claim whose old car's sale was never registered."""
    return _old_car_never_ended(s, count, "replace")


@plant("TRD-003")
def _replaced_car_of_another_person(s: Stories, count: int) -> Planted:
    """The old car of a 置换更新 claim was registered to, and sold by, someone else."""
    rows = s.take_claims(s.claim_count(count), s.claim_is("replace"))
    buyers = s.claims["buyer"].to_numpy()
    someone_else = buyers[(rows + 1) % len(buyers)]
    s.override("old_register", rows, owner_id=by_story(rows, someone_else))
    return [(rows, "claim")]


@near_miss("TRD-003")
def _replaced_car_sold_after_the_claim(s: Stories, count: int) -> None:
    """The old car's sale registered days after the 置换更新 claim was applied for."""
    _old_car_ended_days_after(s, count, "replace")


def _claim_pairs(s: Stories, count: int, first: str, second: str) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of claims not bent yet, of the given types."""
    pairs = min(s.claim_count(count), int(s.claim_is(first).sum()), int(s.claim_is(second).sum()))
    one = s.take_claims(pairs, s.claim_is(first))
    other = s.take_claims(len(one), s.claim_is(second))
    return one[: len(other)], other


def _same_applicant_same_day(s: Stories, one: np.ndarray, other: np.ndarray) -> None:
    """The ``other`` claims are by the ``one`` claims' applicants, applied for the same day."""
    applied = s.claims["applied"].to_numpy()
    s.shift_claims(other, applied[one] - applied[other])
    s.set_claims(other, applicant=s.claims["applicant"].to_numpy()[one])


@plant("TRD-004")
def _old_car_claimed_twice(s: Stories, count: int) -> Planted:
    """Two 报废更新 claims cite the same old car."""
    one, other = _claim_pairs(s, count, "scrap", "scrap")
    s.override("claim", other, old_vin=by_story(other, s.claims["old_vin"].to_numpy()[one]))
    return [(one, "claim"), (other, "claim")]


@plant("TRD-004")
def _two_replace_claims_in_a_year(s: Stories, count: int) -> Planted:
    """One applicant with two 置换更新 claims applied for on the same day."""
    one, other = _claim_pairs(s, count, "replace", "replace")
    _same_applicant_same_day(s, one, other)
    return [(one, "claim"), (other, "claim")]


@near_miss("TRD-004")
def _replace_and_scrap_claim_in_a_year(s: Stories, count: int) -> None:
    """One applicant with a 置换更新 and a 报废更新 claim on the same day: not two replaces."""
    one, other = _claim_pairs(s, count, "replace", "scrap")
    _same_applicant_same_day(s, one, other)


def _new_car_is_export(s: Stories, count: int, waited: tuple[int, int]) -> np.ndarray:
    """Claims whose new car is an export vehicle transferred pending export ``waited`` days
    (low, high; the first exactly low) after the claim; returns the claims."""
    claims = s.take_claims(s.claim_count(count), np.ones(len(s.claims), bool))
    rows, claims = _cars_exported(s, claims, "new")
    days = s.days(rows, *waited)
    days[:1] = waited[0]
    applied = s.step("pending")[rows] - days
    s.shift_claims(claims, applied - s.claims["applied"].to_numpy()[claims])
    return claims


@plant("TRD-005")
def _subsidised_new_car_exported(s: Stories, count: int) -> Planted:
    """The new car bought with a trade-in subsidy is transferred pending export within
    new_car_days after the claim (the same day for the first)."""
    limit = s.params.new_car_days
    claims = _new_car_is_export(s, count, (0, limit))
    return [(claims, "claim")]


@near_miss("TRD-005")
def _subsidised_new_car_exported_later(s: Stories, count: int) -> None:
    """The subsidised new car transferred pending export new_car_days + 1 (the first) or
    more days after the claim."""
    limit = s.params.new_car_days
    _new_car_is_export(s, count, (limit + 1, limit + 30))
