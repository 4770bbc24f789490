"""The quality frame: what Great Expectations sees of a file.

One row per data row of the file (line ``i + 2`` is row ``i``), so that the table's
row count is the file's. Rows the schema rejected are there with ``passed_schema``
false and every other column empty (GX leaves empty values out of its column checks).
Only the columns a suite reads are built, each in a dtype GX checks vectorised:
dates as ``datetime64[ns]``, code lists as categories, numbers as floats, flags as
nullable booleans.

Personal data never reaches GX: resident-ID columns and ``owner_id`` are not in the
frame at all, so neither validation results nor Data Docs can show one. What is
costly for GX on a million rows is computed here, set-based, and handed over as a
derived column (:data:`DERIVED`): the key as one 64-bit fingerprint, the VIN flags,
and a few per-feed measures.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from vehiclehub.contract import FeedSpec

#: Contract types that never enter the frame: they may hold a resident ID (ICD §5).
EXCLUDED_TYPES = frozenset({"resident_id", "owner_id"})
#: Contract types kept as categories (short code lists and codes).
CATEGORY_TYPES = frozenset({"enum", "country", "digits", "hs_code"})

Derivation = Callable[[FeedSpec, pd.DataFrame], pd.Series]

#: (agency, feed) -> derived column name -> how to compute it from prepared records.
DERIVED: dict[tuple[str, str], dict[str, Derivation]] = {}
#: (agency, feed) -> derived column name -> the record columns it is computed from.
SOURCES: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {}


def derived(
    agency: str, feed: str, name: str, sources: tuple[str, ...]
) -> Callable[[Derivation], Derivation]:
    """Register a derived column of one feed's quality frame, computed from ``sources``."""

    def register(function: Derivation) -> Derivation:
        DERIVED.setdefault((agency, feed), {})[name] = function
        SOURCES.setdefault((agency, feed), {})[name] = sources
        return function

    return register


def _flag(column: str) -> Derivation:
    """A VIN flag that ``prepare_records`` already computed (substituted, check digit)."""

    def derive(spec: FeedSpec, records: pd.DataFrame) -> pd.Series:
        return records[column].astype("boolean")

    return derive


def _generic(spec: FeedSpec) -> dict[str, Derivation]:
    columns: dict[str, Derivation] = {"record_key": key_fingerprint}
    for vin in spec.vin_columns:
        for flag in (f"{vin}_check_ok", f"{vin}_substituted"):
            columns[flag] = _flag(flag)
    return columns


def derivations(spec: FeedSpec) -> dict[str, Derivation]:
    return {**_generic(spec), **DERIVED.get((spec.agency, spec.feed), {})}


def source_columns(spec: FeedSpec, columns: set[str]) -> list[str]:
    """The prepared record columns the quality frame's ``columns`` are computed from.

    A file's records need not be kept whole until its gate runs: these columns of
    them are enough for :func:`quality_frame`.
    """
    sources = {
        "record_key": tuple(spec.key),
        **{f: (f,) for v in spec.vin_columns for f in (f"{v}_check_ok", f"{v}_substituted")},
        **SOURCES.get((spec.agency, spec.feed), {}),
    }
    needed: set[str] = set()
    for name in columns - {"passed_schema"}:
        needed.update(sources.get(name, (name,)))
    order = [c for c in (*(c.name for c in spec.columns), *(sorted(sources))) if c in needed]
    return list(dict.fromkeys([*order, *sorted(needed - set(order))]))


def available_columns(spec: FeedSpec) -> set[str]:
    """Columns a suite of this feed may read."""
    contract = {c.name for c in spec.columns if c.type not in EXCLUDED_TYPES and not c.personal}
    return contract | set(derivations(spec)) | {"passed_schema"}


def key_fingerprint(spec: FeedSpec, records: pd.DataFrame) -> pd.Series:
    """The record key (normalised VIN included) as one 64-bit number per row."""
    hashed = pd.util.hash_pandas_object(records[list(spec.key)], index=False).to_numpy()
    return pd.Series(hashed.view(np.int64), index=records.index, dtype="Int64")


def _dates(values: pd.Series) -> pd.Series:
    """ISO dates to ``datetime64[ns]``, parsing each distinct value once."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    parsed = pd.to_datetime(pd.Index(uniques, dtype=object), format="%Y-%m-%d", errors="coerce")
    lookup = np.append(parsed.to_numpy(dtype="datetime64[ns]"), np.datetime64("NaT", "ns"))
    return pd.Series(lookup[codes], index=values.index)  # code -1 takes the NaT at the end


def _category(values: pd.Series) -> pd.Series:
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return pd.Series(
        pd.Categorical.from_codes(codes, categories=pd.Index(uniques, dtype="str")),
        index=values.index,
    )


def _typed(spec: FeedSpec, name: str, values: pd.Series) -> pd.Series:
    col = spec.column(name)
    if col.type == "date":
        return _dates(values)
    if col.type in ("integer", "decimal"):
        return pd.to_numeric(values, errors="coerce").astype("float64")
    if col.type in CATEGORY_TYPES or name == "record_status":
        return _category(values)
    return values.astype("str")


def quality_frame(
    spec: FeedSpec, records: pd.DataFrame, rows: int, columns: set[str]
) -> pd.DataFrame:
    """The frame GX validates for a file of ``rows`` data rows.

    ``records`` are the file's rows that passed the schema, prepared for the store
    (pseudonymised, VINs normalised), indexed by row position, repeated keys included.
    """
    index = pd.RangeIndex(rows)
    built = derivations(spec)
    frame = pd.DataFrame(index=index)
    frame["passed_schema"] = index.isin(records.index)
    contract = {c.name for c in spec.columns}
    for name in sorted(columns - {"passed_schema"}):
        if name in built:
            values = built[name](spec, records)
        elif name in contract:
            values = _typed(spec, name, records[name])
        else:
            raise KeyError(f"{spec.table}: no column {name!r} in the quality frame")
        frame[name] = values.reindex(index)
    return frame


# --------------------------------------------------------------------------------------
# Per-feed measures, computed set-based
# --------------------------------------------------------------------------------------


@derived("customs", "declarations", "goods_name_marked_used", ("goods_name",))
def _goods_name_marked_used(spec: FeedSpec, records: pd.DataFrame) -> pd.Series:
    """A used vehicle's 商品名称 starts with 旧."""
    return records["goods_name"].str.startswith("旧").astype("boolean")


@derived("commerce", "licences", "vehicles_per_licence_hs", ("licence_no", "hs_code", "vin"))
def _vehicles_per_licence_hs(spec: FeedSpec, records: pd.DataFrame) -> pd.Series:
    """Rows of the file on the same licence and HS code (at most 20 vehicles, ICD §3)."""
    sizes = records.groupby(["licence_no", "hs_code"], sort=False)["vin"].transform("size")
    return sizes.astype("float64")


@derived("commerce", "enterprises", "filing_days", ("valid_from", "valid_to"))
def _filing_days(spec: FeedSpec, records: pd.DataFrame) -> pd.Series:
    """Days from ``valid_from`` to ``valid_to`` (a filing runs one year)."""
    span = _dates(records["valid_to"]) - _dates(records["valid_from"])
    return span.dt.days.astype("float64")


@derived("commerce", "tradein_claims", "old_and_new_vin_differ", ("old_vin", "new_vin"))
def _old_and_new_vin_differ(spec: FeedSpec, records: pd.DataFrame) -> pd.Series:
    return (records["old_vin"] != records["new_vin"]).astype("boolean")
