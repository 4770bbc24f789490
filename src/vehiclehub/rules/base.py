"""The rule registry and what every rule sees: the evidence in the store.

A rule is one function, registered with :func:`rule`, that runs one set-based query
and returns a frame with a row per (finding, related record): ``vin``,
``record_key``, ``detail`` and ``related`` (``agency:key`` or null). The engine
gathers the related records of a finding and stamps id, severity and agency.

A rule that cannot evaluate some records on a run (SLA-001 without the working-day
calendar of a year it needs) returns a row for each of them too, with the reason in a
``not_evaluated`` column (null on findings): such a record gets no new finding, and
its open findings of the rule stay as they were.

Each rule also declares its *reach* (:class:`Reach`): through which keys a night's
loaded, superseded or cancelled records can change its findings, and which records a
new business date alone carries past a threshold. An incremental reconciliation
expands the night's changes through the reaches of all rules into a scope of VINs and
refund lines, and each rule's query keeps to the records in scope
(:meth:`RuleContext.reached`); a full one evaluates everything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from operator import itemgetter
from typing import Any, Literal

import pandas as pd
from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Connection,
    Date,
    DateTime,
    Dialect,
    Integer,
    Select,
    String,
    Subquery,
    and_,
    cast,
    func,
    literal,
    select,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from vehiclehub.config import RuleParameters
from vehiclehub.icd.codes import (
    DeclarationStatus,
    DeregReason,
    EventType,
    RecordStatus,
    RefundStatus,
    Severity,
)
from vehiclehub.icd.codes import values as code_values
from vehiclehub.store.batches import fetch_batches
from vehiclehub.store.schema import feed_table, reconcile_scope, record_changes
from vehiclehub.workdays import WorkingDays, package_calendar

#: The column in which a rule gives the reason it could not evaluate a record.
NOT_EVALUATED = "not_evaluated"
SEVERITIES = tuple(code_values(Severity))


#: What an incremental reconciliation re-evaluates records by: the VIN a finding is on,
#: or, for the tax rules, the declaration reference of the refund line it is on.
Scope = Literal["vin", "decl_ref"]


@dataclass(frozen=True)
class Night:
    """What changed since the last reconciliation, as the reaches expand it: the keys
    journaled for files after ``files_after`` (store.schema.CHANGE_KEYS), and the
    business date ``previous`` the last run was for (``ctx.day`` is tonight's)."""

    ctx: RuleContext
    files_after: int
    previous: date

    def changed(self, kind: str) -> Select[Any]:
        """The night's changed keys of one kind (``vin``, ``exporter``, ...)."""
        journal = record_changes
        return select(journal.c.value).where(
            journal.c.file_id > self.files_after, journal.c.kind == kind
        )


@dataclass(frozen=True)
class Reach:
    """What a night's change can reach: the keys of the records (``scope``) whose findings
    it may change, as ``expand`` gives them from the :class:`Night` — a query of one
    column, or the values themselves."""

    name: str
    scope: Scope
    expand: Callable[[Night], Select[Any] | pd.Series]


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    agency: str
    find: Callable[[RuleContext], pd.DataFrame]
    reach: tuple[Reach, ...]

    @property
    def scope(self) -> Scope:
        """The key its findings are re-evaluated by (the same for all its reaches)."""
        return self.reach[0].scope

    @property
    def summary(self) -> str:
        return (self.find.__doc__ or "").strip().splitlines()[0]


RULES: dict[str, Rule] = {}


def rule(
    rule_id: str, severity: str, on: str, reach: tuple[Reach, ...]
) -> Callable[[Callable[..., pd.DataFrame]], Any]:
    """Register a rule: its RULES.md id, severity, the agency whose record it is on, and
    what a night's change can reach of its findings."""
    if severity not in SEVERITIES:
        raise ValueError(f"{rule_id}: unknown severity {severity}")
    if not reach or len({r.scope for r in reach}) != 1:
        raise ValueError(f"{rule_id}: its reaches must share one scope")

    def register(find: Callable[[RuleContext], pd.DataFrame]) -> Callable[..., pd.DataFrame]:
        if rule_id in RULES:
            raise ValueError(f"rule {rule_id} registered twice")
        RULES[rule_id] = Rule(rule_id, severity, on, find, reach)
        return find

    return register


class days_between(FunctionElement[int]):
    """``later - earlier`` in whole days, on SQLite and PostgreSQL alike."""

    type = Integer()
    inherit_cache = True


@compiles(days_between, "sqlite")
def _days_between_sqlite(element: days_between, compiler: Any, **kw: Any) -> str:
    later, earlier = list(element.clauses)
    return (
        f"CAST(julianday({compiler.process(later, **kw)}) - "
        f"julianday({compiler.process(earlier, **kw)}) AS INTEGER)"
    )


@compiles(days_between, "postgresql")
def _days_between_pg(element: days_between, compiler: Any, **kw: Any) -> str:
    later, earlier = list(element.clauses)
    return f"({compiler.process(later, **kw)} - {compiler.process(earlier, **kw)})"


def text_of(column: ColumnElement[Any]) -> ColumnElement[str]:
    return cast(column, String)


def joined(*parts: ColumnElement[Any]) -> ColumnElement[str]:
    """Key columns joined by ``/`` (ICD §4 record_key), integers unpadded."""
    out: ColumnElement[str] = text_of(parts[0])
    for part in parts[1:]:
        out = out + literal("/") + text_of(part)
    return out


def ref(agency: str, key: ColumnElement[str]) -> ColumnElement[str]:
    """A related record as ``agency:key``."""
    return literal(f"{agency}:") + key


@dataclass
class RuleContext:
    """The store as the rules see it on business date ``day``."""

    conn: Connection
    day: date
    params: RuleParameters
    calendar: WorkingDays = field(default_factory=package_calendar)
    #: Whether the rules keep to the records in ``reconcile_scope`` (an incremental run).
    scoped: bool = False
    #: What one step of a reconciliation read over the whole store and hands on to a
    #: later step reading the same (the reaches, then the rules): read once a night.
    carried: dict[str, Any] = field(default_factory=dict)

    def reached(self, key: ColumnElement[Any], scope: Scope = "vin") -> ColumnElement[bool]:
        """Whether a record, by its ``key`` (a VIN, or a refund line's ``decl_ref``), is in
        the run's scope: always, when the run evaluates everything."""
        if not self.scoped:
            return true()
        return key.in_(self.in_scope(scope))

    def in_scope(self, scope: Scope = "vin") -> Select[Any]:
        """The run's scope of one kind, as a query."""
        return select(reconcile_scope.c.value).where(reconcile_scope.c.kind == scope)

    def evidence(self, agency: str, feed: str, name: str | None = None) -> Subquery:
        """The latest version of each key, active only (RULES.md, Definitions)."""
        table = feed_table(agency, feed)
        return select(table).where(table.c.record_status == RecordStatus.ACTIVE).subquery(name)

    def latest(self, agency: str, feed: str, name: str | None = None) -> Subquery:
        """The latest version of each key, cancelled ones included."""
        return select(feed_table(agency, feed)).subquery(name)

    def cleared_items(self, name: str = "cleared") -> Subquery:
        """Customs items that are evidence, cleared and exported."""
        items = self.evidence("customs", "declarations")
        return (
            select(items)
            .where(items.c.status == DeclarationStatus.CLEARED, items.c.exported_at.is_not(None))
            .subquery(name)
        )

    def export_deregistrations(self, name: str = "dereg") -> Subquery:
        events = self.evidence("police", "events")
        return (
            select(events)
            .where(
                events.c.event_type == EventType.DEREGISTER,
                events.c.dereg_reason == DeregReason.EXPORT,
            )
            .subquery(name)
        )

    def refund_lines(self, name: str = "refund") -> Subquery:
        """Refund lines inside the TAX rules (status not rejected), with their item's key."""
        refunds = self.evidence("tax", "refunds")
        return (
            select(
                refunds,
                func.substr(refunds.c.decl_ref, 1, 18).label("item_decl_no"),
                cast(func.substr(refunds.c.decl_ref, 19, 3), Integer).label("item_no"),
            )
            .where(refunds.c.status != RefundStatus.REJECTED)
            .subquery(name)
        )

    def frame(self, query: Select[Any] | CompoundSelect[Any]) -> pd.DataFrame:
        """Run a query; dates come back as ISO text, nulls as NA (:func:`read_frame`)."""
        return read_frame(self.conn, query)


def read_frame(conn: Connection, query: Select[Any] | CompoundSelect[Any]) -> pd.DataFrame:
    """Run a query; dates come back as ISO text, nulls as NA.

    Rows are read straight from the driver's cursor a batch at a time and turned
    into columns as they come, so a large result never exists as row objects:
    text columns go to the compact string dtype batch by batch.
    """
    result = conn.execute(query)
    names = list(result.keys())
    processors = _processors(query, conn.dialect)
    parts: list[list[_Part]] = [[] for _ in names]
    cursor = result.cursor
    try:
        while rows := cursor.fetchmany(FETCH_BATCH):
            for i, part in enumerate(parts):
                part.append(_part(list(map(itemgetter(i), rows)), processors[i]))
            del rows
    finally:
        result.close()
    frame = pd.DataFrame({i: _column(column) for i, column in enumerate(parts)})
    frame.columns = pd.Index(names)
    return frame


#: Rows fetched from the driver at a time by :func:`read_frame`.
FETCH_BATCH = 100_000


def read_frames(
    conn: Connection, query: Select[Any] | CompoundSelect[Any], size: int = FETCH_BATCH
) -> Iterator[pd.DataFrame]:
    """:func:`read_frame`'s rows as frames of at most ``size`` rows, read a batch at a
    time (:func:`fetch_batches`): a result of any length is never held whole. Columns are
    typed per frame as :func:`read_frame` types them."""
    names = [column.name for column in query.selected_columns]
    processors = _processors(query, conn.dialect)
    for rows in fetch_batches(conn, query, size):
        columns = {
            i: _column([_part(list(map(itemgetter(i), rows)), processors[i])])
            for i in range(len(names))
        }
        del rows
        frame = pd.DataFrame(columns)
        frame.columns = pd.Index(names)
        yield frame


_NOT_PROCESSED = (Date, DateTime, String, Integer)


def _processors(
    query: Select[Any] | CompoundSelect[Any], dialect: Dialect
) -> list[Callable[[Any], Any] | None]:
    """SQLAlchemy's conversion of raw driver values, per column, for the types that need
    one here (booleans and decimals on SQLite). Dates stay as the driver gives them (ISO
    text on SQLite, ``date`` on PostgreSQL), text and integers are taken as they are."""
    out: list[Callable[[Any], Any] | None] = []
    for column in query.selected_columns:
        kind = column.type
        if isinstance(kind, _NOT_PROCESSED):
            out.append(None)
        else:
            out.append(kind.dialect_impl(dialect).result_processor(dialect, None))
    return out


@dataclass
class _Part:
    """One batch of one column: ``text`` (str and nulls), ``null`` or ``other`` values."""

    kind: str
    values: Any


def _part(values: list[Any], processor: Callable[[Any], Any] | None) -> _Part:
    if processor is not None:
        values = [processor(v) for v in values]
    kinds = set(map(type, values))
    kinds.discard(type(None))
    if not kinds:
        return _Part("null", len(values))
    if all(issubclass(k, date) for k in kinds):
        values = [None if v is None else v.isoformat() for v in values]
        kinds = {str}
    if kinds == {str}:
        return _Part("text", pd.array(values, dtype="str"))
    return _Part("other", values)


def _column(parts: list[_Part]) -> pd.Series:
    """A column from its batches, typed as a frame of the rows would be: text and dates as
    the string dtype (also when all null), other values as pandas infers them."""
    if all(p.kind != "other" for p in parts):
        arrays = [
            p.values if p.kind == "text" else pd.array([None] * p.values, dtype="str")
            for p in parts
        ]
        if not arrays:
            return pd.Series([], dtype="str")
        if len(arrays) == 1:
            return pd.Series(arrays[0])
        return pd.Series(pd.concat([pd.Series(a) for a in arrays], ignore_index=True))
    values: list[Any] = []
    for p in parts:
        if p.kind == "null":
            values.extend([None] * p.values)
        else:
            values.extend(list(p.values))
    column = pd.Series(values)
    first = column.first_valid_index()
    sample = None if first is None else column.at[first]
    # Text and dates as the string dtype, so that formatting details works alike
    # whether a column has values or is all null.
    if sample is None or isinstance(sample, str):
        column = column.astype("str")
    return column


def item_key(items: Any) -> ColumnElement[str]:
    return joined(items.c.decl_no, items.c.item_no)


def same_item(refund: Any, items: Any) -> ColumnElement[bool]:
    return and_(items.c.decl_no == refund.c.item_decl_no, items.c.item_no == refund.c.item_no)
