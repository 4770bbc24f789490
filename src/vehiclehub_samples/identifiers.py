"""Identifiers in bulk (ICD §2): VINs, enterprise USCCs, resident IDs and number plates,
distinct and valid. Made independently of the hub's checks, so that a fault in either
shows up in the tests: the check characters of USCCs and resident IDs as python-stdnum
computes them, those of VINs from ISO 3779.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from datetime import date, timedelta

import numpy as np
from stdnum.cn import ric, uscc

from vehiclehub.identifiers import PROVINCE_CODES

VIN_ALPHABET = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
VIN_CODES = np.frombuffer(VIN_ALPHABET.encode(), np.uint8)
_USCC_CODES = np.frombuffer(USCC_ALPHABET.encode(), np.uint8)
_DIGIT_CODES = np.frombuffer(b"0123456789", np.uint8)
_LETTER_CODES = np.frombuffer(PLATE_LETTERS.encode(), np.uint8)
_MODEL_YEAR_CODES = np.frombuffer(b"ABCDEFGHJKLMNPRSTVWXY123456789", np.uint8)  # 2010 = A
_VIN_WEIGHTS = np.array([8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2])
DRAWS = 50  # rounds of redrawing repeated identifiers before giving up


def _transliteration() -> np.ndarray:
    """ISO 3779 values of the VIN characters, indexed by ASCII code."""
    values = np.zeros(128, np.int64)
    for position, char in enumerate("0123456789"):
        values[ord(char)] = position
    for letters, first in (("ABCDEFGH", 1), ("JKLMN", 1), ("P", 7), ("R", 9), ("STUVWXYZ", 2)):
        for offset, char in enumerate(letters):
            values[ord(char)] = first + offset
    return values


_VIN_VALUES = _transliteration()
CHECK_CODES = np.frombuffer(b"0123456789X", np.uint8)
CHECK_INDEX = np.zeros(128, np.int64)
CHECK_INDEX[CHECK_CODES] = np.arange(len(CHECK_CODES))
VIN_INDEX = np.zeros(128, np.int64)
VIN_INDEX[VIN_CODES] = np.arange(len(VIN_ALPHABET))


def _siblings() -> np.ndarray:
    """Per VIN character (ASCII), the next character of the same ISO 3779 value (itself
    when it has none: ``0``)."""
    nxt = np.arange(128, dtype=np.uint8)
    for value in range(10):
        group = VIN_CODES[_VIN_VALUES[VIN_CODES] == value]
        nxt[group] = np.roll(group, -1)
    return nxt


SIBLINGS = _siblings()


def ascii_codes(values: np.ndarray, width: int) -> np.ndarray:
    """ASCII strings of exactly ``width`` characters as a ``(n, width)`` uint8 matrix."""
    return np.asarray(values).astype(f"S{width}").view(np.uint8).reshape(-1, width)


def codes_text(codes: np.ndarray) -> np.ndarray:
    """The rows of a uint8 matrix as strings."""
    width = codes.shape[1]
    return np.ascontiguousarray(codes).view(f"S{width}").ravel().astype(f"U{width}")


def _put_digits(codes: np.ndarray, start: int, width: int, numbers: np.ndarray) -> None:
    """Write ``numbers`` zero-padded into columns ``start .. start + width`` of ``codes``."""
    for place in range(width):
        codes[:, start + width - 1 - place] = 48 + (numbers // 10**place) % 10


def _row_hashes(codes: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row of a code matrix (equal rows, equal hashes)."""
    hashes = np.zeros(len(codes), np.uint64)
    for column in codes.T:
        hashes = hashes * np.uint64(1_099_511_628_211) + column
    return hashes


def _unique(draw: Callable[[np.ndarray], np.ndarray], count: int) -> np.ndarray:
    """``draw(rows)`` (a matrix of ASCII codes per row) for every row, drawn again for the
    rows whose hash repeats an earlier one's (a collision only costs a redraw); as text."""
    codes = draw(np.arange(count))
    for _ in range(DRAWS):
        _, first = np.unique(_row_hashes(codes), return_index=True)
        repeated = np.ones(count, bool)
        repeated[first] = False
        if not repeated.any():
            return codes_text(codes)
        codes[repeated] = draw(np.flatnonzero(repeated))
    raise ValueError(f"cannot draw {count} distinct values: too few possible ones")


def vin_check_codes(codes: np.ndarray) -> np.ndarray:
    """ISO 3779 check characters (ASCII) of a ``(n, 17)`` matrix of VIN characters."""
    remainder = (_VIN_VALUES[codes] @ _VIN_WEIGHTS) % 11
    return np.where(remainder == 10, ord("X"), 48 + remainder).astype(np.uint8)


def bulk_vins(rng: np.random.Generator, wmis: np.ndarray, years: np.ndarray) -> np.ndarray:
    """Distinct random VINs with a correct check digit, one per (WMI, model year) given."""
    wmi_codes = ascii_codes(wmis, 3)

    def draw(rows: np.ndarray) -> np.ndarray:
        codes = np.empty((len(rows), 17), np.uint8)
        codes[:, :3] = wmi_codes[rows]
        codes[:, 3:8] = VIN_CODES[rng.integers(0, len(VIN_ALPHABET), (len(rows), 5))]
        codes[:, 8] = ord("0")  # the check digit's place has weight 0
        codes[:, 9] = _MODEL_YEAR_CODES[(years[rows] - 2010) % len(_MODEL_YEAR_CODES)]
        codes[:, 10] = VIN_CODES[rng.integers(0, len(VIN_ALPHABET), len(rows))]
        codes[:, 11:] = _DIGIT_CODES[rng.integers(0, 10, (len(rows), 6))]
        codes[:, 8] = vin_check_codes(codes)
        return codes

    return _unique(draw, len(wmis))


