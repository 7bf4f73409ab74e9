"""Simulator end to end, every KPI asserted against the simulator's truth:

- the real pipeline: events published with paho (QoS 1) to the real Mosquitto -> the real
  ``footfall ingest`` subprocess -> InfluxDB, POS through ``footfall pos import`` -> job -> KPI points
  read back (the simulated weeks end a few days ago, inside ingest's accepted time window);
- the embedded DuckDB store written directly, over fixed weeks (Oct-Nov 2026) that cross both DST
  ends in Europe and the US (which recent weeks need not), plus the CLI on that file.

Exact (to float rounding) for counts and ratios; stated tolerances for estimators:
- ``visit_duration_median_s`` vs the Wi-Fi sightings: 0.01 s (the sub-millisecond id offset of the
  point times); vs the true dwell of those visitors: 150 s (a phone is first seen 5-60 s after
  entering and every 90 s after that, so a session is 5-150 s shorter than the visit);
- campaign uplift: the 95 % interval covers the injected extra visitors, per store and overall.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from footfall.analytics import DuckDBStore, InfluxStore, report_campaign, run_job
from footfall.contracts.events import CrossingEvent
from footfall.contracts.influx import InfluxClient
from footfall.contracts.measurements import (
    KPI_CAMPAIGN,
    KPI_DAILY,
    KPI_FORECAST_HOURLY,
    KPI_HOURLY,
    KPI_HOURLY_EXTRA_FIELDS,
    KPI_LINE_DAILY,
    KPI_ZONE_DAILY,
    KPI_ZONE_HOURLY,
    LINE_BALANCE_TOLERANCE,
    Point,
    datetime_to_ns,
    event_to_point,
)
from tests.pipeline_support import PipelineFill
from tests.simulator import (
    SimConfig,
    Simulation,
    emit_to_store,
    emit_via_mqtt,
    expected_visitors,
    simulate,
)

# A broker of this module's own (tests/conftest.py `mosquitto`): its sessions stay here.
OWN_BROKER = True
ESTIMATED = {"visit_duration_median_s": 0.01}
ALL_TIME = (0, 2**62)


@pytest.fixture(scope="module")
def sim() -> Simulation:
    """Five recent weeks (ending on the last Sunday at least two days ago)."""
    return simulate()


@pytest.fixture(scope="module")
def sim_dst() -> Simulation:
    """Five fixed weeks from Monday 2026-10-05: Europe and the US leave DST inside them."""
    return simulate(SimConfig(start=date(2026, 10, 5)))


def _by_key(points: list[Point], drop: tuple[str, ...] = ()) -> dict[tuple[str, int], dict]:
    return {(p.tags["store"], p.ts_ns): {k: v for k, v in p.fields.items() if k not in drop} for p in points}


def assert_matches_truth(
    measured: dict[tuple[str, int], dict], expected: dict[tuple[str, int], dict], what: str
) -> None:
    assert set(measured) == set(expected), (
        f"{what}: points differ: {sorted(set(measured) ^ set(expected))[:5]}"
    )
    for key, exp in expected.items():
        got = measured[key]
        assert set(got) == set(exp), f"{what} {key}: fields {sorted(set(got) ^ set(exp))}"
        for name, value in exp.items():
            tol = ESTIMATED.get(name, 1e-9 * max(1.0, abs(value)))
            assert got[name] == pytest.approx(value, abs=tol), f"{what} {key} {name}"


def assert_all_kpis(sim: Simulation, read) -> None:  # type: ignore[no-untyped-def]
    # (the expected traffic of each hour is checked against the simulator's rates on its own, below)
    hourly, daily = _by_key(read(KPI_HOURLY), KPI_HOURLY_EXTRA_FIELDS), _by_key(read(KPI_DAILY))
    assert_matches_truth(hourly, sim.truth.hourly, "hourly")
    assert_matches_truth(daily, sim.truth.daily, "daily")
    # gaps: the outage hours have no point although the store's neighbours do
    assert len(sim.truth.gap_hours) >= 3
    assert not sim.truth.gap_hours & set(hourly)
    # estimator vs the real visit durations, per store-day
    for key, true_dwell in sim.truth.visit_duration_true_s.items():
        assert abs(daily[key]["visit_duration_median_s"] - float(np.median(true_dwell))) <= 150.0
    # zones: exact median and p90 per store, zone and hour/day
    for measurement, truth in (
        (KPI_ZONE_HOURLY, sim.truth.zone_dwell_hourly),
        (KPI_ZONE_DAILY, sim.truth.zone_dwell_daily),
    ):
        zones = {
            (p.tags["store"], p.tags["zone"], p.ts_ns): p.fields
            for p in read(measurement)
            if p.tags["store"] != "all"
        }
        assert set(zones) == set(truth)
        for key, dwell in truth.items():
            assert zones[key]["visits"] == len(dwell)
            assert zones[key]["dwell_median_s"] == pytest.approx(float(np.median(dwell)))
            assert zones[key]["dwell_p90_s"] == pytest.approx(float(np.quantile(dwell, 0.9)))
    # repeat visitors exist and staff devices are not among the day's Wi-Fi visitors
    assert sum(f.get("repeat_visitors", 0) for (s, _), f in daily.items() if s != "all") > 100
    # the Wi-Fi hashes rotated inside the simulated weeks, and the repeat counts above (exact)
    # include visits only linkable through prev_device_hash
    wifi_epochs = {e.key_epoch for e in sim.events if e.type == "wifi"}  # type: ignore[union-attr]
    assert len(wifi_epochs) == 2
    assert sim.truth.repeats_across_rotation > 20


def assert_uplift_covers_injection(sim: Simulation, rows) -> None:  # type: ignore[no-untyped-def]
    by_store = {r.store: r for r in rows}
    injected = dict(sim.truth.campaign_extra)
    injected["all"] = sum(injected.values())
    assert set(by_store) == set(injected)
    for store, extra in injected.items():
        r = by_store[store]
        assert r.baseline_weeks == 4
        assert r.ci_low <= extra <= r.ci_high, f"{store}: {extra} not in [{r.ci_low:.1f}, {r.ci_high:.1f}]"
        assert r.ci_low > 0  # a 40 % lift is detected


@pytest.mark.servers
@pytest.mark.slow
def test_simulated_stores_through_mqtt_ingest_and_influxdb(simulated_pipeline: PipelineFill) -> None:
    # The fill (tests/pipeline_support.py, shared with the dashboard tests) asserts every event stored
    # once, no dead letter from the simulated events and every POS transaction imported.
    sim, influx_db, result = simulated_pipeline.sim, simulated_pipeline.client, simulated_pipeline.result
    print(f"{len(sim.events)} events, {len(sim.pos)} POS transactions: {simulated_pipeline.seconds}")
    store = InfluxStore(influx_db)
    assert result.points_written == len(result.kpis.all_points()) > 3000

    def read(measurement: str) -> list[Point]:
        return store.read_points(measurement, *ALL_TIME)

    assert_all_kpis(sim, read)
    campaign_points = read(KPI_CAMPAIGN)
    assert {p.tags["store"] for p in campaign_points} == {"store-a", "store-b", "all"}
    assert_uplift_covers_injection(sim, result.uplifts["autumn-promo"])
    # idempotent: re-running a window rewrites the same points
    before = influx_db.query("SELECT count(visitors) FROM kpi_hourly")[0].values[0][1]
    run_job(store, sim.start + timedelta(days=3), sim.start + timedelta(days=5), sim.stores, sim.campaigns)
    assert influx_db.query("SELECT count(visitors) FROM kpi_hourly")[0].values[0][1] == before
    after = _by_key(read(KPI_HOURLY), KPI_HOURLY_EXTRA_FIELDS)
    assert_matches_truth(after, sim.truth.hourly, "hourly after re-run")


@pytest.mark.slow
def test_simulated_stores_through_duckdb(sim_dst: Simulation, tmp_path: Path) -> None:
    sim = sim_dst
    with DuckDBStore(tmp_path / "footfall.duckdb") as store:
        emit_to_store(sim, store)
        emit_to_store(sim, store)  # a redelivery overwrites itself
        result = run_job(store, sim.start, sim.end, sim.stores, sim.campaigns)
        assert_all_kpis(sim, lambda m: store.read_points(m, *ALL_TIME))
        assert_uplift_covers_injection(sim, result.uplifts["autumn-promo"])
        _, rows = report_campaign(store, "autumn-promo", sim.campaigns, sim.stores)
        assert [(r.store, r.visitors, r.ci_low) for r in rows] == [
            (r.store, r.visitors, r.ci_low) for r in result.uplifts["autumn-promo"]
        ]
        # a late event is picked up by re-running its day
        person = sim.people[len(sim.people) // 2]
        late = CrossingEvent(
            id="late-1",
            store=person.store,
            device="cam-1",
            ts=person.arrival + timedelta(seconds=1),
            line="door",
            kind="entrance",
            direction="in",
            track_id=99_999_999,
        )
        store.write_points([event_to_point(late)])
        day = person.arrival.astimezone(sim.stores.meta(person.store).tz).date()  # type: ignore[union-attr]
        rerun = run_job(store, day, day, sim.stores, store=person.store)
        assert {p.tags["store"] for p in rerun.kpis.hourly + rerun.kpis.daily} == {person.store}
        hourly = _by_key(store.read_points(KPI_HOURLY, *ALL_TIME, store=person.store))
        key = next(
            k
            for k in sim.truth.hourly
            if k[0] == person.store and k[1] <= event_to_point(late).ts_ns < k[1] + 3600 * 10**9
        )
        assert hourly[key]["visitors"] == sim.truth.hourly[key]["visitors"] + 1


@pytest.mark.slow
def test_cli_run_and_campaign_report_on_duckdb(sim_dst: Simulation, tmp_path: Path) -> None:
    sim = sim_dst
    db = tmp_path / "cli.duckdb"
    with DuckDBStore(db) as store:
        emit_to_store(sim, store)
    stores_yaml = tmp_path / "stores.yaml"
    stores_yaml.write_text(sim.stores.model_dump_json())  # JSON is YAML
    campaigns_yaml = tmp_path / "campaigns.yaml"
    campaigns_yaml.write_text(sim.campaigns.model_dump_json())
    footfall = [sys.executable, "-m", "footfall"]
    run = subprocess.run(
        [
            *footfall,
            "analytics",
            "run",
            "--db",
            str(db),
            "--from",
            sim.start.isoformat(),
            "--to",
            sim.end.isoformat(),
            "--stores-config",
            str(stores_yaml),
            "--campaigns",
            str(campaigns_yaml),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "KPI points" in run.stdout
    report = subprocess.run(
        [
            *footfall,
            "report",
            "campaign",
            "autumn-promo",
            "--db",
            str(db),
            "--campaigns",
            str(campaigns_yaml),
            "--stores-config",
            str(stores_yaml),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.returncode == 0, report.stderr
    lines = report.stdout.splitlines()
    assert lines[0].startswith("campaign autumn-promo (social)")
    assert [line.split()[0] for line in lines[2:]] == ["store-a", "store-b", "all"]
    with DuckDBStore(db) as store:
        assert_matches_truth(
            _by_key(store.read_points(KPI_DAILY, *ALL_TIME)), sim.truth.daily, "daily via CLI"
        )
    # the staffing forecast from the embedded store (history across both DST ends)
    first = sim.end + timedelta(days=1)
    configs = ["--stores-config", str(stores_yaml), "--campaigns", str(campaigns_yaml)]
    forecast = subprocess.run(
        [
            *footfall,
            "analytics",
            "forecast",
            "--db",
            str(db),
            "--from",
            first.isoformat(),
            "--days",
            "7",
            *configs,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert forecast.returncode == 0, forecast.stderr
    with DuckDBStore(db) as store:
        mape, hours = forecast_mape(sim, store.read_points(KPI_FORECAST_HOURLY, *ALL_TIME), first, 7)
    print(f"DuckDB forecast MAPE over {hours} open hours: {100 * mape:.1f} %")
    assert mape <= 0.15
    wrong = subprocess.run(
        [*footfall, "analytics", "forecast", "--db", str(db), "--from", "2026-11-09T00:00:00Z"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert wrong.returncode == 2
    assert "--from: give a day" in wrong.stderr
    bad = subprocess.run(
        [*footfall, "analytics", "run", "--db", str(db), "--from", "2026-13-01", "--to", "2026-10-02"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2
    assert "--from" in bad.stderr


@pytest.mark.servers
def test_cli_scheduled_mode_writes_recent_window(influxdb, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client = influxdb.create_database("sched")
    now = datetime.now(UTC).replace(microsecond=0)
    from footfall.contracts.events import HeartbeatEvent

    client.write_lines(
        [
            event_to_point(
                HeartbeatEvent(
                    id="hb-now",
                    store="s1",
                    device="cam",
                    ts=now - timedelta(minutes=1),
                    fps=5,
                    latency_ms=1,
                    dropped_frames=0,
                )
            ).to_line(),
            event_to_point(
                CrossingEvent(
                    id="in-now",
                    store="s1",
                    device="cam",
                    ts=now - timedelta(minutes=1),
                    line="door",
                    kind="entrance",
                    direction="in",
                    track_id=1,
                )
            ).to_line(),
        ]
    )
    env = {
        "INFLUX_USER": influxdb.admin_user,
        "INFLUX_PASSWORD": influxdb.admin_password,
        "PATH": "/usr/bin:/bin",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "footfall",
            "analytics",
            "run",
            "--influx-url",
            influxdb.url,
            "--influx-db",
            "sched",
            "--every",
            "1s",
            "--recent",
            "1h",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        seen: list[str] = []
        while sum("KPI points" in line for line in seen) < 2 and len(seen) < 50:
            seen.append(proc.stdout.readline())
        assert sum("KPI points" in line for line in seen) == 2, "".join(seen)
        assert any(line.startswith("forecast: wrote") for line in seen), "".join(seen)
    finally:
        proc.terminate()
        proc.wait(30)
    series = client.query("SELECT visitors FROM kpi_hourly WHERE store = 's1'")
    assert [row[1] for row in series[0].values][-1] == 1


@pytest.mark.servers
def test_emit_via_mqtt_publishes_contract_events(sim: Simulation, mosquitto) -> None:  # type: ignore[no-untyped-def]
    """The simulator's MQTT emitter: QoS 1 to event.topic, payloads that parse back to the events."""
    import threading

    import paho.mqtt.client as mqtt

    from footfall.contracts.config import MqttSettings
    from footfall.contracts.events import parse_event

    events = sim.events[:300]
    received: dict[str, object] = {}
    done = threading.Event()
    settings = MqttSettings.from_url(mosquitto.url("ingest"))
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="sim-test-sub")
    sub.username_pw_set(settings.username, settings.password)
    subscribed = threading.Event()
    sub.on_subscribe = lambda *args: subscribed.set()

    def on_message(client, userdata, msg) -> None:  # type: ignore[no-untyped-def]
        event = parse_event(msg.payload, topic=msg.topic)
        received[event.id] = event
        if len(received) == len(events):
            done.set()

    sub.on_message = on_message
    sub.connect(settings.host, settings.port)
    sub.subscribe("footfall/v1/#", qos=1)
    sub.loop_start()
    try:
        assert subscribed.wait(10)
        assert emit_via_mqtt(events, mosquitto.url("admin")) == len(events)
        assert done.wait(30), f"received {len(received)} of {len(events)}"
    finally:
        sub.loop_stop()
        sub.disconnect()
    assert received == {e.id: e for e in events}


