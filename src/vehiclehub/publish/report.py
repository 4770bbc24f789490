"""The operator's daily page: ``work_dir/reports/<date>/index.html``, self-contained.

Beside it, in the same folder: ``datadocs/`` (GX Data Docs of the run's files) and
``vehiclehub_<date>.xlsx`` (one sheet per agency). The page needs nothing from the
network and runs no script: charts are inline SVG drawn here.

What it shows, per agency and feed: whether the expected files came (completeness:
received / rejected / waiting / *not received*, gaps in ``seq``, late files), files,
rows and rejections, each file's expectation results; findings per rule with new /
still open / resolved today; charts of findings per rule and rows per feed over the
last :data:`HISTORY_RUNS` runs; verdicts; and the drops. At the top: the records a rule
could not evaluate (the working-day calendar lacks a year) and the calendar years to
configure.

The page stays readable at a million vehicles: it lists the first
:data:`SHOWN_PER_RULE` findings of each rule and the first :data:`SHOWN_REJECTIONS`
rejected rows of each agency, says how many there are, and points to the drops (and
the workbook) that carry them all. Counts and samples are computed by the store.
"""

from __future__ import annotations

import html
import json
import logging
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy import Connection, Engine, and_, case, distinct, func, select, union

from vehiclehub.config import AGENCIES, Settings
from vehiclehub.exchange.base import MISCONFIGURED
from vehiclehub.publish.drops import holds_on
from vehiclehub.publish.workbook import write_workbook
from vehiclehub.quality.completeness import Completeness, feed_completeness, missing_evidence
from vehiclehub.rules import RULES
from vehiclehub.rules.engine import FINDING_FIELDS
from vehiclehub.signing import hub_signing_key, keys_by_id
from vehiclehub.store.exchange_log import log_head
from vehiclehub.store.schema import (
    agency_intakes,
    expectation_results,
    file_signatures,
    findings,
    intake_files,
    not_evaluated,
    quality_validations,
    rejections,
    verdict_history,
)
from vehiclehub.store.verdicts import verdict_holds_on
from vehiclehub.workdays import WorkingDays

log = logging.getLogger(__name__)

_ENV = Environment(
    loader=PackageLoader("vehiclehub.publish", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
SHOWN_PER_RULE = 200
SHOWN_REJECTIONS = 50
HISTORY_RUNS = 30
SEVERITY_COLOURS = {"error": "#cf222e", "warning": "#bf8700", "info": "#0969da"}
SERIES_COLOURS = ("#0969da", "#1a7f37", "#bf3989", "#bf8700", "#8250df", "#cf222e", "#57606a")


def _frame(conn: Connection, query: Any) -> pd.DataFrame:
    result = conn.execute(query)
    return pd.DataFrame(result.all(), columns=list(result.keys()))


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)[:10]


# --------------------------------------------------------------------------------------
# Inline SVG charts
# --------------------------------------------------------------------------------------


def _nice_top(value: float) -> int:
    """A round axis maximum at or above ``value`` whose quarters are round too."""
    if value <= 0:
        return 1
    magnitude = 10 ** (len(str(int(value))) - 1)
    return next(s * magnitude for s in (1, 2, 4, 5, 8, 10) if s * magnitude >= value)


def _tick(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _short(day: str) -> str:
    return day[5:]  # MM-DD


def _chart_frame(
    title: str,
    width: int,
    height: int,
    left: int,
    right: int,
    top: int,
    plot_h: int,
    y_max: int,
) -> list[str]:
    """The opening of a chart: its title and the y axis's gridlines and ticks (quarters)."""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
        f"<title>{html.escape(title)}</title>",
    ]
    for tick in range(5):
        y = top + plot_h - plot_h * tick / 4
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">'
            f"{_tick(y_max * tick / 4)}</text>"
        )
    return parts


