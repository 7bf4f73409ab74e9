"""Every dashboard query over the simulator's weeks, filled through the real pipeline, against its truth.

The fill is the session's ``simulated_pipeline`` (``tests/pipeline_support.py``): simulated events
published with paho to the real Mosquitto, the real ``footfall ingest`` subprocess writing InfluxDB,
POS through ``footfall pos import``, the analytics job; then, through the same broker, occupancy
reports of the camera view and a few bad messages that ingest dead-letters. Each query is rendered
with ``render_query`` exactly as Grafana substitutes its macros, for every simulated store.

Expectations come from the simulator (``sim.truth``, its people and its events), never from what
InfluxDB returns. Exact (to float rounding) throughout: every panel either reads KPI points the job
wrote from the simulated events, or aggregates raw events whose values the simulator knows; the
InfluxQL estimators (``median``, ``percentile``) are checked with the same definitions (numpy's
median; InfluxQL's nearest-rank percentile) on the simulator's true dwell times.

Time: the "today" panels (``now/d``) are checked on every simulated local day of each store, with
"now" at the day's end and at 15:00 local, the week-shifted one on the local day seven calendar days
earlier (Grafana shifts in calendar days), the
``30d`` panel over the 30 days before the store's last simulated midnight. Queries with ``now()``
(devices online) have it replaced by a chosen simulated instant T, with ``time <= T`` added: at a real
T no later point would exist. Dead letters are stamped by ingest with the time it received them, so
that panel is checked over the fill's wall-clock window instead.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from footfall.contracts.events import CrossingEvent, HeartbeatEvent
from footfall.contracts.influx import Series
from footfall.contracts.measurements import ALL_STORES, datetime_to_ns, event_to_point
from footfall.dashboards.definitions import DASHBOARDS, MARKETING, ONLINE_WINDOW, panel_queries
from footfall.dashboards.spec import PanelQuery, render_query
from tests.pipeline_support import PipelineFill
from tests.simulator import expected_visitors
from tests.test_analytics_e2e import line_truth
from tests.test_dashboards_queries import influx_percentile

pytestmark = pytest.mark.slow

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
CAMPAIGN = "autumn-promo"


# ---- time and truth helpers ----------------------------------------------------------------------


def ms(ts: datetime) -> int:
    return datetime_to_ns(ts) // 1_000_000


def local_midnight(fill: PipelineFill, store: str, day: date) -> datetime:
    tz = ZoneInfo(fill.sim.stores.meta(store).timezone)  # type: ignore[union-attr]
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def local_day_range(fill: PipelineFill, store: str, day: date) -> tuple[int, int]:
    """Grafana's ``now/d`` in the store's time zone: local midnight up to the last millisecond."""
    return ms(local_midnight(fill, store, day)), ms(local_midnight(fill, store, day + timedelta(days=1))) - 1


def sim_days(fill: PipelineFill) -> list[date]:
    return [fill.sim.start + timedelta(days=i) for i in range((fill.sim.end - fill.sim.start).days + 1)]


def weeks_range(fill: PipelineFill) -> tuple[int, int]:
    """From the earliest store's first local midnight to the latest store's last local midnight."""
    stores = stores_of(fill)
    start = min(local_day_range(fill, s, fill.sim.start)[0] for s in stores)
    return start, max(local_day_range(fill, s, fill.sim.end)[1] for s in stores)


def stores_of(fill: PipelineFill) -> list[str]:
    return sorted(m.id for m in fill.sim.stores.stores)


def bucket(ts_ms: int, size_ms: int) -> int:
    return ts_ms - ts_ms % size_ms


def daily_truth(fill: PipelineFill, store: str, day: date) -> dict[str, float] | None:
    return fill.sim.truth.daily.get((store, datetime_to_ns(local_midnight(fill, store, day))))


def heartbeats(fill: PipelineFill) -> dict[tuple[str, str], list[HeartbeatEvent]]:
    beats: dict[tuple[str, str], list[HeartbeatEvent]] = defaultdict(list)
    for e in fill.sim.events:
        if isinstance(e, HeartbeatEvent):
            beats[(e.store, e.device)].append(e)
    return beats


def online_at(fill: PipelineFill, stores: list[str], at: datetime) -> int:
    window = timedelta(minutes=int(ONLINE_WINDOW.removesuffix("m")))
    return sum(
        1
        for (store, _), beats in heartbeats(fill).items()
        if store in stores and any(at - window < b.ts <= at for b in beats)
    )


# ---- running a panel's query ---------------------------------------------------------------------


def run(
    fill: PipelineFill,
    query: PanelQuery,
    *,
    store: str | list[str],
    start_ms: int,
    end_ms: int,
    interval: str = "1h",
    now_ms: int | None = None,
    expect_data: bool = True,
) -> list[Series]:
    rendered = render_query(query.influxql, store=store, start_ms=start_ms, end_ms=end_ms, interval=interval)
    if now_ms is not None:
        # now() -> the simulated instant; nothing after it exists yet at that instant.
        rendered = re.sub(
            r"time > now\(\) - (\w+)", rf"time > {now_ms}ms - \1 AND time <= {now_ms}ms", rendered
        ).replace("now()", f"{now_ms}ms")  # (a forecast's range ahead of now)
    assert not re.search(r"\$(store|timeFilter|__interval)|now\(\)", rendered), rendered
    series = fill.client.query(rendered, epoch="ms")
    if expect_data:
        values = [v for s in series for row in s.values for v in row[1:] if v is not None]
        assert values, f"no data for {query.panel_title} ({store}): {rendered}"
    return series


def single(series: list[Series]) -> Any:
    assert len(series) == 1, series
    assert len(series[0].values) == 1, series
    return series[0].values[0][1]


def by_tag(series: list[Series], *tags: str) -> dict[Any, Series]:
    return {tuple(s.tags[t] for t in tags) if len(tags) > 1 else s.tags[tags[0]]: s for s in series}


def column_by_time(series: Series, column: str) -> dict[int, Any]:
    return {t: v for t, v in zip(series.column("time"), series.column(column), strict=True) if v is not None}


# ---- store manager ------------------------------------------------------------------------------


def check_store_variable(fill: PipelineFill, q: PanelQuery) -> None:
    (series,) = fill.client.query(q.influxql)
    values = series.column("value")
    if q.dashboard_uid == MARKETING.uid:
        # kpi_daily holds the chain rollup too; the variable's regex (valid Python as well) hides it.
        assert ALL_STORES in values
        pattern = re.compile(MARKETING.store_variable.regex.strip("/"))
        values = [v for v in values if pattern.fullmatch(v)]
    assert sorted(values) == stores_of(fill)


# A "now" inside the day for the ``now/d`` panels: 15:00 local; the hour in progress has no KPI point
# yet (the job writes whole hours), so the range ends at the millisecond before it.
NOW_HOUR = 15


def hourly_sum(fill: PipelineFill, store: str, field: str, start_ms: int, end_ms: int) -> float | None:
    """The truth's hourly field summed over the points in a range; None when there is no point."""
    values = [
        f.get(field, 0.0)
        for (s, ns), f in fill.sim.truth.hourly.items()
        if s == store and start_ms <= ns // 1_000_000 <= end_ms
    ]
    return sum(values) if values else None


