"""The gate a slice at a time: the outcomes and the validation result of one validation of
the whole frame, which is never built."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pandas as pd
import pytest
from tests.factories import Vehicle

from vehiclehub.contract import feed
from vehiclehub.intake.chunks import first_lines_of
from vehiclehub.intake.prepare import prepare_records
from vehiclehub.intake.seen_keys import SeenKeys
from vehiclehub.quality import gate, runtime
from vehiclehub.quality.frame import quality_frame
from vehiclehub.quality.gate import RESULT_FORMAT, FileGate, FileQuality, is_row_wise
from vehiclehub.quality.history import VolumeBaseline
from vehiclehub.quality.suites import suite

KEY = b"k" * 16
DAY = date(2025, 11, 3)
BASELINE = VolumeBaseline(5, 20.0, floor=10, ceiling=30)


def _declarations() -> list[dict[str, Any] | None]:
    """Customs items failing most of the suite's checks, spread over the file; ``None``
    stands for a row the schema rejected."""
    rows: list[dict[str, Any] | None] = []
    for i in range(24):
        v = Vehicle()
        if i % 7 == 3:
            rows.append(None)
        elif i % 5 == 1:
            rows.append(v.item(declared_at="1900-01-01", exported_at=None, status="declared"))
        elif i % 6 == 2:
            rows.append(v.item(declared_at="2025-12-01", exported_at="2025-11-20"))
        elif i % 8 == 4:
            rows.append(v.item(status="cleared", exported_at=None))
        elif i % 9 == 5:
            rows.append(v.item(status="declared", exported_at="2025-10-12", goods_name="比亚迪"))
        else:
            rows.append(v.item(fob_usd="0" if i % 4 == 0 else "12000"))
    # A key repeated far from its first row: a uniqueness over the whole file.
    first = rows[0]
    assert first is not None
    rows[21] = dict(first)
    return rows


def _licences() -> list[dict[str, Any] | None]:
    """23 vehicles on one licence and HS code (at most 20), among others."""
    rows: list[dict[str, Any] | None] = []
    shared = Vehicle()
    for i in range(27):
        v = Vehicle()
        licence = shared.licence_no if i % 9 != 4 else v.licence_no
        rows.append(v.licence(licence_no=licence, applied_at="2025-12-01" if i == 13 else None))
    return rows


def _events() -> list[dict[str, Any] | None]:
    rows: list[dict[str, Any] | None] = []
    for i in range(19):
        v = Vehicle()
        if i % 4 == 0:
            rows.append(v.export_deregistration(f"E{i}", decl_no=None))
        elif i % 5 == 2:
            rows.append(v.event(f"E{i}", "register", "2023-03-01", dereg_reason="export"))
        else:
            rows.append(v.export_deregistration(f"E{i}"))
    return rows


def _records(agency: str, feed_name: str, rows: list[dict[str, Any] | None]) -> pd.DataFrame:
    """The valid records of ``rows``, indexed by row position (None: rejected rows)."""
    spec = feed(agency, feed_name)
    kept = {i: row for i, row in enumerate(rows) if row is not None}
    text = pd.DataFrame(list(kept.values()), index=list(kept)).astype("str")
    text = text.where(text != "None", None)
    return prepare_records(spec, text, KEY)


def _parameters() -> dict[str, Any]:
    return {
        "business_date": pd.Timestamp(DAY),
        "volume_floor": BASELINE.floor,
        "volume_ceiling": BASELINE.ceiling,
    }


def _one_validation(agency: str, feed_name: str, frame: pd.DataFrame) -> dict[str, Any]:
    """GX's result for one validation of the whole frame with every runnable expectation."""
    spec = suite(agency, feed_name)
    batch = runtime.batch_definition(spec.name).get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(
        runtime.suite(spec.name, list(spec.expectations)),
        result_format=RESULT_FORMAT,
        expectation_parameters=_parameters(),
    )
    document: dict[str, Any] = json.loads(json.dumps(result.to_json_dict(), default=str))
    return document


def _sliced(
    agency: str, feed_name: str, rows: list[dict[str, Any] | None], slice_rows: int, chunk: int
) -> FileQuality:
    """The gate fed ``chunk`` rows at a time, validating every ``slice_rows`` rows."""
    spec = feed(agency, feed_name)
    records = _records(agency, feed_name, rows)
    file_gate = FileGate(spec, DAY, BASELINE, slice_rows=slice_rows)
    keys = SeenKeys()  # as the intake holds them
    for start in range(0, len(rows), chunk):
        end = min(start + chunk, len(rows))
        part = records[(records.index >= start) & (records.index < end)]
        file_gate.add(part, end, first_lines_of(keys, spec, part))
    return file_gate.finish(len(rows))


