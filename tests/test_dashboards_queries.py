"""Every dashboard panel's InfluxQL runs against a real InfluxDB and returns the expected values.

The database is filled with ``tests/dashboards_dataset.py`` (raw events through the contract's line
protocol, KPI points as analytics writes them); expectations are computed from that dataset in
Python, never read back from InfluxDB.
"""

from __future__ import annotations

import math
import re
import statistics
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from footfall.contracts.influx import InfluxClient, Series
from footfall.contracts.measurements import ALL_STORES
from footfall.dashboards.definitions import DASHBOARDS, MARKETING, find_query, panel_queries
from footfall.dashboards.spec import render_query
from tests import dashboards_dataset as ds
from tests.servers import InfluxServer

DAY_START = ds.ms(ds.DAY)
DAY_END = ds.ms(ds.DAY + timedelta(days=1)) - 1


@pytest.fixture(scope="module")
def filled(influxdb: InfluxServer) -> tuple[InfluxClient, ds.Dataset]:
    client = influxdb.create_database(f"dash_{uuid.uuid4().hex[:10]}")
    data, lines = ds.build(datetime.now(UTC).replace(microsecond=0))
    ds.load(client, lines)
    return client, data


def run(
    client: InfluxClient,
    uid: str,
    panel: str,
    *,
    store: str | list[str] = "store-a",
    start_ms: int = DAY_START,
    end_ms: int = DAY_END,
    ref: str = "A",
    interval: str = "1h",
) -> list[Series]:
    query = render_query(
        find_query(uid, panel, ref), store=store, start_ms=start_ms, end_ms=end_ms, interval=interval
    )
    return client.query(query, epoch="ms")


def single(series: list[Series]) -> Any:
    assert len(series) == 1, series
    assert len(series[0].values) == 1, series[0].values
    return series[0].values[0][1]


def by_tag(series: list[Series], tag: str) -> dict[str, Series]:
    return {s.tags[tag]: s for s in series}


def influx_percentile(values: list[float], pct: float) -> float:
    """InfluxQL's nearest-rank percentile (no interpolation)."""
    ordered = sorted(values)
    return ordered[math.floor(len(ordered) * pct / 100 + 0.5) - 1]


def ops_window(data: ds.Dataset) -> tuple[int, int]:
    return ds.ms(data.now - timedelta(hours=3)), ds.ms(data.now)


# ---- every query ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query", panel_queries(), ids=lambda q: f"{q.dashboard_uid}:{q.panel_title}:{q.ref}".replace(" ", "_")
)
def test_every_panel_query_returns_data(filled: tuple[InfluxClient, ds.Dataset], query: Any) -> None:
    client, data = filled
    start = ds.ms(ds.DAYS[0])
    rendered = render_query(query.influxql, store=list(ds.STORES), start_ms=start, end_ms=ds.ms(data.now))
    assert not re.search(r"\$(store|timeFilter|__interval|tag_)", rendered), rendered
    series = client.query(rendered, epoch="ms")
    assert series, f"no data for {query.panel_title}: {rendered}"
    values = [v for s in series for row in s.values for v in row[1:] if v is not None]
    assert values, f"only nulls for {query.panel_title}: {rendered}"


def test_every_dashboard_has_a_store_variable_and_panels() -> None:
    assert {d.uid for d in DASHBOARDS} == {"footfall-store", "footfall-marketing", "footfall-ops"}
    for dash in DASHBOARDS:
        assert dash.panels
        for panel in dash.panels:
            for q in panel.queries:
                # Store-level measurements are filtered by the variable; chain/dead-letter are not.
                assert "$store" in q.influxql or "'all'" in q.influxql or "deadletter" in q.influxql


# ---- store manager --------------------------------------------------------------------------------


def test_store_variable_lists_the_stores(filled: tuple[InfluxClient, ds.Dataset]) -> None:
    client, _ = filled
    series = client.query(DASHBOARDS[0].store_variable.query)
    assert sorted(series[0].column("value")) == sorted(ds.STORES)


