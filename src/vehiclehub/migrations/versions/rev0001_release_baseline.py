"""Baseline: the store as the release before migrations left it.

The schema of release cf9d4bc (the last that copied every verdict per night, see
tests/fixtures/release_store), written out as it was: fourteen tables, every text of a
feed 128 characters, the covering VIN indexes. A store that release (or one before it)
made is stamped here and upgraded from here; a new store runs it like the others.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _text(name: str) -> sa.Column[Any]:
    """A text field of a feed: 128 characters, whatever the field."""
    return sa.Column(name, sa.String(128), nullable=True)


def _date(name: str) -> sa.Column[Any]:
    return sa.Column(name, sa.Date(), nullable=True)


def _vin(name: str) -> list[sa.Column[Any]]:
    """A VIN field: the normalised VIN, the raw value, the substitution and check flags."""
    return [
        _text(name),
        sa.Column(f"{name}_raw", sa.String(64), nullable=True),
        sa.Column(f"{name}_substituted", sa.Boolean(), nullable=False),
        sa.Column(f"{name}_check_ok", sa.Boolean(), nullable=False),
    ]


def _record() -> list[sa.Column[Any]]:
    """What every feed table adds to its fields: the record's version and status, its
    content hash, the file and line it came from."""
    return [
        sa.Column("record_version", sa.Integer(), nullable=False),
        sa.Column("record_status", sa.String(16), nullable=False),
        sa.Column("content_hash", sa.BigInteger(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "agency_intakes",
        sa.Column("run_date", sa.Date(), nullable=False),
        sa.Column("agency", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("waiting", sa.Text(), nullable=True),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("run_date", "agency"),
    )
    op.create_table(
        "commerce_enterprises",
        _text("uscc"),
        _text("name"),
        _text("filing_no"),
        _text("region_code"),
        _date("valid_from"),
        _date("valid_to"),
        _text("status"),
        *_record(),
        sa.PrimaryKeyConstraint("uscc", "filing_no", name="pk_commerce_enterprises"),
    )
    op.create_table(
        "commerce_licences",
        _text("licence_no"),
        _text("uscc"),
        *_vin("vin"),
        _text("brand"),
        _text("model"),
        _text("hs_code"),
        _text("destination_country"),
        _text("port_code"),
        _date("registration_date"),
        _date("pending_export_date"),
        _date("applied_at"),
        _date("issued_at"),
        _date("valid_to"),
        *_record(),
        sa.PrimaryKeyConstraint("licence_no", "vin", name="pk_commerce_licences"),
    )
    op.create_index(
        "ix_commerce_licences_vin_lookup",
        "commerce_licences",
        ["vin", "record_status", "uscc"],
        unique=False,
    )
    op.create_table(
        "commerce_tradein_claims",
        _text("claim_no"),
        _text("claim_type"),
        _text("applicant_id"),
        *_vin("old_vin"),
        *_vin("new_vin"),
        sa.Column("amount_cny", sa.Numeric(18, 2), nullable=True),
        _date("applied_at"),
        *_record(),
        sa.PrimaryKeyConstraint("claim_no", name="pk_commerce_tradein_claims"),
    )
    op.create_index(
        "ix_commerce_tradein_claims_new_vin", "commerce_tradein_claims", ["new_vin"], unique=False
    )
    op.create_index(
        "ix_commerce_tradein_claims_old_vin", "commerce_tradein_claims", ["old_vin"], unique=False
    )
    op.create_table(
        "customs_declarations",
        _text("decl_no"),
        sa.Column("item_no", sa.Integer(), nullable=True),
        *_vin("vin"),
        _text("uscc"),
        _text("licence_no"),
        _text("hs_code"),
        _text("goods_name"),
        _date("declared_at"),
        _date("exported_at"),
        _text("status"),
        _text("port_code"),
        _text("destination_country"),
        sa.Column("fob_usd", sa.Numeric(18, 2), nullable=True),
        *_record(),
        sa.PrimaryKeyConstraint("decl_no", "item_no", name="pk_customs_declarations"),
    )
    op.create_index(
        "ix_customs_declarations_licence", "customs_declarations", ["licence_no"], unique=False
    )
    op.create_index(
        "ix_customs_declarations_vin_lookup",
        "customs_declarations",
        ["vin", "record_status", "status", "exported_at", "decl_no", "item_no"],
        unique=False,
    )
    op.create_table(
        "deliveries",
        sa.Column("agency", sa.String(16), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("run_date", sa.Date(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("agency", "name"),
    )
    op.create_index(
        "ix_deliveries_pending", "deliveries", ["agency", "delivered_at", "run_date"], unique=False
    )
    op.create_table(
        "expectation_results",
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("expectation", sa.String(64), nullable=False),
        sa.Column("type", sa.String(96), nullable=False),
        _text("column"),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("observed", sa.Text(), nullable=True),
        sa.Column("unexpected_count", sa.BigInteger(), nullable=True),
        sa.Column("element_count", sa.BigInteger(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("file_id", "expectation"),
    )
    op.create_table(
        "findings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identity", sa.String(64), nullable=False),
        sa.Column("rule_id", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("vin", sa.String(32), nullable=True),
        sa.Column("agency", sa.String(16), nullable=False),
        sa.Column("record_key", sa.String(255), nullable=False),
        sa.Column("related", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("first_seen", sa.Date(), nullable=False),
        sa.Column("last_seen", sa.Date(), nullable=False),
        _date("resolved_on"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("identity", name="uq_findings_identity"),
    )
    op.create_index("ix_findings_rule", "findings", ["rule_id"], unique=False)
    op.create_table(
        "intake_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency", sa.String(16), nullable=False),
        sa.Column("feed", sa.String(32), nullable=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        _date("business_date"),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.Column("run_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("rows_declared", sa.Integer(), nullable=True),
        sa.Column("rows_read", sa.Integer(), nullable=False),
        sa.Column("rows_loaded", sa.Integer(), nullable=False),
        sa.Column("rows_ignored", sa.Integer(), nullable=False),
        sa.Column("rows_rejected", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=True),
        sa.Column("archive_path", sa.Text(), nullable=True),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duplicate_of", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_intake_files_name", "intake_files", ["agency", "name", "manifest_sha256"], unique=False
    )
    op.create_index("ix_intake_files_sha", "intake_files", ["sha256"], unique=False)
    op.create_table(
        "police_events",
        _text("event_id"),
        *_vin("vin"),
        _text("plate_no"),
        _text("event_type"),
        _date("event_date"),
        _text("owner_id"),
        _text("dereg_reason"),
        _text("decl_no"),
        _date("registration_date"),
        _text("brand"),
        _text("model"),
        *_record(),
        sa.PrimaryKeyConstraint("event_id", name="pk_police_events"),
    )
    op.create_index(
        "ix_police_events_vin_lookup",
        "police_events",
        ["vin", "event_type", "record_status", "dereg_reason", "event_date", "event_id"],
        unique=False,
    )
    op.create_table(
        "quality_validations",
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("suite", sa.String(64), nullable=False),
        sa.Column("critical_failed", sa.Integer(), nullable=False),
        sa.Column("warnings_failed", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("result_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("file_id"),
    )
    op.create_table(
        "rejections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("agency", sa.String(16), nullable=False),
        sa.Column("file", sa.String(255), nullable=False),
        sa.Column("line", sa.Integer(), nullable=True),
        sa.Column("column", sa.String(64), nullable=True),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_rejections_file_id", "rejections", ["file_id"], unique=False)
    op.create_table(
        "tax_refunds",
        _text("refund_no"),
        _text("uscc"),
        _text("enterprise_class"),
        _text("decl_ref"),
        sa.Column("amount_cny", sa.Numeric(18, 2), nullable=True),
        _date("applied_at"),
        _date("approved_at"),
        _text("status"),
        *_record(),
        sa.PrimaryKeyConstraint("refund_no", "decl_ref", name="pk_tax_refunds"),
    )
    op.create_index("ix_tax_refunds_decl_ref", "tax_refunds", ["decl_ref"], unique=False)
    op.create_table(
        "verdicts",
        sa.Column("run_date", sa.Date(), nullable=False),
        sa.Column("report", sa.String(32), nullable=False),
        sa.Column("record_key", sa.String(255), nullable=False),
        sa.Column("verdict", sa.String(32), nullable=False),
        sa.Column("row_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("run_date", "report", "record_key"),
    )
    # ### end Alembic commands ###
