"""From validated text rows to store records: defaults, VINs, pseudonyms, keys, hashes."""

from __future__ import annotations

import pandas as pd

from vehiclehub.contract import FeedSpec
from vehiclehub.icd.codes import RecordStatus
from vehiclehub.identifiers import is_resident_id, pseudonymise
from vehiclehub.vin import normalise_vins


def prepare_records(spec: FeedSpec, rows: pd.DataFrame, key: bytes) -> pd.DataFrame:
    """Records in the feed table's shape; ``rows`` are valid rows, indexed by position."""
    records = pd.DataFrame(index=rows.index)
    for col in spec.columns:
        values = rows[col.name] if col.name in rows else pd.Series(None, index=rows.index)
        if col.default is not None:
            values = values.fillna(col.default)
        if col.type == "vin":
            vins = normalise_vins(values)
            records[col.name] = vins["vin"]
            records[f"{col.name}_raw"] = values
            records[f"{col.name}_substituted"] = vins["substituted"].astype(bool)
            records[f"{col.name}_check_ok"] = vins["check_ok"].astype(bool)
            continue
        if col.type == "integer":
            values = pd.to_numeric(values).astype("Int64")
        elif col.personal:
            values = pseudonymise(values, key)
        elif col.type == "owner_id":
            person = is_resident_id(values)
            values = values.where(~person, pseudonymise(values.where(person), key))
        elif col.type in ("uscc", "country", "vin"):
            values = values.str.upper()
        records[col.name] = values
    if not spec.record_status:
        records["record_status"] = RecordStatus.ACTIVE.value
    content = [c.name for c in spec.columns if c.name != "record_version"]
    records["content_hash"] = pd.util.hash_pandas_object(records[content], index=False).astype(
        "int64"
    )
    records["line"] = rows.index.to_numpy() + 2
    return records


def key_text(spec: FeedSpec, records: pd.DataFrame, sep: str = "/") -> pd.Series:
    """The ICD §4 ``record_key``: key columns joined by ``/``, integers unpadded.

    With another ``sep`` (one no value holds), a key text that is unambiguous whatever
    the key columns hold."""
    parts = [records[k].astype("str") for k in spec.key]
    joined = parts[0]
    for part in parts[1:]:
        joined = joined + sep + part
    return joined
