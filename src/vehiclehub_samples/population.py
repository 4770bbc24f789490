"""The population: exporters, vehicles and trade-in claims as story parameters, given
VINs, plates and resident IDs in bulk.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from vehiclehub.config import RuleParameters
from vehiclehub_samples.columns import as_text, choose, day_number, pick, shares
from vehiclehub_samples.identifiers import bulk_plates, bulk_resident_ids, bulk_usccs, bulk_vins
from vehiclehub_samples.reference import (
    COUNTRIES,
    COUNTRY_SHARES,
    LICENCE_VALID_DAYS,
    MODELS,
    NAME_SUFFIXES,
    NAME_WORDS,
    REFUND_CLASS_SHARES,
    REFUND_CLASSES,
    REGIONS,
)
from vehiclehub_samples.stories import Stories


def _sample_exporters(rng: np.random.Generator, count: int, last: int) -> pd.DataFrame:
    """Ordinary exporters with yearly filings, and two whose filings do not hold."""
    total = count + 2
    region = rng.integers(0, len(REGIONS), total)
    words = rng.integers(0, len(NAME_WORDS), total)
    suffixes = rng.integers(0, len(NAME_SUFFIXES), total)
    codes = pick([r.code for r in REGIONS], region)
    return pd.DataFrame(
        {
            "uscc": as_text(bulk_usccs(rng, codes)),
            "name": choose([r.city for r in REGIONS], region)
            + choose(NAME_WORDS, words)
            + choose(NAME_SUFFIXES, suffixes),
            "region_code": as_text(codes),
            "standing": ["active"] * count + ["revoked", "lapsed"],
            "filed_from": (last - 4 * 365 + rng.integers(-180, 180, total)).astype(float),
        }
    )


def _sample_vehicles(
    rng: np.random.Generator, count: int, last: int, exporters: int
) -> pd.DataFrame:
    """Export vehicles with a complete, consistent story; later steps may lie ahead."""

    def days(low: int, high: int) -> np.ndarray:
        return rng.integers(low, high + 1, count).astype(np.float64)

    model = rng.choice(len(MODELS), size=count, p=shares([m.share for m in MODELS]))
    region = rng.integers(0, len(REGIONS), count)
    # Backwards from the deregistration; the gaps keep every rule quiet: SLA-001 (issued
    # within 3 calendar days), POL-001 (declared within 53 days of pending export),
    # EXP-003 (deregistered within 30 days of export), LIC-007 (over 200 days old).
    deregistered = last + days(-450, 88)
    exported = deregistered - days(0, 30)
    declared = exported - days(0, 7)
    issued = declared - days(0, 40)
    applied = issued - days(0, 3)
    pending = applied - days(0, 10)
    registered = applied - days(200, 2900)
    resold = rng.random(count) < 0.3
    share = rng.uniform(0.2, 0.8, count)
    transferred = np.where(resold, registered + np.floor((pending - registered) * share), np.nan)
    refund_applied = np.where(rng.random(count) < 0.92, exported + days(1, 30), np.nan)
    exporter = rng.choice(exporters, size=count, p=shares(1 / np.arange(1, exporters + 1) ** 0.8))
    fob = pick([m.fob_usd for m in MODELS], model) * 100 * rng.uniform(0.6, 1.4, count)
    country = rng.choice(len(COUNTRIES), count, p=shares(COUNTRY_SHARES))
    refund_class = rng.choice(len(REFUND_CLASSES), count, p=shares(REFUND_CLASS_SHARES))
    nan = np.full(count, np.nan)
    return pd.DataFrame(
        {
            "model": model,
            "region": region,
            "exporter": exporter,
            "item_exporter": exporter,
            "refund_exporter": exporter,
            "port": choose([r.port for r in REGIONS], region),
            "country": choose(COUNTRIES, country),
            "fob_cents": fob.astype(np.int64),
            "refund_class": choose(REFUND_CLASSES, refund_class),
            "refund_status": choose(["approved", "rejected"], rng.random(count) >= 0.97),
            "refund2_status": choose(["approved"], np.zeros(count)),
            "dereg_cites": 1,
            "refund_cites": 1,
            "registered": registered,
            "transferred": transferred,
            "pending": pending,
            "applied": applied,
            "issued": issued,
            "valid_to": issued + LICENCE_VALID_DAYS - 1,
            "declared": declared,
            "exported": exported,
            "withdrawn": nan,
            "declared2": nan,
            "exported2": nan,
            "deregistered": deregistered,
            "refund_applied": refund_applied,
            "refund_decided": refund_applied + days(0, 3),
            "refund2_applied": nan,
            "refund2_decided": nan,
        }
    )


def _sample_claims(rng: np.random.Generator, count: int, last: int) -> pd.DataFrame:
    """Trade-in claims: the old vehicle scrapped or sold, a new one registered."""

    def days(low: int, high: int) -> np.ndarray:
        return rng.integers(low, high + 1, count).astype(np.float64)

    applied = last - days(1, 400)
    old_ended = applied - days(0, 30)
    return pd.DataFrame(
        {
            "claim_type": choose(["scrap", "replace"], rng.random(count) >= 0.5),
            "old_reason": choose(["scrap"], np.zeros(count)),
            "old_model": rng.integers(0, len(MODELS), count),
            "new_model": rng.integers(0, len(MODELS), count),
            "region": rng.integers(0, len(REGIONS), count),
            "old_registered": old_ended - days(1000, 4000),
            "old_ended": old_ended,
            "new_registered": applied - days(0, 20),
            "applied": applied,
        }
    )


def populate(
    rng: np.random.Generator,
    vehicles: int,
    claims: int,
    dates: tuple[int, ...],
    params: RuleParameters,
) -> Stories:
    """Sample every party and story, then give them VINs, plates and IDs in bulk."""
    last = dates[-1]
    exporters = _sample_exporters(rng, max(3, vehicles // 500), last)
    cars = _sample_vehicles(rng, vehicles, last, int((exporters["standing"] == "active").sum()))
    trade = _sample_claims(rng, claims, last)
    split = [vehicles, vehicles + claims]

    models = np.concatenate([cars["model"], trade["old_model"], trade["new_model"]])
    registered = np.concatenate(
        [cars["registered"], trade["old_registered"], trade["new_registered"]]
    )
    year = registered.astype(np.int64).astype("datetime64[D]").astype("datetime64[Y]")
    vins = bulk_vins(rng, pick([m.wmi for m in MODELS], models), year.astype(np.int64) + 1970)
    cars["vin"], trade["old_vin"], trade["new_vin"] = map(as_text, np.split(vins, split))
    regions = np.concatenate([cars["region"], trade["region"], trade["region"]])
    plates = bulk_plates(rng, pick([r.plate for r in REGIONS], regions))
    cars["plate"], trade["old_plate"], trade["new_plate"] = map(as_text, np.split(plates, split))

    # People: each vehicle's first owner, a buyer where it was resold, each claimant and
    # the buyer of a replaced car.
    resold = ~np.isnan(cars["transferred"].to_numpy())
    person_regions = np.concatenate(
        [cars["region"], cars["region"][resold], trade["region"], trade["region"]]
    )
    born = rng.integers(
        day_number(date(1955, 1, 1)), day_number(date(2003, 1, 1)), len(person_regions)
    )
    people = bulk_resident_ids(rng, pick([r.code for r in REGIONS], person_regions), born)
    owners, buyers, applicants, claim_buyers = np.split(
        people, np.cumsum([vehicles, int(resold.sum()), claims])
    )
    cars["owner"] = as_text(owners)
    buyer = np.full(vehicles, None, dtype=object)
    buyer[resold] = buyers
    cars["buyer"] = as_text(buyer)
    trade["applicant"] = as_text(applicants)
    trade["buyer"] = as_text(claim_buyers)
    # Clerks type a VIN in lower case or with a space now and then: cleaning for the hub,
    # never a substitution (RULES.md VIN-001).
    vin = cars["vin"]
    cars["vin_police"] = vin.where(rng.random(vehicles) >= 0.01, vin.str.lower())
    cars["vin_customs"] = vin.where(
        rng.random(vehicles) >= 0.01, vin.str.slice(0, 8) + " " + vin.str.slice(8)
    )
    return Stories(rng, params, dates, cars, exporters, trade)
