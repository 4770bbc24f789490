"""Running the rulebook: each rule's findings, gathered one row per finding, on one or
more connections of the store."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date
from queue import SimpleQueue

import pandas as pd
from sqlalchemy import Connection

from vehiclehub import progress
from vehiclehub.config import RuleParameters
from vehiclehub.icd.drops import FINDING_COLUMNS
from vehiclehub.rules import RULES, RuleContext
from vehiclehub.rules.base import NOT_EVALUATED
from vehiclehub.store.schema import records_not_evaluated
from vehiclehub.workdays import WorkingDays, package_calendar

#: A finding as the hub keeps it (the ``findings`` table): the ICD §4 finding with the
#: agency whose record it is on, before that record's key.
FINDING_FIELDS = [
    *FINDING_COLUMNS[: FINDING_COLUMNS.index("record_key")],
    "agency",
    *FINDING_COLUMNS[FINDING_COLUMNS.index("record_key") :],
]
#: A record a rule could not evaluate on a run, and why (rules.base, ``not_evaluated``):
#: a row of ``records_not_evaluated``.
NOT_EVALUATED_FIELDS = [column.name for column in records_not_evaluated.columns]


@dataclass
class Evaluation:
    findings: pd.DataFrame  # FINDING_FIELDS, one row per finding
    #: Each rule's own findings frame, extra columns included (of the rules asked for).
    raw: dict[str, pd.DataFrame]
    not_evaluated: pd.DataFrame  # NOT_EVALUATED_FIELDS, one row per record and rule


@dataclass
class _RuleOutcome:
    """One rule's findings, gathered; what it declared not evaluated; its own frame if kept."""

    findings: pd.DataFrame
    declared: pd.DataFrame
    raw: pd.DataFrame | None


