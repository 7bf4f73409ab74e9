"""Beam counter bridge: interval counts (in, out) -> crossing counts on a named entrance line, end to
end through the real bridge, broker, ingest and InfluxDB."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from footfall.contracts.config import MqttSettings
from footfall.contracts.events import CrossingEvent
from footfall.contracts.influx import InfluxClient
from footfall.edge.bridges import BeamBridge, run_bridge
from footfall.edge.transport import DiskQueue, StoreAndForwardPublisher
from tests.ingest_support import (
    LoggedProcess,
    MqttTestClient,
    count_points,
    ingest_process,
)
from tests.servers import InfluxServer, MosquittoServer

# A broker of this module's own (tests/conftest.py `mosquitto`): its sessions stay here.
OWN_BROKER = True
NOW = datetime(2026, 5, 20, 12, 0, tzinfo=UTC)


def _counts(count_in: int, count_out: int, ts: datetime = NOW) -> bytes:
    return json.dumps({"in": count_in, "out": count_out, "ts": ts.isoformat(), "interval_s": 60}).encode()


@pytest.mark.parametrize(
    ("count_in", "count_out", "expected"),
    [(3, 2, [("in", 3), ("out", 2)]), (4, 0, [("in", 4)]), (0, 1, [("out", 1)]), (0, 0, [])],
)
def test_interval_counts_map_to_crossing_counts(
    count_in: int, count_out: int, expected: list[tuple[str, int]]
) -> None:
    bridge = BeamBridge("store-a", default_line="main-door", lines={"beam-2": "side-door"})
    events, letter = bridge.handle("sensors/beam/beam-1", _counts(count_in, count_out), now=NOW)
    assert letter is None
    assert all(isinstance(e, CrossingEvent) for e in events)
    crossings: list[CrossingEvent] = events  # type: ignore[assignment]
    assert [(e.direction, e.count) for e in crossings] == expected
    for event in crossings:
        assert (event.source, event.kind, event.line, event.device, event.store) == (
            "beam",
            "entrance",
            "main-door",
            "beam-1",
            "store-a",
        )
        assert event.ts == NOW
    side, _ = bridge.handle("sensors/beam/beam-2", _counts(1, 0), now=NOW)
    assert side[0].line == "side-door"  # type: ignore[union-attr]


def test_resent_interval_gets_the_same_ids() -> None:
    bridge = BeamBridge("store-a")
    first, _ = bridge.handle("sensors/beam/beam-1", _counts(3, 2), now=NOW)
    again, _ = bridge.handle("sensors/beam/beam-1", _counts(3, 2), now=NOW)
    assert [e.id for e in first] == [e.id for e in again]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"in=3", "malformed_json"),
        (json.dumps({"in": 3, "ts": NOW.isoformat()}).encode(), "missing_field"),
        (json.dumps({"in": -1, "out": 0, "ts": NOW.isoformat()}).encode(), "wrong_type"),
        (json.dumps({"in": 1, "out": 0, "ts": "yesterday"}).encode(), "wrong_type"),
        (json.dumps({"in": 1, "out": 0, "ts": NOW.isoformat(), "extra": 1}).encode(), "wrong_type"),
        (_counts(1, 1, NOW - timedelta(days=900)), "ts_out_of_range"),
    ],
)
def test_bad_counts_become_dead_letters(payload: bytes, reason: str) -> None:
    events, letter = BeamBridge("store-a").handle("sensors/beam/beam-1", payload, now=NOW)
    assert events == []
    assert letter is not None
    assert letter.reason == reason
    assert letter.payload == payload.decode()


def test_sensor_id_that_is_no_valid_name_is_a_dead_letter() -> None:
    events, letter = BeamBridge("store-a").handle("sensors/beam/bad id!", _counts(1, 0), now=NOW)
    assert events == []
    assert letter is not None
    assert letter.reason == "bad_sensor_message"


@pytest.mark.servers
def test_beam_counts_reach_influxdb_and_bad_ones_are_counted(
    mosquitto: MosquittoServer, influxdb: InfluxServer, influx_db: InfluxClient, tmp_path: Path
) -> None:
    ingest = ingest_process(
        mosquitto, influxdb, influx_db.database, tmp_path / "ingest.log", client_id="ing-beam"
    )
    ingest.start().wait_for_log("ingest ready")
    bridge = LoggedProcess(
        ["bridge", "beam", "--mqtt-url", mosquitto.url("bridge"), "--store", "store-a", "--line", "main-door",
         "--sensor-line", "beam-side=side-door", "--topic", "sensors/beam-test/+", "--queue",
         str(tmp_path / "q.sqlite")],
        tmp_path / "bridge.log",
    ).start()  # fmt: skip
    sensor = MqttTestClient(mosquitto, "sensor")
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        bridge.wait_for_log("beam bridge ready")
        for minute in range(5):
            sensor.publish("sensors/beam-test/beam-front", _counts(3, 2, now - timedelta(minutes=minute)))
        sensor.publish("sensors/beam-test/beam-side", _counts(7, 0, now))
        sensor.publish("sensors/beam-test/beam-front", _counts(3, 2, now))  # a resend: overwrites itself
        sensor.publish("sensors/beam-test/beam-front", b"{broken")
        deadline = datetime.now(UTC) + timedelta(seconds=20)
        while datetime.now(UTC) < deadline and (
            count_points(influx_db) < 11 or count_points(influx_db, "deadletter") < 1
        ):
            time.sleep(0.2)
    finally:
        sensor.close()
        bridge.terminate()
        ingest.terminate()
    totals = {
        (s.tags["line"], s.tags["direction"]): s.column("sum")[0]
        for s in influx_db.query('SELECT sum("count") FROM "crossing" GROUP BY "line", "direction"')
    }
    assert totals == {("main-door", "in"): 15, ("main-door", "out"): 10, ("side-door", "in"): 7}
    (dead,) = influx_db.query(
        'SELECT "count", "topic" FROM "deadletter" WHERE "component" = \'bridge-beam\' GROUP BY "reason"'
    )
    assert dead.values[0][1:] == [1, "sensors/beam-test/beam-front"]
    assert dead.tags == {"reason": "malformed_json"}


def _until(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _start_bridge(
    mosquitto: MosquittoServer, queue: DiskQueue, stopping: threading.Event
) -> tuple[BeamBridge, threading.Thread]:
    settings = MqttSettings.from_url(mosquitto.url("bridge"))
    # Not started: the test reads what the bridge commits to the queue, not what leaves it.
    publisher = StoreAndForwardPublisher(settings, queue, store="store-a", device="beam-bridge")
    bridge = BeamBridge("store-a", default_line="main-door")
    runner = threading.Thread(
        target=run_bridge,
        args=(bridge, settings, "sensors/beam-fail/+", publisher, stopping),
        kwargs={"client_id": "bridge-queue-fails"},  # one persistent session for both runs below
        daemon=True,
    )
    runner.start()
    return bridge, runner


@pytest.mark.servers
def test_a_failing_queue_neither_loses_a_sensor_message_nor_stops_the_bridge(
    mosquitto: MosquittoServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="footfall.bridge")
    queue = DiskQueue(tmp_path / "q.sqlite")
    queue._db.execute("PRAGMA busy_timeout=100")  # the queue fails after 0.1 s of the lock, not 5 s
    locker = sqlite3.connect(tmp_path / "q.sqlite", isolation_level=None)
    stopping = threading.Event()
    bridge, runner = _start_bridge(mosquitto, queue, stopping)
    sensor = MqttTestClient(mosquitto, "sensor")
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        assert _until(lambda: "beam bridge ready" in caplog.text, 15)
        locker.execute("BEGIN EXCLUSIVE")  # every put now raises "database is locked"
        sensor.publish("sensors/beam-fail/beam-front", _counts(3, 0, now))
        assert _until(lambda: bridge.stats.messages == 1, 10)
        time.sleep(2)  # several failing tries
        assert queue.depth == 0
        locker.execute("COMMIT")
        assert _until(lambda: queue.depth == 1, 15), "the message was lost"
        sensor.publish("sensors/beam-fail/beam-front", _counts(0, 2, now + timedelta(minutes=1)))
        assert _until(lambda: queue.depth == 2, 10), "the bridge stopped receiving"
    finally:
        stopping.set()
        runner.join(20)
        sensor.close()
        locker.close()
    rows = [json.loads(payload) for _, _, payload in queue.peek(0, 10)]
    assert [(r["direction"], r["count"]) for r in rows] == [("in", 3), ("out", 2)]
    failures = [r for r in caplog.records if "takes no sensor messages" in r.getMessage()]
    assert [r.levelno for r in failures] == [logging.ERROR]  # said once, not on every try
    assert "takes sensor messages again" in caplog.text
    queue.close()
    # Both were acknowledged once queued: the session holds nothing to send again.
    again = DiskQueue(tmp_path / "again.sqlite")
    stopping = threading.Event()
    bridge, runner = _start_bridge(mosquitto, again, stopping)
    try:
        assert _until(lambda: caplog.text.count("beam bridge ready") == 2, 15)
        time.sleep(1)
    finally:
        stopping.set()
        runner.join(20)
    assert (bridge.stats.messages, again.depth) == (0, 0)
