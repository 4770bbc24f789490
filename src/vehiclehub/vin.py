"""Vehicle identification numbers: normalisation (ICD §2), check digit and near matches."""

import re

import numpy as np
import pandas as pd

from vehiclehub.identifiers import char_matrix, text

VIN_CHARS = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"
_VIN_CHAR = "[0-9A-HJ-NPR-Z]"
VIN_PATTERN = _VIN_CHAR + "{17}"

_TRANSLITERATION = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_VALUES = np.zeros(128, dtype=np.int64)
_VALUES[[ord(c) for c in _TRANSLITERATION]] = list(_TRANSLITERATION.values())
_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_CHECK_CHARS = "0123456789X"
_CLEANING = r"[\s*\-\u2010-\u2015\u2212]"


def _check_chars(codes: np.ndarray) -> np.ndarray:
    remainder = (_VALUES[codes] @ np.array(_WEIGHTS)) % 11
    check: np.ndarray = np.frombuffer(_CHECK_CHARS.encode("ascii"), dtype=np.uint8)[remainder]
    return check


def check_digit(vin: str) -> str:
    """Return the ISO 3779 check digit (``0``-``9`` or ``X``) of a 17-character VIN.

    Position 9 itself has weight 0, so any legal character may hold its place.
    """
    if not re.fullmatch(VIN_PATTERN, vin):
        raise ValueError(f"not 17 legal VIN characters: {vin!r}")
    return _CHECK_CHARS[
        sum(_TRANSLITERATION[c] * w for c, w in zip(vin, _WEIGHTS, strict=True)) % 11
    ]


def normalise_vins(raw: pd.Series) -> pd.DataFrame:
    """Normalise raw VINs as ICD §2 prescribes, one output row per input row (same index).

    Columns: ``vin`` (cleaned text, NA when the raw value is null or empty; kept even when
    illegal so that it can be reported), ``legal`` (17 legal characters), ``substituted``
    (``I``/``O``/``Q`` read as ``1``/``0``/``0`` or a barcode's leading ``I`` dropped),
    ``check_mandatory`` (the WMI starts with ``L`` or ``1``-``5``) and ``check_ok``
    (position 9 is the check digit; False for illegal VINs).
    """
    raw_text = text(raw)
    # Most VINs arrive clean: 17 legal upper-case characters need no cleaning.
    clean = raw_text.str.fullmatch(VIN_PATTERN).to_numpy(dtype=bool, na_value=False)
    vin = raw_text.copy()
    substituted = np.zeros(len(raw_text), dtype=bool)
    if not clean.all():
        rest = _normalise_text(raw_text[~clean])
        vin[~clean] = rest["vin"]
        substituted[~clean] = rest["substituted"].to_numpy()
    legal = clean.copy()
    if not clean.all():
        legal[~clean] = vin[~clean].str.fullmatch(VIN_PATTERN).to_numpy(dtype=bool, na_value=False)
    check_ok = legal.copy()
    codes = char_matrix(vin[legal], 17)
    check_ok[legal] = _check_chars(codes) == codes[:, 8]
    first = vin.str.slice(0, 1)
    return pd.DataFrame(
        {
            "vin": vin.array,
            "legal": legal,
            "substituted": substituted,
            "check_mandatory": first.isin(_MANDATORY_FIRST).to_numpy(),
            "check_ok": check_ok,
        },
        index=raw.index,
    )


_MANDATORY_FIRST = ["L", "1", "2", "3", "4", "5"]


def _normalise_text(raw_text: pd.Series) -> pd.DataFrame:
    """The ICD §2 cleaning and reading of VINs that are not already 17 legal characters."""
    cleaned = raw_text.str.normalize("NFKC").str.upper().str.replace(_CLEANING, "", regex=True)
    cleaned = cleaned.where(cleaned != "")
    barcode = (cleaned.str.len() == 18) & cleaned.str.startswith("I")
    cleaned = cleaned.where(~barcode, cleaned.str.slice(1))
    misread = cleaned.str.contains("[IOQ]")
    vin = cleaned.str.replace("I", "1", regex=False).str.replace("[OQ]", "0", regex=True)
    return pd.DataFrame(
        {"vin": vin.array, "substituted": (barcode | misread).fillna(False).to_numpy(dtype=bool)},
        index=raw_text.index,
    )
