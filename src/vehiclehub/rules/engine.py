"""Running the rulebook: findings with a lasting identity, and the agencies' verdicts."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import pandas as pd
from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Date,
    Engine,
    MetaData,
    String,
    Table,
    Text,
    and_,
    case,
    delete,
    exists,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert

from vehiclehub import progress
from vehiclehub.config import RuleParameters
from vehiclehub.icd.codes import POLICE_VERDICT_RULES, TAX_VERDICT_RULES, PoliceVerdict, TaxVerdict
from vehiclehub.icd.drops import EXPORT_VERIFICATION_COLUMNS, REFUND_VERIFICATION_COLUMNS
from vehiclehub.rules import RULES, RuleContext
from vehiclehub.rules.base import NOT_EVALUATED, same_item
from vehiclehub.rules.scope import (
    basis_now,
    clear_scope,
    note_basis,
    re_evaluated,
    verdict_records_in_scope,
    why_in_full,
    widen_scope,
)
from vehiclehub.store.load import bulk_insert
from vehiclehub.store.schema import findings, not_evaluated, records_not_evaluated, verdict_history
from vehiclehub.store.verdicts import record_run, store_verdicts, verdict_holds_on
from vehiclehub.workdays import WorkingDays, package_calendar

log = logging.getLogger(__name__)

FINDING_FIELDS = ["rule_id", "severity", "vin", "agency", "record_key", "related", "detail"]
#: A record a rule could not evaluate on a run, and why (rules.base, ``not_evaluated``).
NOT_EVALUATED_FIELDS = ["rule_id", "agency", "record_key", "vin", "reason"]


@dataclass
class Evaluation:
    findings: pd.DataFrame  # FINDING_FIELDS, one row per finding
    raw: dict[str, pd.DataFrame]  # each rule's own findings frame, extra columns included
    not_evaluated: pd.DataFrame  # NOT_EVALUATED_FIELDS, one row per record and rule


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
#: rest meanwhile. The other rules follow in id order, then the reads of the verdict
#: reports (:data:`VERDICT_READS`): late, so that their million-row frames do not sit in
#: memory beside VIN-003's.
SLOW_FIRST = ("VIN-003", "POL-003", "LIC-006", "TRD-005")
#: Connections evaluating rules side by side (the store answers each on its own core).
MAX_WORKERS = 2

Job = Callable[[RuleContext], pd.DataFrame]


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
    return _evaluate(ctx, sorted(only or RULES), workers, {})[0]


def _evaluate(
    ctx: RuleContext, rule_ids: list[str], workers: int, reads: dict[str, Job]
) -> tuple[Evaluation, dict[str, pd.DataFrame]]:
    """:func:`evaluate`, with further ``reads`` of the store done alongside the rules."""
    jobs: dict[str, Job] = {rule_id: RULES[rule_id].find for rule_id in rule_ids} | reads
    done = _run_all(ctx, jobs, workers)
    split = {rule_id: _split(rule_id, done[rule_id]) for rule_id in rule_ids}
    raw = {rule_id: found for rule_id, (found, _) in split.items()}
    gathered = [_gather(rule_id, frame) for rule_id, frame in raw.items()]
    frame = pd.concat([g for g in gathered if not g.empty] or [gathered[0]], ignore_index=True)
    frame["vin"] = frame["vin"].astype(object).where(frame["vin"].notna(), None)
    declared = [skipped for _, skipped in split.values() if not skipped.empty]
    skipped = pd.concat(declared, ignore_index=True) if declared else _none_declared()
    evaluation = Evaluation(
        frame.sort_values(["rule_id", "record_key"], ignore_index=True),
        raw,
        skipped.sort_values(["rule_id", "record_key"], ignore_index=True),
    )
    return evaluation, {name: done[name] for name in reads}


def _run_all(ctx: RuleContext, jobs: dict[str, Job], workers: int) -> dict[str, pd.DataFrame]:
    """Each job's frame; slow ones first, shared out among ``workers`` connections."""
    conn = ctx.conn
    queue = [j for j in SLOW_FIRST if j in jobs] + [j for j in jobs if j not in SLOW_FIRST]
    workers = min(workers, len(queue)) if _shareable(conn) else 1
    done: dict[str, pd.DataFrame] = {}

    def drain(ctx: RuleContext, advance: progress.Advance) -> None:
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
            advance(1)

    def helper(advance: progress.Advance) -> None:
        with conn.engine.connect() as own:
            drain(replace(ctx, conn=own), advance)

    shown = progress.step("rules evaluated", total=len(queue))
    with ThreadPoolExecutor(max_workers=max(workers - 1, 1)) as pool, shown as advance:
        helpers = [pool.submit(helper, advance) for _ in range(workers - 1)]
        try:
            drain(ctx, advance)
        finally:
            for future in helpers:
                future.result()
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


