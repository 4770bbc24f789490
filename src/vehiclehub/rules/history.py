"""Findings kept across runs: a lasting identity each, seen, resolved or kept as they
stood; and the records the rules could not evaluate."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from datetime import date
from typing import Any

import pandas as pd
from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Date,
    MetaData,
    String,
    Table,
    Text,
    and_,
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

from vehiclehub.rules.base import read_frame
from vehiclehub.rules.runner import FINDING_FIELDS, NOT_EVALUATED_FIELDS
from vehiclehub.rules.scope import re_evaluated
from vehiclehub.rules.verdicts import rules_per_record
from vehiclehub.store.load import bulk_insert
from vehiclehub.store.schema import findings, not_evaluated, records_not_evaluated


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
    _indexed(conn, name, key)
    return table


def _indexed(conn: Connection, name: str, key: str) -> None:
    conn.exec_driver_sql(f"CREATE INDEX ix_{name} ON {name} ({key})")
    if conn.dialect.name == "postgresql":
        # A temporary table has no statistics until analysed: without them PostgreSQL may
        # plan an anti-join with it as a nested loop that rescans the rows it is
        # inserting (hours for a few hundred thousand).
        conn.exec_driver_sql(f"ANALYZE {name}")


class StagedFindings:
    """A run's findings, staged in a temporary table of ``conn`` as each rule gives them
    (:meth:`add`), then kept in the findings table in one step (:meth:`record`): the
    findings of all rules are never held in memory together."""

    NAME = "stage_findings"

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.per_rule: Counter[str] = Counter()
        self.table = Table(
            self.NAME,
            MetaData(),
            Column("identity", String(64)),
            Column("severity", String(16)),
            Column("vin", String(32)),
            Column("detail", Text),
            Column("rule_id", String(16)),
            Column("agency", String(16)),
            Column("record_key", String(255)),
            Column("related", Text),
            prefixes=["TEMPORARY"],
        )
        self.table.create(conn)

    def add(self, found: pd.DataFrame) -> None:
        """Stage findings (FINDING_FIELDS, one row per finding)."""
        bulk_insert(self.conn, self.table, found.assign(identity=finding_identity(found)))
        counts = found["rule_id"].value_counts()
        self.per_rule.update({str(rule_id): int(n) for rule_id, n in counts.items()})

    def fired(self, agency: str, rule_ids: Iterable[str]) -> pd.Series:
        """Per record of the agency with findings of the given rules: their ids, sorted,
        joined by ``;`` (one per finding)."""
        staged = self.table
        query = select(staged.c.record_key, staged.c.rule_id).where(
            staged.c.agency == agency, staged.c.rule_id.in_(list(rule_ids))
        )
        return rules_per_record(read_frame(self.conn, query))

    def record(
        self,
        day: date,
        unevaluated: pd.DataFrame | None = None,
        scope: ColumnElement[bool] | None = None,
    ) -> dict[str, int]:
        """Keep the findings table in step: new ones open, held ones seen, the rest
        resolved; the staging table is dropped.

        ``unevaluated``: records a rule could not evaluate on this run
        (NOT_EVALUATED_FIELDS). Their open findings of that rule are neither resolved nor
        re-detailed: they are seen on this run as they stood. ``scope``: which findings
        the run re-evaluated (all when not given); the open ones outside it still hold
        and are seen on ``day``. Returns how many findings were kept so, per rule.
        """
        conn, staging = self.conn, self.table
        in_scope = true() if scope is None else scope
        # Each statement below looks findings up by identity in the staging table.
        _indexed(conn, self.NAME, "identity")
        if conn.dialect.name == "postgresql":
            # The findings table has no statistics while new either (see _indexed).
            conn.exec_driver_sql("ANALYZE findings")
        held = exists().where(staging.c.identity == findings.c.identity)
        kept, kept_per_rule = _kept_open(conn, day, unevaluated)
        conn.execute(
            update(findings)
            .where(
                findings.c.resolved_on.is_(None),
                findings.c.first_seen <= day,
                ~held,
                ~kept,
                in_scope,
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
            # By identity (IN, not EXISTS): the findings found again are looked up through
            # their unique identity, not every finding held scanned for them.
            .where(findings.c.identity.in_(select(staging.c.identity)))
            .values(
                last_seen=day,
                resolved_on=None,
                detail=select(staging.c.detail)
                .where(staging.c.identity == findings.c.identity)
                .scalar_subquery(),
            )
        )
        new_columns = ["identity", *FINDING_FIELDS]
        # New findings numbered in rule and record order, whatever order the rules
        # finished in.
        found = select(
            *(staging.c[c] for c in new_columns), literal(day, Date), literal(day, Date)
        ).order_by(*(staging.c[c] for c in ORDER))
        targets = [*new_columns, "first_seen", "last_seen"]
        if conn.dialect.name == "postgresql":
            # The unique identity decides, not an anti-join: PostgreSQL may plan the
            # anti-join as a nested loop whose every rescan reads the pages this statement
            # has filled, quadratic in the findings of a first night.
            conn.execute(
                pg_insert(findings)
                .from_select(targets, found)
                .on_conflict_do_nothing(constraint="uq_findings_identity")
            )
        else:
            conn.execute(
                insert(findings).from_select(
                    targets,
                    found.where(~exists().where(findings.c.identity == staging.c.identity)),
                )
            )
        staging.drop(conn)
        if unevaluated is not None and not unevaluated.empty:
            Table("stage_unevaluated", MetaData()).drop(conn)
        return kept_per_rule


#: The order new findings are numbered in: by rule and record, then what tells apart the
#: findings of one rule on one record.
ORDER = ("rule_id", "record_key", "agency", "vin", "related")


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
