"""The quality frame: one row per file row, typed for GX, without personal data."""

from __future__ import annotations

import pandas as pd
import pytest
from tests.factories import Vehicle

from vehiclehub.contract import feed
from vehiclehub.intake.prepare import prepare_records
from vehiclehub.quality.frame import (
    QualityFrame,
    available_columns,
    count_sharing,
    group_fingerprint,
    quality_frame,
)
from vehiclehub.quality.suites import suite

KEY = b"k" * 16


def _records(agency: str, feed_name: str, rows: list[dict], index: list[int]) -> pd.DataFrame:
    spec = feed(agency, feed_name)
    text = pd.DataFrame(rows, index=index).astype("str")
    for column in spec.columns:
        if column.name not in text:
            text[column.name] = None
    text = text.where(text != "None", None)
    return prepare_records(spec, text, KEY)


def test_rows_the_schema_rejected_are_there_empty_and_flagged() -> None:
    v = Vehicle()
    records = _records("customs", "declarations", [v.item(), v.item()], index=[0, 2])
    spec = feed("customs", "declarations")
    frame = quality_frame(spec, records, 3, suite("customs", "declarations").columns)
    assert len(frame) == 3
    assert frame["passed_schema"].tolist() == [True, False, True]
    assert frame["declared_at"].dtype == "datetime64[ns]"
    assert frame["declared_at"].isna().tolist() == [False, True, False]
    assert isinstance(frame["status"].dtype, pd.CategoricalDtype)
    assert frame["fob_usd"].dtype == "float64"
    # The same key twice: one fingerprint, so GX sees the repeat.
    assert frame["record_key"].iloc[0] == frame["record_key"].iloc[2]
    assert frame["goods_name_marked_used"].tolist() == [True, pd.NA, True]


def test_personal_columns_never_enter_the_frame() -> None:
    spec = feed("commerce", "tradein_claims")
    assert "applicant_id" not in available_columns(spec)
    assert "owner_id" not in available_columns(feed("police", "events"))
    v = Vehicle()
    claim = {
        "claim_no": "C1",
        "claim_type": "scrap",
        "applicant_id": v.person,
        "old_vin": v.vin,
        "new_vin": Vehicle().vin,
        "amount_cny": "100.00",
        "applied_at": "2025-10-01",
    }
    records = _records("commerce", "tradein_claims", [claim], index=[0])
    frame = quality_frame(spec, records, 1, suite("commerce", "tradein_claims").columns)
    assert "applicant_id" not in frame
    assert not frame.astype(str).apply(lambda c: c.str.contains(v.person)).any().any()
    assert frame["old_and_new_vin_differ"].tolist() == [True]


def test_vehicles_per_licence_and_hs_code_are_counted_set_based() -> None:
    a, b, c = Vehicle(), Vehicle(), Vehicle()
    rows = [a.licence(), b.licence(licence_no=a.licence_no), c.licence()]
    records = _records("commerce", "licences", rows, index=[0, 1, 2])
    spec = feed("commerce", "licences")
    frame = quality_frame(spec, records, 3, {"vehicles_per_licence_hs"})
    assert frame["vehicles_per_licence_hs"].tolist() == [2.0, 2.0, 1.0]


def test_a_frame_built_chunk_by_chunk_is_the_frame_of_the_whole_file() -> None:
    """Chunks with their own code lists and a licence spread over two chunks."""
    a, b, c, d = Vehicle(), Vehicle(), Vehicle(), Vehicle()
    rows = [
        a.licence(),
        b.licence(licence_no=a.licence_no),
        c.licence(record_status="corrected"),
        # The same licence on another HS code: a group of its own.
        d.licence(licence_no=a.licence_no, hs_code="8703239000"),
        c.licence(),
    ]
    spec = feed("commerce", "licences")
    columns = suite("commerce", "licences").columns
    records = _records("commerce", "licences", rows, index=[0, 1, 3, 4, 6])
    whole = quality_frame(spec, records, 7, columns)

    chunked = QualityFrame(spec, columns)
    for part in (records.loc[[0]], records.loc[[1, 3]], records.iloc[:0], records.loc[[4, 6]]):
        chunked.add(part)
    frame = chunked.build(7)

    pd.testing.assert_frame_equal(frame, whole)
    assert frame["passed_schema"].tolist() == [True, True, False, True, True, False, True]
    assert isinstance(frame["record_status"].dtype, pd.CategoricalDtype)
    # Licence a on its HS code twice, on another once; licence c twice (chunks 2 and 4).
    assert frame["vehicles_per_licence_hs"].fillna(0).tolist() == [2, 2, 0, 2, 1, 0, 2]


def test_rows_sharing_values_are_counted_by_fingerprint_and_an_empty_value_counts_none() -> None:
    values = pd.DataFrame(
        {
            "licence_no": ["L1", "L1", "L1", "L2", None, "L1"],
            "hs_code": ["8703", "8703", "8704", "8703", "8703", None],
        },
        index=[3, 4, 5, 7, 8, 9],
    )
    fingerprints = group_fingerprint(values, ("licence_no", "hs_code"))
    assert fingerprints.iloc[0] == fingerprints.iloc[1] != fingerprints.iloc[2]
    counted = count_sharing(fingerprints)
    assert counted.index.tolist() == [3, 4, 5, 7, 8, 9]
    # Near miss: a row without its HS code is in no group, and L1/8703 stays at two.
    assert counted.fillna(0).tolist() == [2, 2, 1, 1, 0, 0]
    assert counted.isna().tolist() == [False] * 4 + [True] * 2


def test_a_frame_read_only_for_its_length_keeps_nothing_of_a_row() -> None:
    """The police suite's whole-file expectations count the rows: the frame they read
    holds each row's place, and nothing is kept of a chunk's records till then."""
    spec = feed("police", "events")
    records = _records(
        "police",
        "events",
        [
            v.export_deregistration(event_id=f"E{n}")
            for n, v in enumerate(Vehicle() for _ in range(3))
        ],
        index=[0, 2, 3],
    )
    counted = QualityFrame(spec, set())
    counted.add(records.iloc[:1])
    counted.add(records.iloc[1:])
    assert counted._parts == []
    frame = counted.build(5)
    assert len(frame) == 5 and list(frame.columns) == []
    # Near miss: a frame of one column keeps it, with where each row passed the schema.
    statuses = QualityFrame(spec, {"record_status"})
    statuses.add(records)
    assert len(statuses._parts) == 1
    assert statuses.build(5)["passed_schema"].tolist() == [True, False, True, True, False]
    with pytest.raises(ValueError, match="at least one chunk"):
        counted.build(5)
