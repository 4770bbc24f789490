"""Running the rulebook: findings with a lasting identity, and the agencies' verdicts."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import pandas as pd
from sqlalchemy import (
    Column,
    Connection,
    Date,
    Engine,
    MetaData,
    String,
    Table,
    Text,
    delete,
    exists,
    insert,
    literal,
    select,
    update,
)

from vehiclehub.config import RuleParameters
from vehiclehub.rules import RULES, RuleContext
from vehiclehub.rules.base import joined, same_item
from vehiclehub.store.load import bulk_insert
from vehiclehub.store.schema import findings, verdicts

FINDING_FIELDS = ["rule_id", "severity", "vin", "agency", "record_key", "related", "detail"]
POLICE_COLUMNS = ["event_id", "vin", "verdict", "decl_no", "exported_at", "rule_ids"]
TAX_COLUMNS = ["refund_no", "decl_ref", "vin", "verdict", "rule_ids"]
TAX_VERDICTS = {
    "TAX-001": "no_export",
    "TAX-002": "cancelled",
    "TAX-003": "duplicate",
    "TAX-004": "party_mismatch",
}


@dataclass
class Evaluation:
    findings: pd.DataFrame  # FINDING_FIELDS, one row per finding
    raw: dict[str, pd.DataFrame]  # each rule's own frame, extra columns included


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


def evaluate(
    conn: Connection, day: date, params: RuleParameters, only: Iterable[str] | None = None
) -> Evaluation:
    """Run the rules (all, or those named) over everything stored."""
    ctx = RuleContext(conn, day, params)
    raw = {rule_id: RULES[rule_id].find(ctx) for rule_id in sorted(only or RULES)}
    gathered = [_gather(rule_id, frame) for rule_id, frame in raw.items()]
    frame = pd.concat([g for g in gathered if not g.empty] or [gathered[0]], ignore_index=True)
    frame["vin"] = frame["vin"].astype(object).where(frame["vin"].notna(), None)
    return Evaluation(frame.sort_values(["rule_id", "record_key"], ignore_index=True), raw)


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


def record_findings(conn: Connection, day: date, current: pd.DataFrame) -> None:
    """Keep the findings table in step: new ones open, held ones seen, the rest resolved."""
    staging = Table(
        "stage_findings",
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
    staging.create(conn)
    bulk_insert(conn, staging, current.assign(identity=finding_identity(current)))
    held = exists().where(staging.c.identity == findings.c.identity)
    conn.execute(
        update(findings)
        .where(findings.c.resolved_on.is_(None), findings.c.first_seen <= day, ~held)
        .values(resolved_on=day)
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
    conn.execute(
        insert(findings).from_select(
            [*new_columns, "first_seen", "last_seen"],
            select(
                *(staging.c[c] for c in new_columns),
                literal(day, Date),
                literal(day, Date),
            ).where(~exists().where(findings.c.identity == staging.c.identity)),
        )
    )
    staging.drop(conn)


def police_verdicts(ctx: RuleContext, evaluation: Evaluation) -> pd.DataFrame:
    """One row per export deregistration, and one per export overdue for deregistration.

    The item shown for a deregistration is the one its ``decl_no`` names if that one
    qualifies, else the latest that qualifies (RULES.md, networked verification).
    """
    dereg, cleared = ctx.export_deregistrations(), ctx.cleared_items()
    events = ctx.frame(
        select(dereg.c.event_id, dereg.c.vin, dereg.c.event_date, dereg.c.decl_no.label("cited"))
    )
    pairs = ctx.frame(
        select(
            dereg.c.event_id,
            cleared.c.decl_no,
            cleared.c.item_no,
            cleared.c.exported_at,
        ).join(cleared, cleared.c.vin == dereg.c.vin)
    )
    pairs = pairs.merge(events[["event_id", "event_date", "cited"]], on="event_id")
    pairs["qualifies"] = pairs["exported_at"] <= pairs["event_date"]
    pairs["named"] = pairs["decl_no"] == pairs["cited"]
    shown = pairs.sort_values(
        ["event_id", "qualifies", "named", "exported_at", "decl_no", "item_no"],
        ascending=[True, False, False, False, False, False],
    ).drop_duplicates("event_id")
    rows = events.merge(
        shown[["event_id", "decl_no", "exported_at", "qualifies"]], "left", on="event_id"
    )
    rows["verdict"] = "no_export"
    rows.loc[rows["qualifies"].eq(True), "verdict"] = "verified"
    rows.loc[rows["qualifies"].eq(False), "verdict"] = "before_export"
    rows.loc[rows["verdict"] == "no_export", ["decl_no", "exported_at"]] = None
    overdue = evaluation.raw["EXP-003"]
    overdue_rows = pd.DataFrame(
        {
            "event_id": None,
            "vin": overdue["vin"],
            "verdict": "overdue",
            "decl_no": overdue["record_key"].str.split("/").str[0],
            "exported_at": overdue["exported_at"],
            "record_key": "item:" + overdue["record_key"],
        }
    )
    rows["record_key"] = rows["event_id"]
    both = pd.concat([rows, overdue_rows], ignore_index=True)
    both["rule_ids"] = _rule_ids(evaluation.findings, "police", ("EXP-001", "EXP-002"), both)
    both.loc[both["verdict"] == "overdue", "rule_ids"] = "EXP-003"
    return both[["record_key", *POLICE_COLUMNS]].sort_values("record_key", ignore_index=True)


def tax_verdicts(ctx: RuleContext, evaluation: Evaluation) -> pd.DataFrame:
    """One row per refund line outside status rejected: the first verdict that applies."""
    refund = ctx.refund_lines()
    items = ctx.latest("customs", "declarations", "item")
    rows = ctx.frame(
        select(
            joined(refund.c.refund_no, refund.c.decl_ref).label("record_key"),
            refund.c.refund_no,
            refund.c.decl_ref,
            items.c.vin,
        ).outerjoin(items, same_item(refund, items))
    )
    rows["rule_ids"] = _rule_ids(evaluation.findings, "tax", tuple(TAX_VERDICTS), rows)
    rows["verdict"] = "verified"
    for rule_id in reversed(list(TAX_VERDICTS)):
        fired = rows["rule_ids"].str.contains(rule_id, regex=False)
        rows.loc[fired, "verdict"] = TAX_VERDICTS[rule_id]
    return rows[["record_key", *TAX_COLUMNS]].sort_values("record_key", ignore_index=True)


def _rule_ids(
    found: pd.DataFrame, agency: str, rule_ids: tuple[str, ...], rows: pd.DataFrame
) -> pd.Series:
    """The ids of the given rules that fired on each row's record, sorted, joined by ``;``."""
    fired = found[(found["agency"] == agency) & found["rule_id"].isin(rule_ids)]
    joined_ids = fired.sort_values("rule_id").groupby("record_key")["rule_id"].agg(";".join)
    return rows["record_key"].map(joined_ids).fillna("").astype("str")