def _by_name(document: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {
        r["expectation_config"]["meta"]["name"]: (r["success"], r["result"], r["exception_info"])
        for r in document["results"]
    }


@pytest.mark.parametrize(
    ("agency", "feed_name", "rows"),
    [
        ("customs", "declarations", _declarations()),
        ("commerce", "licences", _licences()),
        ("police", "events", _events()),
    ],
)
@pytest.mark.parametrize(("slice_rows", "chunk"), [(3, 2), (5, 5), (100, 4)])
def test_the_gate_a_slice_at_a_time_is_one_validation_of_the_whole_frame(
    agency: str, feed_name: str, rows: list[dict[str, Any] | None], slice_rows: int, chunk: int
) -> None:
    spec = feed(agency, feed_name)
    records = _records(agency, feed_name, rows)
    whole = quality_frame(spec, records, len(rows), suite(agency, feed_name).columns)
    expected = _one_validation(agency, feed_name, whole)
    quality = _sliced(agency, feed_name, rows, slice_rows, chunk)
    found = json.loads(quality.result_json)
    assert _by_name(found) == _by_name(expected)
    assert found["statistics"] == expected["statistics"]
    assert found["success"] == expected["success"]
    # Failures of row-wise and whole-file expectations both, samples across slices.
    failed = {o.expectation for o in quality.outcomes if o.outcome == "failed"}
    assert any(
        is_row_wise(spec, e) for e in suite(agency, feed_name).expectations if e.name in failed
    )
    assert len(failed) >= 2
    assert [o.expectation for o in quality.outcomes] == [
        e.name for e in suite(agency, feed_name).expectations
    ]


def test_keys_and_licences_are_counted_over_the_whole_file_not_a_slice() -> None:
    declarations = _sliced("customs", "declarations", _declarations(), 3, 2)
    outcomes = {o.expectation: o for o in declarations.outcomes}
    unique = next(
        e.name for e in suite("customs", "declarations").expectations if "unique" in e.type
    )
    assert outcomes[unique].outcome == "failed"
    assert outcomes[unique].unexpected_count == 2
    licences = _sliced("commerce", "licences", _licences(), 3, 2)
    per_licence = next(o for o in licences.outcomes if o.column == "vehicles_per_licence_hs")
    assert per_licence.outcome == "failed"
    assert per_licence.unexpected_count == 24  # the 24 rows of the licence and HS code
    # Near miss: with the repeated row's key its own, the keys are unique in every slice.
    rows = _declarations()
    rows[21] = Vehicle().item()
    again = {o.expectation: o for o in _sliced("customs", "declarations", rows, 3, 2).outcomes}
    assert again[unique].outcome == "passed"


def test_an_expectation_that_raises_on_a_slice_is_an_error_of_the_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A slice where GX could not evaluate an expectation makes it an error, whatever the
    other slices gave; the other expectations are judged as ever."""
    run_slice = gate.SuiteRun.slice
    seen = {"slices": 0}

    def breaking(self: gate.SuiteRun, frame: pd.DataFrame) -> None:
        seen["slices"] += 1
        if seen["slices"] == 2:
            frame = frame.assign(fob_usd="not a number")
        run_slice(self, frame)

    monkeypatch.setattr(gate.SuiteRun, "slice", breaking)
    quality = _sliced("customs", "declarations", _declarations(), 5, 5)
    assert seen["slices"] > 2
    outcomes = {o.expectation: o for o in quality.outcomes}
    broken = [o for o in quality.outcomes if o.outcome == "error"]
    assert broken and {o.column for o in broken} == {"fob_usd"}
    assert all(
        o.outcome in ("passed", "failed") for o in outcomes.values() if o.column != "fob_usd"
    )


def test_an_empty_file_is_validated_once_as_gx_validates_an_empty_frame() -> None:
    spec = feed("tax", "refunds")
    file_gate = FileGate(spec, DAY, BASELINE, slice_rows=3)
    none = _records("tax", "refunds", [Vehicle().refund()]).iloc[:0]
    file_gate.add(none, 0, none["line"].to_numpy())
    quality = file_gate.finish(0)
    empty = quality_frame(
        spec,
        _records("tax", "refunds", [Vehicle().refund()]).iloc[:0],
        0,
        suite("tax", "refunds").columns,
    )
    expected = _one_validation("tax", "refunds", empty)
    assert _by_name(json.loads(quality.result_json)) == _by_name(expected)


def test_a_value_missing_where_one_is_expected_is_counted_not_shown() -> None:
    quality = _sliced("customs", "declarations", _declarations(), 3, 2)
    unset = next(o for o in quality.outcomes if o.expectation == "exported_at_set_when_cleared")
    assert unset.outcome == "failed"
    assert unset.observed == "2 of 15 values unexpected (13.33%)"
    # Near miss: a value present where none is expected is shown.
    set_early = next(
        o for o in quality.outcomes if o.expectation == "exported_at_empty_while_declared"
    )
    assert set_early.observed.endswith("; e.g. 2025-10-12")


def _repeating_events() -> list[dict[str, Any] | None]:
    """Events whose keys repeat across chunks: a key three times, and keys whose first
    rows come before ten unexpected rows already seen."""
    rows: list[dict[str, Any] | None] = []
    for i in range(30):
        rows.append(Vehicle().export_deregistration(f"E{i}") if i not in (7, 14) else None)
    for later, earlier in [(12, 11), (13, 11), (20, 19), (21, 18), (22, 17), (23, 16)]:
        rows[later] = rows[earlier]
    for later in range(24, 30):  # the first rows of these keys are the file's first ones
        rows[later] = rows[later - 24]
    return rows


@pytest.mark.parametrize(("slice_rows", "chunk"), [(4, 3), (100, 7), (100, 100)])
def test_the_keys_repeats_are_counted_as_gx_counts_them(slice_rows: int, chunk: int) -> None:
    rows = _repeating_events()
    spec = feed("police", "events")
    records = _records("police", "events", rows)
    whole = quality_frame(spec, records, len(rows), suite("police", "events").columns)
    expected = _by_name(_one_validation("police", "events", whole))["key_unique_in_file"]
    quality = _sliced("police", "events", rows, slice_rows, chunk)
    found = _by_name(json.loads(quality.result_json))["key_unique_in_file"]
    assert found == expected
    # Rows 0-5 and 24-29, 11-13, 16-23: the earliest ten come from the last chunk.
    assert found[1]["unexpected_count"] == 23
    assert len(found[1]["partial_unexpected_list"]) == 10
    outcome = next(o for o in quality.outcomes if o.expectation == "key_unique_in_file")
    assert (outcome.outcome, outcome.unexpected_count) == ("failed", 23)
