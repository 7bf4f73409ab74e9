"""The analytics job: read a window from an EventStore, compute KPIs with the pure core, write them.

The window is widened to whole local days of every store, so a daily point is always computed
from its whole day (or the day so far) and re-running any window rewrites the same points.
Wi-Fi sightings are read 30 days further back for repeat visitors and staff devices.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np

from footfall.analytics.campaign import Uplift, campaign_uplift, uplift_points
from footfall.analytics.config import Campaign, CampaignsConfig, StoreMeta, StoresConfig
from footfall.analytics.core import REPEAT_WINDOW_DAYS, KpiTables, compute_kpis
from footfall.analytics.expected import (
    WEEKS,
    anomaly,
    campaign_slots,
    expect,
    history_of,
    slot_expectation,
)
from footfall.analytics.grid import Grid, build_grid
from footfall.analytics.store import EventStore
from footfall.contracts.measurements import (
    ALL_STORES,
    KPI_FORECAST_HOURLY,
    KPI_HOURLY,
    Point,
    datetime_to_ns,
)

log = logging.getLogger(__name__)


@dataclass
class JobResult:
    kpis: KpiTables
    uplifts: dict[str, list[Uplift]] = field(default_factory=dict)
    events_read: int = 0
    points_written: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def _as_utc(value: datetime | date) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{value.isoformat()}: give a time zone (or a plain date)")
        return value.astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def _local_dates(metas: list[StoreMeta], start: datetime | date, end: datetime | date) -> tuple[date, date]:
    """Local dates touched by the window. Plain dates mean local days (``end`` inclusive)."""
    if not isinstance(start, datetime) and not isinstance(end, datetime):
        return start, end
    s, e = _as_utc(start), _as_utc(end) - timedelta(microseconds=1)
    firsts = [s.astimezone(m.tz).date() for m in metas] or [s.date()]
    lasts = [e.astimezone(m.tz).date() for m in metas] or [e.date()]
    return min(firsts), max(lasts)


def resolve_stores(source: EventStore, config: StoresConfig, store: str | None = None) -> StoresConfig:
    """The configured stores plus any store found in the database (defaults: UTC, always open,
    line kinds from the events), limited to ``store`` when given."""
    resolved = config.with_stores(source.store_ids())
    extra = resolved.stores[len(config.stores) :]
    if extra:
        log.warning("stores without metadata (UTC, always open): %s", ", ".join(s.id for s in extra))
    stores = resolved.stores
    if store is not None:
        stores = [s for s in stores if s.id == store] or [StoreMeta(id=store)]
    return StoresConfig(rollup_timezone=config.rollup_timezone, stores=stores)


def compute_window(
    source: EventStore,
    start: datetime | date,
    end: datetime | date,
    config: StoresConfig,
    store: str | None = None,
    now_ns: int | None = None,
) -> tuple[KpiTables, int, dict[str, float]]:
    """Read the local days touched by the window (plus context and Wi-Fi look-back) and compute."""
    first, last = _local_dates(config.stores, start, end)
    grid = build_grid(config.stores, first, last, lookback_days=REPEAT_WINDOW_DAYS, context_days=1)
    t0 = time.perf_counter()
    raw = source.read_raw(
        config, grid.read_start_ns, grid.read_end_ns, wifi_start_ns=grid.lookback_start_ns, store=store
    )
    t1 = time.perf_counter()
    kpis = compute_kpis(raw, grid, config, now_ns=now_ns)  # with defaults for a store new since
    t2 = time.perf_counter()
    return kpis, raw.n_events + len(raw.pos), {"read": t1 - t0, "compute": t2 - t1}


def run_job(
    source: EventStore,
    start: datetime | date,
    end: datetime | date,
    stores: StoresConfig | None = None,
    campaigns: CampaignsConfig | None = None,
    store: str | None = None,
    *,
    write: bool = True,
    now: datetime | None = None,
) -> JobResult:
    """Compute (and, with ``write``, store) every KPI of the local days touched by [start, end).

    Campaigns overlapping the window get their uplift recomputed (over their own window and
    baseline weeks). Hours get their expected traffic from the weeks before (stored ``kpi_hourly``
    and the window itself); hours and days not over at ``now`` (default: the wall clock) get no
    anomaly or balance flag yet. Returns the KPI tables, the uplift rows and timings."""
    config = resolve_stores(source, stores or StoresConfig(), store)
    now_ns = datetime_to_ns(now or datetime.now(UTC))
    kpis, n_events, seconds = compute_window(source, start, end, config, store, now_ns)
    first, last = _local_dates(config.stores, start, end)
    t0 = time.perf_counter()
    add_expected(source, config, campaigns, (first, last), kpis, now_ns, store)
    seconds["expected"] = time.perf_counter() - t0
    if store is not None:
        # a one-store run must not overwrite the chain rollup with that store's values alone
        for name in ("hourly", "daily", "zone_hourly", "zone_daily", "line_daily"):
            setattr(kpis, name, [p for p in getattr(kpis, name) if p.tags.get("store") != ALL_STORES])
    result = JobResult(kpis=kpis, events_read=n_events, seconds=seconds)
    s_ns, e_ns = datetime_to_ns(_as_utc(start)), datetime_to_ns(_as_utc(end))
    for campaign in campaigns.campaigns if campaigns else []:
        if datetime_to_ns(campaign.start) < e_ns + 86_400_000_000_000 and datetime_to_ns(campaign.end) > s_ns:
            rows = campaign_rows(source, campaign, config)
            result.uplifts[campaign.name] = rows
            kpis.campaign += uplift_points(campaign, rows)
    if write:
        t0 = time.perf_counter()
        result.points_written = source.write_points(kpis.all_points())
        result.seconds["write"] = time.perf_counter() - t0
    return result


def campaign_rows(source: EventStore, campaign: Campaign, config: StoresConfig) -> list[Uplift]:
    """Uplift of one campaign: reads its window and the baseline weeks before it."""
    config = config.with_stores(campaign.stores)
    store = campaign.stores[0] if len(campaign.stores) == 1 else None
    begin = campaign.start - timedelta(weeks=campaign.baseline_weeks)
    first, last = _local_dates(config.stores, begin, campaign.end)
    grid = build_grid(config.stores, first, last)
    raw = source.read_raw(config, grid.read_start_ns, grid.read_end_ns, store=store)
    kpis = compute_kpis(raw, grid, config)  # the grid grows by any store found in the data
    assert kpis.slot_grid is not None
    assert kpis.slot_visitors is not None
    assert kpis.slot_covered is not None
    return campaign_uplift(campaign, kpis.slot_grid, raw.stores.labels, kpis.slot_visitors, kpis.slot_covered)


def report_campaign(
    source: EventStore,
    name: str,
    campaigns: CampaignsConfig,
    stores: StoresConfig | None = None,
    *,
    write: bool = True,
) -> tuple[Campaign, list[Uplift]]:
    campaign = campaigns.get(name)
    config = resolve_stores(source, stores or StoresConfig())
    rows = campaign_rows(source, campaign, config)
    if write:
        source.write_points(uplift_points(campaign, rows))
    return campaign, rows


# --------------------------------------------------------------------------- expected traffic, forecast


def _stored_visitors(
    source: EventStore, grid: Grid, labels: list[str], before: date, store: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """Visitors per slot of ``grid`` from the stored ``kpi_hourly`` points of the local days before
    ``before`` (an hour with a point is an hour with data), and whether each slot has one."""
    visitors, found = np.zeros(grid.n_slots), np.zeros(grid.n_slots, bool)
    codes = {label: i for i, label in enumerate(labels)}
    points = [
        p
        for p in source.read_points(KPI_HOURLY, grid.read_start_ns, grid.read_end_ns, store=store)
        if p.tags.get("store") in codes and "visitors" in p.fields
    ]
    if points:
        slot = grid.slot_of(
            np.array([codes[p.tags["store"]] for p in points], np.int64),
            np.array([p.ts_ns for p in points], np.int64),
        )
        ok = slot >= 0
        visitors[slot[ok]] = [p.number("visitors") for p, keep in zip(points, ok, strict=True) if keep]
        found[slot[ok]] = True
    found &= grid.day_ordinal[grid.slot_day] < before.toordinal()
    return visitors, found


def add_expected(
    source: EventStore,
    config: StoresConfig,
    campaigns: CampaignsConfig | None,
    window: tuple[date, date],
    kpis: KpiTables,
    now_ns: int,
    store: str | None = None,
) -> None:
    """Add visitors_expected (+ interval) and traffic_anomaly to the window's store-hour points."""
    first, last = window
    labels = [m.id for m in config.stores]
    grid = build_grid(config.stores, first - timedelta(weeks=WEEKS), last)
    visitors, seen = _stored_visitors(source, grid, labels, first, store)
    current, done, covered = kpis.slot_grid, kpis.slot_visitors, kpis.slot_covered
    assert current is not None
    assert done is not None
    assert covered is not None
    # The window's own hours, just computed (a store that appeared during the read has no history).
    mine = np.flatnonzero(current.slot_emit & covered & (current.slot_store < len(labels)))
    at = grid.slot_of(current.slot_store[mine], current.slot_start[mine])
    visitors[at[at >= 0]], seen[at[at >= 0]] = done[mine[at >= 0]], True
    usable = seen & ~campaign_slots(grid, labels, campaigns.campaigns if campaigns else [])
    targets = np.flatnonzero(grid.day_ordinal >= first.toordinal())
    history = history_of(grid, config.stores, visitors, usable)
    cols = slot_expectation(grid, targets, expect(history, targets, targets))
    flags = anomaly(visitors, cols["visitors_expected_low"], cols["visitors_expected_high"])
    cols["traffic_anomaly"] = np.where(seen & (grid.slot_end <= now_ns), flags, np.nan)
    extra: dict[tuple[str, int], dict[str, float | int]] = {}
    for i in np.flatnonzero(seen & np.isfinite(cols["visitors_expected"])):
        fields = {k: float(v[i]) for k, v in cols.items() if np.isfinite(v[i])}
        if "traffic_anomaly" in fields:
            fields["traffic_anomaly"] = int(fields["traffic_anomaly"])
        extra[(labels[grid.slot_store[i]], int(grid.slot_start[i]))] = fields
    kpis.hourly = [
        Point(p.measurement, p.tags, {**p.fields, **extra.get((p.tags["store"], p.ts_ns), {})}, p.ts_ns)
        for p in kpis.hourly
    ]