def _date_label(dates: Sequence[str], i: int, x: float, y: int) -> str:
    """The x axis label of the ``i``-th run: every run's up to ten runs, else about eight."""
    if len(dates) <= 10 or i % max(1, len(dates) // 8) == 0 or i == len(dates) - 1:
        return (
            f'<text x="{x:.1f}" y="{y}" class="tick" text-anchor="middle">{_short(dates[i])}</text>'
        )
    return ""


def svg_stacked_bars(
    title: str,
    dates: Sequence[str],
    stacks: Mapping[str, Sequence[int]],
    colours: Mapping[str, str],
) -> Markup:
    """Bars per run, stacked by series (e.g. severities), with axis, labels and legend."""
    width, height, left, bottom, top = 720, 220, 48, 34, 26
    plot_w, plot_h = width - left - 12, height - bottom - top
    totals = [sum(s[i] for s in stacks.values()) for i in range(len(dates))]
    y_max = _nice_top(max(totals, default=0))
    step = plot_w / max(len(dates), 1)
    parts = _chart_frame(title, width, height, left, left + plot_w, top, plot_h, y_max)
    for i, day in enumerate(dates):
        x = left + i * step + step * 0.15
        base = float(top + plot_h)
        for name, values in stacks.items():
            value = values[i]
            if not value:
                continue
            h = plot_h * value / y_max
            base -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{base:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" '
                f'fill="{colours.get(name, "#57606a")}"><title>{html.escape(day)} '
                f"{html.escape(name)}: {value:,}</title></rect>"
            )
        parts.append(_date_label(dates, i, x + step * 0.35, height - bottom + 16))
    x = left
    for name in stacks:
        parts.append(_legend_entry(x, 15, colours.get(name, "#57606a"), name))
        x += 24 + 7 * len(name)
    parts.append("</svg>")
    return Markup("".join(parts))


def _legend_entry(x: float, baseline: float, colour: str, name: str) -> str:
    """A legend's colour swatch and series name, the name's text on ``baseline``."""
    return (
        f'<rect x="{x}" y="{baseline - 9}" width="10" height="10" fill="{colour}"/>'
        f'<text x="{x + 14}" y="{baseline}" class="legend">{html.escape(name)}</text>'
    )


def svg_lines(title: str, dates: Sequence[str], series: Mapping[str, Sequence[float]]) -> Markup:
    """One line per series over the runs, with axis, labels and legend."""
    width, height, left, bottom, top = 720, 240, 64, 34, 40
    plot_w, plot_h = width - left - 16, height - bottom - top
    y_max = _nice_top(max((max(v, default=0) for v in series.values()), default=0))
    step = plot_w / max(len(dates) - 1, 1)
    parts = _chart_frame(title, width, height, left, left + plot_w, top, plot_h, y_max)
    for i in range(len(dates)):
        parts.append(_date_label(dates, i, left + i * step, height - bottom + 16))
    legend_x, legend_y = left, 12
    for n, (name, values) in enumerate(series.items()):
        colour = SERIES_COLOURS[n % len(SERIES_COLOURS)]
        points = [
            (left + i * step, top + plot_h - plot_h * v / y_max) for i, v in enumerate(values)
        ]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        for (x, y), value, day in zip(points, values, dates, strict=True):
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}">'
                f"<title>{html.escape(name)} {day}: {value:,.0f}</title></circle>"
            )
        if legend_x + 20 + 7 * len(name) > width:
            legend_x, legend_y = left, legend_y + 14
        parts.append(_legend_entry(legend_x, legend_y, colour, name))
        legend_x += 30 + 7 * len(name)
    parts.append("</svg>")
    return Markup("".join(parts))


