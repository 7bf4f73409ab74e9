"""A self-contained HTML report of one store's KPIs: inline SVG charts, no network, no server.

Input is what analytics writes: KPI points keyed by measurement (``kpi_hourly`` with its expected
traffic, ``kpi_daily``, ``kpi_campaign``, ...; see ``footfall.contracts.measurements``), optionally
the ``camera_issue`` points of the cameras (the section then says whether there were any), the dwell
times of completed zone visits, and optionally one annotated camera frame (PNG). Any source of those
points works: the demo's embedded store, InfluxDB, or a hand-made table in a test.
"""

from __future__ import annotations

import base64
import html
import io
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from footfall.contracts.kpis import kpis
from footfall.contracts.measurements import (
    CAMERA_ISSUE,
    KPI_CAMPAIGN,
    KPI_DAILY,
    KPI_HOURLY,
    Point,
    ns_to_datetime,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class ReportInput:
    store: str
    kpis: Mapping[str, Sequence[Point]]
    dwell_s: Mapping[str, Sequence[float]] = field(default_factory=dict)
    frame_png: bytes | None = None
    timezone: str = "UTC"
    title: str = "footfall report"
    notes: Sequence[str] = ()


@dataclass(frozen=True)
class Chart:
    title: str
    svg: str
    caption: str


def _store_points(inp: ReportInput, measurement: str) -> list[Point]:
    return sorted(
        (p for p in inp.kpis.get(measurement, ()) if p.tags.get("store") == inp.store), key=lambda p: p.ts_ns
    )


def _local(ns: int, tz: ZoneInfo) -> datetime:
    return ns_to_datetime(ns).astimezone(tz)


def _num(point: Point, name: str) -> float | None:
    value = point.fields.get(name)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


# How the report shows a KPI of each unit (contracts.kpis); other units are whole numbers.
_REPORT_FORMAT = {"ratio": "pct", "money": "money", "seconds": "s"}


def _fmt(value: float | None, kind: str = "int") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if kind == "pct":
        return f"{value * 100:.1f} %"
    if kind == "money":
        return f"{value:,.2f}"
    if kind == "s":
        return f"{value:.0f} s"
    if kind == "score":
        return f"{value:.2f}"
    return f"{value:,.0f}"


def _fmt_pct(percent: float | None) -> str:
    """A value already in percent (analytics' ``uplift_pct``), signed."""
    return "–" if percent is None or math.isnan(percent) else f"{percent:+.1f} %"


def latest_day(inp: ReportInput) -> list[Point]:
    """The hourly KPI points of the most recent local day that has any."""
    tz = ZoneInfo(inp.timezone)
    hourly = _store_points(inp, KPI_HOURLY)
    if not hourly:
        return []
    last = _local(hourly[-1].ts_ns, tz).date()
    return [p for p in hourly if _local(p.ts_ns, tz).date() == last]


def kpi_table(inp: ReportInput) -> list[tuple[str, str]]:
    """(label, value) rows: the latest day's totals, dwell, and each campaign's uplift."""
    tz = ZoneInfo(inp.timezone)
    rows: list[tuple[str, str]] = []
    daily = _store_points(inp, KPI_DAILY)
    if daily:
        day = daily[-1]
        rows.append(("day", _local(day.ts_ns, tz).date().isoformat()))
        for k in kpis("daily"):
            if k.in_report and k.name in day.fields:
                rows.append((k.label, _fmt(_num(day, k.name), _REPORT_FORMAT.get(k.unit, "int"))))
    rows += _expected_rows(latest_day(inp))
    for zone, dwells in sorted(inp.dwell_s.items()):
        if dwells:
            rows.append((f"dwell at {zone} (median)", _fmt(statistics.median(dwells), "s")))
    for point in _store_points(inp, KPI_CAMPAIGN):
        name = point.tags.get("campaign", "?")
        rows.append(
            (
                f"campaign {name}: uplift",
                f"{_fmt_pct(_num(point, 'uplift_pct'))} (95 % CI {_fmt(_num(point, 'ci_low'))}"
                f" … {_fmt(_num(point, 'ci_high'))} visitors)",
            )
        )
    return rows


def _expected_rows(hours: list[Point]) -> list[tuple[str, str]]:
    """The latest day against its expected traffic: totals and the hours outside the interval."""
    expected = [_num(p, "visitors_expected") for p in hours]
    if not any(e is not None for e in expected):
        return []
    flags = [_num(p, "traffic_anomaly") for p in hours]
    below, above, judged = (
        sum(f == -1 for f in flags),
        sum(f == 1 for f in flags),
        sum(f is not None for f in flags),
    )
    return [
        ("visitors expected", _fmt(sum(e for e in expected if e is not None))),
        (
            "hours below / above expected",
            f"{below} / {above} of {judged}",
        ),
    ]


def camera_issue_rows(inp: ReportInput) -> list[tuple[str, str, str, str, str]] | None:
    """(local time, device, issue, state, score) of the camera issues; None when none were given."""
    if CAMERA_ISSUE not in inp.kpis:
        return None
    tz = ZoneInfo(inp.timezone)
    points = sorted(inp.kpis[CAMERA_ISSUE], key=lambda p: p.ts_ns)
    return [
        (
            _local(p.ts_ns, tz).strftime("%Y-%m-%d %H:%M:%S"),
            p.tags.get("device", "?"),
            p.tags.get("issue", "?"),
            str(p.fields.get("state", "?")),
            _fmt(_num(p, "score"), "score"),
        )
        for p in points
    ]


# ---- charts ----------------------------------------------------------------------------------------


def _svg(fig: Figure) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and doctype: inline SVG in HTML5


def _figure(width: float = 7.5, height: float = 3.4) -> tuple[Figure, Axes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "footfall", "font.size": 9})
    fig, ax = plt.subplots(figsize=(width, height))
    return fig, ax


