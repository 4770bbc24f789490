"""Tables: one per feed, derived from the contract, plus the hub's own bookkeeping.

A feed table holds the latest ``record_version`` of each key (cancelled records
included); evidence is its ``active`` rows. VIN columns hold the normalised VIN,
with the raw value and the substitution and check-digit flags beside it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeEngine

from vehiclehub.contract import RAW_VIN_MAX_CHARS, FeedSpec, feeds
from vehiclehub.icd.codes import RecordStatus

metadata = MetaData()

_SQL_TYPES: dict[str, TypeEngine[Any]] = {
    "date": Date(),
    "integer": Integer(),
    "decimal": Numeric(18, 2),
}


def _feed_columns(spec: FeedSpec) -> list[Column[Any]]:
    columns: list[Column[Any]] = []
    for col in spec.columns:
        if col.name in ("record_version", "record_status"):
            continue
        sql_type = _SQL_TYPES.get(col.type) or String(col.stored_chars)
        columns.append(Column(col.name, sql_type, nullable=True))
        if col.type == "vin":
            columns += [
                Column(f"{col.name}_raw", String(RAW_VIN_MAX_CHARS)),
                Column(f"{col.name}_substituted", Boolean, nullable=False),
                Column(f"{col.name}_check_ok", Boolean, nullable=False),
            ]
    columns += [
        Column("record_version", Integer, nullable=False),
        Column("record_status", String(16), nullable=False),
        Column("content_hash", BigInteger, nullable=False),
        Column("file_id", Integer, nullable=False),
        Column("line", Integer, nullable=False),
    ]
    return columns


#: What the rules read of a feed's records once they have found them by VIN, kept in the
#: VIN index after the VIN itself so that those look-ups never visit the table (the
#: rules look up millions of VINs; a table row read each time is most of their cost),
#: the export subsidy's count of each exporter's vehicles among them.
VIN_LOOKUP_COLUMNS: dict[str, tuple[str, ...]] = {
    "police_events": ("event_type", "record_status", "dereg_reason", "event_date", "event_id"),
    "customs_declarations": (
        "record_status",
        "status",
        "exported_at",
        "decl_no",
        "item_no",
        "uscc",
    ),
    "commerce_licences": ("record_status", "uscc"),
}


def vin_index_name(table: str, vin_column: str) -> str:
    """The VIN index of a feed table; ``_lookup`` where it covers the rules' look-ups."""
    suffix = "_lookup" if table in VIN_LOOKUP_COLUMNS else ""
    return f"ix_{table}_{vin_column}{suffix}"


#: Indexes of earlier versions that a covering one replaces; dropped when found.
SUPERSEDED_INDEXES = tuple(f"ix_{table}_vin" for table in VIN_LOOKUP_COLUMNS)


def held_vin_index_name(table: str, vin_column: str) -> str:
    """The index of the VINs a feed table holds, in byte order (PostgreSQL only)."""
    return f"ix_{table}_{vin_column}_held"


def _held_vin_index(table: Table, vin_column: str) -> Index:
    """PostgreSQL: the column's VINs of active records in byte order (the "C" collation),
    nothing else. VIN-003 and its reach read every VIN held, distinct and ascending by
    bytes, each night (vehiclehub.rules.quality.held_blocks). From this index that is a
    scan of the index alone, already in order; without it, a scan of the whole table, a
    hash of its VINs and a sort of them that spills to disk once the store is large (the
    VIN look-up index is in the database's collation and holds the rules' columns too).
    SQLite compares text by its bytes and reads its VIN look-up index in that order."""
    index = Index(
        held_vin_index_name(table.name, vin_column),
        table.c[vin_column].collate("C"),
        postgresql_where=table.c.record_status == RecordStatus.ACTIVE.value,
    )
    return index.ddl_if(dialect="postgresql")


def _build_feed_table(spec: FeedSpec) -> Table:
    table = Table(
        spec.table,
        metadata,
        *_feed_columns(spec),
        PrimaryKeyConstraint(*spec.key, name=f"pk_{spec.table}"),
    )
    covered = VIN_LOOKUP_COLUMNS.get(spec.table, ())
    for vin_column in spec.vin_columns:
        Index(
            vin_index_name(spec.table, vin_column),
            table.c[vin_column],
            *(table.c[c] for c in covered),
        )
        _held_vin_index(table, vin_column)
    return table


