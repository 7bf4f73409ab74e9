"""End-to-end ingest throughput: publisher -> Mosquitto -> `footfall ingest` -> InfluxDB.

Starts its own Mosquitto and InfluxDB (tests/servers.py), then in the same run on the same InfluxDB,
``--runs`` rounds of:
1. raw: the same points' line protocol written straight to /write in batches (the ceiling);
2. end to end: the events published with QoS 1 and stored by N real `footfall ingest` workers on one
   shared subscription; timed from the first publish until InfluxDB holds every point.
Each timed run writes into a new, empty database and starts once InfluxDB is idle again, and the two
kinds alternate, so a busy moment of a shared machine or the database's background compaction of
earlier data falls on both. Prints the best of each kind and their ratio (the same statistic on both
sides), and every round's own ratio. Not part of the test suite.

Publishers (``--publisher``):
- ``mosquitto_pub`` (default where installed; otherwise ``edge``, with a note): the C client
  (package mosquitto-clients), one per topic, sending the batch messages the edge sends
  (``--max-batch 1``: one event per message). Its CPU is almost nil, so this measures the central
  path (broker, ingest, InfluxDB); the edges' own work runs on in-store hardware in production.
- ``edge``: the real edge store-and-forward publisher, one per (store, camera), each with its own
  on-disk queue, on these same cores. The clock starts before the events are queued, so the SQLite
  queue is timed too. Its backlog leaves in batch messages of up to ``--max-batch`` events.
- ``paho``: Python processes, one event per message (the path of devices that do not batch).

``--tls`` adds a second broker whose TLS listener requires client certificates (a private CA made for
the run, as deploy/mosquitto/mosquitto.conf), with its own ingest workers: every round then runs
plain MQTT and TLS one after the other, and the TLS / plain ratio is printed.

    .venv/bin/python bench/ingest_throughput.py --events 1000000              # central path, 1 worker/core
    .venv/bin/python bench/ingest_throughput.py --events 300000 --publisher edge --workers 1
    .venv/bin/python bench/ingest_throughput.py --events 100000 --max-batch 1   # one event per message
    .venv/bin/python bench/ingest_throughput.py --events 200000 --tls          # the cost of TLS
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from footfall.contracts.config import MqttSettings  # noqa: E402
from footfall.contracts.events import (  # noqa: E402
    CrossingEvent,
    OccupancyEvent,
    ZoneVisitEvent,
    batch_payload,
    batch_topic,
    split_topic,
)
from footfall.contracts.influx import InfluxClient  # noqa: E402
from footfall.contracts.measurements import event_to_point  # noqa: E402
from footfall.edge.transport import DEFAULT_MAX_BATCH, DiskQueue, StoreAndForwardPublisher  # noqa: E402
from tests.conftest import DEFAULT_MQTT_USERS  # noqa: E402
from tests.servers import InfluxServer, MosquittoServer, ServerTls  # noqa: E402
from tests.tls_support import Pki, tls_args  # noqa: E402


def make_events(n: int) -> list[CrossingEvent | ZoneVisitEvent | OccupancyEvent]:
    """A realistic mix: mostly crossings, some zone visits and occupancy samples, 3 stores x 4 cameras."""
    start = datetime.now(UTC) - timedelta(hours=1)
    run = uuid.uuid4().hex[:8]
    events: list[CrossingEvent | ZoneVisitEvent | OccupancyEvent] = []
    for i in range(n):
        # 0.1 ms apart: one series (same store, camera, line, direction) gets an event every 1.2 ms. Two
        # events of one series within 1 ms could share a point (ts + id-derived offset < 1 ms, see
        # ts_jitter_ns) with odds of 1 in 1e6 per pair, which at this density would lose one.
        store, device, ts = f"store-{i % 3}", f"cam-{i % 4}", start + timedelta(microseconds=i * 100)
        if i % 10 < 7:
            events.append(
                CrossingEvent(
                    id=f"{run}-{i}",
                    store=store,
                    device=device,
                    ts=ts,
                    line="door",
                    kind="entrance",
                    direction="in" if i % 2 else "out",
                    track_id=i,
                    frame=i,
                )
            )
        elif i % 10 < 9:
            events.append(
                ZoneVisitEvent(
                    id=f"{run}-{i}",
                    store=store,
                    device=device,
                    ts=ts,
                    zone="promo",
                    track_id=i,
                    enter_ts=ts - timedelta(seconds=30),
                    exit_ts=ts,
                    dwell_s=30.0,
                )
            )
        else:
            events.append(
                OccupancyEvent(id=f"{run}-{i}", store=store, device=device, ts=ts, zone="promo", count=3)
            )
    return events


def total_points(client: InfluxClient) -> int:
    total = 0
    for measurement in ("crossing", "zone_visit", "occupancy"):
        series = client.query(f'SELECT count("id") FROM "{measurement}"')
        total += int(series[0].column("count")[0]) if series else 0
    return total


def points_requested(client: InfluxClient) -> int:
    """InfluxDB's running total of points written to it (all databases), from ``SHOW STATS``."""
    (series,) = [s for s in client.query("SHOW STATS FOR 'write'", epoch=None) if s.name == "write"]
    return int(series.column("pointReq")[0])


