"""The live edge path end to end, real parts only: `footfall edge run` (real YOLO11n-pose on the real
TUD-Campus clip) -> on-disk queue -> Mosquitto (password + ACL) -> `footfall ingest` -> InfluxDB.

The store's uplink is down while the clip is counted, so every event waits in the edge's queue and
each heartbeat's ``queue_depth`` is known; then the broker comes back and the backlog drains. What
InfluxDB holds must be exactly what `footfall count` writes for the same clip, config and --start.
"""

from __future__ import annotations

import math
import signal
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from footfall.cli import app
from footfall.contracts.config import CameraConfig, MqttSettings, load_config
from footfall.contracts.events import (
    DEADLETTER_TOPIC,
    CrossingEvent,
    Event,
    OccupancyEvent,
    ZoneVisitEvent,
    parse_event,
    status_topic,
)
from footfall.contracts.influx import InfluxClient
from footfall.edge.transport import DiskQueue, StoreAndForwardPublisher
from tests.conftest import DEFAULT_MQTT_USERS
from tests.ingest_support import LoggedProcess, MqttTestClient, count_points, ingest_process, wait_for_count
from tests.servers import InfluxServer, MosquittoServer

pytestmark = [pytest.mark.model, pytest.mark.servers]

CONFIGS = Path(__file__).resolve().parent.parent / "edge" / "configs"
TUD_FPS = 25.0
# A zone over the right half of the walkway: everyone who walks through is still in it when they
# leave the picture, so their visits are closed by the end-of-stream flush (in both commands).
WALKWAY_ZONE = {"name": "walkway-right", "polygon": [[440, 300], [639, 300], [639, 479], [440, 479]]}
EDGE_USER = "edge-demo-campus"


@pytest.fixture(scope="module")
def tud_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed TUD camera config plus a zone (weights come from --model)."""
    data = yaml.safe_load((CONFIGS / "tud_campus.yaml").read_text())
    data["zones"] = [WALKWAY_ZONE]
    data.get("model", {}).pop("weights", None)
    path = tmp_path_factory.mktemp("config") / "tud_campus_zone.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="module")
def start_ts() -> str:
    # Recent enough for ingest's time window, fixed for both commands so the event ids agree.
    return (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Clip:
    config: Path
    source: Path
    model: Path
    cache: Path
    start: str  # --start of both commands
    counted: list[Event]  # what `footfall count` wrote

    @property
    def camera(self) -> CameraConfig:
        return load_config(self.config, CameraConfig)


@pytest.fixture(scope="module")
def clip(tud_config: Path, model_cache: Path, start_ts: str, pose_model_path: Path, video_dir: Path) -> Clip:
    """The clip, and what `footfall count` writes for it (which also fills the export cache)."""
    out = tud_config.parent / "count.jsonl"
    source = video_dir / "tud_campus" / "TUD-Campus.mp4"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FOOTFALL_CACHE_DIR", str(model_cache))
        env.delenv("FOOTFALL_MODEL", raising=False)
        result = CliRunner().invoke(
            app,
            [
                "count",
                str(source),
                "--config",
                str(tud_config),
                "--out",
                str(out),
                "--model",
                str(pose_model_path),
                "--start",
                start_ts,
            ],
        )
    assert result.exit_code == 0, result.output
    counted = [parse_event(line) for line in out.read_text().splitlines()]
    return Clip(tud_config, source, pose_model_path, model_cache, start_ts, counted)


@pytest.fixture
def broker(mosquitto_factory: Callable[..., MosquittoServer], tud_config: Path) -> MosquittoServer:
    """A broker with a device user for the config's store, allowed only under that store."""
    store = load_config(tud_config, CameraConfig).store
    users = {**DEFAULT_MQTT_USERS, EDGE_USER: ("demo-secret", [f"topic readwrite footfall/v1/{store}/#"])}
    return mosquitto_factory(users=users)


def _edge_run(broker: MosquittoServer, clip: Clip, tmp_path: Path) -> LoggedProcess:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return LoggedProcess(
        [
            "edge",
            "run",
            "--config",
            str(clip.config),
            "--source",
            str(clip.source),
            "--mqtt-url",
            broker.url(),
            "--model",
            str(clip.model),
            "--start",
            clip.start,
            "--heartbeat-every",
            "1",
            "--queue",
            str(tmp_path / "edge-queue.sqlite"),
        ],
        tmp_path / "edge.log",
        env={
            "MQTT_USER": EDGE_USER,
            "MQTT_PASSWORD": broker.users[EDGE_USER][0],
            "FOOTFALL_CACHE_DIR": str(clip.cache),
            # A private home: shows that nothing (OpenVINO telemetry included) writes a client id there.
            "HOME": str(home),
        },
    )