FEED_TABLES: dict[tuple[str, str], Table] = {
    key: _build_feed_table(spec) for key, spec in sorted(feeds().items())
}

#: The indexes only PostgreSQL has (:func:`_held_vin_index`).
POSTGRESQL_ONLY_INDEXES = tuple(
    held_vin_index_name(spec.table, vin_column)
    for spec in feeds().values()
    for vin_column in spec.vin_columns
)


def indexes_on(table: Table, dialect: str) -> list[Index]:
    """The table's indexes as a store on ``dialect`` (``sqlite``, ``postgresql``) has them."""
    return [
        index
        for index in table.indexes
        if dialect == "postgresql" or str(index.name) not in POSTGRESQL_ONLY_INDEXES
    ]


Index("ix_customs_declarations_licence", FEED_TABLES["customs", "declarations"].c.licence_no)
Index("ix_tax_refunds_decl_ref", FEED_TABLES["tax", "refunds"].c.decl_ref)
# The look-ups of an incremental reconciliation (vehiclehub.rules.reach): an exporter's
# licences, an applicant's claims, and the records a business date carries past a
# threshold (exported, licences not issued, refunds pending). Police events have no
# index by date: SQLite then plans POL-002, LIC-006 and TRD-003's correlated look-ups of
# a VIN's events through it, a range scan per row, rather than by VIN.
_licences, _claims = FEED_TABLES["commerce", "licences"], FEED_TABLES["commerce", "tradein_claims"]
_items = FEED_TABLES["customs", "declarations"]
Index("ix_commerce_licences_uscc", _licences.c.uscc)
Index("ix_commerce_licences_pending", _licences.c.issued_at, _licences.c.applied_at)
Index("ix_commerce_tradein_claims_applicant", _claims.c.applicant_id)
Index("ix_customs_declarations_exported", _items.c.exported_at)
Index("ix_tax_refunds_pending", *FEED_TABLES["tax", "refunds"].c["status", "applied_at"])

#: What a changed record of each feed is noted by in :data:`record_changes`: per column,
#: the kind of key through which a change can reach other records' findings
#: (vehiclehub.rules.reach): a VIN, an exporter's filing, an applicant, a declaration
#: (its items) or a refund line's declaration reference.
CHANGE_KEYS: dict[tuple[str, str], dict[str, str]] = {
    ("commerce", "enterprises"): {"uscc": "exporter"},
    ("commerce", "licences"): {"vin": "vin"},
    ("commerce", "tradein_claims"): {
        "old_vin": "vin",
        "new_vin": "vin",
        "applicant_id": "applicant",
    },
    ("customs", "declarations"): {"vin": "vin", "decl_no": "declaration"},
    ("police", "events"): {"vin": "vin"},
    ("tax", "refunds"): {"decl_ref": "decl_ref"},
}
#: The kind of a :data:`record_changes` row that says a whole feed changed (its first
#: load, inserted without comparison): the next reconciliation runs in full.
EVERYTHING = "everything"


def feed_table(agency: str, feed: str) -> Table:
    return FEED_TABLES[agency, feed]


intake_files = Table(
    "intake_files",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("agency", String(16), nullable=False),
    Column("feed", String(32)),
    Column("name", String(255), nullable=False),
    Column("manifest_sha256", String(64)),
    Column("sha256", String(64)),
    Column("business_date", Date),
    Column("seq", Integer),
    Column("run_date", Date, nullable=False),
    Column("status", String(16), nullable=False),
    Column("rows_declared", Integer),
    Column("rows_read", Integer, nullable=False, default=0),
    Column("rows_loaded", Integer, nullable=False, default=0),
    Column("rows_ignored", Integer, nullable=False, default=0),
    Column("rows_rejected", Integer, nullable=False, default=0),
    Column("bytes", BigInteger),
    Column("archive_path", Text),
    Column("taken_at", DateTime(timezone=True), nullable=False),
    Column("duplicate_of", Integer),
    Index("ix_intake_files_name", "agency", "name", "manifest_sha256"),
    Index("ix_intake_files_sha", "sha256"),
)