@pytest.mark.servers
def test_chunked_query_joins_split_series(influx_db: InfluxClient) -> None:
    """InfluxClient.query(chunk_size=...) (added for the analytics reader) equals the plain answer."""
    influx_db.write_lines([f"m,store=s{i % 2} v={i}i {1_000_000_000 * (i + 1)}" for i in range(7)])
    plain = influx_db.query('SELECT v FROM m GROUP BY "store"')
    chunked = influx_db.query('SELECT v FROM m GROUP BY "store"', chunk_size=2)
    assert [(s.tags, s.values) for s in chunked] == [(s.tags, s.values) for s in plain]
    assert [len(s.values) for s in plain] == [4, 3]


# ---- expected traffic, anomalies, the staffing forecast and line balance (issue #12) ---------------


def open_hours(sim: Simulation, store: str, day: date) -> list[int]:
    """UTC ns of the local hours of ``day`` that overlap the store's opening hours."""
    meta = sim.stores.meta(store)
    assert meta is not None
    hours = meta.hours_on(day)
    if hours is None:
        return []
    first, last = hours[0] // 60, -(-hours[1] // 60)
    return [
        datetime_to_ns(datetime(day.year, day.month, day.day, h, tzinfo=meta.tz)) for h in range(first, last)
    ]


def in_campaign(sim: Simulation, store: str, hour_ns: int) -> bool:
    return any(
        store in c.stores and datetime_to_ns(c.start) <= hour_ns < datetime_to_ns(c.end)
        for c in sim.campaigns.campaigns
    )