def test_marketing_store_variable_hides_the_chain_rollup(filled: tuple[InfluxClient, ds.Dataset]) -> None:
    client, _ = filled
    values = client.query(MARKETING.store_variable.query)[0].column("value")
    assert ALL_STORES in values
    # Grafana applies the variable's regex (a JavaScript regex; this one is also valid Python).
    pattern = re.compile(MARKETING.store_variable.regex.strip("/"))
    assert sorted(v for v in values if pattern.fullmatch(v)) == sorted(ds.STORES)


@pytest.mark.parametrize("store", ds.STORES)
def test_visitors_today_and_same_weekday_last_week(
    filled: tuple[InfluxClient, ds.Dataset], store: str
) -> None:
    client, data = filled
    today = single(run(client, "footfall-store", "Visitors today", store=store))
    assert today == data.day_totals(store, ds.DAY)["visitors"]
    week_ago = ds.DAY - timedelta(days=7)
    last_week = single(
        run(
            client,
            "footfall-store",
            "Same weekday last week",
            store=store,
            start_ms=ds.ms(week_ago),
            end_ms=ds.ms(week_ago + timedelta(days=1)) - 1,
        )
    )
    assert last_week == data.day_totals(store, week_ago)["visitors"]
    assert last_week != today  # the dataset differs per day, so a wrong range would show


def test_occupancy_now_sums_each_cameras_latest_view_count(filled: tuple[InfluxClient, ds.Dataset]) -> None:
    client, data = filled
    start, end = ops_window(data)
    for store in ds.STORES:
        got = single(run(client, "footfall-store", "Occupancy now", store=store, start_ms=start, end_ms=end))
        assert got == sum(data.occupancy_last[store].values())


def test_conversion_today(filled: tuple[InfluxClient, ds.Dataset]) -> None:
    client, data = filled
    totals = data.day_totals("store-b", ds.DAY)
    got = single(run(client, "footfall-store", "Conversion today", store="store-b"))
    assert got == pytest.approx(totals["transactions"] / totals["visitors"])


def test_hourly_traffic_and_rates(filled: tuple[InfluxClient, ds.Dataset]) -> None:
    client, data = filled
    hours = data.hours[("store-a", ds.DAY)]
    traffic = run(client, "footfall-store", "Hourly traffic")[0]
    got_hours = [datetime.fromtimestamp(t / 1000, UTC).hour for t in traffic.column("time")]
    assert got_hours == list(ds.OPEN_HOURS)
    assert traffic.column("visitors") == [hours[h].visitors for h in ds.OPEN_HOURS]
    assert traffic.column("walk-bys") == [hours[h].passersby - hours[h].visitors for h in ds.OPEN_HOURS]
    rates = run(client, "footfall-store", "Conversion and capture rate")[0]
    assert rates.column("conversion") == pytest.approx(
        [hours[h].transactions / hours[h].visitors for h in ds.OPEN_HOURS]
    )
    assert rates.column("capture rate") == pytest.approx(
        [hours[h].visitors / hours[h].passersby for h in ds.OPEN_HOURS]
    )


@pytest.mark.parametrize("store", ds.STORES)
def test_dwell_by_zone(filled: tuple[InfluxClient, ds.Dataset], store: str) -> None:
    client, data = filled
    rows = by_tag(run(client, "footfall-store", "Dwell by zone", store=store), "zone")
    assert set(rows) == set(ds.ZONES)
    for zone, dwells in data.dwell[store].items():
        _, visits, median, p90 = rows[zone].values[0]
        assert visits == len(dwells)
        assert median == pytest.approx(statistics.median(dwells))
        assert p90 == pytest.approx(influx_percentile(dwells, 90))