def _frame(ts: datetime, start: datetime) -> int:
    return round((ts - start).total_seconds() * TUD_FPS)


def _rows(client: InfluxClient, query: str) -> list[dict[str, object]]:
    out = []
    for series in client.query(query):
        out += [dict(zip(series.columns, row, strict=True)) for row in series.values]
    return out


def test_edge_run_delivers_exactly_what_count_counts(
    broker: MosquittoServer, influxdb: InfluxServer, influx_db: InfluxClient, clip: Clip, tmp_path: Path
) -> None:
    camera, counted = clip.camera, clip.counted
    crossings = {e.id: e for e in counted if isinstance(e, CrossingEvent)}
    visits = {e.id: e for e in counted if isinstance(e, ZoneVisitEvent)}
    assert len(crossings) >= 8, "the clip must exercise the lines"
    assert visits, "the clip must exercise the zone"

    ingest = ingest_process(
        broker, influxdb, influx_db.database, tmp_path / "ingest.log", client_id="ing-live", share=False
    )
    ingest.start().wait_for_log("ingest ready")
    # A persistent session: the broker keeps what the listener misses while it is down.
    listener = MqttTestClient(broker, "admin", client_id="live-listener", persistent=True)
    listener.client.reconnect_delay_set(min_delay=1, max_delay=1)
    listener.subscribe(status_topic(camera.store, camera.camera)).subscribe(DEADLETTER_TOPIC)
    broker.stop()  # the uplink is down while the clip is counted: everything waits on the edge's disk

    edge = _edge_run(broker, clip, tmp_path).start()
    try:
        edge.wait_for_log("source ended", timeout_s=300)
        broker.start()
        assert edge.wait(90) == 0, edge.log()
        log = edge.log()
        assert "all events delivered; stopped" in log

        # Exactly the crossings and zone visits `count` found, with the same ids and values.
        assert wait_for_count(influx_db, len(crossings), timeout_s=60) == len(crossings)
        stored = _rows(influx_db, 'SELECT "id", "line", "direction", "frame" FROM "crossing"')
        assert {r["id"]: (r["line"], r["direction"], r["frame"]) for r in stored} == {
            i: (c.line, c.direction, c.frame) for i, c in crossings.items()
        }
        assert len(stored) == len(crossings)
        assert wait_for_count(influx_db, len(visits), measurement="zone_visit") == len(visits)
        stored = _rows(influx_db, 'SELECT "id", "zone", "dwell_s" FROM "zone_visit"')
        assert sorted((r["id"], r["zone"], r["dwell_s"]) for r in stored) == sorted(
            (i, v.zone, v.dwell_s) for i, v in visits.items()
        )
        occupancy = [e for e in counted if isinstance(e, OccupancyEvent)]
        assert count_points(influx_db, "occupancy") == len(occupancy)

        # Heartbeats (one per second of the 2.84 s clip) carry the edge's queue depth: with the
        # uplink down, the number of events queued in front of each one.
        beats = sorted(_rows(influx_db, 'SELECT * FROM "heartbeat"'), key=lambda r: int(r["frames"]))
        # The 25 fps file is analysed at the default 15 fps at most: every 2nd frame. Beats come at
        # frames 26 and 52 (t = 1.04 s and 2.08 s), after 14 and 27 analysed frames.
        assert [b["frames"] for b in beats] == [14, 27]
        # ... and the detector's input and people size, through ingest into the database.
        assert all(b["detector_input"] and b["person_px"] > 0 and b["person_px_aim"] == 64 for b in beats)
        start = datetime.fromisoformat(clip.start.replace("Z", "+00:00"))
        # A frame's events leave the linker linking.delay_s (1.5 s) after the frame, and a beat
        # leaves with the next frame released: in front of it are at least the events of frames
        # 1.5 s older than the beat, at most those of every frame up to it.
        held_back = round(camera.linking.delay_s * 25)
        # A crossing is dated at the first sighting past the band and decided when the sightings
        # past it span counting.confirm_s: at 12.5 analysed frames a second, 2 of them (4 file frames)
        # later. So only the crossings dated that much earlier are surely released.
        deciding = 2 * math.ceil(camera.counting.confirm_s * 12.5 - 1e-9)
        for k, beat in enumerate(beats):
            frame = 2 * int(beat["frames"]) - 2  # the file's frame number of the beat
            events = [e for e in counted if not isinstance(e, ZoneVisitEvent)]
            before = [e for e in events if _frame(e.ts, start) <= frame]
            decided = [_frame(e.ts, start) + deciding * isinstance(e, CrossingEvent) for e in events]
            released = [f for f in decided if f <= frame - held_back]
            closed = [v for v in visits.values() if _frame(v.ts, start) <= frame]
            assert len(released) + k <= beat["queue_depth"] <= len(before) + k + len(closed), beat
            assert beat["fps"] > 0
            assert beat["latency_ms"] > 0
        total = len(counted) + len(beats)
        assert f"source ended; {total} events queued" in log

        # Nothing was dead-lettered: no dead letter published, none counted by ingest.
        assert count_points(influx_db, "deadletter") == 0
        assert listener.json_messages(DEADLETTER_TOPIC) == []
        # The device said online when it connected and offline when it stopped (retained).
        topic = status_topic(camera.store, camera.camera)
        assert listener.wait_for(
            lambda ms: [m.payload for m in ms if m.topic == topic][-2:] == [b"online", b"offline"]
        )
        late = MqttTestClient(broker, "admin").subscribe(topic)
        assert late.wait_for(lambda ms: len(ms) > 0)
        assert [m.payload for m in late.messages] == [b"offline"]
        assert late.messages[0].retain
        late.close()

        assert DiskQueue(tmp_path / "edge-queue.sqlite").depth == 0
        # OpenVINO's telemetry never initialised (it would have written a client id under $HOME/intel).
        assert not (tmp_path / "home" / "intel").exists()
    finally:
        edge.kill()
        listener.close()
        ingest.terminate()


