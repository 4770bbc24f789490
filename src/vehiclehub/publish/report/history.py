"""The report's history: what the last runs found and received, for its charts."""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
from sqlalchemy import Connection, func, select, union

from vehiclehub.store.schema import agency_intakes, findings, intake_files

#: Runs the charts and trends look back over.
HISTORY_RUNS = 30


def frame_of(conn: Connection, query: Any) -> pd.DataFrame:
    """A query's rows as a frame, its columns named as the query's."""
    result = conn.execute(query)
    return pd.DataFrame(result.all(), columns=list(result.keys()))


def iso(value: Any) -> str:
    """A date read back from the store (a date, or text on SQLite) as ISO text."""
    return value.isoformat() if isinstance(value, date) else str(value)[:10]


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
    spans = frame_of(
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
    first = spans["first_seen"].map(iso)
    last = spans["last_seen"].map(iso)
    for column in columns:
        spans[column] = spans["n"].where((first <= column) & (last >= column), 0)
    return spans.groupby(["rule_id", "severity"], as_index=False)[columns].sum()


def rows_history(conn: Connection, dates: list[date]) -> pd.DataFrame:
    """Rows received in loaded files per run date and feed."""
    frame = frame_of(
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
    frame["run_date"] = frame["run_date"].map(iso)
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
            iso(d): int(n)
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
