"""Identifier checks (ICD §2) and pseudonyms for personal data (ICD §5).

The checks take a Series of any dtype and return a bool Series with the same index; a
missing value is never valid.
"""

import hmac
import re
import unicodedata
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pycountry

USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_CHAR = f"[{USCC_CHARS}]"
_USCC_PATTERN = f"[159Y]{_USCC_CHAR}[0-9]{{6}}{_USCC_CHAR}{{10}}"
_USCC_VALUES = np.zeros(128, dtype=np.int64)
_USCC_VALUES[[ord(c) for c in USCC_CHARS]] = np.arange(len(USCC_CHARS))

PROVINCE_CODES = (
    *range(11, 16),
    *range(21, 24),
    *range(31, 38),
    *range(41, 47),
    *range(50, 55),
    *range(61, 66),
    71,
    81,
    82,
)
_RID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RID_CHECK = "10X98765432"
_RID_PATTERN = f"(?:{'|'.join(str(p) for p in PROVINCE_CODES)})[0-9]{{15}}[0-9X]"

_HS_PATTERN = "(?:8702|8703|8704|8716)(?:[0-9]{4}|[0-9]{6})"
# Matched after trimming: a pattern without ``\s`` runs in pyarrow's RE2, not per value.
_SCI_PATTERN = "[+-]?[0-9]+(?:[.,][0-9]*)?[eE][+-]?[0-9]+"
_COUNTRIES = frozenset(c.alpha_3 for c in pycountry.countries)


def text(s: pd.Series) -> pd.Series:
    """Return ``s`` as the pandas string dtype, keeping missing values missing."""
    return s.astype("str")


def char_matrix(s: pd.Series, width: int) -> np.ndarray:
    """Return the ASCII codes of ``s`` as a ``(len(s), width)`` uint8 array.

    Every value must be an ASCII string of exactly ``width`` characters.
    """
    return s.to_numpy(dtype=f"S{width}").view(np.uint8).reshape(-1, width)


def _uscc_check(codes: np.ndarray) -> np.ndarray:
    remainder = -(_USCC_VALUES[codes[:, :17]] @ np.array(_USCC_WEIGHTS)) % 31
    check: np.ndarray = np.frombuffer(USCC_CHARS.encode("ascii"), dtype=np.uint8)[remainder]
    return check


def _resident_id_check(codes: np.ndarray) -> np.ndarray:
    remainder = ((codes[:, :17].astype(np.int64) - ord("0")) @ np.array(_RID_WEIGHTS)) % 11
    check: np.ndarray = np.frombuffer(_RID_CHECK.encode("ascii"), dtype=np.uint8)[remainder]
    return check


def is_uscc(s: pd.Series) -> pd.Series:
    """Unified social credit code: 18 chars, GB 32100-2015 layout and check character."""
    t = text(s)
    ok = t.str.fullmatch(_USCC_PATTERN).to_numpy(copy=True)
    codes = char_matrix(t[ok], 18)
    ok[ok] = _uscc_check(codes) == codes[:, 17]
    return pd.Series(ok, index=s.index)


def is_resident_id(s: pd.Series) -> pd.Series:
    """Resident ID (GB 11643) as ICD §3 police/events owner_id defines it.

    Upper-cased first: 17 digits then a digit or X, a province code, a real birth date in
    digits 7-14 and the right check character.
    """
    t = text(s).str.upper()
    ok = t.str.fullmatch(_RID_PATTERN).to_numpy(copy=True)
    well_formed = t[ok]
    born = pd.to_datetime(well_formed.str.slice(6, 14), format="%Y%m%d", errors="coerce")
    codes = char_matrix(well_formed, 18)
    ok[ok] = born.notna().to_numpy() & (_resident_id_check(codes) == codes[:, 17])
    return pd.Series(ok, index=s.index)


def is_digits(s: pd.Series, n: int) -> pd.Series:
    """Exactly ``n`` ASCII digits."""
    return text(s).str.fullmatch(f"[0-9]{{{n}}}")


def is_decl_no(s: pd.Series) -> pd.Series:
    """Declaration number: 18 digits, the 9th (export/import flag) ``0``."""
    return text(s).str.fullmatch("[0-9]{8}0[0-9]{9}")


def is_decl_ref(s: pd.Series) -> pd.Series:
    """Declaration reference: a declaration number followed by item number 001-999."""
    return text(s).str.fullmatch("[0-9]{8}0[0-9]{9}(?:00[1-9]|0[1-9][0-9]|[1-9][0-9]{2})")


def is_hs_code(s: pd.Series) -> pd.Series:
    """HS code of a used vehicle: 8 or 10 digits under heading 8702, 8703, 8704 or 8716."""
    return text(s).str.fullmatch(_HS_PATTERN)


def is_country(s: pd.Series) -> pd.Series:
    """ISO 3166-1 alpha-3 country code (current codes, upper case)."""
    return text(s).isin(_COUNTRIES)