def test_sigterm_mid_stream_keeps_the_queue(
    broker: MosquittoServer, influxdb: InfluxServer, influx_db: InfluxClient, clip: Clip, tmp_path: Path
) -> None:
    """SIGTERM with a backlog (uplink down): a prompt clean exit, open visits closed, every counted
    event still on disk; a later start of the publisher delivers exactly those."""
    camera, counted = clip.camera, clip.counted
    queue_path = tmp_path / "edge-queue.sqlite"
    broker.stop()
    edge = _edge_run(broker, clip, tmp_path).start()
    try:
        deadline = time.monotonic() + 300
        while _queued(queue_path) < 3:
            assert edge.proc is not None
            assert edge.proc.poll() is None, edge.log()
            assert time.monotonic() < deadline, edge.log()
            time.sleep(0.05)
        assert edge.proc is not None
        edge.proc.send_signal(signal.SIGTERM)
        assert edge.wait(30) == 0, edge.log()
    finally:
        edge.kill()
    log = edge.log()
    assert "stopping;" in log
    assert "they are sent on the next start" in log
    assert "source ended" not in log  # it was stopped mid-stream, not at the end of the file
    rows = _payloads(queue_path)
    events = [parse_event(p) for p in rows]
    assert 3 <= len(events) < len(counted)
    assert f"stopping; {len(events)} events queued" in log
    # Crossings so far are those of the full run (same ids), plus any a stop completes (a person
    # last seen just past a line counts at that sighting: docs/edge.md, crossing rule 7), each
    # confirmed by the full run on the same line and direction a few seconds later; visits still
    # open were closed.
    full = [e for e in counted if isinstance(e, CrossingEvent)]
    full_ids = {c.id for c in full}
    for extra in [e for e in events if isinstance(e, CrossingEvent) and e.id not in full_ids]:
        assert any(
            (c.line, c.direction) == (extra.line, extra.direction)
            and timedelta(0) <= c.ts - extra.ts <= timedelta(seconds=5)
            for c in full
        ), extra
    assert any(isinstance(e, ZoneVisitEvent) for e in events)

    broker.start()
    ingest = ingest_process(
        broker, influxdb, influx_db.database, tmp_path / "ingest.log", client_id="ing-term"
    )
    ingest.start().wait_for_log("ingest ready")
    queue = DiskQueue(queue_path)
    publisher = StoreAndForwardPublisher(
        MqttSettings.from_url(broker.url(EDGE_USER)),
        queue,
        store=camera.store,
        device=camera.camera,
        client_id="drain",
    ).start()
    try:
        assert publisher.wait_drained(30)
        measurements = ("crossing", "zone_visit", "occupancy", "heartbeat")
        expected = {m: sum(e.type == m for e in events) for m in measurements}
        assert wait_for_count(influx_db, expected["crossing"]) == expected["crossing"]
        assert {m: count_points(influx_db, m) for m in measurements} == expected
        assert count_points(influx_db, "deadletter") == 0
    finally:
        publisher.stop()
        queue.close()
        ingest.terminate()


def _queued(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=1) as db:
            return int(db.execute("SELECT count(*) FROM queue").fetchone()[0])
    except sqlite3.OperationalError:  # the table is not created yet
        return 0


def _payloads(path: Path) -> list[bytes]:
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT payload FROM queue ORDER BY seq")]