def finding_identity(frame: pd.DataFrame) -> pd.Series:
    """A finding is the same finding across runs when its rule, VIN and cited records are."""
    text = (
        frame["rule_id"]
        + "|"
        + frame["agency"]
        + ":"
        + frame["record_key"]
        + "|"
        + frame["related"]
        + "|"
        + frame["vin"].fillna("")
    )
    return text.map(lambda t: hashlib.sha256(t.encode("utf-8")).hexdigest())


def _staged(
    conn: Connection, name: str, columns: list[Column[Any]], rows: pd.DataFrame, key: str
) -> Table:
    """A temporary table of ``rows``, indexed on ``key`` (its columns, comma-separated),
    for statements that look the store's findings up in it."""
    table = Table(name, MetaData(), *columns, prefixes=["TEMPORARY"])
    table.create(conn)
    bulk_insert(conn, table, rows)
    conn.exec_driver_sql(f"CREATE INDEX ix_{name} ON {name} ({key})")
    if conn.dialect.name == "postgresql":
        # A temporary table has no statistics until analysed: without them PostgreSQL may
        # plan an anti-join with it as a nested loop that rescans the rows it is
        # inserting (hours for a few hundred thousand).
        conn.exec_driver_sql(f"ANALYZE {name}")
    return table


def record_findings(
    conn: Connection,
    day: date,
    current: pd.DataFrame,
    unevaluated: pd.DataFrame | None = None,
    scope: ColumnElement[bool] | None = None,
) -> dict[str, int]:
    """Keep the findings table in step: new ones open, held ones seen, the rest resolved.

    ``unevaluated``: records a rule could not evaluate on this run (NOT_EVALUATED_FIELDS).
    Their open findings of that rule are neither resolved nor re-detailed: they are seen
    on this run as they stood. ``scope``: which findings the run re-evaluated (all when
    not given); the open ones outside it still hold and are seen on ``day``. Returns how
    many findings were kept so, per rule.
    """
    in_scope = true() if scope is None else scope
    # Each statement below looks findings up by identity in the staging table.
    staging = _staged(
        conn,
        "stage_findings",
        [
            Column("identity", String(64)),
            Column("severity", String(16)),
            Column("vin", String(32)),
            Column("detail", Text),
            Column("rule_id", String(16)),
            Column("agency", String(16)),
            Column("record_key", String(255)),
            Column("related", Text),
        ],
        current.assign(identity=finding_identity(current)),
        "identity",
    )
    if conn.dialect.name == "postgresql":
        # The findings table has no statistics while new either (see _staged).
        conn.exec_driver_sql("ANALYZE findings")
    held = exists().where(staging.c.identity == findings.c.identity)
    kept, kept_per_rule = _kept_open(conn, day, unevaluated)
    conn.execute(
        update(findings)
        .where(
            findings.c.resolved_on.is_(None), findings.c.first_seen <= day, ~held, ~kept, in_scope
        )
        .values(resolved_on=day)
    )
    if scope is not None:
        conn.execute(
            update(findings)
            .where(findings.c.resolved_on.is_(None), findings.c.first_seen <= day, ~scope)
            .values(last_seen=day)
        )
    conn.execute(
        update(findings)
        .where(held)
        .values(
            last_seen=day,
            resolved_on=None,
            detail=select(staging.c.detail)
            .where(staging.c.identity == findings.c.identity)
            .scalar_subquery(),
        )
    )
    new_columns = ["identity", *FINDING_FIELDS]
    found = select(*(staging.c[c] for c in new_columns), literal(day, Date), literal(day, Date))
    targets = [*new_columns, "first_seen", "last_seen"]
    if conn.dialect.name == "postgresql":
        # The unique identity decides, not an anti-join: PostgreSQL may plan the anti-join
        # as a nested loop whose every rescan reads the pages this statement has filled,
        # quadratic in the findings of a first night.
        conn.execute(
            pg_insert(findings)
            .from_select(targets, found)
            .on_conflict_do_nothing(constraint="uq_findings_identity")
        )
    else:
        conn.execute(
            insert(findings).from_select(
                targets, found.where(~exists().where(findings.c.identity == staging.c.identity))
            )
        )
    staging.drop(conn)
    if unevaluated is not None and not unevaluated.empty:
        Table("stage_unevaluated", MetaData()).drop(conn)
    return kept_per_rule


