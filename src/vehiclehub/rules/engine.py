"""Reconciling a business date: the rules evaluated over what the night's changes reach
(or everything), findings and the records not evaluated kept, the day's verdicts stored."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from vehiclehub.config import RuleParameters
from vehiclehub.icd.codes import POLICE_VERDICT_RULES, TAX_VERDICT_RULES
from vehiclehub.icd.drops import EXPORT_VERIFICATION_COLUMNS, REFUND_VERIFICATION_COLUMNS
from vehiclehub.rules import RULES, RuleContext
from vehiclehub.rules.history import (
    StagedFindings,
    keep_not_evaluated,
    not_evaluated_now,
    open_per_rule,
    store_not_evaluated,
)
from vehiclehub.rules.runner import evaluate_into, worker_count
from vehiclehub.rules.scope import (
    basis_now,
    clear_scope,
    note_basis,
    re_evaluated,
    verdict_records_in_scope,
    why_in_full,
    widen_scope,
)
from vehiclehub.rules.verdicts import (
    VERDICT_RULE_FRAMES,
    police_verdicts,
    tax_verdicts,
    verdicts_holding,
)
from vehiclehub.store.db import take_write_lock
from vehiclehub.store.lease import renew_within
from vehiclehub.store.schema import findings
from vehiclehub.store.verdicts import record_run, store_verdicts
from vehiclehub.workdays import WorkingDays, package_calendar

log = logging.getLogger(__name__)


def _counts(values: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in values.value_counts().sort_index().items()}


def _tallied(parts: Iterable[pd.DataFrame], tally: Counter[str]) -> Iterator[pd.DataFrame]:
    """The parts of a verification report, their rows counted per verdict as they pass."""
    for part in parts:
        tally.update(_counts(part["verdict"]))
        yield part


@dataclass(frozen=True)
class ReconcileResult:
    findings: int
    per_rule: dict[str, int]
    verdicts: dict[str, dict[str, int]]
    #: Per rule and reason, the records it could not evaluate.
    not_evaluated: dict[str, dict[str, int]]
    #: Per rule, the open findings on those records, kept as they stood (in ``per_rule``).
    kept_open: dict[str, int]
    #: Years of the working-day calendar to configure (WorkingDays.warnings).
    calendar_warnings: list[str]


def reconcile(
    engine: Engine,
    day: date,
    params: RuleParameters,
    calendar: WorkingDays | None = None,
    full: bool = False,
) -> ReconcileResult:
    """Evaluate the rules over the store, record findings and the day's verdicts.

    Only what the night's changes reach is re-evaluated, unless ``full`` is asked for or
    the night must run in full (rules.scope): the findings and verdicts are the same.
    ``calendar``: the working days the SLA rules count (the package's alone by default).
    """
    calendar = calendar or package_calendar()
    carried: dict[str, Any] = {}
    with engine.begin() as conn:
        basis = basis_now(conn, params, calendar)
        why = "asked for" if full else why_in_full(conn, day, basis)
        clear_scope(conn)
        if why is None:
            reached = widen_scope(RuleContext(conn, day, params, calendar, carried=carried))
            log.info("reconciling %s incrementally: reached %s", day, reached)
        else:
            log.info("reconciling %s in full: %s", day, why)
    scoped = why is None
    # Committed before the rules run: they read the scope on connections of their own.
    with engine.begin() as conn:
        ctx = RuleContext(conn, day, params, calendar, scoped=scoped, carried=carried)
        # Each rule's findings staged as the rule is done: the findings of all rules are
        # never held together (on SQLite a temporary table, which takes no lock of the
        # store's).
        staged = StagedFindings(conn)
        ruled = evaluate_into(
            ctx, sorted(RULES), worker_count(), staged.add, keep_raw=VERDICT_RULE_FRAMES
        )
        # Written from here: on SQLite the store's write lock is taken now, not held over
        # the evaluation's reads (the lease's renewals and the desk write meanwhile).
        take_write_lock(conn)
        scope = re_evaluated(findings) if scoped else None
        police_fired = staged.fired("police", POLICE_VERDICT_RULES)
        tax_fired = staged.fired("tax", TAX_VERDICT_RULES)
        kept = staged.record(day, ruled.not_evaluated, scope)
        keep_not_evaluated(conn, ruled.not_evaluated, scoped)
        skipped = not_evaluated_now(conn)
        store_not_evaluated(conn, day, skipped)
        counts: dict[str, dict[str, int]] = {}
        reports = (
            (
                "export_verification",
                police_verdicts(ctx, police_fired, ruled.raw["EXP-003"]),
                EXPORT_VERIFICATION_COLUMNS,
            ),
            ("refund_verification", tax_verdicts(ctx, tax_fired), REFUND_VERIFICATION_COLUMNS),
        )
        # Each report read from the store, its verdicts worked out and stored a chunk at a
        # time: a report holds a row per deregistration or refund line.
        for report, verdicts, columns in reports:
            tally: Counter[str] = Counter()
            parts = _tallied(verdicts, tally)
            within = verdict_records_in_scope(report) if scoped else None
            store_verdicts(conn, day, report, parts, columns, within)
            held = verdicts_holding(conn, report, day) if scoped else dict(sorted(tally.items()))
            counts[report] = held
        record_run(conn, day)
        note_basis(conn, day, basis)
        clear_scope(conn)
        if scoped:
            per_rule, kept = open_per_rule(conn)
        renew_within(conn)  # the lease runs on from when the lock is let go
    if not scoped:
        # The findings that hold at the end of the run: those found, and those kept open.
        per_rule = dict(staged.per_rule)
        for rule_id, n in kept.items():
            per_rule[rule_id] = per_rule.get(rule_id, 0) + n
    return ReconcileResult(
        sum(per_rule.values()),
        dict(sorted(per_rule.items())),
        counts,
        skipped,
        kept,
        calendar.warnings(day),
    )
