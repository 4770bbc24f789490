"""Cleaning what an earlier release stored against ICD §1 and §5 (the store's revision
0007), the way intake now treats a new row, with intake's own checks.

A stored record that intake would now reject — a resident ID as the whole value of a
``uscc`` column or standing in free text (§5), a key or reference with white space or a
drop's separator, a control character, a value longer than its field may hold (§1) —
is removed, nothing of it kept, as a rejected row is never stored. A rejection whose
value was stored unmasked is masked and cut as a rejection shows it now (§1, §5); a
finding whose detail or related records hold a resident ID is masked as §5 masks what
is shown.
Every change is told by table, column, row and what was done; a value is never told,
only the row's key masked as a rejection shows values.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date

import pandas as pd
import pandera.pandas as pa
from sqlalchemy import Connection, Table, delete, select, tuple_, update

from vehiclehub import checks
from vehiclehub.contract import RAW_VIN_MAX_CHARS, FeedSpec, feeds
from vehiclehub.identifiers import holds_personal_id, is_personal_id, mask_id_shaped
from vehiclehub.intake.shown import cut_values
from vehiclehub.intake.validate import MISPLACED_PERSONAL_DATA, shown_value
from vehiclehub.store.migrate import Cleaned
from vehiclehub.store.schema import feed_table, findings, intake_files, rejections

log = logging.getLogger(__name__)

#: Rows read at a time from a feed table.
BATCH = 50_000
#: Record keys deleted in one statement.
_DELETE_BATCH = 500


def _stored_checks(spec: FeedSpec) -> dict[str, list[pa.Check]]:
    """The §1 checks a stored value of each text column must still pass.

    Values are stored prepared (a resident ID as its pseudonym, a VIN normalised with its
    raw value beside it), so only the checks that hold of what is stored apply: no
    control character, no more characters than the field holds, keys and references
    without white space or separators.
    """
    found: dict[str, list[pa.Check]] = {}
    for col in spec.columns:
        if col.stored_chars is None:
            continue
        found[col.name] = [checks.no_control_chars(), checks.max_chars(col.stored_chars)]
        if col.type == "id":
            found[col.name].append(checks.reference())
        if col.type == "vin":
            found[f"{col.name}_raw"] = [
                checks.no_control_chars(),
                checks.max_chars(RAW_VIN_MAX_CHARS),
            ]
    return found


def _failing(check: pa.Check, values: pd.Series) -> pd.Series:
    """Where ``values`` fail ``check``; a missing value passes."""
    passed = check(values).check_output
    failing: pd.Series = ~passed.reindex(values.index, fill_value=True).astype(bool)
    return failing


def _personal_data(spec: FeedSpec, column: str, values: pd.Series, born_by: date) -> pd.Series:
    """Where a resident ID stands in a column where ICD §5 allows none (whole ``uscc``
    values, free text); all False for any other column."""
    kind = spec.column(column).type if column in {c.name for c in spec.columns} else ""
    if kind == "uscc":
        return is_personal_id(values, born_by)
    if kind == "text":
        return holds_personal_id(values, born_by)
    return pd.Series(False, index=values.index)


def _shown_keys(spec: FeedSpec, rows: pd.DataFrame) -> pd.Series:
    """Each row's key as a rejection would show it: masked (§5) and cut (§1)."""
    joined = rows[list(spec.key)].astype("str").agg("/".join, axis=1)
    return cut_values(mask_id_shaped(joined))[0]


def _batches(conn: Connection, table: Table, columns: list[str]) -> Iterator[pd.DataFrame]:
    result = conn.execute(
        select(*(table.c[c] for c in columns)).execution_options(stream_results=True)
    )
    try:
        while rows := result.fetchmany(BATCH):
            # Plain tuples: pandas looks a SQLAlchemy row up by key, one slow miss a field.
            yield pd.DataFrame([tuple(row) for row in rows], columns=columns, dtype=object)
    finally:
        result.close()


def _business_dates(conn: Connection) -> dict[int, date]:
    """The business date of each file taken: a birth date after it is no resident ID's."""
    rows = conn.execute(select(intake_files.c.id, intake_files.c.business_date)).all()
    return {int(file_id): day for file_id, day in rows if day is not None}


def _judged(spec: FeedSpec, rows: pd.DataFrame, business_dates: dict[int, date]) -> pd.DataFrame:
    """For each row, the first column that intake would now reject it for, and why
    (empty strings where none)."""
    verdict = pd.DataFrame({"column": "", "reason": ""}, index=rows.index, dtype="str")

    def blame(found: pd.Series, column: str, reason: str) -> None:
        first = found & (verdict["reason"] == "")
        verdict.loc[first, ["column", "reason"]] = [column, reason]

    for column, column_checks in _stored_checks(spec).items():
        for check in column_checks:
            blame(_failing(check, rows[column]), column, str(check.error))
    born_by = rows["file_id"].map(business_dates).fillna(date.today())
    for column in _personal_columns(spec):
        for day, group in rows[column].groupby(born_by):
            found = _personal_data(spec, column, group, day)
            blame(found.reindex(rows.index, fill_value=False), column, MISPLACED_PERSONAL_DATA)
    return verdict