def looks_like_sci_notation(s: pd.Series) -> pd.Series:
    """Value in scientific notation (``5.30E+17``, ``5.3e17``): an id mangled by Excel."""
    return text(s).str.strip().str.fullmatch(_SCI_PATTERN)


def pseudonymise(s: pd.Series, key: bytes) -> pd.Series:
    """HMAC-SHA256 hex digest of each upper-cased value under ``key``; missing stays missing."""
    t = text(s).str.upper()
    codes, uniques = pd.factorize(t, use_na_sentinel=True)
    digests = np.array(
        [hmac.digest(key, v.encode("utf-8"), "sha256").hex() for v in uniques] + [None],
        dtype=object,
    )
    return pd.Series(digests[codes], index=s.index, dtype="str")  # code -1: the None at the end


#: 18 characters that may be a resident ID, not joined to other ASCII letters or digits.
_RID_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])[0-9]{17}[0-9Xx](?![0-9A-Za-z])", re.ASCII)
#: Text that may hold one once read through NFKC: nine numeric characters in a row (a
#: compatibility character such as ⑳ stands for two digits). Checked first, in RE2.
_MAY_HOLD_RID = r"\p{N}{9}"
#: A whole value that may be one: 18 numeric characters, the last perhaps X (RE2).
_MAY_BE_RID = r"^\p{N}{17}[\p{N}Xx]$"


def arrow_text(t: pd.Series) -> pa.Array:
    """A Series of text as one Arrow string array, missing values null."""
    values = pa.array(t, pa.string(), from_pandas=True)
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


#: A run of digits (any script), spaces allowed between them, perhaps ending in X: the
#: 15 or 18 id-shaped characters of ICD §5's masking are such a run (or the run without
#: its X) of exactly that length.
_DIGIT_RUN = re.compile(r"\d(?: *\d)*(?: *[Xx])?")
_EARLIEST_BIRTH = date(1900, 1, 1)


def _born_by(ids: pd.Series, latest: date) -> pd.Series:
    """Whether the birth date of each (valid) resident ID lies from 1900-01-01 to ``latest``."""
    born = pd.to_datetime(ids.str.slice(6, 14), format="%Y%m%d", errors="coerce")
    return (born >= pd.Timestamp(_EARLIEST_BIRTH)) & (born <= pd.Timestamp(latest))


def is_personal_id(s: pd.Series, latest_birth: date) -> pd.Series:
    """Whole values that are a person's resident ID as ICD §5 finds them where none may
    stand: the §3 ``owner_id`` test on the value read through NFKC (``x`` as ``X``), with a
    birth date from 1900-01-01 to ``latest_birth`` (the file's business date)."""
    t = text(s)
    maybe = pd.Series(
        pc.fill_null(pc.match_substring_regex(arrow_text(t), _MAY_BE_RID), False).to_numpy(
            zero_copy_only=False
        ),
        index=s.index,
    )
    found = pd.Series(False, index=s.index)
    if maybe.any():
        read = t[maybe].map(lambda v: unicodedata.normalize("NFKC", v).upper())
        found[maybe] = (is_resident_id(read) & _born_by(read, latest_birth)).to_numpy()
    return found


def holds_personal_id(s: pd.Series, latest_birth: date) -> pd.Series:
    """Free text that holds a resident ID (ICD §5): 18 characters, read through NFKC, not
    joined to other ASCII letters or digits, that pass :func:`is_personal_id`."""
    t = text(s)
    maybe = pc.fill_null(pc.match_substring_regex(arrow_text(t), _MAY_HOLD_RID), False)
    found = maybe.to_numpy(zero_copy_only=False).copy()
    for at in np.flatnonzero(found):
        read = unicodedata.normalize("NFKC", str(t.iloc[at]))
        candidates = pd.Series(_RID_IN_TEXT.findall(read), dtype="str")
        found[at] = bool(is_personal_id(candidates, latest_birth).any())
    return pd.Series(found, index=s.index)


def mask_id_shaped(s: pd.Series) -> pd.Series:
    """Values with every run of 15 or 18 id-shaped characters masked (ICD §5): its first
    6 digits kept, every later digit or X written ``*``."""

    def masked(run: str) -> str:
        shaped = run.replace(" ", "")
        if shaped[-1] in "Xx" and len(shaped) != 18:
            body = run[:-1]
            return masked(body.rstrip(" ")) + body[len(body.rstrip(" ")) :] + run[-1]
        if len(shaped) not in (15, 18):
            return run
        out, seen = [], 0
        for char in run:
            seen += char != " "
            out.append("*" if char != " " and seen > 6 else char)
        return "".join(out)

    shown = text(s).map(
        lambda v: _DIGIT_RUN.sub(lambda m: masked(m.group()), v), na_action="ignore"
    )
    return shown.astype("str")


def mask_resident_id(s: pd.Series) -> pd.Series:
    """Keep the first 6 characters and replace every later one with ``*``."""
    t = text(s)
    return t.str.slice(0, 6) + t.str.slice(6).str.replace("(?s).", "*", regex=True)
