"""The operator's daily page: ``work_dir/reports/<date>/index.html``, self-contained.

Beside it, in the same folder: ``datadocs/`` (GX Data Docs of the run's files) and
``vehiclehub_<date>.xlsx`` (a summary, then a filtered table per section). The page
needs nothing from the network and runs no script: charts are inline SVG drawn here.

What it shows, per agency and feed: whether the expected files came (completeness:
received / rejected / waiting / *not received*, gaps in ``seq``, late files), files,
rows and rejections, each file's expectation results; findings per rule with new /
still open / resolved today; charts of findings per rule and rows per feed over the
last :data:`~.history.HISTORY_RUNS` runs; verdicts; and the drops. At the top: the records a rule
could not evaluate (the working-day calendar lacks a year) and the calendar years to
configure.

The page stays readable at a million vehicles: it lists the first
:data:`~.tree.SHOWN_PER_RULE` findings of each rule and the first :data:`~.tree.SHOWN_REJECTIONS`
rejected rows of each agency, says how many there are, and points to the drops (and
the workbook) that carry them all. Counts and samples are computed by the store.

The page's data is a typed tree (:mod:`.model`), put together by :func:`.tree.gather`
from readers of one query each (:mod:`.readers`, :mod:`.history`), with the charts of
:mod:`.charts`; ``templates/report.html`` renders it, and the workbook reads its feeds
and verdict counts from the same tree.
"""

from __future__ import annotations

import logging
import math
import os
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import Engine

from vehiclehub.config import Settings
from vehiclehub.publish.report.tree import gather
from vehiclehub.publish.report.workbook import Section, write_workbook
from vehiclehub.workfiles import written_whole

if TYPE_CHECKING:  # pragma: no cover
    from vehiclehub.quality.datadocs import DocsBuild

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


def write_report(
    engine: Engine,
    settings: Settings,
    day: date,
    delivered: dict[str, str],
    findings: Section | None = None,
    docs_build: DocsBuild | None = None,
) -> Path:
    """Render the day's report, its Data Docs and its workbook; return the report's path.

    ``findings``: the workbook's findings section when the publish gathered it as it
    wrote the findings drops (:class:`~vehiclehub.publish.report.workbook.FindingsSheet`).
    ``docs_build``: the Data Docs being built by a process of their own, started by the
    caller; built here when not given.
    """
    from vehiclehub.quality.datadocs import build_run_docs

    folder = settings.reports_dir / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    docs_error = None
    try:
        if docs_build is not None:
            docs = docs_build.result()
        else:
            docs = build_run_docs(engine, settings.reports_dir, day)
    except Exception as exc:  # the report must come out even if GX cannot render
        log.exception("Data Docs for %s could not be built", day)
        docs, docs_error = None, f"{exc.__class__.__name__}: {exc}"
    workbook_path = folder / f"vehiclehub_{day:%Y%m%d}.xlsx"
    pages = {
        file_id: Path(os.path.relpath(page, folder)).as_posix()
        for file_id, page in (docs.pages.items() if docs is not None else ())
    }
    with engine.connect() as conn:
        tree = gather(conn, settings, day, pages)
        truncated = write_workbook(
            conn, day, workbook_path, tree.feeds_by_agency, tree.verdict_counts, findings
        )
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
        **tree.context(),
    )
    target = folder / "index.html"
    with written_whole(target) as partial:
        partial.write_text(html_text, encoding="utf-8")
    return target
