"""The simulator through the real pipeline, filled once per session and shared by the tests that read it.

paho (QoS 1) -> Mosquitto -> ``footfall ingest`` subprocess -> InfluxDB; POS via ``footfall pos import``;
then the analytics job over the simulated weeks and the forecast of the week after them. After the
job (so no KPI depends on them), a second ingest run takes a few things the simulator does not
produce, published through the same broker: occupancy reports of the camera view (the count of
simulated customers inside) and some bad messages that ingest dead-letters.
"""

from __future__ import annotations

import csv
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from footfall.analytics import InfluxStore, JobResult, run_job
from footfall.analytics.job import run_forecast
from footfall.contracts.events import EventError, OccupancyEvent, parse_event, stable_event_id
from footfall.contracts.influx import InfluxClient
from footfall.contracts.measurements import Point, event_to_point
from tests.ingest_support import FOOTFALL, MqttTestClient, count_points, ingest_process, wait_for_count
from tests.servers import InfluxServer, MosquittoServer
from tests.simulator import Simulation, emit_via_mqtt, simulate

# Bad messages published after the simulated events: ingest must dead-letter each one.
BAD_MESSAGES: tuple[tuple[str, bytes], ...] = (
    ("footfall/v1/store-a/cam-1/crossing", b"not json"),
    ("footfall/v1/store-b/cam-1/crossing", b'{"id": "x1", "store": "store-b"}'),
    ("footfall/v1/store-c/cam-1/heartbeat", b"[1, 2, 3]"),
    ("footfall/v1/store-a/cam-1/nonsense", b"{}"),
)
# Occupancy reports: this local time on the last simulated Saturday (all stores open), and the two
# earlier reports before it (the panel must pick each camera's latest).
OCCUPANCY_AT_LOCAL_HOUR = 15
OCCUPANCY_OFFSETS = (timedelta(minutes=-20), timedelta(minutes=-10), timedelta(minutes=-1))


@dataclass
class PipelineFill:
    client: InfluxClient
    sim: Simulation
    result: JobResult
    seconds: dict[str, float]
    # store -> (UTC time the "Occupancy now" panel is looked at, customers inside at its last report)
    occupancy_now: dict[str, tuple[datetime, int]]
    deadletters: dict[str, int]  # reason -> count, from the contract's own parse_event
    deadletter_window: tuple[datetime, datetime]  # ingest stamps dead letters with the receipt time
    forecast: list[Point]  # kpi_forecast_hourly of the 7 days after the simulated weeks


def emit_through_pipeline(
    sim: Simulation, broker: MosquittoServer, influx: InfluxServer, client: InfluxClient, tmp_path: Path
) -> dict[str, float]:
    """Events: paho QoS 1 -> Mosquitto -> ``footfall ingest`` -> InfluxDB; POS: ``footfall pos import``.
    Returns the seconds each step took."""
    seconds: dict[str, float] = {}
    expected: dict[str, set[tuple]] = {}
    for event in sim.events:
        point = event_to_point(event)
        expected.setdefault(point.measurement, set()).add((tuple(sorted(point.tags.items())), point.ts_ns))
    ingest = ingest_process(
        broker, influx, client.database, tmp_path / "ingest.log", client_id="e2e-sim", batch_size=5000
    )
    ingest.start().wait_for_log("ingest ready")
    try:
        t0 = time.perf_counter()
        assert emit_via_mqtt(sim.events, broker.url("admin"), timeout_s=240) == len(sim.events)
        seconds["publish"] = time.perf_counter() - t0
        for measurement, points in expected.items():
            stored = wait_for_count(client, len(points), measurement=measurement, timeout_s=240)
            assert stored == len(points), f"{measurement}: {stored} of {len(points)} stored\n{ingest.log()}"
        seconds["publish + ingest"] = time.perf_counter() - t0
    finally:
        ingest.terminate()
    assert count_points(client, "deadletter") == 0, ingest.log()
    assert f"received={len(sim.events)} " in ingest.log()  # the final counters: each event once
    sales = tmp_path / "sales.csv"
    with sales.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["store", "ts", "transaction_id", "amount", "items"])
        for p in sim.pos:
            assert p.ts_ns % 10**9 == 0  # whole seconds: the ISO text is exact
            ts = datetime.fromtimestamp(p.ts_ns // 10**9, UTC).isoformat()
            writer.writerow([p.store, ts, p.transaction_id, repr(p.amount), p.items])
    t0 = time.perf_counter()
    imported = subprocess.run(
        [*FOOTFALL, "pos", "import", str(sales), "--influx-url", influx.url, "--influx-db", client.database],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "INFLUX_USER": influx.admin_user,
            "INFLUX_PASSWORD": influx.admin_password,
            "PATH": "/usr/bin:/bin",
        },
    )
    assert imported.returncode == 0, imported.stderr
    assert f"imported {len(sim.pos)} transactions" in imported.stdout
    seconds["pos import"] = time.perf_counter() - t0
    return seconds