def today_ranges(fill: PipelineFill, store: str, day: date) -> list[tuple[int, int]]:
    """``now/d`` with "now" at the end of the local day and at NOW_HOUR (local)."""
    start, end = local_day_range(fill, store, day)
    tz = ZoneInfo(fill.sim.stores.meta(store).timezone)  # type: ignore[union-attr]
    now = datetime(day.year, day.month, day.day, NOW_HOUR, tzinfo=tz)
    return [(start, end), (start, ms(now) - 1)]


def check_today_sums(
    fill: PipelineFill, q: PanelQuery, shift: timedelta, expected: Callable[[float, float], float]
) -> int:
    """Check a ``now/d`` stat on every store-day, at both "now"s, against ``expected(visitors,
    transactions)`` from the truth; ``shift``: the panel's time shift in calendar days. Returns how
    many checks differ from the unshifted day's value (a wrong shift would show)."""
    differs = checked = 0
    for store in stores_of(fill):
        for day in sim_days(fill)[shift.days :]:
            for (start, end), (today_start, today_end) in zip(
                today_ranges(fill, store, day - shift), today_ranges(fill, store, day), strict=True
            ):
                visitors = hourly_sum(fill, store, "visitors", start, end)
                if not visitors:  # no point (outage) or no visitor (closed, or before opening)
                    continue
                transactions = hourly_sum(fill, store, "transactions", start, end) or 0.0
                if end - start > DAY_MS - HOUR_MS:  # the whole day: the daily truth agrees
                    assert daily_truth(fill, store, day - shift)["visitors"] == visitors  # type: ignore[index]
                got = single(run(fill, q, store=store, start_ms=start, end_ms=end))
                assert got == pytest.approx(expected(visitors, transactions)), (store, day, start, end)
                checked += 1
                unshifted = hourly_sum(fill, store, "visitors", today_start, today_end)
                differs += unshifted != visitors
    assert checked >= 2 * 3 * (7 * fill.sim.config.weeks - shift.days) - 30  # store C closes on Sundays
    return differs