def raw_write(client: InfluxClient, lines: list[str], batch: int) -> float:
    started = time.perf_counter()
    for i in range(0, len(lines), batch):
        client.write_lines(lines[i : i + batch])
    return time.perf_counter() - started


def publish_all(settings: MqttSettings, payloads: list[tuple[str, bytes]], window: int) -> None:
    """Publish QoS 1 with up to `window` messages awaiting PUBACK; returns when all are acknowledged."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:6]}")
    settings.configure(client)
    # paho's own in-flight limit rescans its whole queue on every PUBACK: keep it off, bound the
    # window with a semaphore instead.
    client.max_inflight_messages_set(0)
    client.max_queued_messages_set(0)
    room = threading.Semaphore(window)
    client.on_publish = lambda *a: room.release()
    client.connect(settings.host, settings.port)
    client.loop_start()
    for topic, payload in payloads:
        room.acquire()
        client.publish(topic, payload, qos=1)
    for _ in range(window):
        room.acquire()
    client.disconnect()
    client.loop_stop()


def _cpu_s(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def _publish_when_told(
    go: Any, settings: MqttSettings, payloads: list[tuple[str, bytes]], window: int
) -> None:
    go.wait()
    publish_all(settings, payloads, window)


def _mosquitto_pub_connection(settings: MqttSettings) -> list[str]:
    """mosquitto_pub's options for the same broker, user and TLS files as ``settings``."""
    args = ["-h", settings.host, "-p", str(settings.port)]
    if settings.tls:
        files = settings.tls_files
        return [*args, "--cafile", str(files.ca), "--cert", str(files.cert), "--key", str(files.key)]
    return [*args, "-u", settings.username or "", "-P", settings.password or ""]


def start_publishers(
    kind: str,
    count: int,
    settings: MqttSettings,
    payloads: list[tuple[str, bytes]],
    window: int,
    tmp: Path,
    max_batch: int = 1,
) -> Callable[[], None]:
    """Prepare the publishers; return a function that starts them and waits until they are done.

    ``paho``: `count` forked Python processes (each with a slice). ``mosquitto_pub``: one C
    `mosquitto_pub -l` per topic, i.e. per (store, device, type), standing in for a fleet of edges.
    """
    if kind == "paho":
        return _forked(_publish_when_told, [(settings, payloads[p::count], window) for p in range(count)])
    by_topic: dict[str, list[bytes]] = {}
    if max_batch > 1:  # one line = one batch message of one device (what the edge sends)
        for (store, device), rows in by_device(payloads).items():
            items = [payload for _, payload in rows]
            by_topic[batch_topic(store, device)] = [
                batch_payload(items[i : i + max_batch]) for i in range(0, len(items), max_batch)
            ]
    else:
        for topic, payload in payloads:
            by_topic.setdefault(topic, []).append(payload)
    files = []
    for i, (topic, lines) in enumerate(by_topic.items()):
        path = tmp / f"pub-{i}.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        files.append((topic, path))

    def run_mosquitto_pub() -> None:
        procs = []
        for topic, path in files:
            with open(path, "rb") as stdin:
                procs.append(
                    subprocess.Popen(
                        ["mosquitto_pub", *_mosquitto_pub_connection(settings),
                         "-V", "mqttv5", "-q", "1", "-M", str(window), "-t", topic, "-l"],
                        stdin=stdin,
                    )
                )  # fmt: skip
        for proc in procs:
            assert proc.wait() == 0, "mosquitto_pub failed"

    return run_mosquitto_pub