def run_forecast(
    source: EventStore,
    first: date,
    days: int = 7,
    stores: StoresConfig | None = None,
    campaigns: CampaignsConfig | None = None,
    store: str | None = None,
    *,
    write: bool = True,
) -> list[Point]:
    """``kpi_forecast_hourly``: expected visitors (and interval) of every open hour of the local
    days ``first`` .. ``first + days - 1``, from the stored ``kpi_hourly`` of the weeks before
    ``first`` (campaign hours and outlier days left out)."""
    config = resolve_stores(source, stores or StoresConfig(), store)
    labels = [m.id for m in config.stores]
    grid = build_grid(config.stores, first - timedelta(weeks=WEEKS), first + timedelta(days=days - 1))
    visitors, usable = _stored_visitors(source, grid, labels, first, store)
    usable &= ~campaign_slots(grid, labels, campaigns.campaigns if campaigns else [])
    targets = np.flatnonzero(grid.day_ordinal >= first.toordinal())
    starts = {int(grid.day_store[t]): int(t) for t in targets[::-1]}  # each store's first forecast day
    ends = np.array([starts[int(grid.day_store[t])] for t in targets], np.int64)
    cols = slot_expectation(
        grid, targets, expect(history_of(grid, config.stores, visitors, usable), targets, ends)
    )
    day = grid.slot_day
    is_open = (
        (grid.day_open[day] >= 0)
        & (grid.slot_end > grid.day_open[day])
        & (grid.slot_start < grid.day_close[day])
    )
    points = [
        Point(
            KPI_FORECAST_HOURLY,
            {"store": labels[grid.slot_store[i]]},
            {k: float(v[i]) for k, v in cols.items()},
            int(grid.slot_start[i]),
        )
        for i in np.flatnonzero(is_open & np.isfinite(cols["visitors_expected"]))
    ]
    if write:
        source.write_points(points)
    return points