def check_visitors_today(fill: PipelineFill, q: PanelQuery) -> None:
    check_today_sums(fill, q, timedelta(0), lambda visitors, _: visitors)


def check_same_weekday_last_week(fill: PipelineFill, q: PanelQuery) -> None:
    # the panel's timeShift 7d: seven calendar days earlier, in the store's time zone
    assert check_today_sums(fill, q, timedelta(days=7), lambda visitors, _: visitors) > 100


def check_conversion_today(fill: PipelineFill, q: PanelQuery) -> None:
    check_today_sums(fill, q, timedelta(0), lambda visitors, transactions: transactions / visitors)


def check_occupancy_now(fill: PipelineFill, q: PanelQuery) -> None:
    for store, (at, inside) in fill.occupancy_now.items():
        # The panel's relative time "15m": the quarter hour before "now" = the simulated instant.
        start = ms(at - timedelta(minutes=15))
        got = run(fill, q, store=store, start_ms=start, end_ms=ms(at), expect_data=inside > 0)
        assert (single(got) if got else 0) == inside, store
    assert sum(inside for _, inside in fill.occupancy_now.values()) > 0


def hourly_truth(fill: PipelineFill, store: str, field: str) -> dict[int, float]:
    """The truth's hourly field, keyed by the UTC hour bucket holding its point (Kolkata's local hours
    start at :30 UTC: one point per bucket all the same)."""
    return {
        bucket(ns // 1_000_000, HOUR_MS): f[field]
        for (s, ns), f in fill.sim.truth.hourly.items()
        if s == store and field in f
    }


def check_hourly_series(fill: PipelineFill, q: PanelQuery, columns: dict[str, str]) -> None:
    start, end = weeks_range(fill)
    for store in stores_of(fill):
        (series,) = run(fill, q, store=store, start_ms=start, end_ms=end)
        for column, field in columns.items():
            truth = hourly_truth(fill, store, field)
            got = column_by_time(series, column)
            assert set(got) == set(truth), (store, column)
            assert [got[t] for t in sorted(truth)] == pytest.approx([truth[t] for t in sorted(truth)])


def check_hourly_traffic(fill: PipelineFill, q: PanelQuery) -> None:
    check_hourly_series(fill, q, {"visitors": "visitors", "walk-bys": "walkbys"})


def check_conversion_and_capture(fill: PipelineFill, q: PanelQuery) -> None:
    check_hourly_series(fill, q, {"conversion": "conversion", "capture rate": "capture_rate"})


def check_dwell_by_zone(fill: PipelineFill, q: PanelQuery) -> None:
    start, end = weeks_range(fill)
    for store in stores_of(fill):
        truth: dict[str, list[float]] = defaultdict(list)
        for (s, zone, _), dwell in fill.sim.truth.zone_dwell_daily.items():
            if s == store:
                truth[zone] += dwell
        rows = by_tag(run(fill, q, store=store, start_ms=start, end_ms=end), "zone")
        assert truth, store
        assert set(rows) >= set(truth), store
        for zone, dwell in truth.items():
            _, visits, median, p90 = rows[zone].values[0]
            assert visits == len(dwell), (store, zone)
            assert median == pytest.approx(float(np.median(dwell))), (store, zone)
            assert p90 == pytest.approx(influx_percentile(dwell, 90)), (store, zone)


def check_sales_per_visitor(fill: PipelineFill, q: PanelQuery) -> None:
    for store in stores_of(fill):
        now = ms(local_midnight(fill, store, fill.sim.end + timedelta(days=1)))
        start = now - 30 * DAY_MS  # the panel's relative time "30d"
        truth = {
            bucket(ns // 1_000_000, DAY_MS): f["sales_per_visitor"]
            for (s, ns), f in fill.sim.truth.daily.items()
            if s == store and "sales_per_visitor" in f and start <= ns // 1_000_000 <= now
        }
        (series,) = run(fill, q, store=store, start_ms=start, end_ms=now)
        got = column_by_time(series, "sales per visitor")
        assert set(got) == set(truth), store
        # store C is closed on Sundays, and its covered camera counted nobody on the broken day
        assert len(truth) >= 24, store
        assert [got[t] for t in sorted(truth)] == pytest.approx([truth[t] for t in sorted(truth)])


def check_zone_visits_per_hour(fill: PipelineFill, q: PanelQuery) -> None:
    start, end = weeks_range(fill)
    for store in stores_of(fill):
        truth = {
            (zone, bucket(ns // 1_000_000, HOUR_MS)): len(dwell)
            for (s, zone, ns), dwell in fill.sim.truth.zone_dwell_hourly.items()
            if s == store
        }
        got = {
            (zone, t): v
            for zone, s in by_tag(run(fill, q, store=store, start_ms=start, end_ms=end), "zone").items()
            for t, v in s.values
        }
        assert got == truth, store


# ---- marketing ---------------------------------------------------------------------------------------


def campaign_truth(fill: PipelineFill) -> tuple[datetime, datetime, dict[str, int]]:
    (campaign,) = [c for c in fill.sim.campaigns.campaigns if c.name == CAMPAIGN]
    return campaign.start, campaign.end, dict(fill.sim.truth.campaign_extra)


def campaign_rows(fill: PipelineFill, q: PanelQuery) -> dict[str, list[float]]:
    start, end = weeks_range(fill)
    campaign_start, campaign_end, extra = campaign_truth(fill)
    stores = stores_of(fill)
    # store C is not in the campaign: no row for it alone
    for store in stores:
        got = run(fill, q, store=store, start_ms=start, end_ms=end, expect_data=store in extra)
        assert {s.tags["store"] for s in got} == ({store} if store in extra else set())
    rows = by_tag(run(fill, q, store=stores, start_ms=start, end_ms=end), "store")
    assert set(rows) == set(extra)
    out = {}
    for store, series in rows.items():
        assert series.tags["campaign"] == CAMPAIGN
        (row,) = series.values
        # (row[0] is the range start: InfluxQL stamps several selectors' row so; the annotation, a raw
        # select, checks the campaign's own point time)
        # the visitors in the campaign's hours, from the simulated hours
        in_campaign = sum(
            f["visitors"]
            for (s, ns), f in fill.sim.truth.hourly.items()
            if s == store and ms(campaign_start) <= ns // 1_000_000 < ms(campaign_end)
        )
        assert row[1] == in_campaign, store
        out[store] = row[1:]
    return out


def check_campaign_against_baseline(fill: PipelineFill, q: PanelQuery) -> None:
    extra = campaign_truth(fill)[2]
    for store, (visitors, baseline, low, high) in campaign_rows(fill, q).items():
        # The baseline band (visitors - CI) holds the visitors without the injected extra ones.
        assert low <= visitors - extra[store] <= high, store
        assert low <= baseline <= high
        assert visitors > high  # the uplift is visible: above the whole band


def check_campaign_uplift(fill: PipelineFill, q: PanelQuery) -> None:
    extra = campaign_truth(fill)[2]
    for store, (visitors, baseline, uplift, uplift_pct, ci_low, ci_high) in campaign_rows(fill, q).items():
        assert uplift == pytest.approx(visitors - baseline)
        assert uplift_pct == pytest.approx(100 * uplift / baseline)
        assert 0 < ci_low <= extra[store] <= ci_high, store  # the 40 % lift injected, detected


def check_campaign_annotation(fill: PipelineFill, q: PanelQuery) -> None:
    start, end = weeks_range(fill)
    campaign_start, _, extra = campaign_truth(fill)
    series = run(fill, q, store=stores_of(fill), start_ms=start, end_ms=end)
    rows = [row for s in series for row in s.values]
    assert len(rows) == len(extra)  # one mark per campaign store
    for t, uplift_pct, campaign in rows:
        assert (t, campaign) == (ms(campaign_start), CAMPAIGN)
        assert uplift_pct > 0


def utc_day_truth(fill: PipelineFill, store: str, field: str) -> dict[int, float]:
    return {
        bucket(ns // 1_000_000, DAY_MS): f[field]
        for (s, ns), f in fill.sim.truth.daily.items()
        if s == store and field in f
    }


def check_visitors_by_store(fill: PipelineFill, q: PanelQuery) -> None:
    start, end = weeks_range(fill)
    series = by_tag(run(fill, q, store=stores_of(fill), start_ms=start, end_ms=end), "store")
    assert sorted(series) == stores_of(fill)  # the rollup is not a store
    for store, s in series.items():
        assert column_by_time(s, "sum") == utc_day_truth(fill, store, "visitors"), store


def check_entrances_by_channel(fill: PipelineFill, q: PanelQuery) -> None:
    start, end = weeks_range(fill)
    truth: Counter[tuple[str, str]] = Counter()
    for e in fill.sim.events:
        if isinstance(e, CrossingEvent) and e.kind == "entrance" and e.direction == "in":
            point = event_to_point(e)
            truth[(e.store, point.tags["source"])] += int(point.fields["count"])
    series = run(fill, q, store=stores_of(fill), start_ms=start, end_ms=end)
    got = {key: sum(v for _, v in s.values) for key, s in by_tag(series, "store", "source").items()}
    assert got == dict(truth)
    for store in stores_of(fill):  # raw crossings: the visitors plus the staff's entrances
        visitors = sum(f["visitors"] for (s, _), f in fill.sim.truth.daily.items() if s == store)
        assert sum(v for (s, _), v in got.items() if s == store) > visitors


def check_chain_rollup(fill: PipelineFill, q: PanelQuery) -> None:
    start, end = weeks_range(fill)
    (series,) = run(fill, q, store="ignored", start_ms=start, end_ms=end)
    for column, field in (("visitors", "visitors"), ("transactions", "transactions")):
        # rollup days are stamped at the UTC midnight of the local date: one point per UTC day
        assert column_by_time(series, column) == utc_day_truth(fill, ALL_STORES, field), column


def check_stores_compared(fill: PipelineFill, q: PanelQuery) -> None:
    start, end = weeks_range(fill)
    rows = by_tag(run(fill, q, store=stores_of(fill), start_ms=start, end_ms=end), "store")
    assert sorted(rows) == stores_of(fill)
    for store, series in rows.items():
        days = [f for (s, _), f in fill.sim.truth.daily.items() if s == store]
        visitors, revenue, transactions = (
            sum(f[k] for f in days) for k in ("visitors", "revenue", "transactions")
        )
        _, got_visitors, got_revenue, conversion = series.values[0]
        assert got_visitors == visitors
        assert got_revenue == pytest.approx(revenue)
        assert conversion == pytest.approx(transactions / visitors)


# ---- ops -------------------------------------------------------------------------------------------


def ops_instants(fill: PipelineFill) -> list[datetime]:
    """Simulated "now"s: a minute after the last heartbeat of the weeks (one store still beating), and
    an hour into store C's outage (its camera silent, the others beating)."""
    last = max(b.ts for beats in heartbeats(fill).values() for b in beats)
    (outage_day_ns,) = {ns for s, ns in fill.sim.truth.outage_days if s == "store-c"}
    tz = ZoneInfo(fill.sim.stores.meta("store-c").timezone)  # type: ignore[union-attr]
    day = datetime.fromtimestamp(outage_day_ns / 1e9, tz).date()
    outage_hour = fill.sim.config.outage[2]  # type: ignore[index]
    in_outage = datetime(day.year, day.month, day.day, outage_hour + 1, 1, 37, tzinfo=tz).astimezone(UTC)
    return [last + timedelta(minutes=1), in_outage]


def check_devices_reporting(fill: PipelineFill, q: PanelQuery) -> None:
    start, end = weeks_range(fill)
    devices = heartbeats(fill)
    assert single(run(fill, q, store=stores_of(fill), start_ms=start, end_ms=end)) == len(devices)
    for store in stores_of(fill):
        got = single(run(fill, q, store=store, start_ms=start, end_ms=end))
        assert got == sum(s == store for s, _ in devices)


def check_devices_online(fill: PipelineFill, q: PanelQuery) -> None:
    stores = stores_of(fill)
    start = weeks_range(fill)[0]
    seen = set()
    for at in ops_instants(fill):
        expected = online_at(fill, stores, at)
        got = run(fill, q, store=stores, start_ms=start, end_ms=ms(at), now_ms=ms(at), expect_data=False)
        assert (single(got) if got else 0) == expected, at
        seen.add(expected)
    assert seen == {1, 2}  # only store B beats late in the last day; store C is silent in its outage


def check_devices_offline(fill: PipelineFill, q: PanelQuery) -> None:
    """The panel shows the expression $A - $B (A: reporting in the range, B: online); each ref is run
    over the same range and instant, and the difference checked."""
    stores = stores_of(fill)
    start = weeks_range(fill)[0]
    other = "B" if q.ref == "A" else "A"
    (partner,) = [
        p
        for p in panel_queries()
        if (p.dashboard_uid, p.panel_title, p.ref) == (q.dashboard_uid, q.panel_title, other)
    ]
    reporting_q, online_q = (q, partner) if q.ref == "A" else (partner, q)
    for at in ops_instants(fill):
        reporting = single(run(fill, reporting_q, store=stores, start_ms=start, end_ms=ms(at), now_ms=ms(at)))
        online = run(
            fill, online_q, store=stores, start_ms=start, end_ms=ms(at), now_ms=ms(at), expect_data=False
        )
        offline = reporting - (single(online) if online else 0)
        expected = len(heartbeats(fill)) - online_at(fill, stores, at)
        assert offline == expected > 0, at


def device_rows(
    fill: PipelineFill, q: PanelQuery, window: tuple[int, int] | None = None
) -> list[tuple[list[HeartbeatEvent], list[Any]]]:
    """A per-device table over the weeks (or ``window``, ms): each device's heartbeats in it in
    time order, and its one row."""
    start, end = window or weeks_range(fill)
    series = by_tag(run(fill, q, store=stores_of(fill), start_ms=start, end_ms=end), "store", "device")
    beats = {
        key: inside
        for key, all_beats in heartbeats(fill).items()
        if (inside := [b for b in all_beats if start <= ms(b.ts) <= end])
    }
    assert set(series) == set(beats)
    rows = []
    for key, s in series.items():
        (row,) = s.values
        rows.append((sorted(beats[key], key=lambda b: b.ts), row))
    return rows


def check_last_heartbeat(fill: PipelineFill, q: PanelQuery) -> None:
    for ordered, row in device_rows(fill, q):
        last = ordered[-1]
        assert abs(row[0] - ms(last.ts)) <= 1  # the sub-millisecond id offset
        assert row[1:] == [last.fps, last.latency_ms, last.dropped_frames, last.queue_depth, last.uptime_s]


def health_check(
    field: str, reduce: Callable[[list[float]], float]
) -> Callable[[PipelineFill, PanelQuery], None]:
    def check(fill: PipelineFill, q: PanelQuery) -> None:
        start, end = weeks_range(fill)
        for store in stores_of(fill):
            truth: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
            for (s, device), beats in heartbeats(fill).items():
                for b in beats:
                    if s == store:
                        truth[device][bucket(ms(b.ts), HOUR_MS)].append(float(getattr(b, field)))
            series = by_tag(run(fill, q, store=store, start_ms=start, end_ms=end, interval="1h"), "device")
            assert set(series) == set(truth)
            for device, s in series.items():
                want = {t: reduce(v) for t, v in truth[device].items()}
                got = dict(s.values)
                assert set(got) == set(want), (store, device)  # the outage hours have no bucket
                assert [got[t] for t in sorted(want)] == pytest.approx([want[t] for t in sorted(want)])

    return check


def check_dead_letters(fill: PipelineFill, q: PanelQuery) -> None:
    first, last = fill.deadletter_window
    start, end = ms(first) - 1000, ms(last) + 1000
    series = by_tag(run(fill, q, store=stores_of(fill), start_ms=start, end_ms=end, interval="1m"), "reason")
    assert {reason: sum(v for _, v in s.values) for reason, s in series.items()} == fill.deadletters
    # none over the simulated weeks: every simulated event was valid
    assert not run(
        fill,
        q,
        store=stores_of(fill),
        start_ms=weeks_range(fill)[0],
        end_ms=weeks_range(fill)[1],
        expect_data=False,
    )


# ---- expected traffic, forecast, camera issues, line balance (issue #12) ---------------------------


def check_today_against_expected(fill: PipelineFill, q: PanelQuery) -> None:
    """Visitors as the simulator counted them; expected, interval and anomaly as the job wrote them."""
    start, end = weeks_range(fill)
    job = {(p.tags["store"], p.ts_ns): p.fields for p in fill.result.kpis.hourly}
    fields = {
        "expected": "visitors_expected",
        "expected low": "visitors_expected_low",
        "expected high": "visitors_expected_high",
        "anomaly": "traffic_anomaly",
    }
    for store in stores_of(fill):
        (series,) = run(fill, q, store=store, start_ms=start, end_ms=end)
        assert column_by_time(series, "visitors") == pytest.approx(hourly_truth(fill, store, "visitors"))
        for column, name in fields.items():
            want = {
                bucket(ns // 1_000_000, HOUR_MS): f[name]
                for (s, ns), f in job.items()
                if s == store and name in f
            }
            assert want, (store, name)
            assert column_by_time(series, column) == pytest.approx(want), (store, column)


def check_next_weeks_forecast(fill: PipelineFill, q: PanelQuery) -> None:
    """Seen at midnight after the simulated weeks: the forecast's next 7 days, per store, and within
    15 % of the simulator's rates per open hour."""
    first = fill.sim.end + timedelta(days=1)
    rates = expected_visitors(fill.sim.config, fill.sim.stores, [first + timedelta(days=k) for k in range(7)])
    errors = []
    for store in stores_of(fill):
        at = ms(local_midnight(fill, store, first))
        (series,) = run(fill, q, store=store, start_ms=at - DAY_MS, end_ms=at, now_ms=at)
        want = {
            bucket(p.ts_ns // 1_000_000, HOUR_MS): p.fields for p in fill.forecast if p.tags["store"] == store
        }
        got = column_by_time(series, "expected")
        assert got == pytest.approx({t: f["visitors_expected"] for t, f in want.items()})
        assert column_by_time(series, "low") == pytest.approx(
            {t: f["visitors_expected_low"] for t, f in want.items()}
        )
        assert column_by_time(series, "high") == pytest.approx(
            {t: f["visitors_expected_high"] for t, f in want.items()}
        )
        errors += [
            abs(got[bucket(ns // 1_000_000, HOUR_MS)] - r) / r for (s, ns), r in rates.items() if s == store
        ]
    assert len(errors) == len(rates)
    assert float(np.mean(errors)) <= 0.15


def check_camera_issues_now(fill: PipelineFill, q: PanelQuery) -> None:
    """At instants inside and after the simulated issues: each camera's latest heartbeat's issues."""
    stores = stores_of(fill)
    moments = [begin + (end - begin) / 3 for _, _, begin, end in fill.sim.truth.camera_issues]
    moments.append(max(end for *_, end in fill.sim.truth.camera_issues) + timedelta(hours=1))
    for at in moments:
        window = [
            b
            for beats in heartbeats(fill).values()
            for b in beats
            if at - timedelta(minutes=15) <= b.ts <= at
        ]
        want = {(b.store, b.device): b.camera_issues for b in sorted(window, key=lambda b: b.ts)}
        got = run(
            fill, q, store=stores, start_ms=ms(at - timedelta(minutes=15)), end_ms=ms(at), now_ms=ms(at)
        )
        assert {key: s.values[0][1] for key, s in by_tag(got, "store", "device").items()} == want, at
        assert any(want.values()) == (at < moments[-1])


def check_people_size_at_input(fill: PipelineFill, q: PanelQuery) -> None:
    """Per camera, over the panel's last hour at instants across the weeks: its last input, and
    the median of its beats' people sizes against the aim (beats that saw nobody left out)."""
    last_beat = max(ms(b.ts) for beats in heartbeats(fill).values() for b in beats)
    left_out = 0
    for days in (0, 3, 9, 16, 24):
        # At other minutes of the hour too, and never on a beat (ingest moves it by under a ms).
        end = last_beat + 150_000 - days * (DAY_MS + 20 * 60_000)
        for ordered, row in device_rows(fill, q, (end - HOUR_MS, end)):
            sizes = [b.person_px for b in ordered if b.person_px is not None]
            left_out += len(ordered) - len(sizes)
            last = ordered[-1]
            assert last.person_px_aim is not None
            assert row[1] == last.detector_input
            share = float(np.median(sizes)) / last.person_px_aim
            assert row[2:] == pytest.approx([float(np.median(sizes)), last.person_px_aim, share])
    assert left_out > 0


def check_camera_issue_history(fill: PipelineFill, q: PanelQuery) -> None:
    start, end = weeks_range(fill)
    series = run(fill, q, store=stores_of(fill), start_ms=start, end_ms=end)
    rows = sorted((s.tags["store"], row[3], row[1], row[0] // 1000) for s in series for row in s.values)
    want = sorted(
        (e.store, e.issue, e.state, ms(e.ts) // 1000)
        for e in fill.sim.events
        if e.type == "camera_issue"  # type: ignore[union-attr]
    )
    assert rows == want
    assert {issue for _, issue, *_ in want} == {"covered", "moved"}


def check_in_out_balance(fill: PipelineFill, q: PanelQuery) -> None:
    start, end = weeks_range(fill)
    series = by_tag(
        run(fill, q, store=stores_of(fill), start_ms=start, end_ms=end), "store", "device", "line"
    )
    truth = line_truth(fill.sim)
    assert set(series) == {(store, "cam-1", "door") for store, _ in truth}
    for (store, device, line), s in series.items():
        want = {ns // 1_000_000: out / entries for (st, ns), (entries, out) in truth.items() if st == store}
        assert dict(s.values) == pytest.approx(want), (store, device, line)


CHECKS: dict[tuple[str, str], Callable[[PipelineFill, PanelQuery], None]] = {
    ("footfall-store", "$store variable"): check_store_variable,
    ("footfall-store", "Visitors today"): check_visitors_today,
    ("footfall-store", "Same weekday last week"): check_same_weekday_last_week,
    ("footfall-store", "Occupancy now"): check_occupancy_now,
    ("footfall-store", "Conversion today"): check_conversion_today,
    ("footfall-store", "Hourly traffic"): check_hourly_traffic,
    ("footfall-store", "Conversion and capture rate"): check_conversion_and_capture,
    ("footfall-store", "Dwell by zone"): check_dwell_by_zone,
    ("footfall-store", "Sales per visitor"): check_sales_per_visitor,
    ("footfall-store", "Zone visits per hour"): check_zone_visits_per_hour,
    ("footfall-store", "Today against expected"): check_today_against_expected,
    ("footfall-store", "Next week's forecast"): check_next_weeks_forecast,
    ("footfall-marketing", "$store variable"): check_store_variable,
    ("footfall-marketing", "annotation Campaigns"): check_campaign_annotation,
    ("footfall-marketing", "Campaign visitors against baseline"): check_campaign_against_baseline,
    ("footfall-marketing", "Campaign uplift"): check_campaign_uplift,
    ("footfall-marketing", "Visitors by store"): check_visitors_by_store,
    ("footfall-marketing", "Entrances by store and channel"): check_entrances_by_channel,
    ("footfall-marketing", "Chain rollup"): check_chain_rollup,
    ("footfall-marketing", "Stores compared"): check_stores_compared,
    ("footfall-ops", "$store variable"): check_store_variable,
    ("footfall-ops", "Devices reporting"): check_devices_reporting,
    ("footfall-ops", "Devices online"): check_devices_online,
    ("footfall-ops", "Devices offline"): check_devices_offline,
    ("footfall-ops", "Last heartbeat per device"): check_last_heartbeat,
    ("footfall-ops", "Frames per second"): health_check("fps", lambda v: float(np.mean(v))),
    ("footfall-ops", "Latency"): health_check("latency_ms", max),
    ("footfall-ops", "Dropped frames"): health_check("dropped_frames", max),
    ("footfall-ops", "Store-and-forward backlog"): health_check("queue_depth", max),
    ("footfall-ops", "Camera issues now"): check_camera_issues_now,
    ("footfall-ops", "Camera issue history"): check_camera_issue_history,
    ("footfall-ops", "People size at the detector's input"): check_people_size_at_input,
    ("footfall-ops", "In/out balance per line"): check_in_out_balance,
    ("footfall-ops", "Dead letters by reason"): check_dead_letters,
}


def test_every_dashboard_query_has_a_check() -> None:
    assert {(q.dashboard_uid, q.panel_title) for q in panel_queries()} == set(CHECKS)
    assert {d.uid for d in DASHBOARDS} == {uid for uid, _ in CHECKS}


@pytest.mark.parametrize(
    "query", panel_queries(), ids=lambda q: f"{q.dashboard_uid}:{q.panel_title}:{q.ref}".replace(" ", "_")
)
def test_panel_shows_the_simulated_truth(simulated_pipeline: PipelineFill, query: PanelQuery) -> None:
    CHECKS[(query.dashboard_uid, query.panel_title)](simulated_pipeline, query)
