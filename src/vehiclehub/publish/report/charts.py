"""The report's charts, drawn as inline SVG: the page needs nothing from the network
and runs no script."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from markupsafe import Markup

from vehiclehub.icd.codes import Severity

SEVERITY_COLOURS: dict[str, str] = {
    Severity.ERROR: "#cf222e",
    Severity.WARNING: "#bf8700",
    Severity.INFO: "#0969da",
}
NEW_RESOLVED_COLOURS = {"new": "#cf222e", "resolved": "#1a7f37"}
SERIES_COLOURS = ("#0969da", "#1a7f37", "#bf3989", "#bf8700", "#8250df", "#cf222e", "#57606a")


def _nice_top(value: float) -> int:
    """A round axis maximum at or above ``value`` whose quarters are round too."""
    if value <= 0:
        return 1
    magnitude = 10 ** (len(str(int(value))) - 1)
    top: int = next(s * magnitude for s in (1, 2, 4, 5, 8, 10) if s * magnitude >= value)
    return top


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
