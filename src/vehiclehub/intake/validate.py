"""Row-level validation against a feed's pandera schema, turned into rejection rows."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import numpy as np
import pandas as pd
import pandera.pandas as pa

from vehiclehub.contract import FeedSpec
from vehiclehub.icd.drops import REJECTIONS_COLUMNS
from vehiclehub.identifiers import (
    holds_personal_id,
    is_personal_id,
    mask_id_shaped,
    mask_resident_id,
)
from vehiclehub.intake.manifest import FileRejected
from vehiclehub.intake.shown import cut_values

#: A rejection as validation makes it: an ICD §4 rejections row but its ``file``, which
#: the intake adds when it stores the rejection.
REJECTION_COLUMNS = [column for column in REJECTIONS_COLUMNS if column != "file"]

_BUILTIN_ERRORS = {
    "not_nullable": "required value is missing",
    "field_uniqueness": "duplicate value",
}


def check_header(spec: FeedSpec, columns: list[str]) -> None:
    """A missing required column rejects the file; unknown extra columns are ignored."""
    missing = [c for c in spec.required_columns if c not in columns]
    if missing:
        raise FileRejected(f"missing required column(s): {', '.join(missing)}")


def shown_value(spec: FeedSpec, column: str, values: pd.Series) -> pd.Series:
    """Values as a rejection may show them (ICD §5): an ``owner_id`` or ``applicant_id``
    masked whatever it holds, any other value wherever it holds 15 or 18 id-shaped
    characters."""
    text = values.astype("str").where(values.notna(), None)
    if column in {c.name for c in spec.columns} and spec.column(column).type in MASKED_TYPES:
        return mask_resident_id(text)
    return mask_id_shaped(text)


#: Column types whose rejected values are always masked: the columns that may hold a
#: resident ID (ICD §5).
MASKED_TYPES = frozenset({"resident_id", "owner_id"})

MISPLACED_PERSONAL_DATA = (
    "a resident ID number stands here; personal data may stand in owner_id and "
    "applicant_id only (ICD §5)"
)


def misplaced_personal_data(
    spec: FeedSpec, frame: pd.DataFrame, business_date: date
) -> pd.DataFrame:
    """Rejections of rows where a resident ID stands where ICD §5 allows none: the whole
    value of a ``uscc`` column, or within free text. Key and reference columns are the
    agencies' own serial numbers and are not searched."""
    rejected = []
    for col in spec.columns:
        if col.name not in frame or col.type not in ("uscc", "text"):
            continue
        values = frame[col.name]
        found = (is_personal_id if col.type == "uscc" else holds_personal_id)(values, business_date)
        if found.any():
            rejected.append(
                rejection_rows(
                    spec,
                    col.name,
                    frame.index[found.to_numpy()].to_numpy() + 2,
                    values[found],
                    [MISPLACED_PERSONAL_DATA] * int(found.sum()),
                )
            )
    if not rejected:
        return pd.DataFrame(columns=REJECTION_COLUMNS)
    return pd.concat(rejected, ignore_index=True)


def validate_rows(spec: FeedSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """Every failing (line, column) of the frame as a rejection row, first failure only."""
    try:
        spec.schema.validate(frame, lazy=True)
        return pd.DataFrame(columns=REJECTION_COLUMNS)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
    row_check_columns = {
        check.error: (check.name or "").split(":")[0] for check in spec.schema.checks
    }
    cases = cases[cases["index"].notna()].copy()
    row_level = cases["schema_context"] == "DataFrameSchema"
    cases.loc[row_level, "column"] = cases.loc[row_level, "check"].map(row_check_columns)
    cases["error"] = cases["check"].map(lambda c: _BUILTIN_ERRORS.get(str(c), str(c)))
    cases["index"] = cases["index"].astype("int64")
    cases["order"] = pd.to_numeric(cases["check_number"], errors="coerce").fillna(-1)
    cases = cases.sort_values(["index", "column", "order"]).drop_duplicates(["index", "column"])
    rejected = []
    for column, group in cases.groupby("column", sort=True):
        original = frame.loc[group["index"].to_numpy(), str(column)]
        rejected.append(
            rejection_rows(
                spec,
                str(column),
                group["index"].to_numpy() + 2,
                original,
                group["error"].to_numpy(),
            )
        )
    return pd.concat(rejected, ignore_index=True).sort_values(["line", "column"])


def rejection_rows(
    spec: FeedSpec, column: str, lines: np.ndarray, values: pd.Series, errors: Iterable[str]
) -> pd.DataFrame:
    """Rejection rows of one column: each value as ICD §1 and §5 let it be shown (masked,
    then its first 64 characters), and an error that says how long a cut value was."""
    shown, cut_lengths = cut_values(shown_value(spec, column, values))
    said = pd.Series(list(errors), index=values.index, dtype="str")
    said = said.where(cut_lengths == 0, said + " (" + cut_lengths.astype("str") + " characters)")
    return pd.DataFrame(
        {"line": lines, "column": column, "value": shown.to_numpy(), "error": said.to_numpy()}
    )
