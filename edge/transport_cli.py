"""CLI of the transport: ``footfall edge run``, ``footfall edge replay``, ``footfall bridge wifi|beam``."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from footfall.contracts.options import MqttCa, MqttCert, MqttKey, mqtt_settings

if TYPE_CHECKING:
    from datetime import datetime

    from footfall.contracts.config import CameraConfig, MqttSettings, StoreConfig
    from footfall.contracts.events import Event
    from footfall.edge.bridges import BeamBridge, WifiBridge
    from footfall.edge.detector import PeopleModel
    from footfall.edge.multicam import CameraRun
    from footfall.edge.transport import DiskQueue, FullPolicy, StoreAndForwardPublisher

edge_app = typer.Typer(help="Run the edge counter and publish its events (store-and-forward MQTT).")
bridge_app = typer.Typer(help="Bridge store sensors that speak MQTT (Wi-Fi probes, beam counters) to events.")

MqttUrl = Annotated[
    str,
    typer.Option(
        help="mqtt://[user:pass@]host:port or mqtts://host:port (credentials also from MQTT_USER / "
        "MQTT_PASSWORD[_FILE]; with a client certificate, its CN is the user)"
    ),
]
QueuePath = Annotated[
    Path | None, typer.Option(help="on-disk queue (SQLite); default .footfall/queue-STORE-DEVICE.sqlite")
]
MaxQueue = Annotated[int, typer.Option(min=1, help="queue cap in events")]
WhenFull = Annotated[str, typer.Option(help="policy when the queue is full: drop_oldest or refuse_new")]
LogLevel = Annotated[str, typer.Option(help="DEBUG, INFO, WARNING")]
EdgeConfigPath = Annotated[
    Path, typer.Option(help="camera YAML (with --source) or store YAML (a cameras: list with sources)")
]
CameraSource = Annotated[
    str | None, typer.Option(help="video file, RTSP/HTTP URL or camera index (camera YAML only)")
]
Replan = Annotated[
    bool,
    typer.Option(help="plan each camera's detector input afresh, replacing the plan kept beside the queue"),
]
MaxBatch = Annotated[
    int,
    typer.Option(
        min=1,
        max=5000,
        help="events of one device per MQTT message when a backlog drains (1: one message per event)",
    ),
]
MaxBatchBytes = Annotated[
    int,
    typer.Option(
        min=1024,
        max=1024 * 1024,
        help="payload bytes per batch message at most: set it under the broker's message size limit when "
        "the broker does not announce one (Mosquitto's message_size_limit); an announced Maximum Packet "
        "Size is kept to by itself",
    ),
]
RequireSubscriber = Annotated[
    bool,
    typer.Option(
        help="keep events the broker reports it had no subscriber for (MQTT v5 PUBACK 0x10) and resend "
        "them; --no-require-subscriber counts any PUBACK as delivered"
    ),
]


def register(app: typer.Typer) -> None:
    """Add ``footfall edge ...`` and ``footfall bridge ...``."""
    app.add_typer(edge_app, name="edge")
    app.add_typer(bridge_app, name="bridge")


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@dataclass(frozen=True)
class _PublishOptions:
    """The queueing and sending options every publishing command takes (--queue ... --require-subscriber)."""

    queue_path: Path | None
    max_queue: int
    when_full: str
    max_batch: int
    require_subscriber: bool
    max_batch_bytes: int


def _open_publisher(
    mqtt: MqttSettings,
    options: _PublishOptions,
    *,
    store: str,
    device: str,
    client_id: str | None = None,
    queue_prefix: str = "queue",
) -> tuple[DiskQueue, StoreAndForwardPublisher]:
    from footfall.contracts.config import ConfigError
    from footfall.edge.transport import DiskQueue, StoreAndForwardPublisher

    when_full = options.when_full
    if when_full not in ("drop_oldest", "refuse_new"):
        raise ConfigError(f"--when-full: expected drop_oldest or refuse_new, got {when_full!r}")
    policy: FullPolicy = "drop_oldest" if when_full == "drop_oldest" else "refuse_new"
    queue = DiskQueue(
        options.queue_path or Path(".footfall") / f"{queue_prefix}-{store}-{device}.sqlite",
        max_events=options.max_queue,
        when_full=policy,
    )
    publisher = StoreAndForwardPublisher(
        mqtt,
        queue,
        store=store,
        device=device,
        client_id=client_id,
        max_batch=options.max_batch,
        max_batch_bytes=options.max_batch_bytes,
        require_subscriber=options.require_subscriber,
    )
    return queue, publisher


def _stop_on_signals() -> list[bool]:
    """SIGTERM / SIGINT set a flag the loops check, so queued events are committed first."""
    stopping = [False]

    def handler(*_: object) -> None:
        stopping[0] = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
    return stopping


@edge_app.command("run")
def edge_run(
    config: EdgeConfigPath,
    mqtt_url: MqttUrl,
    source: CameraSource = None,
    mqtt_ca: MqttCa = None,
    mqtt_cert: MqttCert = None,
    mqtt_key: MqttKey = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "--weights", help="weights path; overrides FOOTFALL_MODEL and model.weights"),
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="media time origin of a file source (RFC 3339); default: now")
    ] = None,
    fps: Annotated[float | None, typer.Option(help="process at most this many frames per second")] = None,
    realtime: Annotated[bool, typer.Option(help="pace a file source at its native frame rate")] = False,
    heartbeat_every: Annotated[float, typer.Option(help="seconds between heartbeats")] = 10.0,
    queue: QueuePath = None,
    max_queue: MaxQueue = 1_000_000,
    when_full: WhenFull = "drop_oldest",
    max_batch: MaxBatch = 500,
    max_batch_bytes: MaxBatchBytes = 256 * 1024,
    require_subscriber: RequireSubscriber = True,
    replan: Replan = False,
    log_level: LogLevel = "INFO",
) -> None:
    """Count people on live sources and publish every event through the on-disk queue.

    A camera YAML counts the one --source; a store YAML counts all its cameras in this process,
    with one shared detector and one queue. File sources end at their end: the command then waits
    until the broker has every event and exits. SIGTERM / SIGINT end the streams at the next frame
    (open zone visits are closed), give the broker a few seconds, and leave whatever it has not
    acknowledged queued for the next start. Each camera's planned input is kept beside the queue
    (plan-STORE-CAMERA.json) for the next start, unless its picture size, lines, zones or planning
    settings change (--replan: plan afresh).
    """
    from footfall.contracts.config import ConfigError, StoreConfig, load_edge_config
    from footfall.edge.cli import _parse_start

    _setup_logging(log_level)
    loaded = load_edge_config(config)
    store = _store_to_run(loaded, source, config)
    origin = _parse_start(start)
    from footfall.edge.detector import load_model  # heavy imports

    # A missing or unsupported model fails before the queue or any camera is touched.
    detector = load_model(loaded.model, model)
    queue_db, publisher = _open_publisher(
        mqtt_settings(mqtt_url, mqtt_ca, mqtt_cert, mqtt_key),
        _PublishOptions(queue, max_queue, when_full, max_batch, require_subscriber, max_batch_bytes),
        store=store.store,
        device=store.device,
    )
    failed = _count_and_publish(
        store, publisher, queue_db, detector, _CountOptions(origin, fps, realtime, heartbeat_every, replan)
    )
    if failed and not isinstance(loaded, StoreConfig):
        raise ConfigError(f"--source: {failed[0].error}")  # what was counted before stays queued
    if failed:
        raise ConfigError("; ".join(f"camera {run.camera}: {run.error}" for run in failed))


@dataclass(frozen=True)
class _CountOptions:
    start: datetime | None
    fps: float | None
    realtime: bool
    heartbeat_every_s: float
    replan: bool = False


def _store_to_run(loaded: CameraConfig | StoreConfig, source: str | None, path: Path) -> StoreConfig:
    """A store file as it is (it names each camera's source); a camera file and its --source as a
    store of one camera."""
    from footfall.contracts.config import ConfigError, StoreCameraConfig, StoreConfig

    if isinstance(loaded, StoreConfig):
        if source is not None:
            raise ConfigError(f"--source: {path} is a store file; each of its cameras has its own source")
        return loaded
    camera = loaded
    if source is None:
        raise ConfigError(f"--source: missing; {path} is a camera file, which names no source")
    # A single camera keeps its own device name (client id, status topic, queue file) as before.
    entry = StoreCameraConfig.of(camera, source)
    return StoreConfig(store=camera.store, device=camera.camera, model=camera.model, cameras=[entry])


def _count_and_publish(
    store: StoreConfig,
    publisher: StoreAndForwardPublisher,
    queue_db: DiskQueue,
    model: PeopleModel,
    options: _CountOptions,
) -> list[CameraRun]:
    """Run the cameras, then wait for the broker; returns the cameras whose source failed."""
    from footfall.edge.cli import _recording_fps
    from footfall.edge.multicam import RunOptions, run_store
    from footfall.edge.sources import STREAM_PREFIXES

    log = logging.getLogger("footfall.edge")

    def live(source: str) -> bool:  # a service waits for a camera that is down at start
        return options.realtime or source.isdigit() or source.lower().startswith(STREAM_PREFIXES)

    def rate(source: str, camera: CameraConfig) -> float | None:  # a recording: the frames `count` sees
        return _recording_fps(source, options.fps, camera)

    stopping = _stop_on_signals()
    publisher.start()
    try:
        runs = run_store(
            store,
            model,
            publisher.publish,
            RunOptions(
                options.start,
                rate,
                live,
                options.heartbeat_every_s,
                lambda: stopping[0],
                plans_in=queue_db.path.parent,  # the edge box's state lives in one folder
                replan=options.replan,
            ),
        )
        log.info(
            "%s; %d events queued, waiting for the broker to take them",
            "stopping" if stopping[0] else "source ended" if len(runs) == 1 else "sources ended",
            queue_db.depth,
        )
        # Until drained; a stop signal cuts the wait short (a queue left on disk is sent next start).
        while not stopping[0] and not publisher.wait_drained(0.5):
            pass
        drained = publisher.wait_drained(5)
    finally:
        publisher.stop()
    if drained:
        log.info("all events delivered; stopped")
    else:
        failing = f" (sending failed: {publisher.failure})" if publisher.failure else ""
        log.warning(
            "stopped with %d events queued%s; they are sent on the next start", queue_db.depth, failing
        )
    return [run for run in runs if run.error is not None]


@edge_app.command("replay")
def edge_replay(
    events_file: Annotated[Path, typer.Argument(help="JSON lines written by `footfall count --out`")],
    mqtt_url: MqttUrl,
    mqtt_ca: MqttCa = None,
    mqtt_cert: MqttCert = None,
    mqtt_key: MqttKey = None,
    queue: QueuePath = None,
    rate: Annotated[float | None, typer.Option(min=0.1, help="queue at most this many events/s")] = None,
    client_id: Annotated[
        str | None, typer.Option(help="MQTT client id (default footfall-replay-STORE-DEVICE)")
    ] = None,
    timeout: Annotated[float | None, typer.Option(help="give up waiting for the broker after N s")] = None,
    max_queue: MaxQueue = 1_000_000,
    when_full: WhenFull = "drop_oldest",
    max_batch: MaxBatch = 500,
    max_batch_bytes: MaxBatchBytes = 256 * 1024,
    require_subscriber: RequireSubscriber = True,
    log_level: LogLevel = "INFO",
) -> None:
    """Publish events counted offline, through the same store-and-forward queue.

    Progress is stored with the queued events, so a replay killed at any point and started again
    neither loses nor re-queues a line. A line is queued only once the queue has room for it (the
    broker has taken enough), so neither --when-full policy ever drops or refuses one. Invalid lines
    are reported with their line number. SIGTERM / SIGINT stop it (exit 130) with what is queued
    left on disk: the next run sends it and goes on after the last line queued.
    """
    _setup_logging(log_level)
    log = logging.getLogger("footfall.replay")
    mqtt = mqtt_settings(mqtt_url, mqtt_ca, mqtt_cert, mqtt_key)  # bad files fail before any work
    events, bad = _read_events(events_file, log)
    first = events[0][1]
    queue_db, publisher = _open_publisher(
        mqtt,
        _PublishOptions(queue, max_queue, when_full, max_batch, require_subscriber, max_batch_bytes),
        store=first.store,
        device=first.device,
        client_id=client_id or f"footfall-replay-{first.store}-{first.device}",
        queue_prefix="replay",  # never the queue of a live `edge run` of the same device
    )
    progress_key = f"replay:{events_file.resolve()}:{events_file.stat().st_size}"
    done_lines = int(queue_db.get_meta(progress_key) or 0)
    todo = [(n, e) for n, e in events if n > done_lines]
    if done_lines:
        log.info("resuming %s after line %d (%d events left to queue)", events_file, done_lines, len(todo))
    replay = _Replay(publisher, queue_db, progress_key, rate, timeout, _stop_on_signals())
    publisher.start()
    try:
        replay.queue_paced(todo)
        replay.wait_delivered()
    finally:
        publisher.stop()
    typer.echo(
        f"replayed {len(todo)} events from {events_file} ({len(events) - len(todo)} queued earlier, "
        f"{bad} invalid lines skipped); queue empty"
    )
    if bad:
        sys.exit(1)


@dataclass
class _Replay:
    """Queueing a file's events with back-pressure, then waiting for the broker; a stop signal or
    ``timeout_s`` without progress ends either wait, leaving what is queued on disk."""

    publisher: StoreAndForwardPublisher
    queue_db: DiskQueue
    progress_key: str
    rate: float | None
    timeout_s: float | None
    stopping: list[bool]

    def queue_paced(self, todo: list[tuple[int, Event]]) -> None:
        """Queue ``todo`` (line number, event) in chunks, at most ``rate`` events a second, each
        chunk once the queue has room for it, storing the last line queued under ``progress_key``
        in the same transaction (only lines the queue took: it never passes a refused one)."""
        chunk = 500 if self.rate is None else max(1, min(500, int(self.rate / 10)))
        chunk = min(chunk, self.queue_db.max_events)
        dropped_before = self.queue_db.dropped
        started = time.monotonic()
        done = 0
        while done < len(todo):
            part = todo[done : done + chunk]
            self._wait_for_room(len(part))
            done += self.publisher.publish_many([e for _, e in part], meta=self._progress(part))
            if self.rate is not None:
                time.sleep(max(0.0, started + done / self.rate - time.monotonic()))
            if self.stopping[0]:
                self._stopped()
        if self.queue_db.dropped > dropped_before:  # only if something else wrote to this queue
            typer.secho(f"{self.queue_db.dropped - dropped_before} queued events were dropped", err=True)
            raise typer.Exit(1)

    def _progress(self, part: list[tuple[int, Event]]) -> Callable[[int], dict[str, str]]:
        def marker(taken: int) -> dict[str, str]:
            return {self.progress_key: str(part[taken - 1][0])} if taken else {}

        return marker

    def _wait_for_room(self, n: int) -> None:
        """Back-pressure: block until ``n`` more events fit under the queue's cap."""
        deadline = None if self.timeout_s is None else time.monotonic() + self.timeout_s
        while self.queue_db.depth + n > self.queue_db.max_events:
            if self.stopping[0]:
                self._stopped()
            if deadline is not None and time.monotonic() > deadline:
                typer.secho(
                    f"the queue is full and the broker took nothing for {self.timeout_s:g} s; "
                    f"{self.queue_db.depth} events stay queued, the next run queues the rest of the file",
                    err=True,
                )
                raise typer.Exit(1)
            time.sleep(0.05)

    def wait_delivered(self) -> None:
        deadline = None if self.timeout_s is None else time.monotonic() + self.timeout_s
        while not self.publisher.wait_drained(0.5):
            if self.stopping[0]:
                self._stopped()
            if deadline is not None and time.monotonic() > deadline:
                typer.secho(
                    f"broker did not take everything; {self.queue_db.depth} events stay queued", err=True
                )
                raise typer.Exit(1)
        # Drained, but the broker may have refused some for good (its ACL, or over its maximum
        # packet size): those left the queue without being delivered.
        stats = self.publisher.stats
        if stats.refused_by_broker or stats.too_large:
            typer.secho(
                f"the broker refused {stats.refused_by_broker} events and {stats.too_large} were over "
                "its maximum packet size: not delivered (logged)",
                err=True,
            )
            raise typer.Exit(1)

    def _stopped(self) -> NoReturn:
        typer.secho(
            f"stopped: {self.queue_db.depth} events stay queued; the next run sends them and resumes "
            "the file after the last line queued",
            err=True,
        )
        raise typer.Exit(130)


def _read_events(events_file: Path, log: logging.Logger) -> tuple[list[tuple[int, Event]], int]:
    """(line number, event) per valid line, and how many lines were invalid (each logged)."""
    from footfall.contracts.events import EventError, parse_event

    try:
        lines = events_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        typer.secho(f"{events_file}: cannot read: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    events, bad = [], 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            events.append((number, parse_event(line)))
        except EventError as exc:
            bad += 1
            log.error("%s:%d: skipped: %s", events_file, number, exc)
    if not events:
        typer.secho(f"{events_file}: no valid events", fg="red", err=True)
        raise typer.Exit(1)
    return events, bad


def _run_bridge_command(
    make_bridge: Callable[[], WifiBridge | BeamBridge],
    *,
    kind: str,
    mqtt: MqttSettings,
    store: str,
    device: str,
    topic: str,
    options: _PublishOptions,
) -> None:
    from footfall.edge.bridges import run_bridge

    bridge = make_bridge()
    _, publisher = _open_publisher(mqtt, options, store=store, device=device)
    publisher.start()
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    try:
        run_bridge(
            bridge,
            mqtt,
            topic,
            publisher,
            stopping,
            client_id=f"footfall-bridge-{kind}-{store}-{device}",
        )
    finally:
        publisher.stop()


@bridge_app.command("wifi")
def bridge_wifi(
    mqtt_url: MqttUrl,
    store: Annotated[str, typer.Option(help="store the sniffers are in")],
    mqtt_ca: MqttCa = None,
    mqtt_cert: MqttCert = None,
    mqtt_key: MqttKey = None,
    device: Annotated[str, typer.Option(help="this bridge's device name")] = "wifi-bridge",
    topic: Annotated[str, typer.Option(help="sensor topic filter; the last level is the sensor id")] = (
        "sensors/wifi/+"
    ),
    epoch_days: Annotated[int, typer.Option(min=1, help="days between hashing-key rotations")] = 30,
    queue: QueuePath = None,
    max_queue: MaxQueue = 1_000_000,
    when_full: WhenFull = "drop_oldest",
    max_batch: MaxBatch = 500,
    max_batch_bytes: MaxBatchBytes = 256 * 1024,
    require_subscriber: RequireSubscriber = True,
    log_level: LogLevel = "INFO",
) -> None:
    """Wi-Fi probe sightings -> `wifi` events with keyed, rotating MAC hashes (secret from
    FOOTFALL_WIFI_SECRET or FOOTFALL_WIFI_SECRET_FILE). The raw MAC never leaves this process."""
    from footfall.contracts.config import ConfigError
    from footfall.contracts.influx import secret_from_env
    from footfall.edge.bridges import MIN_SECRET_BYTES, WIFI_SECRET_ENV, MacHasher, WifiBridge

    _setup_logging(log_level)
    secret = secret_from_env(WIFI_SECRET_ENV)
    if not secret or len(secret.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"{WIFI_SECRET_ENV} (or {WIFI_SECRET_ENV}_FILE): a secret of at least {MIN_SECRET_BYTES} bytes "
            "is required to hash MAC addresses"
        )
    hasher = MacHasher(secret.encode(), epoch_days=epoch_days)
    _run_bridge_command(
        lambda: WifiBridge(store, hasher, device=device),
        kind="wifi",
        mqtt=mqtt_settings(mqtt_url, mqtt_ca, mqtt_cert, mqtt_key),
        store=store,
        device=device,
        topic=topic,
        options=_PublishOptions(queue, max_queue, when_full, max_batch, require_subscriber, max_batch_bytes),
    )


@bridge_app.command("beam")
def bridge_beam(
    mqtt_url: MqttUrl,
    store: Annotated[str, typer.Option(help="store the beam counters are in")],
    mqtt_ca: MqttCa = None,
    mqtt_cert: MqttCert = None,
    mqtt_key: MqttKey = None,
    line: Annotated[
        str, typer.Option(help="entrance line of counters not named in --sensor-line")
    ] = "entrance",
    sensor_line: Annotated[
        list[str] | None, typer.Option(help="SENSOR=LINE, repeatable: the entrance line of one counter")
    ] = None,
    device: Annotated[
        str, typer.Option(help="this bridge's name (status topic, queue file)")
    ] = "beam-bridge",
    topic: Annotated[str, typer.Option(help="sensor topic filter; the last level is the sensor id")] = (
        "sensors/beam/+"
    ),
    queue: QueuePath = None,
    max_queue: MaxQueue = 1_000_000,
    when_full: WhenFull = "drop_oldest",
    max_batch: MaxBatch = 500,
    max_batch_bytes: MaxBatchBytes = 256 * 1024,
    require_subscriber: RequireSubscriber = True,
    log_level: LogLevel = "INFO",
) -> None:
    """Beam counter interval counts (in, out) -> crossing counts on a named entrance line."""
    from footfall.contracts.config import ConfigError
    from footfall.edge.bridges import BeamBridge

    _setup_logging(log_level)
    lines: dict[str, str] = {}
    for item in sensor_line or []:
        sensor, sep, name = item.partition("=")
        if not sep or not sensor or not name:
            raise ConfigError(f"--sensor-line: expected SENSOR=LINE, got {item!r}")
        lines[sensor] = name
    _run_bridge_command(
        lambda: BeamBridge(store, default_line=line, lines=lines),
        kind="beam",
        mqtt=mqtt_settings(mqtt_url, mqtt_ca, mqtt_cert, mqtt_key),
        store=store,
        device=device,
        topic=topic,
        options=_PublishOptions(queue, max_queue, when_full, max_batch, require_subscriber, max_batch_bytes),
    )