def anomaly_figures(
    sim: Simulation, hourly: dict[tuple[str, int], dict]
) -> list[tuple[str, int, int, int, int]]:
    """Per broken day: (store, hours flagged -1, open hours, false flags in the week's other open hours
    outside campaigns, those hours)."""
    rows = []
    for store, index, _ in sim.config.broken:
        day = sim.start + timedelta(days=index)
        hours = open_hours(sim, store, day)
        hits = sum(hourly[(store, h)].get("traffic_anomaly") == -1 for h in hours)
        monday = day - timedelta(days=day.weekday())
        others = [
            h
            for k in range(7)
            if monday + timedelta(days=k) != day
            for h in open_hours(sim, store, monday + timedelta(days=k))
            if not in_campaign(sim, store, h)
        ]
        false = sum(hourly[(store, h)].get("traffic_anomaly", 0) != 0 for h in others)
        rows.append((store, hits, len(hours), false, len(others)))
    return rows


@pytest.mark.servers
@pytest.mark.slow
def test_broken_day_is_flagged_below_expectation(simulated_pipeline: PipelineFill) -> None:
    """Through the real pipeline: a door camera that counts nobody (store C) or one in ten (store A)
    for a day while its heartbeats go on is flagged -1 in at least 7/9 of the day's open hours, with
    at most 3 flags in the other open hours of that week (the campaign's hours, really above
    expectation, excepted)."""
    sim = simulated_pipeline.sim
    hourly = _by_key(InfluxStore(simulated_pipeline.client).read_points(KPI_HOURLY, *ALL_TIME))
    figures = anomaly_figures(sim, hourly)
    print("broken days (store, hits, open hours, false flags, other hours):", figures)
    assert [f[0] for f in figures] == ["store-c", "store-a"]
    assert figures[0][2] == 9  # store C is open 10:00-19:00
    for _, hits, hours, false, _ in figures:
        assert hits >= 7 / 9 * hours
        assert false <= 3
    # every hour with two usable weeks of history before it has an expectation, with its interval
    expected = [f for (s, _), f in hourly.items() if s != "all" and "visitors_expected" in f]
    assert len(expected) > 0.5 * sum(s != "all" for s, _ in hourly)
    for f in expected:
        assert f["visitors_expected_low"] <= f["visitors_expected"] <= f["visitors_expected_high"]
        assert f["traffic_anomaly"] in (-1, 0, 1)
    assert not [f for (s, _), f in hourly.items() if s == "all" and "visitors_expected" in f]


