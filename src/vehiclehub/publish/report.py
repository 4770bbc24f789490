"""The operator's run report: ``work_dir/reports/<date>/index.html``, self-contained."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import Connection, Engine, Integer, func, or_, select

from vehiclehub.config import AGENCIES, Settings
from vehiclehub.publish.drops import open_findings
from vehiclehub.rules import RULES
from vehiclehub.store.schema import agency_intakes, findings, intake_files, rejections, verdicts

_ENV = Environment(
    loader=PackageLoader("vehiclehub.publish", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
SHOWN_PER_RULE = 200
SHOWN_REJECTIONS = 50


def _frame(conn: Connection, query: Any) -> pd.DataFrame:
    result = conn.execute(query)
    return pd.DataFrame(result.all(), columns=list(result.keys()))


def gather(conn: Connection, day: date) -> dict[str, Any]:
    """Everything the report shows, read back from the store."""
    statuses = _frame(
        conn, select(agency_intakes).where(agency_intakes.c.run_date == day)
    ).set_index("agency")
    files = _frame(
        conn,
        select(intake_files).where(intake_files.c.run_date == day).order_by(
            intake_files.c.agency, intake_files.c.name
        ),
    )
    file_errors = _frame(
        conn,
        select(rejections.c.file_id, rejections.c.error).where(
            rejections.c.line.is_(None),
            rejections.c.file_id.in_(files["id"].tolist() or [-1]),
        ),
    ).set_index("file_id")["error"]
    files["error"] = files["id"].map(file_errors)
    samples = _frame(
        conn,
        select(rejections)
        .where(
            rejections.c.file_id.in_(files["id"].tolist() or [-1]),
            rejections.c.line.is_not(None),
        )
        .order_by(rejections.c.file, rejections.c.line, rejections.c.column)
        .limit(SHOWN_REJECTIONS * 20),
    )
    agencies = []
    for agency in AGENCIES:
        mine = files[files["agency"] == agency]
        status = statuses["status"].get(agency, "not run") if not statuses.empty else "not run"
        waiting = statuses["waiting"].get(agency) if not statuses.empty else None
        agencies.append(
            {
                "name": agency,
                "status": status,
                "detail": statuses["detail"].get(agency) if not statuses.empty else None,
                "waiting": json.loads(waiting) if isinstance(waiting, str) else [],
                "files": mine.to_dict("records"),
                "rejection_samples": samples[samples["agency"] == agency]
                .head(SHOWN_REJECTIONS)
                .to_dict("records"),
            }
        )
    loaded_files = files[files["status"] == "loaded"]
    per_feed = (
        loaded_files.groupby(["agency", "feed"])[
            ["rows_read", "rows_loaded", "rows_ignored", "rows_rejected"]
        ]
        .sum()
        .reset_index()
        .to_dict("records")
    )
    open_now = open_findings(conn, day)
    lifecycle = _frame(
        conn,
        select(
            findings.c.rule_id,
            func.sum((findings.c.first_seen == day).cast(Integer)).label("new"),
            func.sum((findings.c.resolved_on == day).cast(Integer)).label("resolved"),
        )
        .where(or_(findings.c.first_seen == day, findings.c.resolved_on == day))
        .group_by(findings.c.rule_id),
    ).set_index("rule_id")
    rules = []
    for rule_id, rule in sorted(RULES.items()):
        mine = open_now[open_now["rule_id"] == rule_id]
        new = int(lifecycle["new"].get(rule_id, 0) or 0) if not lifecycle.empty else 0
        resolved = int(lifecycle["resolved"].get(rule_id, 0) or 0) if not lifecycle.empty else 0
        rules.append(
            {
                "id": rule_id,
                "severity": rule.severity,
                "summary": rule.summary,
                "count": len(mine),
                "vehicles": int(mine["vin"].nunique()),
                "new": new,
                "still_open": len(mine) - new,
                "resolved": resolved,
                "rows": mine.head(SHOWN_PER_RULE).to_dict("records"),
                "more": max(0, len(mine) - SHOWN_PER_RULE),
            }
        )
    verdict_counts = _frame(
        conn,
        select(verdicts.c.report, verdicts.c.verdict, func.count().label("n"))
        .where(verdicts.c.run_date == day)
        .group_by(verdicts.c.report, verdicts.c.verdict)
        .order_by(verdicts.c.report, verdicts.c.verdict),
    ).to_dict("records")
    totals = {
        "files": int(len(files)),
        "rows": int(loaded_files["rows_read"].sum()),
        "loaded": int(loaded_files["rows_loaded"].sum()),
        "ignored": int(loaded_files["rows_ignored"].sum()),
        "rejected_rows": int(loaded_files["rows_rejected"].sum()),
        "rejected_files": int((files["status"] == "rejected").sum()),
        "duplicates": int((files["status"] == "duplicate").sum()),
        "findings": int(len(open_now)),
    }
    return {
        "agencies": agencies,
        "per_feed": per_feed,
        "rules": rules,
        "verdicts": verdict_counts,
        "totals": totals,
    }


def write_report(
    engine: Engine, settings: Settings, day: date, delivered: dict[str, str]
) -> Path:
    """Render the day's report and return its path."""
    with engine.connect() as conn:
        context = gather(conn, day)
    drops_dir = settings.work_dir / "drops" / day.isoformat()
    html = _ENV.get_template("report.html").render(
        day=day.isoformat(),
        generated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        delivered=delivered,
        drops=sorted(p.name for p in drops_dir.glob("*.csv")) if drops_dir.is_dir() else [],
        drops_rel=f"../../drops/{day.isoformat()}",
        **context,
    )
    target = settings.reports_dir / day.isoformat() / "index.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(html, encoding="utf-8")
    return target