# (store, device) -> its (topic, payload) rows
Devices = dict[tuple[str, str], list[tuple[str, bytes]]]


def _edge_publish_when_told(
    go: Any, settings: MqttSettings, devices: Devices, max_batch: int, queue_dir: Path
) -> None:
    """One process of simulated edge devices: queue every event on disk, wait until all are PUBACKed."""
    publishers = []
    for (store, device), payloads in devices.items():
        queue = DiskQueue(queue_dir / f"{store}-{device}.sqlite")
        publisher = StoreAndForwardPublisher(settings, queue, store=store, device=device, max_batch=max_batch)
        publishers.append((publisher, payloads))
    go.wait()
    for publisher, _ in publishers:
        publisher.start()
    for publisher, rows in publishers:
        for i in range(0, len(rows), 5000):
            publisher.publish_payloads(rows[i : i + 5000])
    for publisher, _ in publishers:
        assert publisher.wait_drained(600), "edge publisher did not drain"
        publisher.stop()


def start_edge_publishers(
    count: int, settings: MqttSettings, payloads: list[tuple[str, bytes]], max_batch: int, tmp: Path
) -> Callable[[], None]:
    """`count` processes sharing the (store, camera) devices; each device its own queue and client."""
    devices = by_device(payloads)
    names = sorted(devices)
    return _forked(
        _edge_publish_when_told,
        [
            (settings, {n: devices[n] for n in names[p::count]}, max_batch, tmp / f"edge-{p}")
            for p in range(count)
        ],
    )


def by_device(payloads: list[tuple[str, bytes]]) -> Devices:
    """(topic, payload) rows grouped by the (store, device) of their topic, in order."""
    devices: Devices = {}
    for topic, payload in payloads:
        parts = split_topic(topic)
        assert parts is not None, topic
        devices.setdefault((parts[0], parts[1]), []).append((topic, payload))
    return devices


def _forked(target: Callable[..., None], args_per_process: list[tuple[Any, ...]]) -> Callable[[], None]:
    """Fork one process per argument tuple, each calling ``target(go, *args)`` and waiting for ``go``;
    return a function that sets ``go`` and waits until every process has finished cleanly."""
    context = multiprocessing.get_context("fork")
    go = context.Event()
    procs = [context.Process(target=target, args=(go, *args)) for args in args_per_process]
    for proc in procs:
        proc.start()

    def run() -> None:
        go.set()
        for proc in procs:
            proc.join()
            assert proc.exitcode == 0, f"a publisher process failed ({target.__name__})"

    return run


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wait_until_idle(proc: psutil.Process, *, below: float = 0.10, longest_s: float = 20.0) -> None:
    """Let InfluxDB finish the background work of the previous run (WAL flushes, compactions) before
    the next timed run, so that neither kind of run pays for the other's."""
    proc.cpu_percent(None)
    deadline = time.monotonic() + longest_s
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if proc.cpu_percent(None) < below * 100:
            return


def wait_for_points(client: InfluxClient, expected: int) -> int:
    stored = total_points(client)
    for _ in range(50):  # InfluxDB 1.x may show a just-written point a moment later
        if stored >= expected:
            break
        time.sleep(0.2)
        stored = total_points(client)
    return stored