def test_sales_per_visitor_daily(filled: tuple[InfluxClient, ds.Dataset]) -> None:
    client, data = filled
    series = run(client, "footfall-store", "Sales per visitor", start_ms=ds.ms(ds.DAYS[0]))[0]
    expected = [
        data.day_totals("store-a", day)["revenue"] / data.day_totals("store-a", day)["visitors"]
        for day in ds.DAYS
    ]
    assert series.column("sales per visitor") == pytest.approx(expected)


def test_zone_visits_per_hour_split_by_zone(filled: tuple[InfluxClient, ds.Dataset]) -> None:
    client, _ = filled
    zones = by_tag(run(client, "footfall-store", "Zone visits per hour"), "zone")
    assert set(zones) == set(ds.ZONES)
    assert all(len(s.values) == len(ds.OPEN_HOURS) for s in zones.values())


# ---- marketing --------------------------------------------------------------------------------------


@pytest.mark.parametrize("store", ds.STORES)
def test_campaign_visitors_against_baseline_band(filled: tuple[InfluxClient, ds.Dataset], store: str) -> None:
    client, data = filled
    series = run(
        client,
        "footfall-marketing",
        "Campaign visitors against baseline",
        store=store,
        start_ms=ds.ms(ds.DAYS[0]),
    )
    rows = by_tag(series, "campaign")
    assert set(rows) == {ds.CAMPAIGN, ds.OTHER_CAMPAIGN}
    for campaign, s in rows.items():
        want = data.campaign[store][campaign]
        (row,) = s.values
        visitors, baseline, low, high = row[1:]
        assert (visitors, baseline) == (want["visitors"], want["baseline"])
        # The band is the baseline implied by the uplift's confidence interval: visitors - CI.
        assert (low, high) == (want["visitors"] - want["ci_high"], want["visitors"] - want["ci_low"])
        assert low <= baseline <= high


def test_campaign_uplift_table_shows_each_campaign_and_store(filled: tuple[InfluxClient, ds.Dataset]) -> None:
    client, data = filled
    series = run(
        client, "footfall-marketing", "Campaign uplift", store=list(ds.STORES), start_ms=ds.ms(ds.DAYS[0])
    )
    assert {(s.tags["campaign"], s.tags["store"]) for s in series} == {
        (c, s) for c in (ds.CAMPAIGN, ds.OTHER_CAMPAIGN) for s in ds.STORES
    }
    for s in series:
        want = data.campaign[s.tags["store"]][s.tags["campaign"]]
        assert s.column("uplift %") == [pytest.approx(want["uplift_pct"])]
        assert s.column("baseline") == [want["baseline"]]


def test_campaign_annotation_marks_each_campaign_start(filled: tuple[InfluxClient, ds.Dataset]) -> None:
    client, _ = filled
    query = render_query(
        MARKETING.annotations[0].influxql, store="store-a", start_ms=ds.ms(ds.DAYS[0]), end_ms=DAY_END
    )
    series = client.query(query, epoch="ms")[0]
    assert series.column("campaign") == [ds.OTHER_CAMPAIGN, ds.CAMPAIGN]
    assert series.column("time") == [ds.ms(ds.DAYS[0]), ds.ms(ds.DAYS[1])]


def test_visitors_by_store_and_chain_rollup(filled: tuple[InfluxClient, ds.Dataset]) -> None:
    client, data = filled
    start = ds.ms(ds.DAYS[0])
    stores = by_tag(
        run(client, "footfall-marketing", "Visitors by store", store=list(ds.STORES), start_ms=start), "store"
    )
    assert set(stores) == set(ds.STORES)  # the rollup is not a store
    for store, series in stores.items():
        assert series.column("sum") == [data.day_totals(store, d)["visitors"] for d in ds.DAYS]
    chain = run(client, "footfall-marketing", "Chain rollup", store="ignored", start_ms=start)[0]
    assert chain.column("visitors") == [
        sum(data.day_totals(s, d)["visitors"] for s in ds.STORES) for d in ds.DAYS
    ]


