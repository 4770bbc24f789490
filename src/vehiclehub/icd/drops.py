"""The drops of ICD §4, declared once: which agency receives which report, each report's
columns in order, and the pandera schema a drop is checked against when it is written.

A drop that breaks its schema is a fault of the hub, not of an agency: it is never
written, and the run fails saying which drop and which column.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pandera.pandas as pa

from vehiclehub.errors import HubError
from vehiclehub.icd.codes import FindingStatus, PoliceVerdict, Severity, ShownReview, TaxVerdict
from vehiclehub.icd.codes import values as code_values

#: Which agency receives which report, in the order they are written: findings and
#: rejections to each, a verification or subsidy report to three of them.
AGENCY_REPORTS: dict[str, tuple[str, ...]] = {
    "commerce": ("findings", "rejections", "export_subsidy"),
    "police": ("findings", "rejections", "export_verification"),
    "customs": ("findings", "rejections"),
    "tax": ("findings", "rejections", "refund_verification"),
}
#: The reports that carry a verdict per record, kept as changes (``verdict_history``).
VERIFICATION_REPORTS = ("export_verification", "refund_verification")

#: A finding as the drops give it; the review columns follow it in a findings drop.
FINDING_COLUMNS = ["rule_id", "severity", "vin", "record_key", "related", "detail"]
REVIEW_COLUMNS = ["status", "review", "note"]
FINDINGS_COLUMNS = [*FINDING_COLUMNS, *REVIEW_COLUMNS]
REJECTIONS_COLUMNS = ["file", "line", "column", "value", "error"]
EXPORT_VERIFICATION_COLUMNS = ["event_id", "vin", "verdict", "decl_no", "exported_at", "rule_ids"]
REFUND_VERIFICATION_COLUMNS = ["refund_no", "decl_ref", "vin", "verdict", "rule_ids"]
EXPORT_SUBSIDY_COLUMNS = ["uscc", "year", "vehicles", "eligible", "amount_cny"]
#: Each report's columns, in the order of its header.
REPORT_COLUMNS: dict[str, list[str]] = {
    "findings": FINDINGS_COLUMNS,
    "rejections": REJECTIONS_COLUMNS,
    "export_verification": EXPORT_VERIFICATION_COLUMNS,
    "refund_verification": REFUND_VERIFICATION_COLUMNS,
    "export_subsidy": EXPORT_SUBSIDY_COLUMNS,
}


class DropInvalid(HubError, ValueError):
    """A drop about to be written breaks its ICD §4 schema."""


def reports_with_verdicts() -> dict[str, list[str]]:
    """The verification reports each agency receives, for the agencies that receive one."""
    return {
        agency: [r for r in reports if r in VERIFICATION_REPORTS]
        for agency, reports in AGENCY_REPORTS.items()
        if any(r in VERIFICATION_REPORTS for r in reports)
    }


def _given(nullable: bool = True, *checks: pa.Check) -> pa.Column:
    """A column as the drop holds it, its type left as the frame has it (text, or the
    numbers and booleans of ``export_subsidy``)."""
    return pa.Column(dtype=None, nullable=nullable, checks=list(checks))


def _one_of(codes: list[Any], nullable: bool = False) -> pa.Column:
    return _given(nullable, pa.Check.isin(codes))


def _schema(report: str, columns: dict[str, pa.Column]) -> pa.DataFrameSchema:
    assert list(columns) == REPORT_COLUMNS[report], report
    return pa.DataFrameSchema(columns, name=report, ordered=True, strict=True)


_AT_LEAST_ZERO = pa.Check.ge(0)

#: One schema per report (ICD §4).
DROP_SCHEMAS: dict[str, pa.DataFrameSchema] = {
    "findings": _schema(
        "findings",
        {
            "rule_id": _given(False),
            "severity": _one_of(code_values(Severity)),
            "vin": _given(),
            "record_key": _given(False),
            "related": _given(),
            "detail": _given(False),
            "status": _one_of(code_values(FindingStatus)),
            "review": _one_of(["", *code_values(ShownReview)]),
            "note": _given(False),
        },
    ),
    "rejections": _schema(
        "rejections",
        {
            "file": _given(False),
            "line": _given(True, _AT_LEAST_ZERO),
            "column": _given(),
            "value": _given(),
            "error": _given(False),
        },
    ),
    "export_verification": _schema(
        "export_verification",
        {
            "event_id": _given(),
            "vin": _given(),
            "verdict": _one_of(code_values(PoliceVerdict)),
            "decl_no": _given(),
            "exported_at": _given(),
            "rule_ids": _given(),
        },
    ),
    "refund_verification": _schema(
        "refund_verification",
        {
            "refund_no": _given(False),
            "decl_ref": _given(False),
            "vin": _given(),
            "verdict": _one_of(code_values(TaxVerdict)),
            "rule_ids": _given(),
        },
    ),
    "export_subsidy": _schema(
        "export_subsidy",
        {
            "uscc": _given(False),
            "year": _given(False, _AT_LEAST_ZERO),
            "vehicles": _given(False, _AT_LEAST_ZERO),
            "eligible": _one_of([True, False]),
            "amount_cny": _given(False, _AT_LEAST_ZERO),
        },
    ),
}


def check_drop(report: str, name: str, frame: pd.DataFrame) -> None:
    """Raise :class:`DropInvalid` when ``frame`` breaks the report's schema (ICD §4)."""
    try:
        DROP_SCHEMAS[report].validate(frame)
    except (pa.errors.SchemaError, pa.errors.SchemaErrors) as exc:
        raise DropInvalid(f"drop {name} breaks the ICD §4 schema of {report}: {exc}") from exc