@dataclass
class Route:
    """One way from the publishers to InfluxDB: a broker, its ingest workers and their database."""

    name: str
    broker: MosquittoServer
    publish: MqttSettings  # how the publishers connect (plain: admin's password; TLS: admin's certificate)
    ingest_args: list[str]  # --mqtt-url and, over TLS, the ingest certificate
    db: str
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    runs: list[tuple[float, float, dict[str, float]]] = field(default_factory=list)  # (s, publishing s, CPU)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="ingest processes on one shared subscription (default: one per CPU core, as deployed)",
    )
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument(
        "--runs",
        type=int,
        default=3,
        help="rounds of (raw write, end-to-end run), interleaved; the best of each kind is compared",
    )
    parser.add_argument("--window", type=int, default=2000, help="publisher QoS 1 messages in flight")
    parser.add_argument(
        "--publisher",
        choices=["edge", "mosquitto_pub", "paho"],
        # The fleet runs on the stores' hardware: by default a C client stands in for it, so the
        # figure is the central route's (``edge`` puts the Python publishers on these cores too).
        default=None,
        help="the edge store-and-forward publisher, or a per-event load generator: C mosquitto_pub per "
        "topic (package mosquitto-clients) or paho processes",
    )
    parser.add_argument("--publishers", type=int, default=1, help="edge / paho publishing processes")
    parser.add_argument(
        "--max-batch",
        type=int,
        default=DEFAULT_MAX_BATCH,
        help="edge, mosquitto_pub: events per MQTT message (1: no batching)",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="also run every end-to-end round over TLS with client certificates (a second broker with a "
        "TLS listener, its own ingest workers, a private CA made for the run) and compare with plain MQTT",
    )
    args = parser.parse_args()
    if args.publisher is None:
        args.publisher = "mosquitto_pub" if shutil.which("mosquitto_pub") else "edge"
        if args.publisher == "edge":
            print(
                "note: mosquitto_pub not found (Debian package mosquitto-clients): the Python edge "
                "publishers run on these same cores, so their CPU counts against the pipeline and the "
                "figures are not the central route's"
            )
    return args


def make_paths(tmp: Path, tls: bool) -> list[Route]:
    """Plain MQTT with passwords; with ``tls``, also a broker whose TLS listener requires client
    certificates of a CA made here (what deploy/mosquitto/mosquitto.conf does)."""
    # The deployed broker's save interval (deploy/mosquitto/mosquitto.conf), not the tests' 1 s.
    plain = MosquittoServer(tmp / "mosquitto", users=DEFAULT_MQTT_USERS, autosave_interval_s=30)
    routes = [
        Route(
            "plain",
            plain,
            MqttSettings.from_url(plain.url("admin")),
            ["--mqtt-url", plain.url()],
            "bench_e2e",
        )
    ]
    if tls:
        pki = Pki.create(tmp / "pki")
        server = pki.issue("broker", "127.0.0.1")
        broker = MosquittoServer(
            tmp / "mosquitto-tls",
            users=DEFAULT_MQTT_USERS,
            autosave_interval_s=30,
            tls=ServerTls(pki.ca_file, server.cert, server.key),
        )
        publish = MqttSettings.from_url(broker.tls_url(), pki.client("admin"))
        ingest = ["--mqtt-url", broker.tls_url(), *tls_args(pki.client("ingest"))]
        routes.append(Route("TLS", broker, publish, ingest, "bench_e2e_tls"))
    return routes


def start_workers(route: Route, influx: InfluxServer, args: argparse.Namespace, tmp: Path) -> None:
    """The route's ingest workers on one shared subscription; returns once every one has subscribed
    (a message published before that would be dropped by the broker)."""
    env = {
        **os.environ,
        "MQTT_USER": "ingest",
        "MQTT_PASSWORD": DEFAULT_MQTT_USERS["ingest"][0],
        "INFLUX_USER": influx.admin_user,
        "INFLUX_PASSWORD": influx.admin_password,
    }
    logs = [tmp / f"ingest-{route.db}-{w}.log" for w in range(args.workers)]
    for w, log_path in enumerate(logs):
        command = [sys.executable, "-m", "footfall", "ingest", *route.ingest_args, "--influx-url", influx.url,
                   "--influx-db", route.db, "--client-id", f"bench-{route.db}-{w}", "--batch-size",
                   str(args.batch_size), "--max-latency", "0.2", "--log-level", "WARNING"]  # fmt: skip
        with open(log_path, "wb") as log:
            route.workers.append(
                subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
            )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if all("ingest ready" in log.read_text() for log in logs):
            break
    time.sleep(1.0)


