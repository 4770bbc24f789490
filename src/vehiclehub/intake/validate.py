"""Row-level validation against a feed's pandera schema, turned into rejection rows."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa

from vehiclehub.contract import FeedSpec
from vehiclehub.identifiers import mask_resident_id
from vehiclehub.intake.manifest import FileRejected

REJECTION_COLUMNS = ["line", "column", "value", "error"]

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
    """Values as a rejection may show them: resident IDs masked (ICD §5)."""
    text = values.astype("str").where(values.notna(), None)
    if column not in {c.name for c in spec.columns}:
        return text
    col = spec.column(column)
    if col.personal:
        return mask_resident_id(text)
    if col.type == "owner_id":
        person_like = text.str.match(r"\d{14}").fillna(False).astype(bool)
        return text.where(~person_like, mask_resident_id(text))
    return text


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
            pd.DataFrame(
                {
                    "line": group["index"].to_numpy() + 2,
                    "column": column,
                    "value": shown_value(spec, str(column), original).to_numpy(),
                    "error": group["error"].to_numpy(),
                }
            )
        )
    return pd.concat(rejected, ignore_index=True).sort_values(["line", "column"])