def forecast_mape(sim: Simulation, points: list[Point], first: date, days: int) -> tuple[float, int]:
    """Mean absolute percentage error of the forecast against the simulator's rates per open hour;
    the forecast must have exactly the open hours with arrivals."""
    truth = expected_visitors(sim.config, sim.stores, [first + timedelta(days=k) for k in range(days)])
    forecast = _by_key(points)
    assert set(forecast) == set(truth)
    for f in forecast.values():
        assert f["visitors_expected_low"] <= f["visitors_expected"] <= f["visitors_expected_high"]
    errors = [abs(forecast[k]["visitors_expected"] - v) / v for k, v in truth.items()]
    return float(np.mean(errors)), len(errors)


@pytest.mark.servers
@pytest.mark.slow
def test_forecast_cli_on_influxdb_within_15_percent(simulated_pipeline: PipelineFill, tmp_path: Path) -> None:
    """`footfall analytics forecast` over InfluxDB for the week after the simulated ones, whose
    history holds the broken days and the campaign: within 15 % MAPE of the simulated rates."""
    sim, client = simulated_pipeline.sim, simulated_pipeline.client
    stores_yaml, campaigns_yaml = tmp_path / "stores.yaml", tmp_path / "campaigns.yaml"
    stores_yaml.write_text(sim.stores.model_dump_json())
    campaigns_yaml.write_text(sim.campaigns.model_dump_json())
    first = sim.end + timedelta(days=1)
    args = ["--from", first.isoformat(), "--days", "7", "--stores-config", str(stores_yaml)]
    target = ["--influx-url", client.url, "--influx-db", client.database, "--campaigns", str(campaigns_yaml)]
    run = subprocess.run(
        [sys.executable, "-m", "footfall", "analytics", "forecast", *target, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={
            "INFLUX_USER": client.username or "",
            "INFLUX_PASSWORD": client.password or "",
            "PATH": "/usr/bin:/bin",
        },
    )
    assert run.returncode == 0, run.stderr
    assert "store-c" in run.stdout
    points = InfluxStore(client).read_points(KPI_FORECAST_HOURLY, *ALL_TIME)
    mape, hours = forecast_mape(sim, points, first, 7)
    print(f"forecast MAPE over {hours} open hours: {100 * mape:.1f} %")
    assert mape <= 0.15


def line_truth(sim: Simulation) -> dict[tuple[str, int], tuple[int, int]]:
    """(store, local midnight) -> (door crossings in, out) of the simulated events."""
    counts: dict[tuple[str, int], list[int]] = {}
    for e in sim.events:
        if isinstance(e, CrossingEvent) and e.line == "door":
            meta = sim.stores.meta(e.store)
            assert meta is not None
            day = e.ts.astimezone(meta.tz).date()
            key = (e.store, datetime_to_ns(datetime(day.year, day.month, day.day, tzinfo=meta.tz)))
            counts.setdefault(key, [0, 0])[e.direction == "out"] += e.count
    return {k: (v[0], v[1]) for k, v in counts.items()}


@pytest.mark.servers
@pytest.mark.slow
def test_line_balance_flags_the_line_that_misses_exits(simulated_pipeline: PipelineFill) -> None:
    sim = simulated_pipeline.sim
    points = InfluxStore(simulated_pipeline.client).read_points(KPI_LINE_DAILY, *ALL_TIME)
    measured = {(p.tags["store"], p.ts_ns): p.fields for p in points}
    assert {(p.tags["device"], p.tags["line"]) for p in points} == {("cam-1", "door")}
    truth = line_truth(sim)
    assert set(measured) == set(truth)
    flagged = set()
    for key, (entries, exits) in truth.items():
        f = measured[key]
        assert (f["entries"], f["exits"]) == (entries, exits)
        assert f["balance"] == pytest.approx(exits / entries)
        assert f["balance_flag"] == int(abs(exits / entries - 1) > LINE_BALANCE_TOLERANCE)
        flagged |= {key} if f["balance_flag"] else set()
    store, index, _, _ = sim.config.one_way  # type: ignore[misc]

    def day_of(s: str, ns: int) -> int:
        meta = sim.stores.meta(s)
        assert meta is not None
        return (datetime.fromtimestamp(ns / 1e9, meta.tz).date() - sim.start).days

    flagged_days = {(s, day_of(s, ns)) for s, ns in flagged}
    print("line-days flagged (store, day index):", sorted(flagged_days))
    assert (store, index) in flagged_days
    # nothing else is flagged but the days the camera miscounted (one in ten counted: in and out apart)
    assert flagged_days <= {(store, index)} | {(s, i) for s, i, share in sim.config.broken if share > 0}
