"""The verification reports, worked out a chunk of the store's rows at a time."""

from __future__ import annotations

import pandas as pd
import pytest

from vehiclehub.config import RuleParameters, Settings
from vehiclehub.icd.codes import POLICE_VERDICT_RULES, TAX_VERDICT_RULES
from vehiclehub.rules import RULES, RuleContext, verdicts
from vehiclehub.rules.runner import evaluate_rules
from vehiclehub.rules.verdicts import (
    VERDICT_RULE_FRAMES,
    fired_rules,
    police_verdicts,
    tax_verdicts,
    whole_events,
)
from vehiclehub.store import connect
from vehiclehub.workdays import package_calendar

from .test_all_rules import every_rule_world
from .world import D


def _pairs(events: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"event_id": events, "decl_no": [f"D{n}" for n in range(len(events))]})


def test_an_event_split_between_two_reads_is_worked_out_whole() -> None:
    reads = [_pairs(["E1", "E2", "E2"]), _pairs(["E2", "E3"]), _pairs(["E3"])]
    chunks = [c["event_id"].tolist() for c in whole_events(reads)]
    assert chunks == [["E1"], ["E2", "E2", "E2"], ["E3", "E3"]]
    # Near miss: a read that ends where an event ends still holds its last event back.
    assert [c["event_id"].tolist() for c in whole_events([_pairs(["E1"]), _pairs(["E2"])])] == [
        ["E1"],
        ["E2"],
    ]
    assert list(whole_events([])) == []


def _reports(settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    engine = connect(settings.database_url)
    with engine.connect() as conn:
        ctx = RuleContext(conn, D, RuleParameters(), package_calendar())
        evaluation = evaluate_rules(ctx, sorted(RULES), 1, keep_raw=VERDICT_RULE_FRAMES)
        found = evaluation.findings
        police_fired = fired_rules(found, "police", POLICE_VERDICT_RULES)
        police = list(police_verdicts(ctx, police_fired, evaluation.raw["EXP-003"]))
        tax = list(tax_verdicts(ctx, fired_rules(found, "tax", TAX_VERDICT_RULES)))
    engine.dispose()

    def joined(parts: list[pd.DataFrame]) -> pd.DataFrame:
        whole = pd.concat(parts, ignore_index=True).astype(str)
        return whole.sort_values("record_key", ignore_index=True)

    return joined(police), joined(tax), len(police) + len(tax)


def test_reports_read_a_row_at_a_time_are_the_reports_read_at_once(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    every_rule_world().load(settings)
    police, tax, parts = _reports(settings)
    # The deregistrations but the last event's, the last event's (held back for rows
    # of it that might follow), the overdue exports, the refund lines.
    assert parts == 4
    assert {"verified", "before_export", "no_export", "overdue"} <= set(police["verdict"])
    assert police["record_key"].is_unique and tax["record_key"].is_unique
    monkeypatch.setattr(verdicts, "READ_ROWS", 1)
    police_by_one, tax_by_one, many = _reports(settings)
    assert many > parts
    pd.testing.assert_frame_equal(police_by_one, police)
    pd.testing.assert_frame_equal(tax_by_one, tax)
