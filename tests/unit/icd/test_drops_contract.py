"""The drops of ICD §4 as declared once: routing, columns and the schema checked on write."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from vehiclehub.config import AGENCIES
from vehiclehub.icd.drops import (
    AGENCY_REPORTS,
    DROP_SCHEMAS,
    REPORT_COLUMNS,
    DropInvalid,
    check_drop,
    reports_with_verdicts,
)

ICD = Path(__file__).resolve().parents[3] / ".." / "shared" / "ICD.md"


def _findings(**changed: object) -> pd.DataFrame:
    row = {
        "rule_id": "EXP-001",
        "severity": "error",
        "vin": "LSVAM4187C2184847",
        "record_key": "JG20241202000003",
        "related": "",
        "detail": "deregistered for export",
        "status": "new",
        "review": "",
        "note": "",
    }
    return pd.DataFrame([row | changed])


def test_every_agency_receives_findings_and_rejections_and_each_report_goes_somewhere() -> None:
    assert set(AGENCY_REPORTS) == set(AGENCIES)
    assert all(reports[:2] == ("findings", "rejections") for reports in AGENCY_REPORTS.values())
    assert {r for reports in AGENCY_REPORTS.values() for r in reports} == set(REPORT_COLUMNS)
    assert reports_with_verdicts() == {
        "police": ["export_verification"],
        "tax": ["refund_verification"],
    }


def test_each_report_has_one_schema_over_its_columns_in_order() -> None:
    assert set(DROP_SCHEMAS) == set(REPORT_COLUMNS)
    for report, schema in DROP_SCHEMAS.items():
        assert list(schema.columns) == REPORT_COLUMNS[report]


@pytest.mark.skipif(not ICD.is_file(), reason="the ICD is not next to this checkout")
def test_the_columns_are_those_icd_section_4_lists() -> None:
    section = ICD.read_text(encoding="utf-8").split("## 4.")[1].split("## 5.")[0]
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 4 and cells[1].strip("`") in REPORT_COLUMNS:
            listed = re.findall(r"`([a-z_]+)`", cells[3])
            assert REPORT_COLUMNS[cells[1].strip("`")][: len(listed)] == listed


def test_a_drop_as_the_icd_says_passes() -> None:
    check_drop("findings", "hub_police_findings_20251103_001.csv", _findings())
    check_drop("findings", "hub_police_findings_20251103_001.csv", _findings(review="confirmed"))


@pytest.mark.parametrize(
    "changed",
    [{"status": "closed"}, {"review": "dismissed"}, {"severity": "fatal"}, {"record_key": None}],
)
def test_a_drop_breaking_its_schema_is_refused_by_name(changed: dict[str, object]) -> None:
    with pytest.raises(DropInvalid, match=r"hub_police_findings_20251103_001\.csv"):
        check_drop("findings", "hub_police_findings_20251103_001.csv", _findings(**changed))


def test_a_drop_with_its_columns_out_of_order_is_refused() -> None:
    frame = _findings()
    reordered = frame[["severity", *[c for c in frame.columns if c != "severity"]]]
    with pytest.raises(DropInvalid):
        check_drop("findings", "hub_police_findings_20251103_001.csv", reordered)


def test_a_verdict_outside_the_code_list_is_refused() -> None:
    row = {"refund_no": "R1", "decl_ref": "1" * 21, "vin": None, "verdict": "duplicate"}
    check_drop("refund_verification", "x.csv", pd.DataFrame([row | {"rule_ids": "TAX-003"}]))
    row["verdict"] = "overdue"
    with pytest.raises(DropInvalid, match="verdict"):
        check_drop("refund_verification", "x.csv", pd.DataFrame([row | {"rule_ids": "TAX-003"}]))