def prepare_publishers(
    route: Route, args: argparse.Namespace, payloads: list[tuple[str, bytes]], tmp: Path
) -> Callable[[], None]:
    if args.publisher == "edge":
        return start_edge_publishers(args.publishers, route.publish, payloads, args.max_batch, tmp)
    max_batch = args.max_batch if args.publisher == "mosquitto_pub" else 1
    return start_publishers(
        args.publisher, args.publishers, route.publish, payloads, args.window, tmp, max_batch
    )


def e2e_round(
    route: Route,
    influx: InfluxServer,
    admin: InfluxClient,
    args: argparse.Namespace,
    payloads: list[tuple[str, bytes]],
    tmp: Path,
) -> None:
    """One end-to-end run into a new, empty database, timed from the first publish until InfluxDB
    has been asked to write every point; every point is then checked to be stored."""
    influxd = psutil.Process(influx.proc.pid)  # type: ignore[union-attr]
    processes = {
        "mosquitto": psutil.Process(route.broker.proc.pid),  # type: ignore[union-attr]
        "influxd": influxd,
        **{f"ingest worker {w}": psutil.Process(p.pid) for w, p in enumerate(route.workers)},
    }
    admin.query(f'DROP DATABASE "{route.db}"', method="POST")
    e2e_db = influx.create_database(route.db)
    tmp.mkdir(parents=True, exist_ok=True)
    run_publishers = prepare_publishers(route, args, payloads, tmp)
    wait_until_idle(influxd)
    cpu_before = {name: _cpu_s(proc) for name, proc in processes.items()}
    points_before = points_requested(admin)
    children_before = _children_cpu_s()
    started = time.perf_counter()
    run_publishers()
    published_s = time.perf_counter() - started
    publishers_cpu = _children_cpu_s() - children_before
    # Watch InfluxDB's own write counter (cheap) rather than counting points every 0.1 s,
    # which would cost influxd CPU the pipeline under test needs; then check the points.
    while time.perf_counter() - started < 600:
        if points_requested(admin) - points_before >= args.events:
            break
        time.sleep(0.02)
    e2e_s = time.perf_counter() - started
    cpu_used = {name: _cpu_s(proc) - cpu_before[name] for name, proc in processes.items()}
    cpu_used[f"publishers ({args.publisher})"] = publishers_cpu
    route.runs.append((e2e_s, published_s, cpu_used))
    stored = wait_for_points(e2e_db, args.events)
    assert stored == args.events, f"{route.name} end to end stored {stored} of {args.events} points"


def raw_round(
    influx: InfluxServer, admin: InfluxClient, lines: list[str], args: argparse.Namespace, run: int
) -> tuple[float, float]:
    """The same points' line protocol straight to /write, into a database of its own: (s, influxd CPU s)."""
    influxd = psutil.Process(influx.proc.pid)  # type: ignore[union-attr]
    wait_until_idle(influxd)
    raw_db = influx.create_database(f"bench_raw_{run}")
    cpu_before = _cpu_s(influxd)
    raw_s = raw_write(raw_db, lines, args.batch_size)
    result = (raw_s, _cpu_s(influxd) - cpu_before)
    raw_stored = wait_for_points(raw_db, args.events)
    assert raw_stored == args.events, f"raw write stored {raw_stored} of {args.events} points"
    admin.query(f'DROP DATABASE "bench_raw_{run}"', method="POST")
    return result


