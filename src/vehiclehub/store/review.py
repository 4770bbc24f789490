"""The review desk's tables, in the store's metadata beside the nightly cycle's.

``case_states`` holds each decided or assigned case's current review state, for the
queue's indexed queries; ``case_events`` is every case's history (decisions, re-openings,
assignments, comments, lapses), never changed; ``review_runs`` the moment from which each
run counts decisions; ``audit_log`` who did what on the desk.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from vehiclehub.store.schema import metadata

review_users = Table(
    "review_users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    # The agencies the user is scoped to, sorted and joined by ``;``; empty: all.
    Column("agencies", String(64), nullable=False, default=""),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

case_states = Table(
    "case_states",
    metadata,
    Column("finding_id", Integer, primary_key=True),
    Column("review", String(16), nullable=False),
    Column("reason", String(32)),
    Column("note", Text),
    Column("assignee", String(64)),
    Column("decided_by", String(64)),
    Column("decided_at", DateTime(timezone=True)),
    # The versions of the records the decision was made on (see review.evidence).
    Column("evidence", Text),
    Index("ix_case_states_review", "review", "finding_id"),
    Index("ix_case_states_assignee", "assignee", "finding_id"),
)

case_events = Table(
    "case_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("finding_id", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(64), nullable=False),
    # decision | reopen | lapse | assign | comment
    Column("kind", String(16), nullable=False),
    Column("review", String(16)),
    Column("reason", String(32)),
    Column("note", Text),
    Column("assignee", String(64)),
    Column("evidence", Text),
    Index("ix_case_events_finding", "finding_id", "id"),
)

review_runs = Table(
    "review_runs",
    metadata,
    Column("run_date", Date, primary_key=True),
    Column("counts_from", DateTime(timezone=True), nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(64), nullable=False),
    # login | login_failed | locked_out | logout | decision | reopen | assign | comment
    # | export
    Column("action", String(16), nullable=False),
    Column("target", String(255)),
    Column("detail", Text),
    Index("ix_audit_log_at", "at"),
)
