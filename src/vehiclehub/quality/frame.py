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

A file is read chunk by chunk, and so is its frame built (:class:`QualityFrame`): each
chunk's records are reduced at once to the frame's typed columns, a few bytes a row, so
that what waits for the gate is the frame, not the file's records.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from vehiclehub.contract import FeedSpec

#: Contract types that never enter the frame: they may hold a resident ID (ICD §5).
EXCLUDED_TYPES = frozenset({"resident_id", "owner_id"})
#: Contract types kept as categories (short code lists and codes).
CATEGORY_TYPES = frozenset({"enum", "country", "digits", "hs_code"})

Derivation = Callable[[FeedSpec, pd.DataFrame], pd.Series]

#: (agency, feed) -> derived column name -> how to compute it from prepared records.
DERIVED: dict[tuple[str, str], dict[str, Derivation]] = {}
#: (agency, feed) -> derived column name -> the columns whose rows it counts over the file.
ROWS_SHARING: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {}


def derived(agency: str, feed: str, name: str) -> Callable[[Derivation], Derivation]:
    """Register a derived column of one feed's quality frame, computed from a row's own
    values."""

    def register(function: Derivation) -> Derivation:
        DERIVED.setdefault((agency, feed), {})[name] = function
        return function

    return register


def rows_sharing(agency: str, feed: str, name: str, by: tuple[str, ...]) -> None:
    """Register a derived column of one feed's quality frame whose value for a row is the
    number of the file's rows with the row's values of ``by`` (empty where one of them is
    empty): a count over the whole file, so each chunk keeps only a fingerprint of ``by``
    per row (:func:`group_fingerprint`), and the rows are counted once every chunk is
    read."""
    ROWS_SHARING.setdefault((agency, feed), {})[name] = by


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


def whole_file_columns(spec: FeedSpec) -> set[str]:
    """The derived columns of the feed's frame whose value for a row depends on the file's
    other rows."""
    return set(ROWS_SHARING.get((spec.agency, spec.feed), {}))


def derivations(spec: FeedSpec) -> dict[str, Derivation]:
    """How each derived column of the feed's frame is computed from a chunk's records: for
    a count over the file, the fingerprint it counts by."""
    counted = ROWS_SHARING.get((spec.agency, spec.feed), {})
    by_fingerprint = {name: _fingerprint_of(by) for name, by in counted.items()}
    return {**_generic(spec), **DERIVED.get((spec.agency, spec.feed), {}), **by_fingerprint}


def available_columns(spec: FeedSpec) -> set[str]:
    """Columns a suite of this feed may read."""
    contract = {c.name for c in spec.columns if c.type not in EXCLUDED_TYPES and not c.personal}
    return contract | set(derivations(spec)) | {"passed_schema"}


def _hashed(records: pd.DataFrame, columns: tuple[str, ...]) -> pd.Series:
    """The values of ``columns`` as one 64-bit number per row. Equal values have equal
    numbers; two different ones share a number with odds of about n² / 2⁶⁵ among n
    distinct values (3 in a million at 10 million)."""
    hashed = pd.util.hash_pandas_object(records[list(columns)], index=False).to_numpy()
    return pd.Series(hashed.view(np.int64), index=records.index, dtype="Int64")


def key_fingerprint(spec: FeedSpec, records: pd.DataFrame) -> pd.Series:
    """The record key (normalised VIN included) as one 64-bit number per row."""
    return _hashed(records, spec.key)


def group_fingerprint(records: pd.DataFrame, columns: tuple[str, ...]) -> pd.Series:
    """The values of ``columns`` as one 64-bit number per row, empty where one of them is
    empty."""
    return _hashed(records, columns).mask(records[list(columns)].isna().any(axis=1))


def _fingerprint_of(columns: tuple[str, ...]) -> Derivation:
    def derive(spec: FeedSpec, records: pd.DataFrame) -> pd.Series:
        return group_fingerprint(records, columns)

    return derive


def count_sharing(fingerprints: pd.Series) -> pd.Series:
    """For each row, the rows with its fingerprint (empty where it has none), as floats."""
    present = fingerprints.notna().to_numpy()
    values = fingerprints.to_numpy(dtype=np.int64, na_value=0)[present]
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    counted = np.full(len(fingerprints), np.nan)
    counted[present] = counts[inverse]
    return pd.Series(counted, index=fingerprints.index)


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
    frame = QualityFrame(spec, columns)
    frame.add(records)
    return frame.build(rows)