def test_entrances_by_store_and_channel(filled: tuple[InfluxClient, ds.Dataset]) -> None:
    client, data = filled
    series = run(
        client, "footfall-marketing", "Entrances by store and channel", store=list(ds.STORES), interval="1d"
    )
    got = {(s.tags["store"], s.tags["source"]): sum(v for _, v in s.values) for s in series}
    assert got == data.entrances


def test_stores_compared(filled: tuple[InfluxClient, ds.Dataset]) -> None:
    client, data = filled
    rows = by_tag(run(client, "footfall-marketing", "Stores compared", store=list(ds.STORES)), "store")
    for store in ds.STORES:
        totals = data.day_totals(store, ds.DAY)
        _, visitors, revenue, conversion = rows[store].values[0]
        assert (visitors, revenue) == (totals["visitors"], pytest.approx(totals["revenue"]))
        assert conversion == pytest.approx(totals["transactions"] / totals["visitors"])


# ---- ops --------------------------------------------------------------------------------------------


def test_devices_reporting_online_and_offline(filled: tuple[InfluxClient, ds.Dataset]) -> None:
    client, data = filled
    start, end = ops_window(data)
    stores = list(ds.STORES)
    reporting = single(
        run(client, "footfall-ops", "Devices reporting", store=stores, start_ms=start, end_ms=end)
    )
    online = single(run(client, "footfall-ops", "Devices online", store=stores, start_ms=start, end_ms=end))
    offline_a = single(
        run(client, "footfall-ops", "Devices offline", store=stores, start_ms=start, end_ms=end)
    )
    offline_b = single(
        run(client, "footfall-ops", "Devices offline", store=stores, start_ms=start, end_ms=end, ref="B")
    )
    silent = [key for key, beats in data.heartbeats.items() if data.now - beats[-1][0] > timedelta(minutes=5)]
    assert (reporting, online) == (len(data.heartbeats), len(data.heartbeats) - len(silent))
    # The panel shows the server-side expression $A - $B.
    assert offline_a - offline_b == len(silent) == 1


def test_last_heartbeat_per_device(filled: tuple[InfluxClient, ds.Dataset]) -> None:
    client, data = filled
    start, end = ops_window(data)
    series = run(
        client, "footfall-ops", "Last heartbeat per device", store=list(ds.STORES), start_ms=start, end_ms=end
    )
    got = {(s.tags["store"], s.tags["device"]): s.values[0] for s in series}
    assert set(got) == set(data.heartbeats)
    for key, beats in data.heartbeats.items():
        ts, fps, latency, dropped, backlog = beats[-1]
        row = got[key]
        # last() reports the time of the device's last heartbeat (to the millisecond, plus jitter).
        assert abs(row[0] - ds.ms(ts)) <= 1
        assert row[1:5] == [fps, latency, dropped, backlog]


@pytest.mark.parametrize(
    ("panel", "index", "reduce"),
    [
        ("Frames per second", 1, statistics.fmean),
        ("Latency", 2, max),
        ("Dropped frames", 3, max),
        ("Store-and-forward backlog", 4, max),
    ],
)
def test_device_health_series(
    filled: tuple[InfluxClient, ds.Dataset], panel: str, index: int, reduce: Any
) -> None:
    client, data = filled
    start, end = ops_window(data)
    # One interval spanning the whole window: each device's series has a single bucket. (InfluxDB
    # aligns buckets to the epoch: a 1d bucket split the window in two whenever the test ran
    # within 3 hours after midnight UTC; a 3650d one holds any 3-hour window of this decade.)
    series = by_tag(
        run(client, "footfall-ops", panel, store="store-a", start_ms=start, end_ms=end, interval="3650d"),
        "device",
    )
    assert set(series) == {"cam-1", "cam-2"}
    for device, s in series.items():
        values = [beat[index] for beat in data.heartbeats[("store-a", device)]]
        assert sum(v for _, v in s.values if v is not None) == pytest.approx(reduce(values))


