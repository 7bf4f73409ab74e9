"""Bad input never stops ingest and never vanishes: each class goes to the dead-letter topic with its
reason and is counted in the ``deadletter`` measurement; valid events around it are stored."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from footfall.contracts.events import (
    DEADLETTER_TOPIC,
    MAX_PAYLOAD_BYTES,
    CameraIssueEvent,
    CrossingEvent,
    HeartbeatEvent,
    batch_topic,
)
from footfall.contracts.influx import InfluxClient
from tests.ingest_support import (
    LoggedProcess,
    MqttTestClient,
    count_points,
    crossing_events,
    deadletter_listener,
    ingest_process,
    wait_for_count,
)
from tests.servers import InfluxServer, MosquittoServer

# A broker of this module's own (tests/conftest.py `mosquitto`): its sessions stay here.
OWN_BROKER = True
pytestmark = pytest.mark.servers


@pytest.fixture(scope="module")
def ingest_db(influxdb: InfluxServer) -> InfluxClient:
    return influxdb.create_database("ingest_bad_input")


@pytest.fixture(scope="module")
def running_ingest(
    mosquitto: MosquittoServer, influxdb: InfluxServer, ingest_db: InfluxClient, tmp_path_factory
) -> Iterator[LoggedProcess]:  # type: ignore[no-untyped-def]
    log = tmp_path_factory.mktemp("ingest") / "ingest.log"
    proc = ingest_process(mosquitto, influxdb, ingest_db.database, log, client_id="bad-input-ingest").start()
    proc.wait_for_log("ingest ready")
    yield proc
    proc.terminate()


def _event(device: str, **changes: object) -> dict[str, object]:
    event = json.loads(crossing_events(1, device=device)[0].to_json())
    event.update(changes)
    return event


def _bad_payload(case: str, device: str) -> bytes:
    now = datetime.now(UTC)
    match case:
        case "too_large":
            return json.dumps(_event(device, id="x" * (MAX_PAYLOAD_BYTES + 10))).encode()
        case "invalid_utf8":
            return b'{"type": "crossing", "id": "\xff\xfe"}'
        case "malformed_json":
            return b'{"type": "crossing", "id": '
        case "not_an_object":
            return b"[1, 2, 3]"
        case "unknown_type":
            return json.dumps(_event(device, type="teleport")).encode()
        case "missing_field":
            event = _event(device)
            del event["line"]
            return json.dumps(event).encode()
        case "wrong_type":
            return json.dumps(_event(device, count="many")).encode()
        case "ts_in_future":
            return json.dumps(_event(device, ts=(now + timedelta(days=1)).isoformat())).encode()
        case "ts_in_past":
            return json.dumps(_event(device, ts=(now - timedelta(days=800)).isoformat())).encode()
        case "infinite_float":
            crossing = _event(device)
            heartbeat = {k: crossing[k] for k in ("id", "store", "device", "ts")}
            heartbeat |= {"type": "heartbeat", "fps": float("inf"), "latency_ms": 1.0, "dropped_frames": 0}
            return json.dumps(heartbeat).encode()  # json writes Infinity, which InfluxDB cannot store
        case "topic_mismatch":
            return json.dumps(_event(device, store="store-b")).encode()
        case "long_integer":  # more digits than Python's int() reads
            return json.dumps(_event(device, count="N")).replace('"N"', "9" * 5000).encode()
        case "deep_nesting":  # deeper than Python's JSON parser goes
            return json.dumps(_event(device, frame="N")).replace('"N"', "[" * 5000 + "]" * 5000).encode()
    raise AssertionError(case)


CASES = [
    ("too_large", "too_large"),
    ("invalid_utf8", "invalid_utf8"),
    ("malformed_json", "malformed_json"),
    ("not_an_object", "not_an_object"),
    ("unknown_type", "unknown_type"),
    ("missing_field", "missing_field"),
    ("wrong_type", "wrong_type"),
    ("ts_in_future", "ts_out_of_range"),
    ("ts_in_past", "ts_out_of_range"),
    ("topic_mismatch", "topic_mismatch"),
    ("infinite_float", "wrong_type"),
    ("long_integer", "wrong_type"),
    ("deep_nesting", "malformed_json"),
]


@pytest.mark.parametrize(("case", "reason"), CASES)
def test_bad_message_is_dead_lettered_with_reason(
    case: str, reason: str, mosquitto: MosquittoServer, ingest_db: InfluxClient, running_ingest: LoggedProcess
) -> None:
    device = f"bad-{case.replace('_', '-')}"
    topic = f"footfall/v1/store-a/{device}/crossing"
    payload = _bad_payload(case, device)
    listener = deadletter_listener(mosquitto)
    sender = MqttTestClient(mosquitto, "admin")
    try:
        good = crossing_events(1, device=device)[0]
        sender.publish(topic, payload)
        sender.publish(good.topic, good.to_json())  # ingest keeps going after the bad one
        assert listener.wait_for(lambda msgs: any(m.topic == DEADLETTER_TOPIC for m in msgs), 15)
        (letter,) = [m for m in listener.json_messages(DEADLETTER_TOPIC) if m["topic"] == topic]
    finally:
        listener.close()
        sender.close()
    assert letter["reason"] == reason
    if case == "infinite_float":
        assert "finite number" in str(letter["detail"])  # refused by the schema, not by InfluxDB
    assert letter["component"] == "ingest"
    assert letter["size"] == len(payload)
    # The refused message travels with its dead letter (as text, or base64 when not UTF-8).
    if case == "invalid_utf8":
        assert "payload_b64" in letter
    elif case == "too_large":
        assert letter["truncated"] is False
        assert len(str(letter["payload"])) == len(payload)
    else:
        assert letter["payload"] == payload.decode()
    assert wait_for_count(ingest_db, 1, timeout_s=15) >= 1
    stored = count_points(ingest_db, where=f"WHERE device = '{device}'")
    assert stored == 1, "only the valid event is stored"
    dead = count_points(ingest_db, "deadletter", where=f"WHERE reason = '{reason}' AND topic = '{topic}'")
    assert dead == 1


def test_batch_with_one_bad_event_stores_the_rest(
    mosquitto: MosquittoServer, ingest_db: InfluxClient, running_ingest: LoggedProcess
) -> None:
    device = "batch-cam"
    good = [json.loads(e.to_json()) for e in crossing_events(4, device=device)]
    bad = dict(good[1], direction="sideways")
    topic = batch_topic("store-a", device)
    listener = deadletter_listener(mosquitto)
    sender = MqttTestClient(mosquitto, "admin")
    try:
        sender.publish(topic, json.dumps([good[0], bad, good[2], good[3]]))
        sender.publish(topic, b'{"not": "an array"}')
        assert listener.wait_for(lambda msgs: sum(m.topic == DEADLETTER_TOPIC for m in msgs) >= 2, 15)
        letters = [m for m in listener.json_messages(DEADLETTER_TOPIC) if m["topic"] == topic]
    finally:
        listener.close()
        sender.close()
    by_reason = {letter["reason"]: letter for letter in letters}
    assert sorted(by_reason) == ["bad_batch", "wrong_type"]
    assert str(by_reason["wrong_type"]["detail"]).startswith("event 1: direction")
    assert json.loads(str(by_reason["wrong_type"]["payload"])) == bad  # the event itself, not the batch
    assert by_reason["bad_batch"]["payload"] == '{"not": "an array"}'
    deadline = time.monotonic() + 15
    while count_points(ingest_db, where=f"WHERE device = '{device}'") < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    (series,) = ingest_db.query(f'SELECT "id" FROM "crossing" WHERE device = \'{device}\'')
    assert sorted(series.column("id")) == sorted(str(good[i]["id"]) for i in (0, 2, 3))


def test_status_messages_are_not_events(
    mosquitto: MosquittoServer, ingest_db: InfluxClient, running_ingest: LoggedProcess
) -> None:
    listener = deadletter_listener(mosquitto)
    sender = MqttTestClient(mosquitto, "admin")
    try:
        sender.publish("footfall/v1/store-a/status-cam/status", "online")
        good: CrossingEvent = crossing_events(1, device="status-cam")[0]
        sender.publish(good.topic, good.to_json())
        deadline_ok = listener.wait_for(lambda msgs: False, 1.5)
    finally:
        listener.close()
        sender.close()
    assert not deadline_ok
    assert not [m for m in listener.json_messages() if "status-cam" in str(m["topic"])]
    wait_for_count(ingest_db, 1, timeout_s=10)
    assert count_points(ingest_db, where="WHERE device = 'status-cam'") == 1


def test_camera_issues_are_stored_in_their_own_measurement(
    mosquitto: MosquittoServer, ingest_db: InfluxClient, running_ingest: LoggedProcess
) -> None:
    """A camera issue (single and batched) lands in ``camera_issue``; heartbeats carry the issues in
    force; an unknown issue is dead-lettered and the rest of its batch stored."""
    device, now = "scene-cam", datetime.now(UTC).replace(microsecond=0)
    base = {"store": "store-a", "device": device}
    started = CameraIssueEvent(id="ci-1", ts=now, issue="covered", state="started", score=0.9, **base)
    cleared = CameraIssueEvent(id="ci-2", ts=now, issue="covered", state="cleared", score=0.2, **base)
    beat = HeartbeatEvent(
        id="hb-1", ts=now, fps=9.5, latency_ms=20, dropped_frames=0, camera_issues="covered,dark", **base
    )
    bad = dict(json.loads(started.to_json()), id="ci-bad", issue="foggy")
    listener = deadletter_listener(mosquitto)
    sender = MqttTestClient(mosquitto, "admin")
    try:
        sender.publish(started.topic, started.to_json())
        sender.publish(batch_topic("store-a", device), json.dumps([json.loads(cleared.to_json()), bad]))
        sender.publish(beat.topic, beat.to_json())
        assert listener.wait_for(lambda msgs: any(m.topic == DEADLETTER_TOPIC for m in msgs), 15)
        (letter,) = [m for m in listener.json_messages(DEADLETTER_TOPIC) if "ci-bad" in str(m["payload"])]
    finally:
        listener.close()
        sender.close()
    assert letter["reason"] == "wrong_type"
    assert str(letter["detail"]).startswith("event 1: issue")
    where = f"WHERE device = '{device}'"
    assert wait_for_count(ingest_db, 2, measurement="camera_issue", timeout_s=15, where=where) >= 2
    (series,) = ingest_db.query(f'SELECT "id", "state", "score", "issue" FROM "camera_issue" {where}')
    rows = sorted(zip(*(series.column(c) for c in ("id", "state", "score", "issue")), strict=True))
    assert rows == [("ci-1", "started", 0.9, "covered"), ("ci-2", "cleared", 0.2, "covered")]
    assert wait_for_count(ingest_db, 1, measurement="heartbeat", timeout_s=15, where=where) >= 1
    (series,) = ingest_db.query(f'SELECT "camera_issues" FROM "heartbeat" {where}')
    assert series.column("camera_issues") == ["covered,dark"]


def test_ingest_log_names_reasons(running_ingest: LoggedProcess, tmp_path: Path) -> None:
    # Runs after the parametrised cases in this module: their reasons are in the log.
    assert "dead letter (malformed_json)" in running_ingest.log()
