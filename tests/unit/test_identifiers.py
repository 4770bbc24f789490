import random
from datetime import date

import pandas as pd

from vehiclehub.identifiers import (
    holds_personal_id,
    is_country,
    is_decl_no,
    is_decl_ref,
    is_digits,
    is_hs_code,
    is_personal_id,
    is_resident_id,
    is_uscc,
    looks_like_sci_notation,
    mask_id_shaped,
    mask_resident_id,
    pseudonymise,
)
from vehiclehub_samples.identifiers import make_decl_no, make_resident_id, make_uscc


def test_uscc() -> None:
    values = [
        "91350100M000100Y43",
        "91110000600037341L",
        "91350100M000100Y44",  # wrong check character
        "81350100M000100Y43",  # registration authority 8 does not exist
        "9135010AM000100Y43",  # region code not digits
        "91350100M000100I43",  # I is not in the charset
        "91350100M000100Y4",
        "91350100m000100y43",
        None,
    ]
    assert is_uscc(pd.Series(values)).tolist() == [True, True] + [False] * 7


def test_resident_id() -> None:
    values = [
        "11010519491231002X",
        "11010519491231002x",
        "11010519491231002Y",
        "11010519491231003X",  # wrong check character
        "99010519491231002X",  # no such province
        "110105194902300023",  # 30 February
        "91350100M000100Y43",
        None,
    ]
    assert is_resident_id(pd.Series(values)).tolist() == [True, True] + [False] * 6


def test_resident_id_check_on_generated_dates() -> None:
    rng = random.Random(3)
    ids = [make_resident_id(rng, date(2000, 2, 29))] + [make_resident_id(rng) for _ in range(300)]
    assert ids[0][6:14] == "20000229"
    assert is_resident_id(pd.Series(ids)).all()


def test_generated_uscc_and_decl_no() -> None:
    rng = random.Random(5)
    usccs = pd.Series([make_uscc(rng) for _ in range(300)])
    assert is_uscc(usccs).all()
    decl = make_decl_no(rng, "0101", 2025)
    assert decl.startswith("010120250") and is_decl_no(pd.Series([decl])).all()


def test_declaration_numbers() -> None:
    nos = ["010120250123456789", "010120251123456789", "01012025012345678", None]
    assert is_decl_no(pd.Series(nos)).tolist() == [True, False, False, False]
    refs = ["010120250123456789001", "010120250123456789999", "010120250123456789000"]
    refs += ["010120251123456789001", "01012025012345678901"]
    assert is_decl_ref(pd.Series(refs)).tolist() == [True, True, False, False, False]


def test_hs_country_digits() -> None:
    hs = ["87032390", "8703239000", "8716100000", "870323", "87112000", "870323900"]
    assert is_hs_code(pd.Series(hs)).tolist() == [True, True, True, False, False, False]
    countries = ["RUS", "KAZ", "ARE", "rus", "XXX", "RU", None]
    expected = [True, True, True, False, False, False, False]
    assert is_country(pd.Series(countries)).tolist() == expected
    ports = pd.Series(["0101", "101", "01a1", "０１０１"])
    assert is_digits(ports, 4).tolist() == [True, False, False, False]


def test_sci_notation() -> None:
    values = ["5.30E+17", "5.3e17", "1.2345E+16", "530000000000000000", "LSV", None]
    result = looks_like_sci_notation(pd.Series(values))
    assert result.tolist() == [True, True, True, False, False, False]
    assert looks_like_sci_notation(pd.Series([5.3e17])).all()


def test_pseudonymise() -> None:
    s = pd.Series(["11010519491231002x", "11010519491231002X", None], index=[3, 4, 5])
    out = pseudonymise(s, b"secret")
    assert out.index.equals(s.index)
    assert out.iloc[0] == out.iloc[1]
    assert len(out.iloc[0]) == 64 and pd.isna(out.iloc[2])
    assert pseudonymise(s, b"other").iloc[0] != out.iloc[0]
    assert "11010519491231002X" not in out.tolist()


def test_mask_resident_id() -> None:
    out = mask_resident_id(pd.Series(["11010519491231002X", "123", None]))
    assert out.iloc[0] == "110105" + "*" * 12
    assert out.iloc[1] == "123"
    assert pd.isna(out.iloc[2])


def _person(born: date = date(1990, 3, 7)) -> str:
    return make_resident_id(random.Random(7), born)


def _full_width(value: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in value)


def test_a_resident_id_is_found_in_free_text_as_icd_5_says() -> None:
    rid = _person()
    cases = {
        f"张三{rid}号": True,
        f"owner {rid}": True,
        _full_width(rid): True,  # digits read through NFKC
        rid[:-1] + rid[-1].lower(): True,
        f"A{rid}": False,  # joined to an ASCII letter
        f"{rid}9": False,  # 19 digits: no resident ID
        rid[:6] + " " + rid[6:]: False,  # not 18 characters in a row
        rid[:-1] + ("0" if rid[-1] != "0" else "1"): False,  # wrong check character
        _person(date(2025, 11, 4)): False,  # born after the file's business date
        _person(date(1899, 12, 31)): False,
        None: False,
    }
    found = holds_personal_id(pd.Series(list(cases)), date(2025, 11, 3))
    assert found.tolist() == list(cases.values())


def test_a_whole_value_that_is_a_resident_id() -> None:
    rid = _person()
    values = pd.Series([rid, _full_width(rid), f"{rid} ", "91350100M000100Y43", None])
    assert is_personal_id(values, date(2025, 11, 3)).tolist() == [True, True, False, False, False]


def test_id_shaped_runs_are_masked_after_their_first_6_characters() -> None:
    shown = mask_id_shaped(
        pd.Series(
            [
                "张三319326199003078674号",
                "1101 0119 9003 0712 3X",  # spaces between, X as the 18th
                "x 123456789012345 X-ray",  # 15 digits
                "530420250040970934001",  # 21 digits: a declaration reference
                "12345678901234",  # 14 digits
                None,
            ]
        )
    )
    assert shown.tolist()[:5] == [
        "张三319326************号",
        "1101 01** **** **** **",
        "x 123456********* X-ray",
        "530420250040970934001",
        "12345678901234",
    ]
