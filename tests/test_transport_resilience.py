"""The transport when more than the network goes wrong: a queue locked or full on disk, a queue at
its cap while events are in flight, a replay that outpaces the broker or is stopped while it waits
for one, a broker with a message size limit, a camera whose queue fails for a while. Each against a
real Mosquitto where a broker is involved."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from footfall.contracts.config import MqttSettings
from footfall.contracts.events import Event, status_topic
from footfall.edge import pipeline
from footfall.edge.multicam import CameraRun, RunOptions, _count_camera
from footfall.edge.transport import DiskQueue, StoreAndForwardPublisher
from tests.conftest import DEFAULT_MQTT_USERS, require
from tests.ingest_support import LoggedProcess, MqttTestClient, crossing_events, events_in, write_jsonl
from tests.servers import MosquittoServer, free_port, have_binary

# A broker of this module's own (tests/conftest.py `mosquitto`): its sessions stay here.
OWN_BROKER = True


def _settings(broker: MosquittoServer) -> MqttSettings:
    return MqttSettings.from_url(broker.url("edge-store-a"))


def _ids(events: list[Event]) -> list[str]:
    return [e.id for e in events]


@pytest.mark.servers
def test_the_sender_outlives_a_queue_locked_longer_than_its_busy_timeout(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    """Another writer holds the queue's lock for longer than SQLite waits (5 s) while PUBACKs are
    settled: the sender says so, retries, and delivers once the lock is gone."""
    queue = DiskQueue(tmp_path / "q.sqlite")
    publisher = StoreAndForwardPublisher(
        _settings(mosquitto), queue, store="store-a", device="locked-cam", require_subscriber=False
    )
    assert publisher.publish_many(crossing_events(50, device="locked-cam")) == 50
    other = sqlite3.connect(tmp_path / "q.sqlite", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # reads still work: the rows go out, their deletes wait
    publisher.start()
    try:
        time.sleep(8)  # the first delete has given up waiting (after 5 s)
        assert publisher._thread.is_alive()
        assert publisher.failure is not None
        assert "database is locked" in publisher.failure  # visible while it lasts
        other.execute("ROLLBACK")
        assert publisher.publish_many(crossing_events(5, device="locked-cam")) == 5
        assert publisher.wait_drained(20)
    finally:
        other.close()
        publisher.stop()
    assert publisher.failure is None
    assert publisher.stats.send_errors >= 1
    assert publisher.stats.acknowledged == 55
    assert queue.depth == 0


def test_a_put_the_disk_cannot_hold_leaves_the_counters_and_raises_its_own_error(tmp_path: Path) -> None:
    queue = DiskQueue(tmp_path / "q.sqlite", max_events=5, when_full="drop_oldest")
    queue.put([(f"t/{i}", b"x") for i in range(5)])
    pages = queue._db.execute("PRAGMA page_count").fetchone()[0]
    queue._db.execute(f"PRAGMA max_page_count={pages}")  # the disk is full now
    with pytest.raises(sqlite3.OperationalError, match="full"):  # not "cannot rollback"
        queue.put([("t/big", b"x" * 200_000)])  # would drop the oldest row to make room
    assert (queue.depth, queue.dropped, queue.get_meta("dropped")) == (5, 0, None)
    queue._db.execute("PRAGMA max_page_count=1073741823")  # space again
    queue.delete(seq for seq, _, _ in queue.peek(0, 10))
    assert queue.depth == 0  # not -1: a publisher waiting for an empty queue sees one
    queue.close()
    assert DiskQueue(tmp_path / "q.sqlite").depth == 0


def test_a_progress_marker_never_passes_a_refused_row(tmp_path: Path) -> None:
    queue = DiskQueue(tmp_path / "q.sqlite", max_events=5, when_full="refuse_new")
    lines = [(f"t/{i}", str(i).encode()) for i in range(1, 9)]  # lines 1..8 of a file
    taken = queue.put(lines, meta=lambda n: {"progress": str(n)} if n else {})
    assert taken == 5
    assert queue.get_meta("progress") == "5"  # the next run resumes at line 6, not after line 8


@pytest.mark.servers
def test_drop_oldest_keeps_events_in_flight_and_counts_only_the_lost(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    """The broker is frozen (SIGSTOP) while the queue overflows: the events already handed to it are
    delivered once it thaws, so only the events that never left count as dropped."""
    watcher = MqttTestClient(mosquitto, "admin").subscribe("footfall/v1/store-a/frozen-cam/+")
    queue = DiskQueue(tmp_path / "q.sqlite", max_events=50, when_full="drop_oldest")
    publisher = StoreAndForwardPublisher(
        _settings(mosquitto), queue, store="store-a", device="frozen-cam", window=60, max_batch=10
    ).start()
    events = crossing_events(200, device="frozen-cam")
    assert mosquitto.proc is not None
    try:
        assert watcher.wait_for(
            lambda msgs: any(m.topic == status_topic("store-a", "frozen-cam") for m in msgs)
        )
        mosquitto.proc.send_signal(signal.SIGSTOP)  # it takes what is sent and acknowledges nothing
        for i in range(0, 200, 50):
            publisher.publish_many(events[i : i + 50])
            time.sleep(0.3)  # the sender fills its window
        mosquitto.proc.send_signal(signal.SIGCONT)
        assert publisher.wait_drained(30)
    finally:
        mosquitto.proc.send_signal(signal.SIGCONT)
        publisher.stop()
    assert queue.dropped > 0
    assert watcher.wait_for(lambda msgs: len(events_in(msgs)) >= 200 - queue.dropped, 10)
    time.sleep(0.5)
    watcher.close()
    delivered = _ids(events_in(watcher.messages))
    assert len(delivered) == len(set(delivered)) == 200 - queue.dropped  # the figure is true
    assert int(queue.get_meta("dropped") or 0) == queue.dropped
    assert delivered[-50:] == _ids(events[-50:])  # the newest are kept


def _replay(path: Path, url: str, queue: Path, log: Path, *extra: str) -> LoggedProcess:
    return LoggedProcess(["edge", "replay", str(path), "--mqtt-url", url, "--queue", str(queue), *extra], log)


@pytest.mark.servers
@pytest.mark.parametrize("when_full", ["drop_oldest", "refuse_new"])
def test_a_replay_larger_than_its_queue_waits_for_room_and_loses_no_line(
    mosquitto: MosquittoServer, tmp_path: Path, when_full: str
) -> None:
    device = f"tight-{when_full.replace('_', '-')}"
    events = crossing_events(40, device=device)
    path = write_jsonl(tmp_path / "e.jsonl", events)
    watcher = MqttTestClient(mosquitto, "admin").subscribe(f"footfall/v1/store-a/{device}/+")
    limits = ("--max-queue", "5", "--when-full", when_full)
    url, queue = mosquitto.url("edge-store-a"), tmp_path / "q.sqlite"
    first = _replay(path, url, queue, tmp_path / "r1.log", *limits).start()
    second = _replay(path, url, queue, tmp_path / "r2.log", *limits)
    try:
        assert first.wait(60) == 0, first.log()
        assert "replayed 40 events" in first.log()
        second.start()
        assert second.wait(30) == 0, second.log()
        assert "replayed 0 events" in second.log()  # the first run's marker covered every line
        assert watcher.wait_for(lambda msgs: len(events_in(msgs)) >= 40, 10)
    finally:
        first.kill()
        second.kill()
        watcher.close()
    assert _ids(events_in(watcher.messages)) == _ids(events)  # each once, in order
    stored = DiskQueue(queue)
    assert (stored.dropped, stored.refused) == (0, 0)


@pytest.mark.servers
def test_a_replay_waiting_for_a_broker_that_is_down_stops_on_sigterm_and_resumes(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    events = crossing_events(20, device="patient-cam")
    path = write_jsonl(tmp_path / "e.jsonl", events)
    queue = tmp_path / "q.sqlite"
    down = mosquitto.url("edge-store-a").replace(f":{mosquitto.port}", f":{free_port()}")
    first = _replay(path, down, queue, tmp_path / "r1.log").start()
    second = _replay(path, mosquitto.url("edge-store-a"), queue, tmp_path / "r2.log")
    watcher = MqttTestClient(mosquitto, "admin").subscribe("footfall/v1/store-a/patient-cam/+")
    try:
        time.sleep(3)  # all queued, waiting for the broker
        assert first.proc is not None
        first.proc.send_signal(signal.SIGTERM)
        assert first.wait(15) == 130
        assert "stopped: 20 events stay queued" in first.log()
        second.start()
        assert second.wait(30) == 0, second.log()
        assert "replayed 0 events" in second.log()
        assert "20 queued earlier" in second.log()
        assert watcher.wait_for(lambda msgs: len(events_in(msgs)) >= 20, 10)
    finally:
        first.kill()
        second.kill()
        watcher.close()
    assert _ids(events_in(watcher.messages)) == _ids(events)


@dataclass
class _LimitedBroker(MosquittoServer):
    """The test broker with extra global settings (a message size limit)."""

    extra: tuple[str, ...] = ()

    def prepare(self) -> None:
        super().prepare()
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(conf.read_text() + "\n".join(self.extra) + "\n")


@pytest.fixture
def limited_broker(tmp_path: Path) -> Iterator[Callable[[str], MosquittoServer]]:
    require(have_binary("mosquitto") and have_binary("mosquitto_passwd"), "the mosquitto binary")
    started: list[MosquittoServer] = []

    def make(setting: str) -> MosquittoServer:
        broker = _LimitedBroker(tmp_path / "broker", users=DEFAULT_MQTT_USERS, extra=(setting,))
        broker.start()
        started.append(broker)
        return broker

    yield make
    for broker in started:
        broker.stop()


@pytest.mark.servers
@pytest.mark.parametrize(
    "setting",
    [
        "max_packet_size 65536",  # announced in CONNACK (MQTT v5 Maximum Packet Size)
        "message_size_limit 65536",  # not announced: Mosquitto 2.0 cuts the connection instead
    ],
)
def test_a_backlog_reaches_a_broker_with_a_message_size_limit(
    limited_broker: Callable[[str], MosquittoServer], tmp_path: Path, setting: str
) -> None:
    broker = limited_broker(setting)
    watcher = MqttTestClient(broker, "admin").subscribe("footfall/v1/store-a/cam-1/+")
    queue = DiskQueue(tmp_path / "q.sqlite")
    publisher = StoreAndForwardPublisher(_settings(broker), queue, store="store-a", device="cam-1")
    events = crossing_events(2000)
    publisher.publish_many(events)  # a backlog: batches of 500 events would be ~100 KiB
    publisher.start()
    try:
        assert publisher.wait_drained(30)
        assert watcher.wait_for(lambda msgs: set(_ids(events_in(msgs))) >= set(_ids(events)), 10)
    finally:
        publisher.stop()
        watcher.close()
    assert publisher.stats.acknowledged == 2000
    assert publisher.stats.refused_by_broker == publisher.stats.too_large == 0


@pytest.mark.servers
def test_an_event_over_the_announced_packet_size_is_dropped_and_counted(
    limited_broker: Callable[[str], MosquittoServer], tmp_path: Path
) -> None:
    broker = limited_broker("max_packet_size 1024")
    watcher = MqttTestClient(broker, "admin").subscribe("footfall/v1/store-a/cam-1/+")
    queue = DiskQueue(tmp_path / "q.sqlite")
    publisher = StoreAndForwardPublisher(_settings(broker), queue, store="store-a", device="cam-1")
    events = crossing_events(20)
    publisher.publish_payloads([(events[0].topic, json.dumps({"pad": "x" * 2000}).encode())])
    publisher.publish_many(events)
    publisher.start()
    try:
        assert publisher.wait_drained(20)
        assert watcher.wait_for(lambda msgs: len(events_in(msgs)) >= 20, 10)
    finally:
        publisher.stop()
        watcher.close()
    assert _ids(events_in(watcher.messages)) == _ids(events)
    assert publisher.stats.too_large == 1
    assert publisher.stats.acknowledged == 20


@pytest.mark.servers
def test_a_replay_whose_line_the_broker_cannot_take_says_so_and_fails(
    limited_broker: Callable[[str], MosquittoServer], tmp_path: Path
) -> None:
    """One line is over the broker's announced packet size: dropped (not to block the rest), and
    the replay says so and exits 1 instead of reporting every line replayed."""
    broker = limited_broker("max_packet_size 350")
    events = crossing_events(10, device="rp-cam")
    events[4] = events[4].model_copy(update={"line": "x" * 64, "id": "p" * 128})  # a 431-byte packet
    path = write_jsonl(tmp_path / "e.jsonl", events)
    replay = _replay(
        path,
        broker.url("edge-store-a"),
        tmp_path / "q.sqlite",
        tmp_path / "r.log",
        "--max-batch",
        "1",
        "--no-require-subscriber",
    )
    replay.start()
    try:
        code = replay.wait(60)
    finally:
        replay.kill()
    assert code == 1, replay.log()
    assert "over its maximum packet size: not delivered" in replay.log()


def test_a_camera_keeps_counting_while_its_queue_is_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The queue refuses every put for a while (another writer holds its lock): the camera goes on,
    and every event reaches the queue, in order, once it takes them again."""
    queue = DiskQueue(tmp_path / "q.sqlite")
    queue._db.execute("PRAGMA busy_timeout=50")  # give up at once instead of after 5 s
    publisher = StoreAndForwardPublisher(  # never started: only its queue matters here
        MqttSettings.from_url("mqtt://127.0.0.1:1"), queue, store="store-a", device="cam-1"
    )
    other = sqlite3.connect(tmp_path / "q.sqlite", isolation_level=None)
    events = crossing_events(30)

    def counted(*args: object, **kwargs: object) -> Iterator[Event]:
        yield from events[:10]
        other.execute("BEGIN IMMEDIATE")
        yield from events[10:20]
        other.execute("ROLLBACK")
        yield from events[20:]

    monkeypatch.setattr(pipeline, "iter_events", counted)
    run = CameraRun("cam-1", "a source")
    options = RunOptions(None, lambda source, camera: None, lambda source: False, 10.0, lambda: False)
    _count_camera(run, None, None, publisher.publish, options)  # type: ignore[arg-type]
    other.close()
    assert run.error is None
    assert run.events == 30
    assert [json.loads(payload)["id"] for _, _, payload in queue.peek(0, 100)] == _ids(events)