def chart_hourly(inp: ReportInput) -> Chart | None:
    points = latest_day(inp)
    if not points:
        return None
    tz = ZoneInfo(inp.timezone)
    hours = [_local(p.ts_ns, tz).hour for p in points]
    visitors = [_num(p, "visitors") or 0 for p in points]
    walkbys = [_num(p, "walkbys") or 0 for p in points]
    conversion = [_num(p, "conversion") for p in points]
    fig, ax = _figure()
    ax.bar([h - 0.2 for h in hours], visitors, width=0.4, label="visitors", color="#3274d9")
    ax.bar([h + 0.2 for h in hours], walkbys, width=0.4, label="walk-bys", color="#b8c7dc")
    ax.set_xlabel(f"hour ({inp.timezone})")
    ax.set_ylabel("people")
    ax.set_xticks(hours)
    right = ax.twinx()
    conv_hours = [h for h, c in zip(hours, conversion, strict=True) if c is not None]
    right.plot(
        conv_hours,
        [c * 100 for c in conversion if c is not None],
        color="#e0752d",
        marker="o",
        label="conversion",
    )
    right.set_ylabel("conversion %")
    right.set_ylim(bottom=0)
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=3, frameon=False)
    day = _local(points[0].ts_ns, tz).date().isoformat()
    return Chart(
        f"Hourly traffic and conversion, {day}",
        _svg(fig),
        "Visitors: inward entrance crossings (staff excluded). Walk-bys: passers-by who did not come in. "
        "Conversion: POS transactions / visitors.",
    )


