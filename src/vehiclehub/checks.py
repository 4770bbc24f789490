"""Pandera checks for the ICD's value types, each with its error in words.

A check's ``error`` text is what a sender reads in its ``rejections`` drop, so it
says what is wrong and what is expected. Checks are vectorised over the column.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc

from vehiclehub import identifiers
from vehiclehub.vin import normalise_vins

# ICD §1, what a field may hold: digits are ASCII digits, dates lie in 1900-2099,
# decimals have at most 16 digits before the point and 2 after.
_DATE = r"(?:19|20)[0-9]{2}-[0-9]{2}-[0-9]{2}"
_DECIMAL = r"[0-9]{1,16}(?:\.[0-9]{1,2})?"

#: Control characters no field may hold (ICD §1), in RE2 syntax.
_CONTROL = r"[\x00-\x1f\x{7f}-\x{9f}\x{2028}\x{2029}]"
#: What a key or reference may not hold: white space (any), or a drop's separators.
_NOT_IN_REFERENCE = r"[\s\p{Z};:/\\]"


def _fullmatch(s: pd.Series, pattern: str) -> pd.Series:
    return s.astype("str").str.fullmatch(pattern).fillna(False).astype(bool)


def _arrow(s: pd.Series) -> pyarrow.Array:
    values = pyarrow.array(s.astype("str"), type=pyarrow.string(), from_pandas=True)
    return values.combine_chunks() if isinstance(values, pyarrow.ChunkedArray) else values


def _found(s: pd.Series, pattern: str) -> pd.Series:
    """Whether each value holds a match of an RE2 ``pattern``; missing: no."""
    hits = pc.fill_null(pc.match_substring_regex(_arrow(s), pattern), False)
    return pd.Series(hits.to_numpy(zero_copy_only=False), index=s.index)


def _chars(s: pd.Series) -> pd.Series:
    """Each value's length in characters; 0 for a missing one."""
    lengths = pc.fill_null(pc.utf8_length(_arrow(s)), 0)
    return pd.Series(lengths.to_numpy(zero_copy_only=False), index=s.index)


def no_control_chars() -> pa.Check:
    return pa.Check(
        lambda s: ~_found(s, _CONTROL),
        name="no_control_chars",
        error="holds a control character (U+0000-U+001F, U+007F-U+009F) or a line or "
        "paragraph separator (U+2028, U+2029)",
    )


def max_chars(n: int) -> pa.Check:
    return pa.Check(
        lambda s: _chars(s) <= n, name=f"max_chars_{n}", error=f"longer than {n} characters"
    )


def reference() -> pa.Check:
    """A record key or reference (ICD §1): drops join keys with ``/`` and ids with ``;``."""
    return pa.Check(
        lambda s: (_chars(s) <= 64) & ~_found(s, _NOT_IN_REFERENCE),
        name="reference",
        error="not a key or reference: 1 to 64 characters without white space and "
        "without ; : / or \\",
    )


def not_scientific() -> pa.Check:
    return pa.Check(
        lambda s: ~identifiers.looks_like_sci_notation(s),
        name="not_scientific",
        error="identifier in scientific notation (a spreadsheet turned it into a number); "
        "send identifiers as text with every digit",
    )


def vin() -> pa.Check:
    return pa.Check(
        lambda s: normalise_vins(s)["legal"],
        name="vin",
        error="not a VIN: after normalisation it must be 17 characters of 0-9 A-H J-N P R-Z",
    )


def uscc() -> pa.Check:
    return pa.Check(
        identifiers.is_uscc,
        name="uscc",
        error="not a unified social credit code: 18 characters with a valid GB 32100 "
        "check character",
    )


def resident_id() -> pa.Check:
    return pa.Check(
        identifiers.is_resident_id,
        name="resident_id",
        error="not a resident ID number: 18 characters, province code, birth date and a "
        "valid GB 11643 check character",
    )


def owner_id() -> pa.Check:
    return pa.Check(
        lambda s: identifiers.is_resident_id(s) | identifiers.is_uscc(s),
        name="owner_id",
        error="neither a resident ID number (GB 11643) nor a unified social credit code (GB 32100)",
    )


def decl_no() -> pa.Check:
    return pa.Check(
        identifiers.is_decl_no,
        name="decl_no",
        error="not an export declaration number: 18 digits, the 9th digit 0",
    )


def decl_ref() -> pa.Check:
    return pa.Check(
        identifiers.is_decl_ref,
        name="decl_ref",
        error="not a declaration reference: 21 digits, an export declaration number and a "
        "3-digit item number",
    )


def hs_code() -> pa.Check:
    return pa.Check(
        identifiers.is_hs_code,
        name="hs_code",
        error="not a used-vehicle HS code: 8 or 10 digits under heading 8702, 8703, 8704 or 8716",
    )


def country() -> pa.Check:
    return pa.Check(
        identifiers.is_country,
        name="country",
        error="not an ISO 3166-1 alpha-3 country code",
    )


def digits(n: int) -> pa.Check:
    return pa.Check(
        lambda s: identifiers.is_digits(s, n), name=f"digits_{n}", error=f"must be {n} digits"
    )


def iso_date() -> pa.Check:
    def valid(s: pd.Series) -> pd.Series:
        well_formed = _fullmatch(s, _DATE)
        parsed = pd.to_datetime(s.where(well_formed), format="%Y-%m-%d", errors="coerce")
        return well_formed & parsed.notna()

    return pa.Check(valid, name="date", error="not a date in the form YYYY-MM-DD from 1900 to 2099")


def integer(low: int | None = None, high: int | None = None) -> pa.Check:
    bounds = (
        f" from {low} to {high}"
        if low is not None and high is not None
        else f" of at least {low}"
        if low is not None
        else ""
    )

    def valid(s: pd.Series) -> pd.Series:
        ok = _fullmatch(s, r"[0-9]{1,9}")
        number = pd.to_numeric(s.where(ok), errors="coerce")
        if low is not None:
            ok &= (number >= low).fillna(False)
        if high is not None:
            ok &= (number <= high).fillna(False)
        return ok

    return pa.Check(valid, name="integer", error=f"must be a whole number{bounds}")


def decimal() -> pa.Check:
    return pa.Check(
        lambda s: _fullmatch(s, _DECIMAL),
        name="decimal",
        error="must be a plain non-negative decimal number such as 1234.50, at most 16 "
        "digits before the point and 2 after",
    )


def one_of(values: list[str]) -> pa.Check:
    allowed = set(values)
    return pa.Check(
        lambda s: s.isin(allowed),
        name="one_of",
        error=f"must be one of: {', '.join(values)}",
    )


def required_when(column: str, when_column: str, equals: str) -> pa.Check:
    """A row check: ``column`` must have a value when ``when_column`` is ``equals``.

    The check's name starts with the column it is about, which is where the
    rejection points.
    """
    return pa.Check(
        lambda df: ~((df[when_column] == equals).fillna(False) & df[column].isna()),
        name=f"{column}:required_when",
        error=f"required when {when_column} is {equals}",
    )
