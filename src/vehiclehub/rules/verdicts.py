"""The agencies' verdicts: one row per export deregistration (police) and per refund
line (tax), from the rules' findings and what each report reads of the store."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Select, case, func, select

from vehiclehub.icd.codes import TAX_VERDICT_RULES, PoliceVerdict, TaxVerdict
from vehiclehub.icd.drops import EXPORT_VERIFICATION_COLUMNS, REFUND_VERIFICATION_COLUMNS
from vehiclehub.rules import RuleContext
from vehiclehub.rules.base import read_frames, same_item
from vehiclehub.store.schema import verdict_history
from vehiclehub.store.verdicts import verdict_holds_on

#: Rows of a verification report read from the store at a time.
READ_ROWS = 100_000


def deregistration_items(ctx: RuleContext) -> Select[Any]:
    """Each export deregistration with each cleared item of its VIN (or none): whether
    the item left in time (``qualifies``) and whether the deregistration names it; by VIN
    and event, so that an event's rows come one after the other."""
    dereg, cleared = ctx.export_deregistrations(), ctx.cleared_items()
    return (
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
        .order_by(dereg.c.vin, dereg.c.event_id)
    )


def whole_events(frames: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Frames of :func:`deregistration_items`' rows, each event's rows in one frame: the
    last event of a frame, which may go on in the next, is carried over to it."""
    carried = None
    for frame in frames:
        if carried is not None:
            frame = pd.concat([carried, frame], ignore_index=True)
        events = frame["event_id"]
        last = events.eq(str(events.iat[-1]))
        carried = frame[last]
        if not last.all():
            yield frame[~last]
    if carried is not None:
        yield carried


def fired_rules(found: pd.DataFrame, agency: str, rule_ids: Iterable[str]) -> pd.Series:
    """Per record of the agency with findings of the given rules: their ids, sorted,
    joined by ``;``."""
    fired = found[(found["agency"] == agency) & found["rule_id"].isin(list(rule_ids))]
    return rules_per_record(fired)


def rules_per_record(fired: pd.DataFrame) -> pd.Series:
    """Per ``record_key`` of findings (``record_key`` and ``rule_id``): their rule ids,
    sorted, joined by ``;`` (one per finding)."""
    return fired.sort_values("rule_id").groupby("record_key")["rule_id"].agg(";".join)


def police_rows(pairs: pd.DataFrame, fired: pd.Series) -> pd.DataFrame:
    """The verdict of each export deregistration of ``pairs`` (:func:`deregistration_items`,
    every row of each of its events), with the rules that fired on it (``fired``,
    :func:`fired_rules`).

    The item shown for a deregistration is the one its ``decl_no`` names if that one
    qualifies, else the latest that qualifies (RULES.md, networked verification). With
    none qualifying the deregistration is ``before_export``, shown with the item that
    comes first in the same order; with no cleared item at all, ``no_export``.
    """
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
    rows["record_key"] = rows["event_id"]
    rows["rule_ids"] = rows["record_key"].map(fired).fillna("").astype("str")
    return rows[["record_key", *EXPORT_VERIFICATION_COLUMNS]].reset_index(drop=True)


def overdue_rows(overdue: pd.DataFrame) -> pd.DataFrame:
    """One ``overdue`` row per export overdue for deregistration (EXP-003's own frame)."""
    return pd.DataFrame(
        {
            "record_key": "item:" + overdue["record_key"],
            "event_id": None,
            "vin": overdue["vin"],
            "verdict": PoliceVerdict.OVERDUE.value,
            "decl_no": overdue["record_key"].str.split("/").str[0],
            "exported_at": overdue["exported_at"],
            "rule_ids": "EXP-003",
        }
    )[["record_key", *EXPORT_VERIFICATION_COLUMNS]]


def police_verdicts(
    ctx: RuleContext, fired: pd.Series, overdue: pd.DataFrame
) -> Iterator[pd.DataFrame]:
    """One row per export deregistration, and one per export overdue for deregistration,
    a chunk of deregistrations at a time (read :data:`READ_ROWS` rows at a time), the
    overdue ones last. ``fired``: the police verdict rules fired per event
    (:func:`fired_rules`); ``overdue``: EXP-003's own frame."""
    pairs = read_frames(ctx.conn, deregistration_items(ctx), READ_ROWS)
    for events in whole_events(pairs):
        yield police_rows(events, fired)
    yield overdue_rows(overdue)


def refund_line_vins(ctx: RuleContext) -> Select[Any]:
    """Each refund line outside status rejected, with its customs item's VIN (or none)."""
    refund = ctx.refund_lines()
    items = ctx.latest("customs", "declarations", "item")
    return (
        select(refund.c.refund_no, refund.c.decl_ref, items.c.vin)
        .outerjoin(items, same_item(refund, items))
        .where(ctx.reached(refund.c.decl_ref, "decl_ref"))
    )


def tax_rows(lines: pd.DataFrame, fired: pd.Series) -> pd.DataFrame:
    """The verdict of each refund line of ``lines`` (:func:`refund_line_vins`): the first
    that applies of the rules that fired on it (``fired``, :func:`fired_rules`)."""
    # The record key (ICD §4) joined here rather than in SQL: one string less to fetch a line.
    rows = lines.assign(record_key=lines["refund_no"] + "/" + lines["decl_ref"])
    rows["rule_ids"] = rows["record_key"].map(fired).fillna("").astype("str")
    # The first verdict that applies, worked out once per distinct rule_ids value.
    verdict_of = {
        ids: next(
            (v.value for r, v in TAX_VERDICT_RULES.items() if r in ids.split(";")),
            TaxVerdict.VERIFIED.value,
        )
        for ids in rows["rule_ids"].unique()
    }
    rows["verdict"] = rows["rule_ids"].map(verdict_of).astype("str")
    return rows[["record_key", *REFUND_VERIFICATION_COLUMNS]]


def tax_verdicts(ctx: RuleContext, fired: pd.Series) -> Iterator[pd.DataFrame]:
    """One row per refund line outside status rejected: the first verdict that applies;
    a chunk of :data:`READ_ROWS` lines at a time. ``fired``: the tax verdict rules fired
    per refund line (:func:`fired_rules`)."""
    for lines in read_frames(ctx.conn, refund_line_vins(ctx), READ_ROWS):
        yield tax_rows(lines, fired)


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
