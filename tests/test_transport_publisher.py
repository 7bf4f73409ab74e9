"""The store-and-forward publisher against a real broker: on-disk queue, cap policies, order after an
outage, queue depth in heartbeats, retained online/offline status."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from footfall.contracts.config import MqttSettings
from footfall.contracts.events import (
    DEADLETTER_TOPIC,
    HeartbeatEvent,
    batch_topic,
    is_batch_topic,
    status_topic,
)
from footfall.edge.transport import DiskQueue, StoreAndForwardPublisher
from tests.ingest_support import (
    LoggedProcess,
    MqttTestClient,
    crossing_events,
    events_in,
    write_jsonl,
)
from tests.servers import MosquittoServer

# A broker of this module's own (tests/conftest.py `mosquitto`): its sessions stay here.
OWN_BROKER = True


def _rows(n: int, start: int = 0) -> list[tuple[str, bytes]]:
    return [(f"t/{i}", str(i).encode()) for i in range(start, start + n)]


def test_queue_drop_oldest_keeps_newest_and_counts_across_restart(tmp_path: Path) -> None:
    queue = DiskQueue(tmp_path / "q.sqlite", max_events=5, when_full="drop_oldest")
    assert queue.put(_rows(3)) == 3
    assert queue.put(_rows(5, start=3)) == 5
    assert queue.depth == 5
    assert queue.dropped == 3
    queue.close()
    reopened = DiskQueue(tmp_path / "q.sqlite", max_events=5, when_full="drop_oldest")
    assert reopened.depth == 5
    assert reopened.dropped == 3
    assert [payload for _, _, payload in reopened.peek(0, 10)] == [b"3", b"4", b"5", b"6", b"7"]


def test_queue_refuse_new_keeps_oldest(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    queue = DiskQueue(tmp_path / "q.sqlite", max_events=5, when_full="refuse_new")
    assert queue.put(_rows(4)) == 4
    assert queue.put(_rows(4, start=4)) == 1
    assert queue.refused == 3
    assert [payload for _, _, payload in queue.peek(0, 10)] == [b"0", b"1", b"2", b"3", b"4"]
    assert "refused 3 new events" in caplog.text


def test_queue_meta_commits_with_rows(tmp_path: Path) -> None:
    queue = DiskQueue(tmp_path / "q.sqlite")
    queue.put(_rows(2), meta={"progress": "2"})
    queue.delete(seq for seq, _, _ in queue.peek(0, 1))
    assert queue.get_meta("progress") == "2"
    assert queue.depth == 1


def test_queue_delete_takes_exactly_the_acknowledged_rows(tmp_path: Path) -> None:
    queue = DiskQueue(tmp_path / "q.sqlite")
    queue.put(_rows(10))
    seqs = [seq for seq, _, _ in queue.peek(0, 10)]
    queue.delete([seqs[7], seqs[0], seqs[1], seqs[2], seqs[5], seqs[2]])  # unordered, a repeat, gaps
    assert queue.depth == 5
    assert [payload for _, _, payload in queue.peek(0, 10)] == [b"3", b"4", b"6", b"8", b"9"]


def _publisher(tmp_path: Path, *, max_batch: int) -> StoreAndForwardPublisher:
    settings = MqttSettings.from_url("mqtt://127.0.0.1:1")  # never started: grouping needs no broker
    return StoreAndForwardPublisher(
        settings, DiskQueue(tmp_path / "q.sqlite"), store="s", device="d", max_batch=max_batch
    )


def test_consecutive_events_of_one_device_become_batches_in_order(tmp_path: Path) -> None:
    def row(seq: int, topic: str) -> tuple[int, str, bytes]:
        return seq, topic, f'{{"n":{seq}}}'.encode()

    rows = [
        row(1, "footfall/v1/s/d/crossing"),
        row(2, "footfall/v1/s/d/heartbeat"),
        row(3, "footfall/v1/s/d/crossing"),
        row(4, "footfall/v1/s/d/crossing"),
        row(5, DEADLETTER_TOPIC),  # not an event topic: always alone
        row(6, "footfall/v1/s/other/wifi"),  # another device: its own message
        row(7, "footfall/v1/s/d/crossing"),
    ]
    messages = list(_publisher(tmp_path, max_batch=3)._messages(rows))
    assert [(topic, seqs) for topic, _, seqs in messages] == [
        (batch_topic("s", "d"), [1, 2, 3]),
        ("footfall/v1/s/d/crossing", [4]),  # a batch of one keeps its event topic
        (DEADLETTER_TOPIC, [5]),
        ("footfall/v1/s/other/wifi", [6]),
        ("footfall/v1/s/d/crossing", [7]),
    ]
    assert messages[0][1] == b'[{"n":1},{"n":2},{"n":3}]'
    single = list(_publisher(tmp_path, max_batch=1)._messages(rows[:3]))
    assert [seqs for _, _, seqs in single] == [[1], [2], [3]]


@pytest.mark.servers
def test_events_nobody_subscribed_to_stay_queued_until_a_subscriber_appears(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    """The broker answers "no matching subscribers" (PUBACK 0x10) and would drop the events: they stay
    on disk and go out again, in order, once ingest (here a shared subscription) is there."""
    queue = DiskQueue(tmp_path / "q.sqlite")
    settings = MqttSettings.from_url(mosquitto.url("edge-store-a"))
    publisher = StoreAndForwardPublisher(
        settings, queue, store="store-a", device="lonely-cam", max_batch=20, max_hold_s=1.0
    ).start()
    events = crossing_events(100, device="lonely-cam")
    watcher: MqttTestClient | None = None
    try:
        publisher.publish_many(events)
        assert not publisher.wait_drained(3)
        assert queue.depth == 100
        assert publisher.stats.unrouted >= 20
        assert publisher.stats.acknowledged == 0
        watcher = MqttTestClient(mosquitto, "ingest").subscribe("$share/g/footfall/v1/store-a/lonely-cam/+")
        assert publisher.wait_drained(20)
        assert watcher.wait_for(lambda msgs: len(events_in(msgs)) >= 100, 10)
    finally:
        publisher.stop()
        if watcher:
            watcher.close()
    assert [e.id for e in events_in(watcher.messages)] == [e.id for e in events]  # in order, each once
    assert publisher.stats.acknowledged == 100


@pytest.mark.servers
def test_without_require_subscriber_unrouted_events_count_as_delivered(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    queue = DiskQueue(tmp_path / "q.sqlite")
    settings = MqttSettings.from_url(mosquitto.url("edge-store-a"))
    publisher = StoreAndForwardPublisher(
        settings, queue, store="store-a", device="fire-and-forget", require_subscriber=False
    ).start()
    try:
        publisher.publish_many(crossing_events(10, device="fire-and-forget"))
        assert publisher.wait_drained(10)
    finally:
        publisher.stop()
    assert publisher.stats.unrouted == 0
    assert publisher.stats.acknowledged == 10


@pytest.mark.servers
def test_backlog_drains_in_order_with_depth_in_heartbeat(
    mosquitto_factory: Callable[..., MosquittoServer], tmp_path: Path
) -> None:
    broker = mosquitto_factory()
    watcher = MqttTestClient(broker, "admin", persistent=True).subscribe("footfall/v1/store-a/#")
    broker.stop()  # outage: the publisher can only queue
    queue = DiskQueue(tmp_path / "q.sqlite")
    publisher = StoreAndForwardPublisher(
        MqttSettings.from_url(broker.url("edge-store-a")), queue, store="store-a", device="cam-1"
    ).start()
    events = crossing_events(300)
    try:
        assert publisher.publish_many(events) == 300
        beat = HeartbeatEvent(
            id="hb-1",
            store="store-a",
            device="cam-1",
            ts=datetime.now(UTC),
            fps=5,
            latency_ms=20,
            dropped_frames=0,
        )
        assert publisher.publish(beat)
        time.sleep(0.5)
        assert queue.depth == 301
        broker.start()
        assert publisher.wait_drained(30)
        assert queue.depth == 0
    finally:
        publisher.stop()
    assert watcher.wait_for(lambda msgs: sum(e.type == "heartbeat" for e in events_in(msgs)) == 1, 15)
    watcher.close()
    received = events_in(watcher.messages)
    assert [e.id for e in received] == [e.id for e in events] + ["hb-1"]  # in order, each once
    # The backlog left as a few batch messages of this device, not as 301 messages.
    assert 1 <= sum(is_batch_topic(m.topic) for m in watcher.messages) <= 3
    assert publisher.stats.messages <= 3
    assert publisher.stats.acknowledged == 301
    heartbeat = received[-1]
    assert isinstance(heartbeat, HeartbeatEvent)
    assert heartbeat.queue_depth == 300  # the backlog in front of it when it was queued


@pytest.mark.servers
def test_status_online_then_offline_last_will_on_sigkill(mosquitto: MosquittoServer, tmp_path: Path) -> None:
    events_file = write_jsonl(tmp_path / "e.jsonl", crossing_events(200, device="will-cam"))
    replay = LoggedProcess(
        [
            "edge",
            "replay",
            str(events_file),
            "--mqtt-url",
            mosquitto.url("edge-store-a"),
            "--rate",
            "20",
            "--queue",
            str(tmp_path / "q.sqlite"),
        ],
        tmp_path / "replay.log",
    )
    topic = status_topic("store-a", "will-cam")

    def retained_status() -> str:
        reader = MqttTestClient(mosquitto, "admin").subscribe(topic)
        reader.wait_for(lambda msgs: bool(msgs), 5)
        reader.close()
        return reader.messages[-1].payload.decode() if reader.messages else ""

    try:
        replay.start().wait_for_log("connected to")
        assert retained_status() == "online"
        replay.kill()  # SIGKILL: no goodbye, the broker publishes the will
        deadline = time.monotonic() + 10
        while retained_status() != "offline" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert retained_status() == "offline"
    finally:
        replay.kill()


def test_replay_reports_invalid_lines(tmp_path: Path, mosquitto: MosquittoServer) -> None:
    good = crossing_events(2, device="replay-bad")
    path = tmp_path / "e.jsonl"
    path.write_text(
        good[0].to_json() + "\n{not json\n" + json.dumps({"type": "x"}) + "\n" + good[1].to_json() + "\n"
    )
    replay = LoggedProcess(
        [
            "edge",
            "replay",
            str(path),
            "--mqtt-url",
            mosquitto.url("edge-store-a"),
            "--queue",
            str(tmp_path / "q"),
            "--no-require-subscriber",  # nobody listens here; the flag lets the broker's PUBACK suffice
        ],
        tmp_path / "replay.log",
    ).start()
    try:
        assert replay.wait(30) == 1
    finally:
        replay.kill()
    log = replay.log()
    assert f"{path}:2: skipped: malformed_json" in log
    assert f"{path}:3: skipped: unknown_type" in log
    assert "replayed 2 events" in log
