"""What a night's change can reach, by key: the reaches the rules share.

A night loads, supersedes and cancels records; the change journal
(``record_changes``) keeps the keys of each, old values and new. A rule's findings can
move only where one of its reaches leads from those keys. The reaches by date alone
(a record carried past a window by the new business date) are declared beside their
rules.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import Select, or_, select

from vehiclehub.rules.base import Night, Reach
from vehiclehub.store.schema import feed_table

#: Declarations whose citing lines one query looks up (its ranges OR-ed).
DECLARATIONS_PER_QUERY = 500


def _same_vin(night: Night) -> Select[Any]:
    return night.changed("vin")


def _exporters_licences(night: Night) -> Select[Any]:
    licences = feed_table("commerce", "licences")
    return select(licences.c.vin).where(licences.c.uscc.in_(night.changed("exporter")))


def _applicants_claims(night: Night) -> Select[Any]:
    claims = feed_table("commerce", "tradein_claims")
    return select(claims.c.old_vin).where(claims.c.applicant_id.in_(night.changed("applicant")))


def _same_declaration_item(night: Night) -> pd.Series:
    """The declaration references changed tonight and those citing a changed customs
    item's declaration. A reference is the declaration number and a three-digit item
    number (ICD §3: 21 digits), so the lines citing any item of a declaration lie in one
    range of the refunds' index: one range looked up per declaration (a join of the
    ranges lets SQLite scan every refund line once per changed declaration)."""
    conn = night.ctx.conn
    refunds = feed_table("tax", "refunds")
    found = set(conn.execute(night.changed("decl_ref")).scalars())
    declarations = sorted(set(conn.execute(night.changed("declaration")).scalars()))
    for start in range(0, len(declarations), DECLARATIONS_PER_QUERY):
        chunk = declarations[start : start + DECLARATIONS_PER_QUERY]
        ranges = (refunds.c.decl_ref.between(f"{d}000", f"{d}999") for d in chunk)
        found.update(conn.execute(select(refunds.c.decl_ref).where(or_(*ranges))).scalars())
    return pd.Series(sorted(found), dtype="str")


#: A changed record reaches every record of its VINs (a claim's old and new one), under
#: its old VIN as well as its new one: all that is matched by VIN.
BY_VIN = Reach("by VIN", "vin", _same_vin)
#: A changed export enterprise filing reaches the licences of its exporter (``uscc``).
BY_EXPORTER = Reach("by exporter", "vin", _exporters_licences)
#: A changed trade-in claim reaches the other claims of its applicant, by their old VIN.
BY_APPLICANT = Reach("by applicant", "vin", _applicants_claims)
#: A changed refund line reaches the lines citing the same declaration reference; a
#: changed customs item, the lines citing it (those without a VIN too).
BY_DECLARATION_REF = Reach("by declaration reference", "decl_ref", _same_declaration_item)
