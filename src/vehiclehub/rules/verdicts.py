"""The agencies' verdicts: one row per export deregistration (police) and per refund
line (tax), from the rules' findings and what each report reads of the store."""

from __future__ import annotations

from datetime import date

import pandas as pd
from sqlalchemy import Connection, case, func, select

from vehiclehub.icd.codes import POLICE_VERDICT_RULES, TAX_VERDICT_RULES, PoliceVerdict, TaxVerdict
from vehiclehub.icd.drops import EXPORT_VERIFICATION_COLUMNS, REFUND_VERIFICATION_COLUMNS
from vehiclehub.rules import RuleContext
from vehiclehub.rules.base import same_item
from vehiclehub.rules.runner import Evaluation, Job
from vehiclehub.store.schema import verdict_history
from vehiclehub.store.verdicts import verdict_holds_on


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


#: What each verdict report reads of the store; done alongside the rules.
VERDICT_READS: dict[str, Job] = {
    "export_verification": deregistration_items,
    "refund_verification": refund_line_vins,
}
#: The rules whose own findings frames the verdicts read (``Evaluation.raw``): EXP-003's
#: exports overdue for deregistration are the police report's ``overdue`` rows.
VERDICT_RULE_FRAMES = ("EXP-003",)


def verdicts_holding(conn: Connection, report: str, day: date) -> dict[str, int]:
    """How many records of the report hold each verdict on ``day``."""
    query = (
        select(verdict_history.c.verdict, func.count())
        .where(verdict_history.c.report == report, verdict_holds_on(day))
        .group_by(verdict_history.c.verdict)
        .order_by(verdict_history.c.verdict)
    )
    return {str(verdict): int(n) for verdict, n in conn.execute(query)}
