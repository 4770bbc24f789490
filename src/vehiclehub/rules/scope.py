"""Incremental reconciliation: when a night may re-evaluate only what it changed, and what.

A reconciliation notes what it took into account (``reconcile_bases``): the files up to
the last one taken, and a fingerprint of the rule parameters and working-day calendar.
The next night re-evaluates only the scope its changes reach (the rules' :class:`Reach`
declarations) when it runs for that business date or a later one, with the same
fingerprint, and no feed was loaded whole since. Anything else — the first run, a
re-run of an earlier date (and the run after it), a changed ``[rules]`` or
``[calendar]``, a store upgraded to a new schema revision, or ``full`` asked for —
evaluates everything. Both give the same
findings and verdicts.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd
from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Table,
    and_,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    union,
)

from vehiclehub.config import RuleParameters
from vehiclehub.rules import RULES
from vehiclehub.rules.base import Night, Reach, RuleContext, Scope, item_key, joined
from vehiclehub.store.load import bulk_insert
from vehiclehub.store.migrate import store_revision
from vehiclehub.store.schema import (
    EVERYTHING,
    feed_table,
    intake_files,
    reconcile_bases,
    reconcile_runs,
    reconcile_scope,
    record_changes,
)
from vehiclehub.workdays import WorkingDays

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Basis:
    """What a reconciliation takes into account: every file up to ``files_through`` and
    the rules as ``fingerprint`` says."""

    files_through: int
    fingerprint: str


def basis_now(conn: Connection, params: RuleParameters, calendar: WorkingDays) -> Basis:
    """The basis of a reconciliation starting now: the files taken so far, these rules."""
    through = conn.execute(select(func.max(intake_files.c.id))).scalar() or 0
    # The schema revision too: an upgrade may change stored records besides the journal.
    text = params.model_dump_json() + calendar.fingerprint() + str(store_revision(conn))
    return Basis(int(through), hashlib.sha256(text.encode()).hexdigest())


def why_in_full(conn: Connection, day: date, basis: Basis) -> str | None:
    """Why the reconciliation of ``day`` must evaluate everything; None when it need not."""
    last = conn.execute(select(reconcile_bases)).first()
    latest = conn.execute(select(func.max(reconcile_runs.c.run_date))).scalar()
    if last is None or latest is None:
        return "no earlier reconciliation to build on"
    if day < latest:
        return f"a re-run of {day}, earlier than the latest business date {latest}"
    if last.run_date != latest:
        return f"the last reconciliation re-ran an earlier date ({last.run_date})"
    if last.fingerprint != basis.fingerprint:
        return "the [rules] or [calendar] configuration changed"
    whole = exists().where(
        record_changes.c.file_id > last.files_through, record_changes.c.kind == EVERYTHING
    )
    if conn.execute(select(whole)).scalar():
        return "a feed was loaded whole"
    return None


def reaches() -> list[Reach]:
    """Every reach the rules declare, each once."""
    return list({reach.name: reach for rule in RULES.values() for reach in rule.reach}.values())


def widen_scope(ctx: RuleContext) -> dict[str, int]:
    """Fill ``reconcile_scope`` with what the night's changes reach, through every rule's
    reaches; return how many VINs and declaration references that is."""
    last = ctx.conn.execute(select(reconcile_bases)).one()
    night = Night(ctx, last.files_through, last.run_date)
    found: dict[str, set[str]] = {"vin": set(), "decl_ref": set()}
    for reach in reaches():
        expanded = reach.expand(night)
        if not isinstance(expanded, pd.Series):
            expanded = pd.Series(ctx.conn.execute(expanded).scalars().all(), dtype="str")
        found[reach.scope].update(expanded.dropna())
    rows = pd.DataFrame(
        [(kind, value) for kind, values in found.items() for value in sorted(values)],
        columns=["kind", "value"],
    )
    bulk_insert(ctx.conn, reconcile_scope, rows)
    return {kind: len(values) for kind, values in found.items()}


def clear_scope(conn: Connection) -> None:
    conn.execute(delete(reconcile_scope))


def note_basis(conn: Connection, day: date, basis: Basis) -> None:
    """Note what the reconciliation of ``day`` took into account, in place of the last; the
    journal of the files it covered is no longer needed."""
    conn.execute(delete(reconcile_bases))
    conn.execute(
        insert(reconcile_bases).values(
            run_date=day, files_through=basis.files_through, fingerprint=basis.fingerprint
        )
    )
    conn.execute(delete(record_changes).where(record_changes.c.file_id <= basis.files_through))


def _scope(kind: Scope) -> Select[Any]:
    return select(reconcile_scope.c.value).where(reconcile_scope.c.kind == kind)


def _refund_lines_in_scope() -> Select[Any]:
    """The record keys of the refund lines in scope, whatever their status."""
    refunds = feed_table("tax", "refunds")
    return select(joined(refunds.c.refund_no, refunds.c.decl_ref)).where(
        refunds.c.decl_ref.in_(_scope("decl_ref"))
    )


def re_evaluated(table: Table) -> ColumnElement[bool]:
    """Whether a row of ``table`` (findings, or records not evaluated: ``rule_id``, ``vin``,
    ``record_key``) is on a record the run re-evaluated by its rule's scope."""
    by_vin = sorted(r.id for r in RULES.values() if r.scope == "vin")
    by_ref = sorted(r.id for r in RULES.values() if r.scope == "decl_ref")
    return or_(
        and_(table.c.rule_id.in_(by_vin), table.c.vin.in_(_scope("vin"))),
        and_(table.c.rule_id.in_(by_ref), table.c.record_key.in_(_refund_lines_in_scope())),
    )


def verdict_records_in_scope(report: str) -> Select[Any]:
    """The record keys of a verification report's rows the run re-evaluated: every police
    event and customs item (``item:`` rows of exports overdue) of the VINs in scope, or
    every refund line in scope."""
    if report == "refund_verification":
        return _refund_lines_in_scope()
    events, items = feed_table("police", "events"), feed_table("customs", "declarations")
    return union(  # type: ignore[return-value]
        select(events.c.event_id).where(events.c.vin.in_(_scope("vin"))),
        select(literal("item:") + item_key(items)).where(items.c.vin.in_(_scope("vin"))),
    )
