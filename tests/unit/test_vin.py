import random

import pandas as pd
import pytest
from pandas.api.types import is_string_dtype

from vehiclehub.vin import VIN_PATTERN, check_digit, normalise_vins
from vehiclehub_samples.identifiers import make_vin

VALID = ["LSVAM4187C2184847", "1M8GDM9AXKP042788", "1HGCM82633A004352", "11111111111111111"]


@pytest.mark.parametrize("vin", VALID)
def test_check_digit_of_known_good_vins(vin: str) -> None:
    assert check_digit(vin) == vin[8]


def test_check_digit_rejects_illegal_characters() -> None:
    with pytest.raises(ValueError):
        check_digit("LSVAM4187C218484O")


def test_normalise_cleans_without_substitution() -> None:
    raw = pd.Series(
        [" lsvam4187c2184847 ", "LSV-AM41*87 C2184847", "ＬＳＶＡＭ４１８７Ｃ２１８４８４７"]
    )
    out = normalise_vins(raw)
    assert out["vin"].tolist() == ["LSVAM4187C2184847"] * 3
    assert out["legal"].all()
    assert out["check_ok"].all()
    assert out["check_mandatory"].all()
    assert not out["substituted"].any()


def test_normalise_reads_o_as_zero_and_drops_barcode_i() -> None:
    raw = pd.Series(
        ["LSVAM4187C2I84847", "1M8GDM9AXKPO42788", "ILSVAM4187C2184847", "iLSVAM4187C2184847"]
    )
    out = normalise_vins(raw)
    assert out["vin"].tolist() == [
        "LSVAM4187C2184847",
        "1M8GDM9AXKP042788",
        "LSVAM4187C2184847",
        "LSVAM4187C2184847",
    ]
    assert out["substituted"].all()
    assert out["check_ok"].all()


def test_normalise_keeps_index_nulls_and_illegal_text() -> None:
    raw = pd.Series([None, "", " - ", "LSVAM4187C21848", "LSVAM4187C2184848", "JH4KA8260MC000000"])
    raw.index = [10, 10, 11, 12, 13, 14]
    out = normalise_vins(raw)
    assert out.index.equals(raw.index)
    assert list(out.columns) == ["vin", "legal", "substituted", "check_mandatory", "check_ok"]
    assert is_string_dtype(out["vin"])
    assert out["vin"].iloc[:3].isna().all()
    assert out["vin"].iloc[3] == "LSVAM4187C21848"
    assert out["legal"].tolist() == [False, False, False, False, True, True]
    assert out["check_ok"].tolist() == [False] * 6
    assert out["check_mandatory"].tolist() == [False, False, False, True, True, False]


def test_make_vin_is_valid() -> None:
    rng = random.Random(7)
    vins = pd.Series([make_vin(rng) for _ in range(200)] + [make_vin(rng, "1HG")])
    out = normalise_vins(vins)
    assert out["legal"].all() and out["check_ok"].all() and not out["substituted"].any()
    assert vins.str.fullmatch(VIN_PATTERN).all()
    assert vins.iloc[-1].startswith("1HG")