def svg_sparkline(values: Sequence[int], colour: str = "#57606a") -> Markup:
    """A tiny bar chart for a table cell: one bar per run, latest on the right."""
    width, height = 120, 22
    top = max(values, default=0) or 1
    step = width / max(len(values), 1)
    bars = "".join(
        f'<rect x="{i * step:.1f}" y="{height - height * v / top:.1f}" '
        f'width="{max(step - 1, 1):.1f}" height="{height * v / top:.1f}" fill="{colour}"/>'
        for i, v in enumerate(values)
        if v
    )
    label = ", ".join(str(v) for v in values[-5:])
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="spark" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}"><title>last runs: … {label}</title>'
        f'<line x1="0" y1="{height - 0.5}" x2="{width}" y2="{height - 0.5}" class="grid"/>'
        f"{bars}</svg>"
    )


# --------------------------------------------------------------------------------------
# What the page shows, read back from the store
# --------------------------------------------------------------------------------------


def run_dates(conn: Connection, day: date, count: int = HISTORY_RUNS) -> list[date]:
    """The last ``count`` run dates up to ``day`` (this run included), oldest first."""
    runs = union(
        select(agency_intakes.c.run_date.label("run_date")).where(agency_intakes.c.run_date <= day),
        select(intake_files.c.run_date.label("run_date")).where(intake_files.c.run_date <= day),
    ).subquery()
    found = [
        r
        for (r,) in conn.execute(
            select(runs.c.run_date).distinct().order_by(runs.c.run_date.desc()).limit(count)
        )
    ]
    dates = sorted({d if isinstance(d, date) else date.fromisoformat(str(d)[:10]) for d in found})
    if day not in dates:
        dates = [*dates[-(count - 1) :], day] if count > 1 else [day]
    return dates


def findings_history(conn: Connection, dates: list[date]) -> pd.DataFrame:
    """Open findings per run date and rule (rows: rule_id, severity; columns: dates)."""
    spans = _frame(
        conn,
        select(
            findings.c.rule_id,
            findings.c.severity,
            findings.c.first_seen,
            findings.c.last_seen,
            func.count().label("n"),
        )
        .where(findings.c.last_seen >= dates[0], findings.c.first_seen <= dates[-1])
        .group_by(
            findings.c.rule_id, findings.c.severity, findings.c.first_seen, findings.c.last_seen
        ),
    )
    columns = [d.isoformat() for d in dates]
    if spans.empty:
        return pd.DataFrame(columns=["rule_id", "severity", *columns])
    first = spans["first_seen"].map(_iso)
    last = spans["last_seen"].map(_iso)
    for column in columns:
        spans[column] = spans["n"].where((first <= column) & (last >= column), 0)
    return spans.groupby(["rule_id", "severity"], as_index=False)[columns].sum()


def rows_history(conn: Connection, dates: list[date]) -> pd.DataFrame:
    """Rows received in loaded files per run date and feed."""
    frame = _frame(
        conn,
        select(
            intake_files.c.run_date,
            intake_files.c.agency,
            intake_files.c.feed,
            func.sum(intake_files.c.rows_read).label("rows"),
        )
        .where(
            intake_files.c.status == "loaded",
            intake_files.c.run_date >= dates[0],
            intake_files.c.run_date <= dates[-1],
        )
        .group_by(intake_files.c.run_date, intake_files.c.agency, intake_files.c.feed),
    )
    if frame.empty:
        return frame
    frame["run_date"] = frame["run_date"].map(_iso)
    frame["feed"] = frame["agency"] + "/" + frame["feed"]
    columns = [d.isoformat() for d in dates]
    table = frame.pivot_table(index="feed", columns="run_date", values="rows", aggfunc="sum")
    return table.reindex(columns=columns).fillna(0)


_OUTCOME_ORDER = {"failed": 0, "error": 1, "skipped": 2, "passed": 3}


def _expectations(conn: Connection, file_ids: list[int]) -> pd.DataFrame:
    frame = _frame(
        conn,
        select(expectation_results)
        .where(expectation_results.c.file_id.in_(file_ids or [-1]))
        .order_by(expectation_results.c.file_id),
    )
    return frame.astype(object).where(frame.notna(), None)


