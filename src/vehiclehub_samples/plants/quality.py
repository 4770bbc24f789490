"""Planted cases of the VIN quality rules (VIN, ``vehiclehub.rules.quality``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vehiclehub_samples.identifiers import (
    CHECK_CODES,
    CHECK_INDEX,
    SIBLINGS,
    ascii_codes,
    codes_text,
    vin_check_codes,
)
from vehiclehub_samples.plants.registry import Planted, near_miss, plant
from vehiclehub_samples.plants.typos import type_over_vehicles
from vehiclehub_samples.stories import Stories


@plant("VIN-001")
def _declared_vin_read_from_barcode(s: Stories, count: int) -> Planted:
    """Customs scanned the VIN from a barcode and sent its leading ``I``."""
    rows = s.take(count, s.complete())
    s.override("item1", rows, vin=lambda vins: "I" + vins.str.replace(" ", "", regex=False))
    return [(rows, "item1")]


@plant("VIN-001")
def _licence_vin_with_letter_o(s: Stories, count: int) -> Planted:
    """Commerce typed the letter O for a zero in the licence's VIN."""
    rows = s.take(count, s.complete() & s.vehicles["vin"].str.contains("0").to_numpy())
    s.override("licence", rows, vin=lambda vins: vins.str.replace("0", "O", n=1, regex=False))
    return [(rows, "licence")]


@near_miss("VIN-001")
def _licence_vin_with_dashes(s: Stories, count: int) -> None:
    """The licence's VIN in lower case with dashes: cleaning, not a substitution."""
    rows = s.take(count, s.complete())
    s.override(
        "licence",
        rows,
        vin=lambda vins: (
            vins.str.slice(0, 3).str.lower() + "-" + vins.str.slice(3, 9) + "-" + vins.str.slice(9)
        ),
    )


def _set_vins(s: Stories, rows: np.ndarray, vins: np.ndarray) -> None:
    """Give vehicles another VIN, on every record of theirs."""
    s.set(rows, vin=vins, vin_police=vins, vin_customs=vins)


#: Every record of a complete export story that carries its VIN (``transfer``: if resold).
VEHICLE_VIN_KINDS = ("register", "transfer", "pending", "licence", "item1", "dereg")


@plant("VIN-002")
def _vin_with_wrong_check_digit(s: Stories, count: int) -> Planted:
    """A car whose VIN carries a wrong check digit, the same on every record of it."""
    rows = s.take(count, s.complete())
    codes = ascii_codes(s.vehicles["vin"].iloc[rows].to_numpy(str), 17)
    right = CHECK_INDEX[codes[:, 8]]
    codes[:, 8] = CHECK_CODES[(right + s.rng.integers(1, 11, len(rows))) % 11]
    _set_vins(s, rows, codes_text(codes))
    resold = ~np.isnan(s.step("transferred")[rows])
    return [(rows[resold] if kind == "transfer" else rows, kind) for kind in VEHICLE_VIN_KINDS]


@near_miss("VIN-002")
def _imported_vin_with_wrong_check_digit(s: Stories, count: int) -> None:
    """A European-made car (WMI starting W: the check digit is advisory) whose check digit
    does not fit."""
    rows = s.take(count, s.complete())
    codes = ascii_codes(s.vehicles["vin"].iloc[rows].to_numpy(str), 17)
    codes[:, 0] = ord("W")
    right = CHECK_INDEX[vin_check_codes(codes)]
    codes[:, 8] = CHECK_CODES[(right + s.rng.integers(1, 11, len(rows))) % 11]
    _set_vins(s, rows, codes_text(codes))


@near_miss("VIN-003")
def _two_cars_one_character_apart(s: Stories, count: int) -> None:
    """Two cars whose valid VINs differ in one character, each on every feed: neither VIN
    is alone on a feed, so there is no candidate to propose."""
    pairs = s.take(2 * count, s.complete())
    half = len(pairs) // 2
    one, other = pairs[:half], pairs[half : 2 * half]
    codes = ascii_codes(s.vehicles["vin"].iloc[one].to_numpy(str), 17)
    # A character of the same ISO 3779 value keeps the check digit right.
    places = np.array([3, 4, 5, 6, 7, 10])
    has_sibling = SIBLINGS[codes[:, places]] != codes[:, places]
    place = places[np.argmax(has_sibling, axis=1)]
    rows = np.arange(len(one))
    codes[rows, place] = SIBLINGS[codes[rows, place]]
    vins = codes_text(codes)
    fits = has_sibling.any(axis=1) & ~s.holds(vins) & ~pd.Series(vins).duplicated().to_numpy()
    _set_vins(s, other[fits], vins[fits])


@plant("VIN-003")
def _deregistration_vin_transposed(s: Stories, count: int) -> Planted:
    """The police typed the VIN of the export deregistration with two characters swapped."""
    rows = s.take(count, s.complete())
    return type_over_vehicles(s, rows, "dereg", np.full(len(rows), "transposition"))


@plant("VIN-003")
def _licence_vin_mistyped(s: Stories, count: int) -> Planted:
    """Commerce typed one character of the VIN on the licence wrong."""
    rows = s.take(count, s.complete())
    return type_over_vehicles(s, rows, "licence", np.full(len(rows), "substitution"))