def _kept_open(
    conn: Connection, day: date, unevaluated: pd.DataFrame | None
) -> tuple[ColumnElement[bool], dict[str, int]]:
    """Which findings stay as they stood: those of a rule on a record it could not
    evaluate. Marks the open ones seen on ``day`` (earlier detail kept); returns the
    condition naming them all, for the statements that follow, and the open ones per
    rule."""
    if unevaluated is None or unevaluated.empty:
        return false(), {}
    staging = _staged(
        conn,
        "stage_unevaluated",
        [
            Column("rule_id", String(16)),
            Column("agency", String(16)),
            Column("record_key", String(255)),
        ],
        unevaluated[["rule_id", "agency", "record_key"]],
        "record_key, rule_id, agency",
    )
    kept = exists().where(
        staging.c.rule_id == findings.c.rule_id,
        staging.c.agency == findings.c.agency,
        staging.c.record_key == findings.c.record_key,
    )
    # Open before this run: not resolved, or resolved only by a later business date.
    still_open = and_(
        kept,
        findings.c.first_seen <= day,
        or_(findings.c.resolved_on.is_(None), findings.c.resolved_on > day),
    )
    per_rule = {
        str(rule_id): int(n)
        for rule_id, n in conn.execute(
            select(findings.c.rule_id, func.count()).where(still_open).group_by(findings.c.rule_id)
        )
    }
    conn.execute(update(findings).where(still_open).values(last_seen=day, resolved_on=None))
    return kept, per_rule