def _feed_rows(
    files: pd.DataFrame, results: pd.DataFrame, completeness: Completeness
) -> dict[str, list[dict[str, Any]]]:
    """Per agency, one row per feed: expected state, files, rows, rejections, expectations."""
    by_agency: dict[str, list[dict[str, Any]]] = {a: [] for a in AGENCIES}
    expected = {(f.agency, f.feed): f for f in completeness.feeds}
    sent = set(zip(files["agency"], files["feed"], strict=True)) - {(a, None) for a in AGENCIES}
    for agency, feed in sorted(set(expected) | {(str(a), str(f)) for a, f in sent if f}):
        mine = files[(files["agency"] == agency) & (files["feed"] == feed)]
        loaded = mine[mine["status"] == "loaded"]
        failed = results[results["file_id"].isin(mine["id"]) & (results["outcome"] == "failed")]
        state = expected.get((agency, feed))
        by_agency[agency].append(
            {
                "feed": feed,
                "state": state.state if state else "not expected",
                "state_detail": state.detail if state else None,
                "file_count": len(mine),
                "files_loaded": len(loaded),
                "files_rejected": int((mine["status"] == "rejected").sum()),
                "files_duplicate": int((mine["status"] == "duplicate").sum()),
                "rows": int(loaded["rows_read"].sum()),
                "loaded": int(loaded["rows_loaded"].sum()),
                "ignored": int(loaded["rows_ignored"].sum()),
                "rejected_rows": int(loaded["rows_rejected"].sum()),
                "critical_failed": int((failed["severity"] == "critical").sum()),
                "warnings_failed": int((failed["severity"] == "warning").sum()),
            }
        )
    return by_agency


def agency_state(status: str, feeds: list[dict[str, Any]]) -> str:
    """What heads an agency's section: true of every expected feed under it.

    An agency whose exchange was reached has "received" only when every feed expected
    of it was received; otherwise the heading counts them ("1 of 3 expected feeds
    received"). An agency not reached keeps its intake status ("not received",
    "configuration error").
    """
    if status != "received":
        return status
    expected = [f for f in feeds if f["state"] != "not expected"]
    received = sum(f["state"] == "received" for f in expected)
    if received == len(expected):
        return "received"
    return f"{received} of {len(expected)} expected feeds received"


def rule_stats(conn: Connection, day: date) -> dict[str, dict[str, int]]:
    """Per rule: findings open at the end of the run, their vehicles, how many are new
    (first seen by this run), and how many this run resolved."""
    is_new = case((findings.c.first_seen == day, 1), else_=0)
    open_now = _frame(
        conn,
        select(
            findings.c.rule_id,
            func.count().label("open"),
            func.count(distinct(findings.c.vin)).label("vehicles"),
            func.sum(is_new).label("new"),
        )
        .where(holds_on(day))
        .group_by(findings.c.rule_id),
    )
    resolved = _frame(
        conn,
        select(findings.c.rule_id, func.count().label("resolved"))
        .where(findings.c.resolved_on == day)
        .group_by(findings.c.rule_id),
    )
    stats: dict[str, dict[str, int]] = {}
    for frame in (open_now, resolved):
        for row in frame.to_dict("records"):
            counts = stats.setdefault(str(row.pop("rule_id")), {})
            counts.update({str(k): int(v or 0) for k, v in row.items()})
    return stats


def rule_samples(conn: Connection, day: date, shown: int) -> pd.DataFrame:
    """The first ``shown`` open findings of each rule, by record."""
    ranked = (
        select(
            *(findings.c[c] for c in FINDING_FIELDS),
            func.row_number()
            .over(
                partition_by=findings.c.rule_id,
                order_by=(findings.c.record_key, findings.c.id),
            )
            .label("n"),
        )
        .where(holds_on(day))
        .subquery()
    )
    return _frame(
        conn,
        select(*(ranked.c[c] for c in FINDING_FIELDS))
        .where(ranked.c.n <= shown)
        .order_by(ranked.c.rule_id, ranked.c.n),
    )