rejections = Table(
    "rejections",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("file_id", Integer, nullable=False, index=True),
    Column("agency", String(16), nullable=False),
    Column("file", String(255), nullable=False),
    Column("line", Integer),
    Column("column", String(64)),
    Column("value", Text),
    Column("error", Text, nullable=False),
)

agency_intakes = Table(
    "agency_intakes",
    metadata,
    Column("run_date", Date, nullable=False),
    Column("agency", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("detail", Text),
    Column("waiting", Text),
    Column("attempted_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("run_date", "agency"),
)

# One row per drop (its data file; the manifest goes with it), registered when the drop
# is written and stamped once both files are in the agency's inbox; a null
# ``delivered_at`` is retried by the next publish, oldest first.
deliveries = Table(
    "deliveries",
    metadata,
    Column("agency", String(16), nullable=False),
    Column("name", String(255), nullable=False),
    Column("run_date", Date, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
    PrimaryKeyConstraint("agency", "name"),
    Index("ix_deliveries_pending", "agency", "delivered_at", "run_date"),
)

#: The share of a findings page PostgreSQL fills with new rows (percent): the rest is
#: left for the next night's versions of them.
FINDINGS_FILLFACTOR = 50

findings = Table(
    "findings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("identity", String(64), nullable=False),
    Column("rule_id", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("vin", String(32)),
    Column("agency", String(16), nullable=False),
    Column("record_key", String(255), nullable=False),
    Column("related", Text, nullable=False, default=""),
    Column("detail", Text, nullable=False),
    Column("first_seen", Date, nullable=False),
    Column("last_seen", Date, nullable=False),
    Column("resolved_on", Date),
    UniqueConstraint("identity", name="uq_findings_identity"),
    Index("ix_findings_rule", "rule_id"),
    Index("ix_findings_vin", "vin"),
    # Every night marks the open findings seen: on PostgreSQL a new version of each row,
    # which with room left in its page is written there (a HOT update, last_seen being
    # in no index) and the night before's reclaimed as the page is next read, instead
    # of the table growing by every open finding each night.
    postgresql_with={"fillfactor": FINDINGS_FILLFACTOR},
)

# Per run date, rule and reason: how many records the rule could not evaluate on that
# run (e.g. SLA-001 without the working-day calendar of a year), for the run report.
not_evaluated = Table(
    "not_evaluated",
    metadata,
    Column("run_date", Date, nullable=False),
    Column("rule_id", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("records", Integer, nullable=False),
    PrimaryKeyConstraint("run_date", "rule_id", "reason"),
)

# A record's verification row (ICD §4) kept as changes: one row from the business date a
# run first gave it (``valid_from``) until the business date of the run that changed it
# or no longer gave it (``valid_to``, null while it holds). A night that changes nothing
# adds nothing. ``row_hash`` is the hash of ``row_json``, against which a night's rows are
# compared without reading the stored JSON back.
verdict_history = Table(
    "verdict_history",
    metadata,
    Column("report", String(32), nullable=False),
    Column("record_key", String(255), nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_to", Date),
    Column("verdict", String(32), nullable=False),
    Column("row_hash", BigInteger, nullable=False),
    Column("row_json", Text, nullable=False),
    PrimaryKeyConstraint("report", "record_key", "valid_from"),
    Index("ix_verdict_history_from", "report", "valid_from"),
)

# The change journal: per file loaded, the keys (CHANGE_KEYS) of the records it loaded
# or superseded, old and new values alike, for the next reconciliation to re-evaluate
# what they can reach.
record_changes = Table(
    "record_changes",
    metadata,
    Column("file_id", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("value", String(64)),
    Index("ix_record_changes_file", "file_id"),
)

# Per business date reconciled: the files it took into account (every file up to
# ``files_through``) and the fingerprint of the rule parameters and working-day calendar
# it ran with; the next reconciliation re-evaluates only what changed since, when the
# fingerprint is the same.
reconcile_bases = Table(
    "reconcile_bases",
    metadata,
    Column("run_date", Date, primary_key=True),
    Column("files_through", Integer, nullable=False),
    Column("fingerprint", String(64), nullable=False),
)

# What the reconciliation under way re-evaluates (vehiclehub.rules.reach): the VINs and
# refund lines' declaration references a night's change reaches. Written before the
# rules run, on their own connections too, and emptied when the run ends.
reconcile_scope = Table(
    "reconcile_scope",
    metadata,
    Column("kind", String(16), nullable=False),
    Column("value", String(64), nullable=False),
    PrimaryKeyConstraint("kind", "value"),
)

# The records a rule could not evaluate on the latest reconciliation (RULES.md, working
# days), one row each: an incremental run re-evaluates some of them and keeps the rest.
records_not_evaluated = Table(
    "records_not_evaluated",
    metadata,
    Column("rule_id", String(16), nullable=False),
    Column("agency", String(16), nullable=False),
    Column("record_key", String(255), nullable=False),
    Column("vin", String(32)),
    Column("reason", Text, nullable=False),
    Index("ix_records_not_evaluated_vin", "vin"),
)

# The business dates reconciled, one row each: the runs whose verdicts the history holds,
# and so the dates of the previous drops (ICD §4).
reconcile_runs = Table(
    "reconcile_runs",
    metadata,
    Column("run_date", Date, primary_key=True),
    Column("finished_at", DateTime(timezone=True), nullable=False),
)

#: The table of verdicts copied per night by earlier releases; an upgrade turns its
#: snapshots into :data:`verdict_history` and drops it.
VERDICT_SNAPSHOTS = "verdicts"

# Data-quality gates (vehiclehub.quality): one row per file validated by its feed's
# expectation suite, with GX's validation result (computed on pseudonymised, typed
# columns only, so it holds no personal data) for the run's Data Docs, and one row
# per expectation of that file.
quality_validations = Table(
    "quality_validations",
    metadata,
    Column("file_id", Integer, primary_key=True),
    Column("suite", String(64), nullable=False),
    Column("critical_failed", Integer, nullable=False),
    Column("warnings_failed", Integer, nullable=False),
    Column("seconds", Float, nullable=False),
    Column("result_json", Text, nullable=False),
)

expectation_results = Table(
    "expectation_results",
    metadata,
    Column("file_id", Integer, nullable=False),
    Column("expectation", String(64), nullable=False),
    Column("type", String(96), nullable=False),
    Column("column", String(128)),
    Column("severity", String(16), nullable=False),
    Column("outcome", String(16), nullable=False),  # passed | failed | skipped | error
    Column("observed", Text),
    Column("unexpected_count", BigInteger),
    Column("element_count", BigInteger),
    Column("description", Text),
    PrimaryKeyConstraint("file_id", "expectation"),
)

# The exchange log (ICD §6): one entry per file taken, drop written and delivery, each
# holding the hash of the one before. Append-only: rows are inserted and never changed
# (see vehiclehub.store.exchange_log); ``at`` keeps the exact text that was hashed.
exchange_log = Table(
    "exchange_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", String(32), nullable=False),
    Column("agency", String(16), nullable=False),
    Column("direction", String(3), nullable=False),
    Column("file", String(255), nullable=False),
    Column("sha256", String(64)),
    Column("rows", BigInteger),
    Column("outcome", String(16), nullable=False),
    Column("prev", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_exchange_log_agency", "agency", "seq"),
)

# Which files came signed (ICD §6): one row per file taken from an agency whose manifest
# could be read, with ``state`` verified (under ``key_id``), unsigned (no key configured
# for the agency) or rejected (the file was rejected for its signature).
file_signatures = Table(
    "file_signatures",
    metadata,
    Column("file_id", Integer, primary_key=True, autoincrement=False),
    Column("agency", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("key_id", String(16)),
)

# The store's lease (vehiclehub.store.lease): one row while a run holds the store.
run_leases = Table(
    "run_leases",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("holder", String(255), nullable=False),
    Column("acquired_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

# One row per run of the nightly cycle (``vhub run``): a run that failed part-way is
# recorded as failed, with the stage it failed at; one killed is recorded as failed by
# the next run that takes the store over.
runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_date", Date, nullable=False),
    Column("holder", String(255), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Column("status", String(16), nullable=False),  # running | completed | failed
    Column("stage", String(16)),  # where a failed run failed
    Column("error", Text),
)
