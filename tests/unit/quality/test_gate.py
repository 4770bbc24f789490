"""The gate: GX runs every suite without error, and only critical failures reject."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from tests.factories import Vehicle

from vehiclehub.contract import feed
from vehiclehub.intake.chunks import first_lines_of
from vehiclehub.intake.prepare import prepare_records
from vehiclehub.intake.seen_keys import SeenKeys
from vehiclehub.quality.gate import FileGate, FileQuality
from vehiclehub.quality.history import VolumeBaseline

KEY = b"k" * 16
NO_HISTORY = VolumeBaseline(0, reason="0 earlier loaded first files, 3 needed")


def _rows(agency: str, feed_name: str) -> list[dict]:
    v, w = Vehicle(), Vehicle()
    if (agency, feed_name) == ("commerce", "enterprises"):
        return [v.filing(), w.filing()]
    if (agency, feed_name) == ("commerce", "licences"):
        return [v.licence(), w.licence()]
    if (agency, feed_name) == ("commerce", "tradein_claims"):
        claim = {
            "claim_no": "C1",
            "claim_type": "replace",
            "applicant_id": v.person,
            "old_vin": v.vin,
            "new_vin": w.vin,
            "amount_cny": "15000.00",
            "applied_at": "2025-10-01",
        }
        return [claim, claim | {"claim_no": "C2", "claim_type": "scrap"}]
    if (agency, feed_name) == ("customs", "declarations"):
        return [v.item(), w.item(status="declared", exported_at=None)]
    if (agency, feed_name) == ("police", "events"):
        return [v.event("E1", "register", "2023-03-01"), v.export_deregistration("E2")]
    return [v.refund("R1"), w.refund("R2", status="pending", approved_at=None)]


def _validate(
    agency: str,
    feed_name: str,
    rows: list[dict],
    *,
    file_rows: int | None = None,
    day: str = "2025-11-03",
    baseline: VolumeBaseline = NO_HISTORY,
) -> FileQuality:
    spec = feed(agency, feed_name)
    text = pd.DataFrame(rows).astype("str")
    text = text.where(text != "None", None)
    records = prepare_records(spec, text, KEY)
    file_gate = FileGate(spec, date.fromisoformat(day), baseline)
    file_gate.add(records, file_rows or len(rows), first_lines_of(SeenKeys(), spec, records))
    return file_gate.finish(file_rows or len(rows))


@pytest.mark.parametrize(
    ("agency", "feed_name"),
    [
        ("commerce", "enterprises"),
        ("commerce", "licences"),
        ("commerce", "tradein_claims"),
        ("customs", "declarations"),
        ("police", "events"),
        ("tax", "refunds"),
    ],
)
def test_every_suite_runs_cleanly_on_good_rows(agency: str, feed_name: str) -> None:
    quality = _validate(agency, feed_name, _rows(agency, feed_name))
    outcomes = {o.expectation: o.outcome for o in quality.outcomes}
    assert "error" not in outcomes.values(), quality.outcomes
    failed = [o for o in quality.outcomes if o.outcome == "failed"]
    assert failed == [], failed
    assert outcomes["volume_not_truncated"] == "skipped"
    assert not quality.rejects
    assert quality.result_json.startswith("{")


def test_a_failed_warning_loads_and_a_failed_critical_rejects() -> None:
    v = Vehicle()
    late = _validate(
        "customs",
        "declarations",
        [v.item(declared_at="2025-11-20", exported_at=None, status="declared")],
    )
    (warning,) = late.warnings
    assert warning.expectation == "declared_at_by_business_date"
    assert warning.observed == "1 of 1 values unexpected (100.00%); e.g. 2025-11-20"
    assert not late.rejects

    placeholders = [
        Vehicle().item(declared_at="1900-01-01", exported_at=None, status="declared")
        for _ in range(3)
    ]
    garbled = _validate("customs", "declarations", [*placeholders, v.item()])
    assert [o.expectation for o in garbled.critical_failures] == ["declared_at_plausible"]
    assert garbled.rejects
    assert garbled.rejection().startswith(
        'data quality gate: critical expectation "declared_at_plausible" '
        "(expect_column_values_to_be_between) failed: 3 of 4 values unexpected (75.00%)"
    )


def test_volume_is_judged_against_the_baseline() -> None:
    baseline = VolumeBaseline(5, 300.0, floor=100, ceiling=900)
    rows = _rows("tax", "refunds")
    small = _validate("tax", "refunds", rows, baseline=baseline)
    (critical,) = small.critical_failures
    assert critical.expectation == "volume_not_truncated"
    assert critical.observed == (
        "2 rows (limit 100: median 300 rows of the last 5 loaded first files)"
    )


def test_schema_rejected_rows_count_in_the_file_but_not_in_column_checks() -> None:
    rows = _rows("tax", "refunds")
    quality = _validate("tax", "refunds", rows, file_rows=40)
    outcomes = {o.expectation: o for o in quality.outcomes}
    assert outcomes["rows_pass_contract"].outcome == "failed"
    assert outcomes["rows_pass_contract"].observed.startswith("38 of 40 values unexpected")
    assert outcomes["amount_cny_positive"].outcome == "passed"
    assert outcomes["amount_cny_positive"].observed.startswith("0 of 2 values")
