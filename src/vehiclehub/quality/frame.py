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
#: (agency, feed) -> derived column name -> the record columns it is computed from.
SOURCES: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {}
#: (agency, feed) -> derived columns whose value for a row depends on the file's other rows.
WHOLE_FILE: dict[tuple[str, str], set[str]] = {}


def derived(
    agency: str, feed: str, name: str, sources: tuple[str, ...], *, whole_file: bool = False
) -> Callable[[Derivation], Derivation]:
    """Register a derived column of one feed's quality frame, computed from ``sources``.

    ``whole_file``: a row's value depends on the file's other rows (a count over the
    file), so it is computed once every chunk is read, from its sources kept till then.
    """

    def register(function: Derivation) -> Derivation:
        DERIVED.setdefault((agency, feed), {})[name] = function
        SOURCES.setdefault((agency, feed), {})[name] = sources
        if whole_file:
            WHOLE_FILE.setdefault((agency, feed), set()).add(name)
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


def whole_file_columns(spec: FeedSpec) -> set[str]:
    """The derived columns of the feed's frame whose value for a row depends on the file's
    other rows."""
    return set(WHOLE_FILE.get((spec.agency, spec.feed), set()))


def derivations(spec: FeedSpec) -> dict[str, Derivation]:
    return {**_generic(spec), **DERIVED.get((spec.agency, spec.feed), {})}


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
    frame = QualityFrame(spec, columns)
    frame.add(records)
    return frame.build(rows)


class QualityFrame:
    """A file's quality frame of ``columns``, built as its chunks are read.

    :meth:`add` takes each chunk's records (those that passed the schema, prepared for
    the store, indexed by row position, repeated keys included) and keeps only their
    typed frame columns; :meth:`build` gives the frame of the rows added (the whole
    file's, or a slice's, quality.gate.FileGate). Derived columns that count over the
    file (:data:`WHOLE_FILE`) keep their sources, as categories, until then.
    """

    def __init__(self, spec: FeedSpec, columns: set[str]) -> None:
        self.spec = spec
        self.columns = sorted(columns - {"passed_schema"})
        self._built = derivations(spec)
        contract = {c.name for c in spec.columns}
        unknown = [n for n in self.columns if n not in self._built and n not in contract]
        if unknown:
            raise KeyError(f"{spec.table}: no column {unknown[0]!r} in the quality frame")
        whole = whole_file_columns(spec)
        self._whole = [n for n in self.columns if n in whole]
        sources = SOURCES.get((spec.agency, spec.feed), {})
        self._kept = sorted({s for n in self._whole for s in sources[n]})
        self._parts: list[pd.DataFrame] = []
        self._sources: list[pd.DataFrame] = []

    def add(self, records: pd.DataFrame) -> None:
        """Reduce one chunk's records to their frame columns and keep those."""
        part = pd.DataFrame(index=records.index)
        for name in self.columns:
            if name not in self._whole:
                part[name] = self._column(name, records)
        self._parts.append(part)
        if self._kept:
            self._sources.append(
                pd.DataFrame({c: _category(records[c]) for c in self._kept}, index=records.index)
            )

    def _column(self, name: str, records: pd.DataFrame) -> pd.Series:
        if name in self._built:
            return self._built[name](self.spec, records)
        return _typed(self.spec, name, records[name])

    def build(self, end: int, start: int = 0) -> pd.DataFrame:
        """The frame of the file's rows from ``start`` to ``end`` (of a file of ``end``
        data rows, by default), of the chunks added since the last build, which are let
        go."""
        if not self._parts:
            raise ValueError("a quality frame is built from at least one chunk")
        kept = _united(self._parts)
        sources = _united(self._sources) if self._kept else kept
        index = pd.RangeIndex(start, end)
        frame = pd.DataFrame(index=index)
        frame["passed_schema"] = index.isin(kept.index)
        for name in self.columns:
            if name in self._whole:
                values = self._built[name](self.spec, sources)
            else:
                values = kept.pop(name)
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


@derived("customs", "declarations", "goods_name_marked_used", ("goods_name",))
def _goods_name_marked_used(spec: FeedSpec, records: pd.DataFrame) -> pd.Series:
    """A used vehicle's 商品名称 starts with 旧."""
    return records["goods_name"].str.startswith("旧").astype("boolean")


@derived(
    "commerce", "licences", "vehicles_per_licence_hs", ("licence_no", "hs_code"), whole_file=True
)
def _vehicles_per_licence_hs(spec: FeedSpec, records: pd.DataFrame) -> pd.Series:
    """Rows of the file on the same licence and HS code (at most 20 vehicles, ICD §3)."""
    groups = records.groupby(["licence_no", "hs_code"], sort=False, observed=True)
    return groups["licence_no"].transform("size").astype("float64")


@derived("commerce", "enterprises", "filing_days", ("valid_from", "valid_to"))
def _filing_days(spec: FeedSpec, records: pd.DataFrame) -> pd.Series:
    """Days from ``valid_from`` to ``valid_to`` (a filing runs one year)."""
    span = _dates(records["valid_to"]) - _dates(records["valid_from"])
    return span.dt.days.astype("float64")


@derived("commerce", "tradein_claims", "old_and_new_vin_differ", ("old_vin", "new_vin"))
def _old_and_new_vin_differ(spec: FeedSpec, records: pd.DataFrame) -> pd.Series:
    return (records["old_vin"] != records["new_vin"]).astype("boolean")
