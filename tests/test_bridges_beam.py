"""Beam counter bridge: interval counts (in, out) -> crossing counts on a named entrance line, end to
end through the real bridge, broker, ingest and InfluxDB."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from footfall.contracts.events import CrossingEvent
from footfall.contracts.influx import InfluxClient
from footfall.edge.bridges import BeamBridge
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