def not_evaluated_counts(unevaluated: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Per rule, per reason: the records it could not evaluate."""
    out: dict[str, dict[str, int]] = {}
    for row in unevaluated.groupby(["rule_id", "reason"]).size().reset_index().itertuples():
        out.setdefault(str(row.rule_id), {})[str(row.reason)] = int(row[-1])
    return out


def keep_not_evaluated(conn: Connection, unevaluated: pd.DataFrame, scoped: bool) -> None:
    """Keep the records the rules could not evaluate as of this run: those of the run's
    scope replaced (all of them, when the run evaluated everything)."""
    stale = re_evaluated(records_not_evaluated) if scoped else true()
    conn.execute(delete(records_not_evaluated).where(stale))
    bulk_insert(conn, records_not_evaluated, unevaluated[NOT_EVALUATED_FIELDS])


def not_evaluated_now(conn: Connection) -> dict[str, dict[str, int]]:
    """Per rule, per reason: the records it could not evaluate, as of the latest run."""
    table = records_not_evaluated
    out: dict[str, dict[str, int]] = {}
    query = (
        select(table.c.rule_id, table.c.reason, func.count())
        .group_by(table.c.rule_id, table.c.reason)
        .order_by(table.c.rule_id, table.c.reason)
    )
    for rule_id, reason, n in conn.execute(query):
        out.setdefault(str(rule_id), {})[str(reason)] = int(n)
    return out


def open_per_rule(conn: Connection) -> tuple[dict[str, int], dict[str, int]]:
    """Per rule, the findings open as of the latest run, and of those the ones on records
    it could not evaluate (kept as they stood)."""
    table = records_not_evaluated
    on_unevaluated = exists().where(
        table.c.rule_id == findings.c.rule_id,
        table.c.agency == findings.c.agency,
        table.c.record_key == findings.c.record_key,
    )
    open_now = findings.c.resolved_on.is_(None)
    counted = [
        {
            str(rule_id): int(n)
            for rule_id, n in conn.execute(
                select(findings.c.rule_id, func.count())
                .where(open_now, *extra)
                .group_by(findings.c.rule_id)
            )
        }
        for extra in ((), (on_unevaluated,))
    ]
    return counted[0], counted[1]


def verdicts_holding(conn: Connection, report: str, day: date) -> dict[str, int]:
    """How many records of the report hold each verdict on ``day``."""
    query = (
        select(verdict_history.c.verdict, func.count())
        .where(verdict_history.c.report == report, verdict_holds_on(day))
        .group_by(verdict_history.c.verdict)
        .order_by(verdict_history.c.verdict)
    )
    return {str(verdict): int(n) for verdict, n in conn.execute(query)}


def store_not_evaluated(conn: Connection, day: date, counts: dict[str, dict[str, int]]) -> None:
    """Replace the day's counts of records not evaluated (:func:`not_evaluated_counts`)."""
    conn.execute(delete(not_evaluated).where(not_evaluated.c.run_date == day))
    rows = [
        {"run_date": day, "rule_id": rule_id, "reason": reason, "records": records}
        for rule_id, reasons in counts.items()
        for reason, records in reasons.items()
    ]
    if rows:
        conn.execute(insert(not_evaluated), rows)


def deregistration_items(ctx: RuleContext) -> pd.DataFrame:
    """Each export deregistration with each cleared item of its VIN (or none): whether
    the item left in time (``qualifies``) and whether the deregistration names it."""
    dereg, cleared = ctx.export_deregistrations(), ctx.cleared_items()
    return ctx.frame(
        select(
            dereg.c.event_id,
            dereg.c.vin,
            cleared.c.decl_no,
            cleared.c.item_no,
            cleared.c.exported_at,
            case((cleared.c.exported_at <= dereg.c.event_date, 1), else_=0).label("qualifies"),
            case((cleared.c.decl_no == dereg.c.decl_no, 1), else_=0).label("named"),
        )
        .outerjoin(cleared, cleared.c.vin == dereg.c.vin)
        .where(ctx.reached(dereg.c.vin))
    )


def police_verdicts(
    ctx: RuleContext, evaluation: Evaluation, pairs: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per export deregistration, and one per export overdue for deregistration.

    The item shown for a deregistration is the one its ``decl_no`` names if that one
    qualifies, else the latest that qualifies (RULES.md, networked verification). With
    none qualifying the deregistration is ``before_export``, shown with the item that
    comes first in the same order; with no cleared item at all, ``no_export``.
    ``pairs``: :func:`deregistration_items`, when already read.
    """
    if pairs is None:
        pairs = deregistration_items(ctx)
    # Most deregistrations have one cleared item or none: only those with several are
    # sorted to find the one shown.
    several = pairs["event_id"].duplicated(keep=False)
    shown = (
        pairs[several]
        .sort_values(
            ["event_id", "qualifies", "named", "exported_at", "decl_no", "item_no"],
            ascending=[True, False, False, False, False, False],
        )
        .drop_duplicates("event_id")
    )
    rows = pd.concat([pairs[~several], shown]).drop(columns=["item_no", "named"])
    has_item = rows["decl_no"].notna()
    rows["verdict"] = PoliceVerdict.NO_EXPORT.value
    rows.loc[has_item & rows["qualifies"].eq(1), "verdict"] = PoliceVerdict.VERIFIED.value
    rows.loc[has_item & rows["qualifies"].eq(0), "verdict"] = PoliceVerdict.BEFORE_EXPORT.value
    rows = rows.drop(columns="qualifies")
    overdue = evaluation.raw["EXP-003"]
    overdue_rows = pd.DataFrame(
        {
            "event_id": None,
            "vin": overdue["vin"],
            "verdict": PoliceVerdict.OVERDUE.value,
            "decl_no": overdue["record_key"].str.split("/").str[0],
            "exported_at": overdue["exported_at"],
            "record_key": "item:" + overdue["record_key"],
        }
    )
    rows["record_key"] = rows["event_id"]
    both = pd.concat([rows, overdue_rows], ignore_index=True)
    both["rule_ids"] = _rule_ids(evaluation.findings, "police", tuple(POLICE_VERDICT_RULES), both)
    both.loc[both["verdict"] == PoliceVerdict.OVERDUE.value, "rule_ids"] = "EXP-003"
    shown = both[["record_key", *EXPORT_VERIFICATION_COLUMNS]]
    return shown.sort_values("record_key", ignore_index=True)


def refund_line_vins(ctx: RuleContext) -> pd.DataFrame:
    """Each refund line outside status rejected, with its customs item's VIN (or none)."""
    refund = ctx.refund_lines()
    items = ctx.latest("customs", "declarations", "item")
    return ctx.frame(
        select(refund.c.refund_no, refund.c.decl_ref, items.c.vin)
        .outerjoin(items, same_item(refund, items))
        .where(ctx.reached(refund.c.decl_ref, "decl_ref"))
    )


def tax_verdicts(
    ctx: RuleContext, evaluation: Evaluation, lines: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per refund line outside status rejected: the first verdict that applies.

    ``lines``: :func:`refund_line_vins`, when already read.
    """
    rows = refund_line_vins(ctx) if lines is None else lines
    # The record key (ICD §4) joined here rather than in SQL: one string less to fetch a line.
    rows.insert(0, "record_key", rows["refund_no"] + "/" + rows["decl_ref"])
    rows["rule_ids"] = _rule_ids(evaluation.findings, "tax", tuple(TAX_VERDICT_RULES), rows)
    # The first verdict that applies, worked out once per distinct rule_ids value.
    verdict_of = {
        ids: next(
            (v.value for r, v in TAX_VERDICT_RULES.items() if r in ids.split(";")),
            TaxVerdict.VERIFIED.value,
        )
        for ids in rows["rule_ids"].unique()
    }
    rows["verdict"] = rows["rule_ids"].map(verdict_of).astype("str")
    shown = rows[["record_key", *REFUND_VERIFICATION_COLUMNS]]
    return shown.sort_values("record_key", ignore_index=True)


def _rule_ids(
    found: pd.DataFrame, agency: str, rule_ids: tuple[str, ...], rows: pd.DataFrame
) -> pd.Series:
    """The ids of the given rules that fired on each row's record, sorted, joined by ``;``."""
    fired = found[(found["agency"] == agency) & found["rule_id"].isin(rule_ids)]
    joined_ids = fired.sort_values("rule_id").groupby("record_key")["rule_id"].agg(";".join)
    return rows["record_key"].map(joined_ids).fillna("").astype("str")


def _counts(values: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in values.value_counts().sort_index().items()}


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


#: What each verdict report reads of the store; done alongside the rules.
VERDICT_READS: dict[str, Job] = {
    "export_verification": deregistration_items,
    "refund_verification": refund_line_vins,
}


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
    with engine.begin() as conn:
        basis = basis_now(conn, params, calendar)
        why = "asked for" if full else why_in_full(conn, day, basis)
        clear_scope(conn)
        if why is None:
            reached = widen_scope(RuleContext(conn, day, params, calendar))
            log.info("reconciling %s incrementally: reached %s", day, reached)
        else:
            log.info("reconciling %s in full: %s", day, why)
    scoped = why is None
    # Committed before the rules run: they read the scope on connections of their own.
    with engine.begin() as conn:
        ctx = RuleContext(conn, day, params, calendar, scoped=scoped)
        evaluation, read = _evaluate(ctx, sorted(RULES), worker_count(), VERDICT_READS)
        scope = re_evaluated(findings) if scoped else None
        kept = record_findings(conn, day, evaluation.findings, evaluation.not_evaluated, scope)
        keep_not_evaluated(conn, evaluation.not_evaluated, scoped)
        skipped = not_evaluated_now(conn)
        store_not_evaluated(conn, day, skipped)
        counts: dict[str, dict[str, int]] = {}
        reports = (
            ("export_verification", police_verdicts, EXPORT_VERIFICATION_COLUMNS),
            ("refund_verification", tax_verdicts, REFUND_VERIFICATION_COLUMNS),
        )
        # One report at a time: each holds a row per deregistration or refund line.
        for report, verdicts_of, columns in reports:
            rows = verdicts_of(ctx, evaluation, read.pop(report))
            within = verdict_records_in_scope(report) if scoped else None
            store_verdicts(conn, day, report, rows, columns, within)
            counts[report] = (
                verdicts_holding(conn, report, day) if scoped else _counts(rows["verdict"])
            )
            del rows
        record_run(conn, day)
        note_basis(conn, day, basis)
        clear_scope(conn)
        if scoped:
            per_rule, kept = open_per_rule(conn)
    if not scoped:
        # The findings that hold at the end of the run: those found, and those kept open.
        per_rule = _counts(evaluation.findings["rule_id"])
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