def _split(rule_id: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A rule's frame as its finding rows and the records it declared not evaluated."""
    if NOT_EVALUATED not in frame.columns:
        return frame, _none_declared()
    skipped = frame[NOT_EVALUATED].notna()
    declared = frame[skipped]
    # A rule about records of several feeds names each row's agency itself (as _gather).
    declared = declared.assign(
        rule_id=rule_id,
        agency=declared.get("agency", RULES[rule_id].agency),
        reason=declared[NOT_EVALUATED],
    ).drop_duplicates(["agency", "record_key"])
    kept = frame[~skipped].drop(columns=NOT_EVALUATED).reset_index(drop=True)
    return kept, declared[NOT_EVALUATED_FIELDS].reset_index(drop=True)


def _none_declared() -> pd.DataFrame:
    """No record left unevaluated."""
    return pd.DataFrame(columns=NOT_EVALUATED_FIELDS)


def _gather(rule_id: str, frame: pd.DataFrame) -> pd.DataFrame:
    """One row per finding, its related records sorted and joined with ``;``."""
    rule = RULES[rule_id]
    if frame.empty:
        return pd.DataFrame(columns=FINDING_FIELDS)
    # A rule about records of several feeds (VIN-*) names each row's agency itself.
    frame = frame.assign(agency=frame.get("agency", rule.agency))
    frame = frame.sort_values(["agency", "record_key", "related"], na_position="first")
    # A finding has one VIN (RULES.md, Findings): a trade-in claim's old_vin and new_vin
    # make two findings of a VIN-* rule on the same claim.
    record = ["agency", "record_key", "vin"]
    related = (
        frame.dropna(subset=["related"])
        .drop_duplicates([*record, "related"])
        .groupby(record, sort=False, dropna=False)["related"]
        .agg(";".join)
    )
    one = frame.drop_duplicates(record).set_index(record)
    out = pd.DataFrame(
        {
            "rule_id": rule.id,
            "severity": rule.severity,
            "related": related.reindex(one.index).fillna(""),
            "detail": one["detail"],
        }
    ).reset_index()
    return out[FINDING_FIELDS]


#: Rules that take longest at scale, started first so that the other worker takes the
#: rest meanwhile; the other rules follow in id order.
SLOW_FIRST = ("VIN-003", "POL-003", "LIC-006", "TRD-005")
#: Connections evaluating rules side by side (the store answers each on its own core).
MAX_WORKERS = 2

Job = Callable[[RuleContext], _RuleOutcome]


def _rule_job(rule_id: str, keep_raw: bool) -> Callable[[RuleContext], _RuleOutcome]:
    """Evaluate a rule and gather its findings at once: its own frame, often many times
    the size of its findings, is let go unless ``keep_raw``."""

    def run(ctx: RuleContext) -> _RuleOutcome:
        found, declared = _split(rule_id, RULES[rule_id].find(ctx))
        return _RuleOutcome(_gather(rule_id, found), declared, found if keep_raw else None)

    return run


def evaluate(
    conn: Connection,
    day: date,
    params: RuleParameters,
    only: Iterable[str] | None = None,
    workers: int = 1,
    calendar: WorkingDays | None = None,
) -> Evaluation:
    """Run the rules (all, or those named) over everything stored.

    With ``workers`` above one, rules also run on further connections of the same
    engine, in threads: they see what is committed, so ``conn`` must hold no
    uncommitted writes the rules should see. ``calendar``: the working days the SLA
    rules count (the package's alone by default).
    """
    ctx = RuleContext(conn, day, params, calendar or package_calendar())
    return evaluate_rules(ctx, sorted(only or RULES), workers)


def evaluate_rules(
    ctx: RuleContext,
    rule_ids: list[str],
    workers: int,
    keep_raw: Collection[str] | None = None,
) -> Evaluation:
    """:func:`evaluate` in a context of the caller's (a scoped run's, say), every finding
    held in one frame.

    ``keep_raw``: the rules whose own frames :attr:`Evaluation.raw` keeps (all by default).
    """
    parts: list[pd.DataFrame] = []
    ruled = evaluate_into(ctx, rule_ids, workers, parts.append, keep_raw)
    # Each part is one rule's, handed over as the rules were done: in rule order again.
    parts.sort(key=lambda part: str(part["rule_id"].iat[0]))
    frame = pd.concat(parts, ignore_index=True) if parts else _no_findings()
    frame["vin"] = frame["vin"].astype(object).where(frame["vin"].notna(), None)
    return Evaluation(
        frame.sort_values(["rule_id", "record_key"], ignore_index=True),
        ruled.raw,
        ruled.not_evaluated,
    )


@dataclass
class Ruled:
    """A rulebook run whose findings went to the caller as each rule gave them."""

    #: Each rule's own findings frame, extra columns included (of the rules asked for).
    raw: dict[str, pd.DataFrame]
    not_evaluated: pd.DataFrame  # NOT_EVALUATED_FIELDS, one row per record and rule


#: What takes a rule's findings (FINDING_FIELDS, one row per finding) as the rule is done.
FindingsSink = Callable[[pd.DataFrame], None]


def evaluate_into(
    ctx: RuleContext,
    rule_ids: list[str],
    workers: int,
    found: FindingsSink,
    keep_raw: Collection[str] | None = None,
) -> Ruled:
    """Run the rules and hand each rule's findings to ``found`` as soon as they are
    gathered, on the caller's thread (the one ``ctx.conn`` belongs to), in no set order:
    the findings of all rules are never held together. A rule without findings hands
    nothing over.

    ``keep_raw``: the rules whose own frames :attr:`Ruled.raw` keeps (all by default).
    """
    jobs = {
        rule_id: _rule_job(rule_id, keep_raw is None or rule_id in keep_raw) for rule_id in rule_ids
    }
    done = _run_all(ctx, jobs, workers, found)
    ruled = [done.pop(rule_id) for rule_id in rule_ids]
    declared = [o.declared for o in ruled if not o.declared.empty]
    skipped = pd.concat(declared, ignore_index=True) if declared else _none_declared()
    return Ruled(
        {r: o.raw for r, o in zip(rule_ids, ruled, strict=True) if o.raw is not None},
        skipped.sort_values(["rule_id", "record_key"], ignore_index=True),
    )


def _no_findings() -> pd.DataFrame:
    return pd.DataFrame(columns=FINDING_FIELDS)


def _run_all(
    ctx: RuleContext, jobs: dict[str, Job], workers: int, found: FindingsSink
) -> dict[str, _RuleOutcome]:
    """Each job's outcome, its findings handed to ``found`` on this thread as the jobs are
    done (those of another worker's job once this thread's job is done); slow ones first,
    shared out among ``workers`` connections."""
    conn = ctx.conn
    queue = [j for j in SLOW_FIRST if j in jobs] + [j for j in jobs if j not in SLOW_FIRST]
    workers = min(workers, len(queue)) if _shareable(conn) else 1
    done: dict[str, _RuleOutcome] = {}
    finished: SimpleQueue[str] = SimpleQueue()

    def hand_over() -> None:
        while not finished.empty():
            outcome = done[finished.get()]
            if not outcome.findings.empty:
                found(outcome.findings)
            outcome.findings = _no_findings()

    def drain(ctx: RuleContext, advance: progress.Advance, mine: bool) -> None:
        # list.pop is atomic under the GIL: each job is taken by one worker only.
        while queue:
            try:
                name = queue.pop(0)
            except IndexError:
                return
            try:
                done[name] = jobs[name](ctx)
            except BaseException:
                queue.clear()
                raise
            finished.put(name)
            if mine:
                hand_over()
            advance(1)

    def helper(advance: progress.Advance) -> None:
        with conn.engine.connect() as own:
            drain(replace(ctx, conn=own), advance, mine=False)

    shown = progress.step("rules evaluated", total=len(queue))
    with ThreadPoolExecutor(max_workers=max(workers - 1, 1)) as pool, shown as advance:
        helpers = [pool.submit(helper, advance) for _ in range(workers - 1)]
        try:
            drain(ctx, advance, mine=True)
        finally:
            for future in helpers:
                future.result()
    hand_over()
    return done


def _shareable(conn: Connection) -> bool:
    """Whether another connection of the engine sees the same store (not in-memory SQLite)."""
    if conn.dialect.name != "sqlite":
        return True
    database = conn.engine.url.database
    return bool(database) and database != ":memory:" and "mode=memory" not in str(conn.engine.url)


def worker_count() -> int:
    """Connections to evaluate the rules on: up to :data:`MAX_WORKERS`, one per core."""
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))