def _personal_columns(spec: FeedSpec) -> list[str]:
    """The columns ICD §5 searches for a resident ID: ``uscc`` and free text."""
    return [c.name for c in spec.columns if c.type in ("uscc", "text")]


def clean_feed(conn: Connection, spec: FeedSpec, business_dates: dict[int, date]) -> list[Cleaned]:
    """Remove the stored records of one feed that intake would now reject."""
    table = feed_table(spec.agency, spec.feed)
    read = [*spec.key, "file_id", *_stored_checks(spec), *_personal_columns(spec)]
    cleaned: list[Cleaned] = []
    doomed: list[tuple[object, ...]] = []
    for rows in _batches(conn, table, list(dict.fromkeys(read))):
        verdict = _judged(spec, rows, business_dates)
        bad = rows[verdict["reason"] != ""]
        if bad.empty:
            continue
        shown = _shown_keys(spec, bad)
        cleaned += [
            Cleaned(
                table.name,
                str(verdict.at[i, "column"]),
                str(shown[i]),
                "record removed",
                str(verdict.at[i, "reason"]),
            )
            for i in bad.index
        ]
        doomed += list(bad[list(spec.key)].itertuples(index=False, name=None))
    key = tuple_(*(table.c[c] for c in spec.key))
    for start in range(0, len(doomed), _DELETE_BATCH):
        conn.execute(delete(table).where(key.in_(doomed[start : start + _DELETE_BATCH])))
    return cleaned


def clean_rejections(conn: Connection) -> list[Cleaned]:
    """Mask and cut, as a rejection now shows them (ICD §1, §5), the stored rejection
    values an earlier release kept as they came."""
    specs = {(s.agency, s.feed): s for s in feeds().values()}
    query = (
        select(
            rejections.c.id,
            rejections.c.agency,
            intake_files.c.feed,
            rejections.c.column,
            rejections.c.value,
        )
        .select_from(rejections.outerjoin(intake_files, intake_files.c.id == rejections.c.file_id))
        .where(rejections.c.value.is_not(None))
    )
    found = pd.DataFrame(
        [tuple(row) for row in conn.execute(query)],
        columns=["id", "agency", "feed", "column", "value"],
        dtype=object,
    )
    cleaned: list[Cleaned] = []
    for (agency, feed, column), group in found.groupby(
        ["agency", "feed", "column"], dropna=False, sort=True
    ):
        spec = specs.get((str(agency), str(feed)))
        values = group["value"].astype("str")
        masked = (
            shown_value(spec, str(column), values) if spec is not None else mask_id_shaped(values)
        )
        shown, _ = cut_values(masked)
        changed = shown != values
        for rejection_id, value in zip(group["id"][changed], shown[changed], strict=True):
            conn.execute(
                update(rejections).where(rejections.c.id == int(rejection_id)).values(value=value)
            )
            cleaned.append(
                Cleaned("rejections", "value", f"id {rejection_id}", "value masked", "ICD §1, §5")
            )
    return cleaned


def clean_findings(conn: Connection) -> list[Cleaned]:
    """Mask, as ICD §5 masks a shown value, a finding's detail or related records where a
    resident ID stands in clear: rules of earlier releases copied free text holding one
    into them (a birth date after the finding was first seen is no resident ID's)."""
    query = select(findings.c.id, findings.c.first_seen, findings.c.detail, findings.c.related)
    found = pd.DataFrame(
        [tuple(row) for row in conn.execute(query)],
        columns=["id", "first_seen", "detail", "related"],
        dtype=object,
    )
    cleaned: list[Cleaned] = []
    for column in ("detail", "related"):
        values = found[column].astype("str")
        holding = pd.Series(False, index=found.index)
        for day, group in values.groupby(found["first_seen"]):
            holding |= holds_personal_id(group, day).reindex(found.index, fill_value=False)
        masked = mask_id_shaped(values[holding])
        for finding_id, value in zip(found["id"][holding], masked, strict=True):
            conn.execute(
                update(findings).where(findings.c.id == int(finding_id)).values({column: value})
            )
            cleaned.append(
                Cleaned(
                    "findings", column, f"id {finding_id}", "value masked", MISPLACED_PERSONAL_DATA
                )
            )
    return cleaned


def clean_stored_values(conn: Connection) -> list[Cleaned]:
    """Clean every feed table, the rejections and the findings; returns what was changed,
    and where, each change logged as a warning."""
    business_dates = _business_dates(conn)
    cleaned: list[Cleaned] = []
    for _, spec in sorted(feeds().items()):
        cleaned += clean_feed(conn, spec, business_dates)
    cleaned += clean_rejections(conn)
    cleaned += clean_findings(conn)
    for change in cleaned:
        log.warning("stored value cleaned (ICD §1, §5): %s", change.line())
    return cleaned