def rejection_samples(
    conn: Connection, file_ids: list[int], shown: int
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The first ``shown`` rejected rows of each agency's files, and rejected rows per agency."""
    of_rows = and_(rejections.c.file_id.in_(file_ids or [-1]), rejections.c.line.is_not(None))
    ranked = (
        select(
            rejections,
            func.row_number()
            .over(
                partition_by=rejections.c.agency,
                order_by=(
                    rejections.c.file,
                    rejections.c.line,
                    rejections.c.column,
                    rejections.c.id,
                ),
            )
            .label("n"),
        )
        .where(of_rows)
        .subquery()
    )
    samples = _frame(
        conn,
        select(*(ranked.c[c.name] for c in rejections.columns))
        .where(ranked.c.n <= shown)
        .order_by(ranked.c.agency, ranked.c.n),
    )
    counts = conn.execute(
        select(rejections.c.agency, func.count()).where(of_rows).group_by(rejections.c.agency)
    )
    return samples, {str(agency): int(n) for agency, n in counts}


SIGNATURE_STATES = ("verified", "unsigned", "rejected")


def signature_counts(conn: Connection, day: date) -> dict[str, dict[str, int]]:
    """Per agency, its files taken by the run for ``day`` that came signed and verified,
    unsigned (no key configured for it) or rejected for their signature (ICD §6)."""
    rows = conn.execute(
        select(file_signatures.c.agency, file_signatures.c.state, func.count())
        .join(intake_files, intake_files.c.id == file_signatures.c.file_id)
        .where(intake_files.c.run_date == day)
        .group_by(file_signatures.c.agency, file_signatures.c.state)
    ).all()
    counts = {agency: dict.fromkeys(SIGNATURE_STATES, 0) for agency in AGENCIES}
    for agency, state, count in rows:
        counts.setdefault(str(agency), dict.fromkeys(SIGNATURE_STATES, 0))[str(state)] = int(count)
    return counts


def exchange_proof(
    conn: Connection, settings: Settings, completeness: Completeness
) -> dict[str, Any]:
    """The key that signed the run's drops, the keys still accepted for earlier drops,
    the exchange log's head after the run and the agencies whose evidence is missing."""
    key = hub_signing_key(settings)
    return {
        "key_id": key.key_id,
        "public_key": key.public_text,
        "origin": key.origin,
        "previous": sorted(keys_by_id(list(settings.previous_signing_keys))),
        "log_head": log_head(conn),
        "missing_evidence": missing_evidence(completeness),
    }


def gather(conn: Connection, settings: Settings, day: date) -> dict[str, Any]:
    """Everything the report shows, read back from the store."""
    statuses = _frame(
        conn, select(agency_intakes).where(agency_intakes.c.run_date == day)
    ).set_index("agency")
    files = _frame(
        conn,
        select(intake_files, quality_validations.c.seconds.label("gx_seconds"))
        .outerjoin(quality_validations, quality_validations.c.file_id == intake_files.c.id)
        .where(intake_files.c.run_date == day)
        .order_by(intake_files.c.agency, intake_files.c.name),
    )
    file_ids = [int(i) for i in files["id"].tolist()]
    file_errors = _frame(
        conn,
        select(rejections.c.file_id, rejections.c.error).where(
            rejections.c.line.is_(None), rejections.c.file_id.in_(file_ids or [-1])
        ),
    ).set_index("file_id")["error"]
    files["error"] = files["id"].map(file_errors)
    for column in ("rows_declared", "seq"):
        files[column] = files[column].astype("Int64")
    files = files.astype(object).where(files.notna(), None)
    samples, rejected_rows = rejection_samples(conn, file_ids, SHOWN_REJECTIONS)
    results = _expectations(conn, file_ids)
    completeness = feed_completeness(conn, settings, day)
    feed_rows = _feed_rows(files, results, completeness)
    signatures = signature_counts(conn, day)

    agencies = []
    for agency in AGENCIES:
        mine = files[files["agency"] == agency]
        have = not statuses.empty and agency in statuses.index
        waiting = statuses["waiting"].get(agency) if have else None
        agency_files = []
        for f in mine.to_dict("records"):
            outcomes = sorted(
                results[results["file_id"] == f["id"]].to_dict("records"),
                key=lambda o: (_OUTCOME_ORDER.get(o["outcome"], 9), o["severity"] != "critical"),
            )
            f["expectations"] = outcomes
            f["expectations_passed"] = sum(o["outcome"] == "passed" for o in outcomes)
            f["expectations_shown"] = [o for o in outcomes if o["outcome"] != "passed"]
            agency_files.append(f)
        status = str(statuses["status"].get(agency, "not run")) if have else "not run"
        state = agency_state(status, feed_rows[agency])
        agencies.append(
            {
                "name": agency,
                "status": status,
                "state": state,
                # A partly received agency is flagged like one not received.
                "state_class": state if state in (status, "received") else "partly-received",
                "detail": statuses["detail"].get(agency) if have else None,
                "waiting": json.loads(waiting) if isinstance(waiting, str) else [],
                "feeds": feed_rows[agency],
                "files": agency_files,
                "rejection_samples": samples[samples["agency"] == agency].to_dict("records"),
                "rejections_total": rejected_rows.get(agency, 0),
                "signatures": signatures[agency],
                "public_keys": len(settings.agencies[agency].public_keys),  # type: ignore[index]
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

    dates = run_dates(conn, day)
    columns = [d.isoformat() for d in dates]
    history = findings_history(conn, dates)
    stats = rule_stats(conn, day)
    shown = rule_samples(conn, day, SHOWN_PER_RULE)
    per_rule = history.groupby("rule_id")[columns].sum()
    trends = {
        str(r): [int(v) for v in row]
        for r, row in zip(per_rule.index, per_rule.to_numpy(), strict=True)
    }
    rules = []
    for rule_id, rule in sorted(RULES.items()):
        counts = stats.get(rule_id, {})
        count, new = counts.get("open", 0), counts.get("new", 0)
        rows = shown[shown["rule_id"] == rule_id].to_dict("records")
        rules.append(
            {
                "id": rule_id,
                "severity": rule.severity,
                "summary": rule.summary,
                "count": count,
                "vehicles": counts.get("vehicles", 0),
                "new": new,
                "still_open": count - new,
                "resolved": counts.get("resolved", 0),
                "trend": svg_sparkline(
                    trends.get(rule_id, [0] * len(columns)),
                    SEVERITY_COLOURS.get(rule.severity, "#57606a"),
                ),
                "rows": rows,
                "more": max(0, count - len(rows)),
            }
        )
    by_severity = {
        severity: (
            [int(v) for v in history[history["severity"] == severity][columns].sum().tolist()]
            if not history.empty
            else [0] * len(columns)
        )
        for severity in ("error", "warning", "info")
    }
    findings_chart = svg_stacked_bars(
        f"Open findings per run, by severity (last {len(columns)} runs)",
        columns,
        by_severity,
        SEVERITY_COLOURS,
    )
    rows_frame = rows_history(conn, dates)
    rows_chart = svg_lines(
        f"Rows received per feed (last {len(columns)} runs)",
        columns,
        {
            str(feed): [float(v) for v in rows_frame.loc[feed].tolist()]
            for feed in (rows_frame.index if not rows_frame.empty else [])
        },
    )
    verdict_counts = _frame(
        conn,
        select(verdict_history.c.report, verdict_history.c.verdict, func.count().label("n"))
        .where(verdict_holds_on(day))
        .group_by(verdict_history.c.report, verdict_history.c.verdict)
        .order_by(verdict_history.c.report, verdict_history.c.verdict),
    ).to_dict("records")
    failed = results[results["outcome"] == "failed"]
    totals = {
        "files": len(files),
        "rows": int(loaded_files["rows_read"].sum()),
        "loaded": int(loaded_files["rows_loaded"].sum()),
        "ignored": int(loaded_files["rows_ignored"].sum()),
        "rejected_rows": int(loaded_files["rows_rejected"].sum()),
        "rejected_files": int((files["status"] == "rejected").sum()),
        "duplicates": int((files["status"] == "duplicate").sum()),
        "findings": sum(c.get("open", 0) for c in stats.values()),
        "feeds_expected": len(completeness.feeds),
        "feeds_received": sum(f.state == "received" for f in completeness.feeds),
        "not_received": sum(f.state == "not received" for f in completeness.feeds),
        "misconfigured": sorted(str(a) for a, s in statuses["status"].items() if s == MISCONFIGURED)
        if not statuses.empty
        else [],
        "gaps": sum(len(g.missing) for g in completeness.gaps),
        "critical_failed": int((failed["severity"] == "critical").sum()),
        "warnings_failed": int((failed["severity"] == "warning").sum()),
    }
    return {
        "calendar_warnings": WorkingDays(settings.calendar).warnings(day),
        "not_evaluated": _frame(
            conn,
            select(not_evaluated.c.rule_id, not_evaluated.c.reason, not_evaluated.c.records)
            .where(not_evaluated.c.run_date == day)
            .order_by(not_evaluated.c.rule_id, not_evaluated.c.reason),
        ).to_dict("records"),
        "agencies": agencies,
        "feeds_by_agency": feed_rows,
        "completeness": completeness,
        "per_feed": per_feed,
        "rules": rules,
        "history_runs": len(columns),
        "findings_chart": findings_chart,
        "rows_chart": rows_chart,
        "verdicts": verdict_counts,
        "totals": totals,
        "proof": exchange_proof(conn, settings, completeness),
    }


def write_report(engine: Engine, settings: Settings, day: date, delivered: dict[str, str]) -> Path:
    """Render the day's report, its Data Docs and its workbook; return the report's path."""
    from vehiclehub.quality.datadocs import build_run_docs

    folder = settings.reports_dir / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    docs_error = None
    try:
        docs = build_run_docs(engine, settings.reports_dir, day)
    except Exception as exc:  # the report must come out even if GX cannot render
        log.exception("Data Docs for %s could not be built", day)
        docs, docs_error = None, f"{exc.__class__.__name__}: {exc}"
    workbook_path = folder / f"vehiclehub_{day:%Y%m%d}.xlsx"
    with engine.connect() as conn:
        context = gather(conn, settings, day)
        counted: dict[str, dict[str, int]] = {}
        for v in context["verdicts"]:
            counted.setdefault(str(v["report"]), {})[str(v["verdict"])] = int(v["n"])
        truncated = write_workbook(conn, day, workbook_path, context["feeds_by_agency"], counted)
    if docs is not None:
        for agency in context["agencies"]:
            for f in agency["files"]:
                page = docs.pages.get(int(f["id"]))
                f["docs"] = Path(os.path.relpath(page, folder)).as_posix() if page else None
    drops_dir = settings.drops_dir / day.isoformat()
    html_text = _ENV.get_template("report.html").render(
        day=day.isoformat(),
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        delivered=delivered,
        drops=sorted(p.name for p in drops_dir.glob("*.csv")) if drops_dir.is_dir() else [],
        drops_rel=f"../../drops/{day.isoformat()}",
        datadocs="datadocs/index.html" if docs is not None else None,
        datadocs_error=docs_error,
        workbook=workbook_path.name,
        workbook_truncated=truncated,
        **context,
    )
    target = folder / "index.html"
    target.write_text(html_text, encoding="utf-8")
    return target
