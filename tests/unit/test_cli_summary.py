"""The run summary's lines on the working-day calendar."""

from __future__ import annotations

from datetime import date
from typing import Any

from vehiclehub.quality.completeness import Completeness
from vehiclehub.results import PublishResult, ReconcileStage, RunResult, SigningKey
from vehiclehub.rules.engine import ReconcileResult
from vehiclehub.summary import format_summary

REASON = "no working-day calendar for 2027: add [calendar.2027] to the configuration"
WARNING = (
    "working-day calendar for 2027 not configured: SLA rules cannot count days in 2027 "
    "— add [calendar.2027]"
)


def summary(**reconcile: Any) -> RunResult:
    rules = {"not_evaluated": {}, "kept_open": {}, "calendar_warnings": [], **reconcile}
    return RunResult(
        day=date(2027, 1, 4),
        intake=[],
        completeness=Completeness("2027-01-04", [], [], []),
        reconcile=ReconcileStage(
            ReconcileResult(findings=3, per_rule={"EXP-001": 3}, verdicts={}, **rules), 0
        ),
        publish=PublishResult(
            drops={},
            delivered={},
            drops_dir="d",
            report="r",
            missing_evidence=[],
            signing_key=SigningKey("k", "configured"),
            log_head={"seq": 0, "hash": "0" * 64},
        ),
    )


def test_records_not_evaluated_and_years_to_add_come_first() -> None:
    text = format_summary(
        summary(
            not_evaluated={"SLA-001": {REASON: 12}, "SLA-002": {REASON: 3}},
            kept_open={"SLA-001": 2},
            calendar_warnings=[WARNING],
        )
    )
    assert text.splitlines()[:5] == [
        "business date 2027-01-04",
        f"  WARNING: {WARNING}",
        "  not evaluated: 15 record(s); 2 earlier finding(s) on them kept open",
        f"    SLA-001  12 record(s): {REASON}",
        f"    SLA-002  3 record(s): {REASON}",
    ]


def test_nothing_is_said_when_every_record_was_evaluated() -> None:
    text = format_summary(summary(not_evaluated={}, calendar_warnings=[]))
    assert "not evaluated" not in text and "WARNING" not in text
    assert text.splitlines()[1:3] == [
        "  completeness: 0 of 0 expected feeds received",
        "  findings: 3",
    ]