def store_verdicts(conn: Connection, day: date, report: str, rows: pd.DataFrame) -> None:
    """Replace the day's verdict snapshot for a report."""
    conn.execute(delete(verdicts).where(verdicts.c.run_date == day, verdicts.c.report == report))
    bulk_insert(
        conn,
        verdicts,
        rows.assign(run_date=day.isoformat(), report=report)[
            ["run_date", "report", "record_key", "verdict", "row_json"]
        ],
    )


def _json_lines(frame: pd.DataFrame) -> list[str]:
    """Each row as a JSON object (an empty frame has no rows, not one empty row)."""
    if frame.empty:
        return []
    return frame.to_json(orient="records", lines=True, force_ascii=False).splitlines()


def _counts(values: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in values.value_counts().sort_index().items()}


@dataclass(frozen=True)
class ReconcileResult:
    findings: int
    per_rule: dict[str, int]
    verdicts: dict[str, dict[str, int]]


def reconcile(engine: Engine, day: date, params: RuleParameters) -> ReconcileResult:
    """Evaluate every rule over the store, record findings and the day's verdicts."""
    with engine.begin() as conn:
        evaluation = evaluate(conn, day, params)
        record_findings(conn, day, evaluation.findings)
        ctx = RuleContext(conn, day, params)
        counts: dict[str, dict[str, int]] = {}
        for report, rows, columns in (
            ("export_verification", police_verdicts(ctx, evaluation), POLICE_COLUMNS),
            ("refund_verification", tax_verdicts(ctx, evaluation), TAX_COLUMNS),
        ):
            rows["row_json"] = _json_lines(rows[columns])
            store_verdicts(conn, day, report, rows)
            counts[report] = _counts(rows["verdict"])
    per_rule = _counts(evaluation.findings["rule_id"])
    return ReconcileResult(len(evaluation.findings), per_rule, counts)