def uscc_check_codes(codes: np.ndarray) -> np.ndarray:
    """GB 32100 check characters (ASCII) of a ``(n, 17+)`` matrix of USCC characters, as
    python-stdnum computes them."""
    bodies = codes_text(codes[:, :17]).tolist()
    return ascii_codes(np.array([uscc.calc_check_digit(body) for body in bodies]), 1)[:, 0]


def bulk_usccs(rng: np.random.Generator, regions: np.ndarray) -> np.ndarray:
    """Distinct enterprise USCCs (``91`` + division code + organisation code + check)."""
    region_codes = ascii_codes(regions, 6)

    def draw(rows: np.ndarray) -> np.ndarray:
        codes = np.empty((len(rows), 18), np.uint8)
        codes[:, :2] = np.frombuffer(b"91", np.uint8)
        codes[:, 2:8] = region_codes[rows]
        codes[:, 8:17] = _USCC_CODES[rng.integers(0, len(USCC_ALPHABET), (len(rows), 9))]
        codes[:, 17] = uscc_check_codes(codes)
        return codes

    return _unique(draw, len(regions))


def resident_id_check_codes(codes: np.ndarray) -> np.ndarray:
    """GB 11643 check characters (ASCII) of a ``(n, 17+)`` matrix of digits, as
    python-stdnum computes them (it reads the number with a check character in place)."""
    bodies = codes_text(codes[:, :17]).tolist()
    return ascii_codes(np.array([ric.calc_check_digit(body + "0") for body in bodies]), 1)[:, 0]


def bulk_resident_ids(
    rng: np.random.Generator, regions: np.ndarray, births: np.ndarray
) -> np.ndarray:
    """Distinct resident IDs: division code, birth date (day numbers), sequence, check."""
    region_codes = ascii_codes(regions, 6)
    born = births.astype("datetime64[D]")
    years = born.astype("datetime64[Y]").astype(np.int64) + 1970
    months = born.astype("datetime64[M]").astype(np.int64) % 12 + 1
    days = (born - born.astype("datetime64[M]")).astype(np.int64) + 1

    def draw(rows: np.ndarray) -> np.ndarray:
        codes = np.empty((len(rows), 18), np.uint8)
        codes[:, :6] = region_codes[rows]
        _put_digits(codes, 6, 4, years[rows])
        _put_digits(codes, 10, 2, months[rows])
        _put_digits(codes, 12, 2, days[rows])
        _put_digits(codes, 14, 3, rng.integers(0, 1000, len(rows)))
        codes[:, 17] = resident_id_check_codes(codes)
        return codes

    return _unique(draw, len(regions))


def bulk_plates(rng: np.random.Generator, prefixes: np.ndarray) -> np.ndarray:
    """Number plates such as ``津A12345`` (a letter in front for about a third)."""
    codes = _DIGIT_CODES[rng.integers(0, 10, (len(prefixes), 5))]
    lettered = rng.random(len(prefixes)) < 0.3
    codes[lettered, 0] = _LETTER_CODES[rng.integers(0, len(PLATE_LETTERS), lettered.sum())]
    return np.char.add(prefixes.astype("U2"), codes_text(codes))


# One at a time, for the records the tests write by hand.


def make_uscc(rng: random.Random) -> str:
    """A random valid USCC."""
    body = (
        rng.choice(["91", "92", "93", "11", "12", "51", "52", "Y1"])
        + str(rng.choice(PROVINCE_CODES))
        + f"{rng.randrange(10_000):04d}"
        + "".join(rng.choices(USCC_ALPHABET, k=9))
    )
    return body + uscc.calc_check_digit(body)


def make_resident_id(rng: random.Random, birth: date | None = None) -> str:
    """A random valid resident ID, born on ``birth`` or a random day 1950-2005."""
    if birth is None:
        birth = date(1950, 1, 1) + timedelta(days=rng.randrange(20_089))
    body = (
        f"{rng.choice(PROVINCE_CODES)}{rng.randrange(1, 10_000):04d}"
        f"{birth:%Y%m%d}{rng.randrange(1000):03d}"
    )
    return body + ric.calc_check_digit(body + "0")


def make_decl_no(rng: random.Random, district: str, year: int) -> str:
    """A random export declaration number of customs ``district`` (4 digits) and ``year``."""
    if not (len(district) == 4 and district.isascii() and district.isdigit()):
        raise ValueError(f"customs district must be 4 digits, got {district!r}")
    return f"{district}{year:04d}0{rng.randrange(10**9):09d}"


def make_vin(rng: random.Random, wmi: str = "LSV") -> str:
    """A random VIN with manufacturer code ``wmi`` and a correct check digit."""
    if not re.fullmatch(f"[{VIN_ALPHABET}]{{3}}", wmi):
        raise ValueError(f"not a 3-character WMI: {wmi!r}")
    draft = (
        wmi
        + "".join(rng.choices(VIN_ALPHABET, k=6))
        + rng.choice(_MODEL_YEAR_CODES.tobytes().decode())
        + rng.choice(VIN_ALPHABET)
        + f"{rng.randrange(10**6):06d}"
    )
    check = chr(vin_check_codes(ascii_codes(np.array([draft]), 17))[0])
    return draft[:8] + check + draft[9:]
