"""The operator's daily page: ``work_dir/reports/<date>/index.html``, self-contained.

Beside it, in the same folder: ``datadocs/`` (GX Data Docs of the run's files) and
``vehiclehub_<date>.xlsx`` (a summary, then a filtered table per section). The page
needs nothing from the network and runs no script: charts are inline SVG drawn here.

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
import math
import os
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

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
from vehiclehub.workfiles import written_whole

log = logging.getLogger(__name__)


def shown(value: Any) -> Any:
    """What the page prints for a value: nothing for a missing one.

    A missing value read through pandas is ``None``, ``nan``, ``NaT`` or ``<NA>``; none
    of them is anything an operator should read on the page.
    """
    if value is None or value is pd.NaT or value is pd.NA:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return value


_ENV = Environment(
    loader=PackageLoader("vehiclehub.publish", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
    finalize=shown,
)
SHOWN_PER_RULE = 200
SHOWN_REJECTIONS = 50
HISTORY_RUNS = 30
SEVERITY_COLOURS = {"error": "#cf222e", "warning": "#bf8700", "info": "#0969da"}
NEW_RESOLVED_COLOURS = {"new": "#cf222e", "resolved": "#1a7f37"}
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


def svg_new_resolved(
    title: str, dates: Sequence[str], new: Sequence[int], resolved: Sequence[int]
) -> Markup:
    """Findings first found (up) and resolved (down) by each run, counts on the bars.

    What changed each night, rather than how many stand open (which hardly moves from
    one night to the next): the first run's bar is everything found; later bars show
    the night's news, one run or ninety.
    """
    width, height, left, top, bottom = 720, 240, 48, 30, 30
    plot_w = width - left - 12
    half = (height - top - bottom) / 2
    zero = top + half
    y_max = _nice_top(max([*new, *resolved, 0]))
    step = plot_w / max(len(dates), 1)
    labelled = len(dates) <= 31
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
        f"<title>{html.escape(title)}</title>",
    ]
    for tick, label in ((-1, y_max), (-0.5, y_max / 2), (0.5, y_max / 2), (1, y_max)):
        y = zero + half * tick
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">'
            f"{_tick(label)}</text>"
        )
    parts.append(
        f'<line x1="{left}" y1="{zero}" x2="{left + plot_w}" y2="{zero}" class="axis"/>'
        f'<text x="{left - 6}" y="{zero + 4}" class="tick" text-anchor="end">0</text>'
    )
    for i, day in enumerate(dates):
        x = left + i * step + step * 0.15
        for value, sign, name in ((new[i], -1, "new"), (resolved[i], 1, "resolved")):
            if not value:
                continue
            h = half * value / y_max
            y = zero - h if sign < 0 else zero
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" '
                f'fill="{NEW_RESOLVED_COLOURS[name]}"><title>{html.escape(day)}: {value:,} '
                f"{name}</title></rect>"
            )
            if labelled:
                ty = y - 3 if sign < 0 else y + h + 11
                parts.append(
                    f'<text x="{x + step * 0.35:.1f}" y="{ty:.1f}" class="tick" '
                    f'text-anchor="middle">{value:,}</text>'
                )
        parts.append(_date_label(dates, i, x + step * 0.35, height - 8))
    parts.append(_legend_entry(left, 15, NEW_RESOLVED_COLOURS["new"], "first found by the run"))
    parts.append(_legend_entry(left + 190, 15, NEW_RESOLVED_COLOURS["resolved"], "resolved"))
    parts.append("</svg>")
    return Markup("".join(parts))


def _legend_entry(x: float, baseline: float, colour: str, name: str) -> str:
    """A legend's colour swatch and series name, the name's text on ``baseline``."""
    return (
        f'<rect x="{x}" y="{baseline - 9}" width="10" height="10" fill="{colour}"/>'
        f'<text x="{x + 14}" y="{baseline}" class="legend">{html.escape(name)}</text>'
    )


def svg_feed_volumes(
    title: str, feeds: Sequence[str], tonight: Sequence[int], usual: Sequence[float | None]
) -> Markup:
    """Per feed, the rows received tonight against the median of the earlier runs.

    One bar per feed on a logarithmic scale — a first night's load and an ordinary
    night's, a feed of ten rows and one of a million, all stay legible — with the
    median of the earlier runs marked on it and both numbers written out.
    """
    row_h, left, right_text, top = 22, 190, 210, 24
    width = 760
    plot_w = width - left - right_text
    height = top + row_h * max(len(feeds), 1) + 26
    decades = max(1, math.ceil(math.log10(max([*tonight, *(u or 0 for u in usual), 10]))))

    def x_of(value: float) -> float:
        return left + plot_w * math.log10(max(value, 1)) / decades

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
        f"<title>{html.escape(title)}</title>",
    ]
    bottom = top + row_h * max(len(feeds), 1)
    for power in range(decades + 1):
        x = x_of(10**power)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{bottom}" class="grid"/>'
            f'<text x="{x:.1f}" y="{bottom + 14}" class="tick" text-anchor="middle">'
            f"{_tick(10**power)}</text>"
        )
    if not feeds:
        parts.append(
            f'<text x="{left}" y="{top + 14}" class="tick">no rows received in these runs</text>'
        )
    for i, (feed, rows, median) in enumerate(zip(feeds, tonight, usual, strict=True)):
        y = top + i * row_h
        parts.append(
            f'<text x="{left - 8}" y="{y + 14}" class="legend" text-anchor="end">'
            f"{html.escape(feed)}</text>"
        )
        if rows:
            parts.append(
                f'<rect x="{left}" y="{y + 4}" width="{x_of(rows) - left:.1f}" height="12" '
                f'fill="{SERIES_COLOURS[0]}"><title>{html.escape(feed)} tonight: {rows:,} rows'
                "</title></rect>"
            )
        if median is None:
            said = f"{rows:,} (no earlier run)"
        else:
            mx = x_of(median)
            parts.append(
                f'<line x1="{mx:.1f}" y1="{y + 1}" x2="{mx:.1f}" y2="{y + 19}" class="usual">'
                f"<title>{html.escape(feed)} median of the earlier runs: {median:,.0f}"
                "</title></line>"
            )
            change = f", {100 * (rows - median) / median:+.0f}%" if median else ""
            said = f"{rows:,} (usual {median:,.0f}{change})"
        parts.append(f'<text x="{left + plot_w + 8}" y="{y + 14}" class="legend">{said}</text>')
    parts.append(
        _legend_entry(left, 14, SERIES_COLOURS[0], "rows tonight")
        + f'<line x1="{left + 110}" y1="5" x2="{left + 110}" y2="16" class="usual"/>'
        f'<text x="{left + 116}" y="14" class="legend">median of the earlier runs</text>'
    )
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


def findings_news(conn: Connection, dates: list[date]) -> tuple[list[int], list[int]]:
    """Per run date: findings first found that night, and findings resolved that night."""
    columns = [d.isoformat() for d in dates]
    counted = []
    for column in (findings.c.first_seen, findings.c.resolved_on):
        per_day = {
            _iso(d): int(n)
            for d, n in conn.execute(
                select(column, func.count())
                .where(column >= dates[0], column <= dates[-1])
                .group_by(column)
            )
        }
        counted.append([per_day.get(c, 0) for c in columns])
    return counted[0], counted[1]


def feed_volumes(
    history: pd.DataFrame,
) -> tuple[list[str], list[int], list[float | None]]:
    """From :func:`rows_history`: the feeds, their rows of the last run, and the median of
    their rows over the earlier runs (None when there is no earlier run)."""
    if history.empty:
        return [], [], []
    last = history.columns[-1]
    earlier = history[history.columns[:-1]]
    medians: list[float | None] = (
        [float(m) for m in earlier.median(axis=1)]
        if len(earlier.columns)
        else [None] * len(history)
    )
    return [str(f) for f in history.index], [int(v) for v in history[last]], medians


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
    statuses = _frame(conn, select(agency_intakes).where(agency_intakes.c.run_date == day))
    statuses = statuses.astype(object).where(statuses.notna(), None).set_index("agency")
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
    first_found, resolved = findings_news(conn, dates)
    findings_chart = svg_new_resolved(
        f"Findings first found and resolved by each run (last {len(columns)} runs)",
        columns,
        first_found,
        resolved,
    )
    feeds, tonight, usual = feed_volumes(rows_history(conn, dates))
    rows_chart = svg_feed_volumes(
        f"Rows received per feed on {day}, against the median of the earlier runs",
        feeds,
        tonight,
        usual,
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
        generated_at=datetime.now(ZoneInfo(settings.timezone)).isoformat(timespec="seconds"),
        timezone=settings.timezone,
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
    with written_whole(target) as partial:
        partial.write_text(html_text, encoding="utf-8")
    return target
