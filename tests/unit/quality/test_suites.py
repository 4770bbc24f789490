"""The expectation suites: one per feed, each expectation named, with a severity, and safe."""

from __future__ import annotations

import copy

import pytest

from vehiclehub.contract import feeds
from vehiclehub.quality.frame import available_columns
from vehiclehub.quality.suites import SuiteError, parse_suite, suite_document, suites


def test_every_feed_has_a_suite_and_every_expectation_a_name_and_severity() -> None:
    found = suites()
    assert set(found) == set(feeds())
    for (agency, feed), spec in found.items():
        assert spec.name == f"{agency}_{feed}"
        document = suite_document(agency, feed)
        for raw, expectation in zip(document["expectations"], spec.expectations, strict=True):
            assert raw["meta"]["severity"] in ("critical", "warning")
            assert raw["severity"] == raw["meta"]["severity"]
            assert expectation.notes, f"{spec.name}.{expectation.name} says why it matters"


def test_every_suite_checks_volume_keys_and_the_10000_row_habit() -> None:
    for spec in suites().values():
        severities = {e.name: e.severity for e in spec.expectations}
        assert severities["volume_not_truncated"] == "critical"
        assert severities["not_cut_at_10000_rows"] == "warning"
        assert severities["key_unique_in_file"] == "warning"
        assert severities["rows_pass_contract"] == "warning"


def test_no_suite_reads_personal_data() -> None:
    for (agency, feed), spec in suites().items():
        contract = feeds()[agency, feed]
        personal = {c.name for c in contract.columns if c.personal or c.type == "owner_id"}
        assert not spec.columns & personal
        assert spec.columns <= available_columns(contract)


def _document() -> dict:
    return copy.deepcopy(suite_document("commerce", "tradein_claims"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e["kwargs"].update(column="applicant_id"), "personal data never is"),
        (lambda e: e["meta"].update(severity="fatal"), "meta.severity must be one of"),
        (lambda e: e.update(severity="critical"), "severity and meta.severity disagree"),
        (lambda e: e["meta"].pop("name"), "meta.name is missing"),
        (lambda e: e["kwargs"].update(max_value={"$PARAMETER": "tomorrow"}), "unknown param"),
    ],
)
def test_a_suite_that_breaks_the_rules_is_refused(change, message: str) -> None:
    document = _document()
    change(next(e for e in document["expectations"] if e["meta"]["name"] == "amount_cny_plausible"))
    with pytest.raises(SuiteError, match=message):
        parse_suite(document, "test.json")


def test_owner_id_may_hold_resident_ids_and_is_kept_out() -> None:
    document = copy.deepcopy(suite_document("police", "events"))
    document["expectations"][-1]["kwargs"]["column"] = "owner_id"
    with pytest.raises(SuiteError, match="owner_id"):
        parse_suite(document, "police_events.json")
