"""Campaign uplift: visitors in the campaign hours against the same local weekday-hours of the
N weeks before.

Method (stated in docs/analytics.md): take every campaign hour of a store that has data (a
heartbeat) and whose N baseline hours (same store, same local weekday and wall-clock hour, k = 1..N
weeks earlier) all have data too. ``visitors`` = sum over those hours in the campaign; ``b_k`` = the
same sum in week k; ``baseline`` = mean(b_k); ``uplift`` = visitors - baseline. The 95 % interval
is a t prediction interval over the weekly baselines: uplift ± t(0.975, N-1) · s · sqrt(1 + 1/N),
s = sample standard deviation of b_k (the campaign week is one more draw from the baseline weeks'
distribution, shifted by the uplift). ``store=all`` sums the campaign stores hour by hour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np

from footfall.analytics.config import Campaign
from footfall.analytics.grid import Grid
from footfall.contracts.measurements import ALL_STORES, KPI_CAMPAIGN, Point, datetime_to_ns

_T975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


def t975(df: int) -> float:
    """Two-sided 95 % quantile of Student's t (table to 30, Cornish-Fisher expansion beyond)."""
    if df < 1:
        raise ValueError("df must be >= 1")
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


@dataclass(frozen=True)
class Uplift:
    store: str
    visitors: float
    baseline: float
    uplift: float
    uplift_pct: float  # NaN when the baseline is 0
    ci_low: float
    ci_high: float
    ci_low_pct: float
    ci_high_pct: float
    hours: int
    baseline_weeks: int
    weekly_baselines: tuple[float, ...] = field(default=())


def uplift_from_sums(store: str, visitors: float, weekly: np.ndarray, hours: int) -> Uplift:
    """Uplift and its 95 % interval from the campaign sum and the N weekly baseline sums."""
    n = len(weekly)
    base = float(np.mean(weekly)) if n else math.nan
    spread = float(np.std(weekly, ddof=1)) if n >= 2 else math.nan
    half = t975(n - 1) * spread * math.sqrt(1 + 1 / n) if n >= 2 else math.nan
    up = visitors - base

    def pct(x: float) -> float:
        return 100.0 * x / base if base > 0 else math.nan

    return Uplift(
        store,
        float(visitors),
        base,
        up,
        pct(up),
        up - half,
        up + half,
        pct(up - half),
        pct(up + half),
        hours,
        n,
        tuple(float(x) for x in weekly),
    )


def campaign_uplift(
    campaign: Campaign,
    grid: Grid,
    store_labels: list[str],
    slot_visitors: np.ndarray,
    slot_covered: np.ndarray,
) -> list[Uplift]:
    """Per campaign store and ``all``: uplift over matched hours (see the module docstring)."""
    weeks = campaign.baseline_weeks
    start_ns, end_ns = datetime_to_ns(campaign.start), datetime_to_ns(campaign.end)
    lookup: dict[tuple[int, int, int, int], int] = {}
    for i in range(grid.n_slots):
        key = (
            int(grid.slot_store[i]),
            int(grid.day_ordinal[grid.slot_day[i]]),
            int(grid.slot_local_hour[i]),
            0,
        )
        while key in lookup:  # the repeated wall-clock hour at the end of DST
            key = (*key[:3], key[3] + 1)
        lookup[key] = i
    inverse = {v: k for k, v in lookup.items()}
    rows: list[Uplift] = []
    total_obs, total_weekly, total_hours = 0.0, np.zeros(weeks), 0
    for store in campaign.stores:
        if store not in store_labels:
            continue
        code = store_labels.index(store)
        slots = np.flatnonzero(
            (grid.slot_store == code)
            & (grid.slot_start >= start_ns)
            & (grid.slot_start < end_ns)
            & slot_covered
        )
        obs, weekly, hours = 0.0, np.zeros(weeks), 0
        for s in slots:
            st, ordinal, hour, fold = inverse[int(s)]
            base_slots = [lookup.get((st, ordinal - 7 * k, hour, fold)) for k in range(1, weeks + 1)]
            if any(b is None or not slot_covered[b] for b in base_slots):
                continue
            obs += slot_visitors[s]
            weekly += slot_visitors[np.array(base_slots)]
            hours += 1
        if hours:
            rows.append(uplift_from_sums(store, obs, weekly, hours))
            total_obs, total_weekly, total_hours = total_obs + obs, total_weekly + weekly, total_hours + hours
    if total_hours:
        rows.append(uplift_from_sums(ALL_STORES, total_obs, total_weekly, total_hours))
    return rows


def lookback(campaign: Campaign) -> timedelta:
    return timedelta(weeks=campaign.baseline_weeks)


def uplift_points(campaign: Campaign, rows: list[Uplift]) -> list[Point]:
    ts = datetime_to_ns(campaign.start)
    points = []
    for r in rows:
        fields: dict[str, float | int] = {"hours": r.hours, "baseline_weeks": r.baseline_weeks}
        for name in (
            "visitors",
            "baseline",
            "uplift",
            "uplift_pct",
            "ci_low",
            "ci_high",
            "ci_low_pct",
            "ci_high_pct",
        ):
            value = getattr(r, name)
            if math.isfinite(value):
                fields[name] = float(value)
        points.append(Point(KPI_CAMPAIGN, {"store": r.store, "campaign": campaign.name}, fields, ts))
    return points


def format_uplift_table(campaign: Campaign, rows: list[Uplift]) -> str:
    def num(x: float, fmt: str) -> str:
        return format(x, fmt) if math.isfinite(x) else "–"

    head = (
        f"campaign {campaign.name} ({campaign.channel or 'no channel'}): "
        f"{campaign.start:%Y-%m-%d %H:%M} – {campaign.end:%Y-%m-%d %H:%M} UTC, "
        f"baseline = same weekday-hours of the {campaign.baseline_weeks} weeks before"
    )
    cols = ("store", "hours", "visitors", "baseline", "uplift", "uplift %", "95% CI (visitors)", "95% CI (%)")
    body = [
        (
            r.store,
            str(r.hours),
            num(r.visitors, ".0f"),
            num(r.baseline, ".1f"),
            num(r.uplift, "+.1f"),
            num(r.uplift_pct, "+.1f"),
            f"[{num(r.ci_low, '+.1f')}, {num(r.ci_high, '+.1f')}]",
            f"[{num(r.ci_low_pct, '+.1f')}, {num(r.ci_high_pct, '+.1f')}]",
        )
        for r in rows
    ]
    if not body:
        return head + "\nno hours with data in both the campaign and all baseline weeks"
    widths = [max(len(c), *(len(row[i]) for row in body)) for i, c in enumerate(cols)]
    lines = [head, "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    lines += [
        "  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths, strict=True)))
        for row in body
    ]
    return "\n".join(lines)
