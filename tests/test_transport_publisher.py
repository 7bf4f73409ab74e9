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
from footfall.contracts.events import HeartbeatEvent, parse_event, status_topic
from footfall.edge.transport import DiskQueue, StoreAndForwardPublisher
from tests.ingest_support import (
    LoggedProcess,
    MqttTestClient,
    crossing_events,
    module_broker,  # noqa: F401 - fixture `mosquitto`: a broker per module
    write_jsonl,
)
from tests.servers import MosquittoServer


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
    assert watcher.wait_for(lambda msgs: sum(m.topic.endswith("/heartbeat") for m in msgs) == 1, 15)
    watcher.close()
    received = [parse_event(m.payload) for m in watcher.messages if not m.topic.endswith("/status")]
    assert [e.id for e in received] == [e.id for e in events] + ["hb-1"]  # in order, each once
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
        ],
        tmp_path / "replay.log",
    ).start()
    assert replay.wait(30) == 1
    log = replay.log()
    assert f"{path}:2: skipped: malformed_json" in log
    assert f"{path}:3: skipped: unknown_type" in log
    assert "replayed 2 events" in log