class QualityFrame:
    """A file's quality frame of ``columns``, built as its chunks are read.

    :meth:`add` takes each chunk's records (those that passed the schema, prepared for
    the store, indexed by row position, repeated keys included) and keeps only their
    typed frame columns; :meth:`build` gives the frame of the rows added (the whole
    file's, or a slice's, quality.gate.FileGate). A count over the file
    (:func:`rows_sharing`) keeps the fingerprint it counts by until then. A frame of no
    columns, read only for its length (a file's row count), keeps nothing of a row.
    """

    def __init__(self, spec: FeedSpec, columns: set[str]) -> None:
        self.spec = spec
        self.columns = sorted(columns - {"passed_schema"})
        self._built = derivations(spec)
        contract = {c.name for c in spec.columns}
        unknown = [n for n in self.columns if n not in self._built and n not in contract]
        if unknown:
            raise KeyError(f"{spec.table}: no column {unknown[0]!r} in the quality frame")
        self._counted = whole_file_columns(spec)
        self._parts: list[pd.DataFrame] = []
        self._per_row = bool(columns)
        self._added = False

    def add(self, records: pd.DataFrame) -> None:
        """Reduce one chunk's records to their frame columns and keep those."""
        self._added = True
        if not self._per_row:
            return
        part = pd.DataFrame(index=records.index)
        for name in self.columns:
            part[name] = self._column(name, records)
        self._parts.append(part)

    def _column(self, name: str, records: pd.DataFrame) -> pd.Series:
        if name in self._built:
            return self._built[name](self.spec, records)
        return _typed(self.spec, name, records[name])

    def build(self, end: int, start: int = 0) -> pd.DataFrame:
        """The frame of the file's rows from ``start`` to ``end`` (of a file of ``end``
        data rows, by default), of the chunks added since the last build, which are let
        go."""
        if not self._added:
            raise ValueError("a quality frame is built from at least one chunk")
        self._added = False
        index = pd.RangeIndex(start, end)
        frame = pd.DataFrame(index=index)
        if not self._per_row:
            return frame
        kept = _united(self._parts)
        frame["passed_schema"] = index.isin(kept.index)
        for name in self.columns:
            values = kept.pop(name)
            if name in self._counted:
                values = count_sharing(values)
            frame[name] = values.reindex(index)
        return frame


def _united(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """One frame of ``parts``, emptying the list; the parts' categories are united."""
    index = parts[0].index.append([p.index for p in parts[1:]])
    frame = pd.DataFrame(index=index)
    for name in list(parts[0].columns):
        pieces = [p.pop(name) for p in parts]
        if all(isinstance(p.dtype, pd.CategoricalDtype) for p in pieces):
            frame[name] = pd.Series(union_categoricals(pieces), index=index)
        else:
            frame[name] = pd.concat(pieces).set_axis(index)
    parts.clear()
    return frame


# --------------------------------------------------------------------------------------
# Per-feed measures, computed set-based
# --------------------------------------------------------------------------------------


@derived("customs", "declarations", "goods_name_marked_used")
def _goods_name_marked_used(spec: FeedSpec, records: pd.DataFrame) -> pd.Series:
    """A used vehicle's 商品名称 starts with 旧."""
    return records["goods_name"].str.startswith("旧").astype("boolean")


#: Rows of the file on the same licence and HS code (at most 20 vehicles, ICD §3).
rows_sharing("commerce", "licences", "vehicles_per_licence_hs", ("licence_no", "hs_code"))


@derived("commerce", "enterprises", "filing_days")
def _filing_days(spec: FeedSpec, records: pd.DataFrame) -> pd.Series:
    """Days from ``valid_from`` to ``valid_to`` (a filing runs one year)."""
    span = _dates(records["valid_to"]) - _dates(records["valid_from"])
    return span.dt.days.astype("float64")


@derived("commerce", "tradein_claims", "old_and_new_vin_differ")
def _old_and_new_vin_differ(spec: FeedSpec, records: pd.DataFrame) -> pd.Series:
    return (records["old_vin"] != records["new_vin"]).astype("boolean")
