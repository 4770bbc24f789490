"""Plate prefixes are data: province and city of a plate, ``unknown`` when not known."""

from __future__ import annotations

from vehiclehub.review.programme import place_of


def test_a_plate_prefix_names_its_province_and_city() -> None:
    assert place_of("晋A12345") == ("山西省", "太原市")
    assert place_of("蒙K0001") == ("内蒙古自治区", "鄂尔多斯市")
    assert place_of("津C88888") == ("天津市", "天津市")
    # A province whose city letter the table does not hold, and no plate at all.
    assert place_of("冀Z12345") == ("河北省", "unknown")
    assert place_of("") == ("unknown", "unknown")
    assert place_of("X12345") == ("unknown", "unknown")