def chart_capture_rate(inp: ReportInput) -> Chart | None:
    daily = [p for p in _store_points(inp, KPI_DAILY) if _num(p, "capture_rate") is not None]
    if not daily:
        return None
    tz = ZoneInfo(inp.timezone)
    import matplotlib.dates as mdates

    # Days as matplotlib's date numbers (what it makes of dates itself), for the locator and formatter below.
    days = mdates.date2num([_local(p.ts_ns, tz).date() for p in daily])
    rates = [(_num(p, "capture_rate") or 0) * 100 for p in daily]
    fig, ax = _figure(height=3.0)
    ax.plot(days, rates, marker="o", color="#37872d")
    for point in _store_points(inp, KPI_CAMPAIGN):
        start = mdates.date2num(_local(point.ts_ns, tz).date())
        ax.axvline(start, color="#e0752d", linestyle="--", linewidth=1)
    ax.set_ylabel("capture rate %")
    ax.set_ylim(0, max(rates) * 1.2 or 1)
    ax.xaxis.set_major_locator(mdates.DayLocator(interval=max(1, len(days) // 10)))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
    fig.autofmt_xdate()
    return Chart("Capture rate per day", _svg(fig), "Visitors / passers-by. Dashed: a campaign's start.")


def chart_dwell(inp: ReportInput) -> Chart | None:
    zones = {z: list(d) for z, d in sorted(inp.dwell_s.items()) if d}
    if not zones:
        return None
    fig, ax = _figure(height=3.0)
    top = max(max(d) for d in zones.values())
    bins = [i * max(top, 1) / 20 for i in range(21)]
    ax.hist(list(zones.values()), bins=bins, label=list(zones), stacked=True)
    ax.set_xlabel("dwell (s)")
    ax.set_ylabel("visits")
    ax.legend(frameon=False)
    return Chart(
        "Dwell time by zone", _svg(fig), "Completed zone visits: time from entering to leaving a zone."
    )


def chart_campaign(inp: ReportInput) -> Chart | None:
    points = [p for p in _store_points(inp, KPI_CAMPAIGN) if _num(p, "baseline") is not None]
    if not points:
        return None
    names = [p.tags.get("campaign", "?") for p in points]
    visitors = [_num(p, "visitors") or 0 for p in points]
    baseline = [_num(p, "baseline") or 0 for p in points]
    # The baseline's band implied by the uplift's confidence interval: visitors - CI.
    low = [v - (_num(p, "ci_high") or 0) for v, p in zip(visitors, points, strict=True)]
    high = [v - (_num(p, "ci_low") or 0) for v, p in zip(visitors, points, strict=True)]
    x = list(range(len(points)))
    fig, ax = _figure(height=3.0)
    err = [
        [b - lo for b, lo in zip(baseline, low, strict=True)],
        [hi - b for b, hi in zip(baseline, high, strict=True)],
    ]
    ax.bar(
        [i - 0.2 for i in x],
        baseline,
        width=0.4,
        yerr=err,
        capsize=4,
        color="#b8c7dc",
        label="baseline (95 % CI)",
    )
    ax.bar([i + 0.2 for i in x], visitors, width=0.4, color="#3274d9", label="visitors during campaign")
    for i, p in enumerate(points):
        pct = _num(p, "uplift_pct")
        if pct is not None:
            ax.annotate(_fmt_pct(pct), (i + 0.2, visitors[i]), ha="center", va="bottom")
    ax.set_xticks(x, names)
    ax.set_ylabel("visitors")
    ax.set_ylim(0, max(*visitors, *high) * 1.15 or 1)
    ax.legend(frameon=False, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=2)
    return Chart(
        "Campaign uplift",
        _svg(fig),
        "Baseline: the same weekday-hours of the weeks before the campaign. Uplift = visitors - baseline.",
    )


def chart_expected(inp: ReportInput) -> Chart | None:
    points = [p for p in latest_day(inp) if _num(p, "visitors_expected") is not None]
    if not points:
        return None
    tz = ZoneInfo(inp.timezone)
    hours = [_local(p.ts_ns, tz).hour for p in points]
    low = [_num(p, "visitors_expected_low") or 0 for p in points]
    high = [_num(p, "visitors_expected_high") or 0 for p in points]
    fig, ax = _figure()
    ax.fill_between(hours, low, high, step="mid", color="#b8c7dc", alpha=0.7, label="expected, 95 % interval")
    ax.step(
        hours,
        [_num(p, "visitors_expected") or 0 for p in points],
        where="mid",
        color="#57606a",
        label="expected",
    )
    ax.plot(hours, [_num(p, "visitors") or 0 for p in points], "o-", color="#3274d9", label="visitors")
    for flag, colour, name in ((-1, "#c4162a", "below"), (1, "#37872d", "above")):
        marked = [
            (h, _num(p, "visitors") or 0)
            for h, p in zip(hours, points, strict=True)
            if _num(p, "traffic_anomaly") == flag
        ]
        if marked:
            marked_hours, marked_visitors = zip(*marked, strict=True)
            ax.scatter(
                marked_hours,
                marked_visitors,
                s=80,
                facecolors="none",
                edgecolors=colour,
                label=f"{name} the interval",
            )
    ax.set_xlabel(f"hour ({inp.timezone})")
    ax.set_ylabel("visitors")
    ax.set_xticks(hours)
    ax.set_ylim(bottom=0)
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=3, frameon=False)
    day = _local(points[0].ts_ns, tz).date().isoformat()
    return Chart(
        f"Visitors against expected, {day}",
        _svg(fig),
        "Expected: the same weekday and hour of the weeks before (campaign hours and broken days left "
        "out), with its 95 % interval; circled hours lie outside it.",
    )


def charts(inp: ReportInput) -> list[Chart]:
    made = (
        chart_hourly(inp),
        chart_expected(inp),
        chart_capture_rate(inp),
        chart_dwell(inp),
        chart_campaign(inp),
    )
    return [c for c in made if c is not None]


# ---- HTML ------------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #1f2328; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; } td { padding: .2rem 1rem .2rem 0; border-bottom: 1px solid #ddd; }
figure { margin: 0; } figcaption, .note { color: #57606a; font-size: .85rem; }
.chart svg { max-width: 100%; height: auto; } img.frame { max-width: 100%; border: 1px solid #ccc; }
"""


def render_html(inp: ReportInput) -> str:
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(inp.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(inp.title)}</h1>",
        f"<p>Store <b>{esc(inp.store)}</b>, times in {esc(inp.timezone)}.</p>",
        "<h2>Key figures</h2><table>",
        *(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in kpi_table(inp)),
        "</table>",
    ]
    for chart in charts(inp):
        parts += [
            f'<h2>{esc(chart.title)}</h2><figure class="chart">{chart.svg}',
            f"<figcaption>{esc(chart.caption)}</figcaption></figure>",
        ]
    parts += _camera_health_html(inp)
    if inp.frame_png:
        data = base64.b64encode(inp.frame_png).decode("ascii")
        parts += [
            "<h2>What the camera counts</h2>",
            f'<figure><img class="frame" alt="annotated camera frame" src="data:image/png;base64,{data}">',
            "<figcaption>Counting lines, zones and tracked people on one frame of the sample clip "
            "(the frame never leaves the edge in production).</figcaption></figure>",
        ]
    parts += [f'<p class="note">{esc(n)}</p>' for n in inp.notes]
    parts.append("</body></html>")
    return "\n".join(parts)


def _camera_health_html(inp: ReportInput) -> list[str]:
    rows = camera_issue_rows(inp)
    if rows is None:
        return []
    esc = html.escape
    head = "<h2>Camera health</h2>"
    if not rows:
        return [head, '<p class="camera-ok">The scene monitor reported no camera issue (dark, covered, '
                "moved, frozen or blurred) on this run.</p>"]  # fmt: skip
    cells = ("time", "camera", "issue", "state", "score")
    return [
        head,
        '<table class="camera-issues"><tr>' + "".join(f"<td><b>{c}</b></td>" for c in cells) + "</tr>",
        *("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>" for row in rows),
        "</table>",
    ]


def write_report(inp: ReportInput, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(inp), encoding="utf-8")
    return path