def main() -> None:
    args = parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="footfall-bench-"))
    routes = make_paths(tmp, args.tls)
    influx = InfluxServer(tmp / "influxdb")
    for route in routes:
        route.broker.start()
    influx.start()
    try:
        events = make_events(args.events)
        lines = [event_to_point(e).to_line() for e in events]
        payloads = [(e.topic, e.to_json().encode()) for e in events]
        admin = influx.create_database("bench_admin")  # SHOW STATS, DROP / CREATE DATABASE
        for route in routes:
            start_workers(route, influx, args, tmp)
        raw_runs = []
        for run in range(args.runs):
            raw_runs.append(raw_round(influx, admin, lines, args, run))
            for route in routes:  # plain, then TLS: the kinds alternate within each round
                e2e_round(route, influx, admin, args, payloads, tmp / f"run-{run}-{route.db}")
        report(args, raw_runs, routes)
    finally:
        for proc in [w for route in routes for w in route.workers]:
            proc.terminate()
            proc.wait(15)
        for route in routes:
            route.broker.kill()
        influx.kill()
        # The broker's and database's files are a few hundred MB per run: leave no trace behind.
        shutil.rmtree(tmp, ignore_errors=True)


def report(args: argparse.Namespace, raw_runs: list[tuple[float, float]], routes: list[Route]) -> None:
    raw_rates = [args.events / seconds for seconds, _ in raw_runs]
    best_raw = max(range(args.runs), key=lambda r: raw_rates[r])
    print(
        f"events:            {args.events} ({args.workers} ingest worker(s), batch {args.batch_size}, "
        f"publisher {args.publisher}"
        + (f", up to {args.max_batch} events per message)" if args.publisher != "paho" else ")")
    )
    print(
        f"rounds:            {args.runs} x (raw write, {' / '.join(p.name for p in routes)} end-to-end run), "
        "interleaved; all stored"
    )
    print(f"raw line protocol: {raw_rates[best_raw]:10,.0f} events/s best  (each: {_rates(raw_rates)})")
    best_rates = {}
    for route in routes:
        rates = [args.events / seconds for seconds, _, _ in route.runs]
        best = max(range(args.runs), key=lambda r: rates[r])
        best_rates[route.name] = rates[best]
        print(
            f"end to end {route.name + ':':7s}{rates[best]:10,.0f} events/s best  (each: {_rates(rates)}; "
            f"publishing took {route.runs[best][1]:.2f} s of {route.runs[best][0]:.2f} s)"
        )
        pairs = sorted(e / r for e, r in zip(rates, raw_rates, strict=True))
        print(
            f"  ratio e2e / raw: {rates[best] / raw_rates[best_raw]:.3f} best to best; "
            f"{pairs[len(pairs) // 2]:.2f} median of the rounds' own ratios "
            f"({', '.join(f'{x:.2f}' for x in pairs)})"
        )
        print_cpu(args, route.runs[best][2])
    if len(routes) == 2:
        plain, tls = routes
        own = sorted(t[0] / p[0] for p, t in zip(plain.runs, tls.runs, strict=True))  # seconds: plain / TLS
        print(
            f"TLS / plain:       {best_rates['TLS'] / best_rates['plain']:.3f} best to best "
            f"(each round: {', '.join(f'{1 / x:.2f}' for x in own)})"
        )
    print(f"load average:      {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other work shares them)")
    print(f"influxd CPU per event in the best raw write: {raw_runs[best_raw][1] / args.events * 1e6:.1f} µs")


def print_cpu(args: argparse.Namespace, cpu_used: dict[str, float]) -> None:
    print("  CPU per event in the best run (independent of other load):")
    for name, seconds in cpu_used.items():
        print(f"    {name:26s} {seconds / args.events * 1e6:7.1f} µs  ({seconds:.2f} s)")
    ingest_cpu = sum(v for k, v in cpu_used.items() if k.startswith("ingest"))
    print(f"    => ingest alone could sustain ~{args.events / ingest_cpu:,.0f} events/s per CPU core")


def _rates(rates: list[float]) -> str:
    return ", ".join(f"{rate:,.0f}" for rate in rates)


if __name__ == "__main__":
    main()