def test_dead_letters_by_reason(filled: tuple[InfluxClient, ds.Dataset]) -> None:
    client, data = filled
    start, end = ops_window(data)
    series = by_tag(
        run(client, "footfall-ops", "Dead letters by reason", start_ms=start, end_ms=end, interval="1d"),
        "reason",
    )
    assert {reason: sum(v for _, v in s.values) for reason, s in series.items()} == ds.DEAD_REASONS


# ---- expected traffic, forecast, camera issues, line balance (issue #12) ---------------------------


def test_today_against_expected(filled: tuple[InfluxClient, ds.Dataset]) -> None:
    client, data = filled
    hours = data.hours[("store-b", ds.DAY)]
    (series,) = run(client, "footfall-store", "Today against expected", store="store-b")
    assert [datetime.fromtimestamp(t / 1000, UTC).hour for t in series.column("time")] == list(ds.OPEN_HOURS)
    assert series.column("visitors") == [hours[h].visitors for h in ds.OPEN_HOURS]
    assert series.column("expected") == pytest.approx([hours[h].expected for h in ds.OPEN_HOURS])
    assert series.column("expected low") == [hours[h].low for h in ds.OPEN_HOURS]
    assert series.column("expected high") == [hours[h].high for h in ds.OPEN_HOURS]
    assert series.column("anomaly") == [hours[h].anomaly for h in ds.OPEN_HOURS]
    assert {-1, 0, 1} >= set(series.column("anomaly"))


def test_next_weeks_forecast_ignores_the_dashboard_range(filled: tuple[InfluxClient, ds.Dataset]) -> None:
    """The forecast lies ahead: the panel reads the next 7 days from now() whatever the time picker says."""
    client, data = filled
    (series,) = run(client, "footfall-store", "Next week's forecast", store="store-a")
    want = {ds.ms(ts): v for (store, ts), v in data.forecast.items() if store == "store-a"}
    want = {t: v for t, v in want.items() if t < ds.ms(data.now + timedelta(days=7))}
    got = {row[0]: tuple(row[1:]) for row in series.values}
    assert set(got) == set(want)
    assert all(got[t] == pytest.approx(v) for t, v in want.items())


def test_camera_issues_now_and_their_history(filled: tuple[InfluxClient, ds.Dataset]) -> None:
    client, data = filled
    stores = list(ds.STORES)
    start, end = ds.ms(data.now - timedelta(minutes=15)), ds.ms(data.now)
    now = run(client, "footfall-ops", "Camera issues now", store=stores, start_ms=start, end_ms=end)
    got = {(s.tags["store"], s.tags["device"]): s.values[0][1] for s in now}
    # cam-2 of store A has been silent for 30 minutes: no heartbeat in the panel's 15 minutes
    assert got == {("store-a", "cam-1"): "", ("store-b", "cam-1"): "covered"}
    history = run(
        client,
        "footfall-ops",
        "Camera issue history",
        store=stores,
        start_ms=ds.ms(ds.DAY - timedelta(days=1)),
        end_ms=ds.ms(data.now),
    )
    rows = sorted(
        (s.tags["store"], s.tags["device"], row[3], row[1], row[2]) for s in history for row in s.values
    )
    assert rows == sorted((e.store, e.device, e.issue, e.state, e.score) for e in data.issue_events)


def test_in_out_balance_per_line(filled: tuple[InfluxClient, ds.Dataset]) -> None:
    client, data = filled
    series = run(
        client,
        "footfall-ops",
        "In/out balance per line",
        store=list(ds.STORES),
        start_ms=ds.ms(ds.DAYS[0]),
        end_ms=DAY_END,
    )
    got = {(s.tags["store"], s.tags["device"], s.tags["line"]): dict(s.values) for s in series}
    assert set(got) == set(data.lines_daily)
    for key, days in data.lines_daily.items():
        assert got[key] == {ds.ms(day): pytest.approx(exits / entries) for day, entries, exits in days}