def customers_inside(sim: Simulation, store: str, at: datetime) -> int:
    return sum(1 for p in sim.people if p.store == store and p.arrival <= at < p.departure)


def occupancy_events(sim: Simulation) -> tuple[list[OccupancyEvent], dict[str, tuple[datetime, int]]]:
    saturday = sim.end - timedelta(days=1)
    assert saturday.weekday() == 5
    events: list[OccupancyEvent] = []
    now: dict[str, tuple[datetime, int]] = {}
    for meta in sim.stores.stores:
        tz = ZoneInfo(meta.timezone)
        at = datetime(saturday.year, saturday.month, saturday.day, OCCUPANCY_AT_LOCAL_HOUR, tzinfo=tz)
        at = at.astimezone(UTC)
        for offset in OCCUPANCY_OFFSETS:
            ts = at + offset
            count = customers_inside(sim, meta.id, ts)
            eid = stable_event_id("occupancy", meta.id, ts.isoformat())
            events.append(OccupancyEvent(id=eid, store=meta.id, device="cam-1", ts=ts, count=count))
        now[meta.id] = (at, events[-1].count)
    return events, now


def expected_deadletters() -> dict[str, int]:
    reasons: Counter[str] = Counter()
    for topic, payload in BAD_MESSAGES:
        try:
            parse_event(payload, topic=topic)
        except EventError as err:
            reasons[err.reason] += 1
        else:
            raise AssertionError(f"{payload!r} on {topic} is a valid event")
    return dict(reasons)


def publish_extras(
    sim: Simulation, broker: MosquittoServer, influx: InfluxServer, client: InfluxClient, tmp_path: Path
) -> tuple[dict[str, tuple[datetime, int]], dict[str, int], tuple[datetime, datetime]]:
    occupancy, now = occupancy_events(sim)
    ingest = ingest_process(
        broker, influx, client.database, tmp_path / "ingest-extra.log", client_id="e2e-extra"
    )
    ingest.start().wait_for_log("ingest ready")
    started = datetime.now(UTC)
    publisher = MqttTestClient(broker, "admin")
    try:
        for event in occupancy:
            publisher.publish(event.topic, event.model_dump_json())
        for topic, payload in BAD_MESSAGES:
            publisher.publish(topic, payload)
        assert wait_for_count(client, len(occupancy), measurement="occupancy") == len(occupancy), ingest.log()
        assert wait_for_count(client, len(BAD_MESSAGES), measurement="deadletter") == len(BAD_MESSAGES), (
            ingest.log()
        )
    finally:
        publisher.close()
        ingest.terminate()
    return now, expected_deadletters(), (started, datetime.now(UTC))


def fill(broker: MosquittoServer, influx: InfluxServer, client: InfluxClient, tmp_path: Path) -> PipelineFill:
    sim = simulate()
    seconds = emit_through_pipeline(sim, broker, influx, client, tmp_path)
    t0 = time.perf_counter()
    result = run_job(InfluxStore(client), sim.start, sim.end, sim.stores, sim.campaigns)
    seconds["analytics job"] = time.perf_counter() - t0
    forecast = run_forecast(InfluxStore(client), sim.end + timedelta(days=1), 7, sim.stores, sim.campaigns)
    occupancy_now, deadletters, window = publish_extras(sim, broker, influx, client, tmp_path)
    return PipelineFill(client, sim, result, seconds, occupancy_now, deadletters, window, forecast)
