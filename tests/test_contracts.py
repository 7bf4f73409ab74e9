"""The event schema, the measurement mapping and the strict configuration loader."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from footfall.contracts.config import CameraConfig, ConfigError, MqttSettings, load_config
from footfall.contracts.events import (
    INT64_MAX,
    MAX_BATCH_EVENTS,
    CameraIssueEvent,
    CrossingEvent,
    Event,
    EventError,
    HeartbeatEvent,
    OccupancyEvent,
    WifiEvent,
    ZoneVisitEvent,
    batch_topic,
    parse_batch,
    parse_event,
    stable_event_id,
)
from footfall.contracts.measurements import Point, datetime_to_ns, event_to_line, event_to_point
from tests.event_samples import VALID

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


EVENT_BASE = {"id": "e1", "store": "store-a", "device": "cam-1", "ts": "2026-11-22T11:59:00.250000Z"}


def crossing(**overrides: object) -> dict[str, object]:
    fields = {"line": "door", "kind": "entrance", "direction": "in", "track_id": 7, "frame": 120}
    return {"type": "crossing", **EVENT_BASE, **fields, **overrides}


def test_valid_crossing_round_trips() -> None:
    event = parse_event(json.dumps(crossing()), now=NOW)
    assert isinstance(event, CrossingEvent)
    assert event.ts == datetime(2026, 11, 22, 11, 59, 0, 250000, tzinfo=UTC)
    again = parse_event(event.to_json(), now=NOW)
    assert again == event
    assert event.topic == "footfall/v1/store-a/cam-1/crossing"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"x" * 20000, "too_large"),
        (b"\xff\xfe{}", "invalid_utf8"),
        (b"{not json", "malformed_json"),
        (b"[1, 2]", "not_an_object"),
        (json.dumps(crossing(type="teleport")).encode(), "unknown_type"),
        (json.dumps({k: v for k, v in crossing().items() if k != "line"}).encode(), "missing_field"),
        (json.dumps(crossing(track_id="seven")).encode(), "wrong_type"),
        (json.dumps(crossing(direction="sideways")).encode(), "wrong_type"),
        (json.dumps(crossing(store="a/b")).encode(), "wrong_type"),
        (json.dumps(crossing(ts="2026-11-22T11:59:00")).encode(), "wrong_type"),
        (json.dumps(crossing(extra=1)).encode(), "wrong_type"),
        (json.dumps(crossing(ts="0001-01-01T11:59:00+23:59")).encode(), "wrong_type"),
        (json.dumps(crossing(ts="2031-01-01T00:00:00Z")).encode(), "ts_out_of_range"),
        (json.dumps(crossing(ts="2020-01-01T00:00:00Z")).encode(), "ts_out_of_range"),
        # More digits than Python turns into an int, and nesting deeper than its JSON parser goes.
        (
            json.dumps(crossing(count=0)).replace('"count": 0', '"count": ' + "9" * 5000).encode(),
            "wrong_type",
        ),
        (b"[" * 5000 + b"]" * 5000, "malformed_json"),
        (
            json.dumps(crossing(frame=0))
            .replace('"frame": 0', '"frame": ' + "[" * 5000 + "]" * 5000)
            .encode(),
            "malformed_json",
        ),
    ],
)
def test_bad_payloads_get_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(EventError) as info:
        parse_event(payload, now=NOW)
    assert info.value.reason == reason


def test_topic_must_match_payload() -> None:
    payload = json.dumps(crossing(store="store-b"))
    with pytest.raises(EventError) as info:
        parse_event(payload, topic="footfall/v1/store-a/cam-1/crossing", now=NOW)
    assert info.value.reason == "topic_mismatch"


def test_same_event_same_point_and_distinct_events_distinct_points() -> None:
    a = parse_event(json.dumps(crossing(id=stable_event_id("cam-1", 7, 120))), now=NOW)
    b = parse_event(json.dumps(crossing(id=stable_event_id("cam-1", 8, 120), track_id=8)), now=NOW)
    pa, pb = event_to_point(a), event_to_point(b)
    assert pa == event_to_point(a)
    assert pa.ts_ns != pb.ts_ns  # two people in the same frame do not overwrite each other
    assert abs(pa.ts_ns - pb.ts_ns) < 1_000_000
    line = pa.to_line()
    assert line.startswith(
        "crossing,device=cam-1,direction=in,kind=entrance,line=door,source=camera,store=store-a "
    )
    assert "track_id=7i" in line
    assert 'id="' in line


def test_zone_visit_point_fields() -> None:
    ev = ZoneVisitEvent(
        id="z1",
        store="s",
        device="d",
        ts=NOW,
        zone="checkout",
        track_id=3,
        enter_ts=NOW - timedelta(seconds=42.5),
        exit_ts=NOW,
        dwell_s=42.5,
    )
    point = event_to_point(ev)
    assert point.measurement == "zone_visit"
    assert point.tags == {"store": "s", "device": "d", "zone": "checkout"}
    assert point.fields["dwell_s"] == 42.5


BATCH_TOPIC = batch_topic("store-a", "cam-1")


def _batch(*events: object) -> bytes:
    return json.dumps(list(events)).encode()


def test_batch_of_good_events_in_order() -> None:
    occupancy = crossing(id="o1", type="occupancy", count=4)
    for key in ("line", "kind", "direction", "track_id", "frame"):
        del occupancy[key]
    events, rejected = parse_batch(
        _batch(crossing(id="a"), occupancy, crossing(id="b")), topic=BATCH_TOPIC, now=NOW
    )
    assert rejected == []
    assert [(e.type, e.id) for e in events] == [("crossing", "a"), ("occupancy", "o1"), ("crossing", "b")]
    assert events[0] == parse_event(json.dumps(crossing(id="a")), now=NOW)  # the same validation


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (crossing(id="bad", direction="sideways"), "wrong_type"),
        ({k: v for k, v in crossing(id="bad").items() if k != "line"}, "missing_field"),
        (crossing(id="bad", type="teleport"), "unknown_type"),
        ("just a string", "not_an_object"),
        (crossing(id="bad", ts="2020-01-01T00:00:00Z"), "ts_out_of_range"),
        (crossing(id="bad", store="store-b"), "topic_mismatch"),  # another store inside the batch
        (crossing(id="bad", device="cam-2"), "topic_mismatch"),
    ],
)
def test_one_bad_event_in_a_batch_costs_only_itself(bad: object, reason: str) -> None:
    events, rejected = parse_batch(
        _batch(crossing(id="a"), bad, crossing(id="b")), topic=BATCH_TOPIC, now=NOW
    )
    assert [e.id for e in events] == ["a", "b"]
    (item,) = rejected
    assert (item.index, item.error.reason) == (1, reason)
    assert item.error.detail.startswith("event 1: ")
    assert json.loads(item.payload) == bad or json.loads(item.payload)["id"] == "bad"


def test_an_integer_too_long_for_python_costs_only_its_event() -> None:
    """json.loads refuses a whole document holding an integer of more than 4300 digits; the batch's
    other events are still stored and the dead letter carries the event as it was sent."""
    digits = "9" * 5000
    bad = json.dumps(crossing(id="bad", track_id=0)).replace('"track_id": 0', f'"track_id": {digits}')
    payload = f"[{json.dumps(crossing(id='a'))}, {bad}, {json.dumps(crossing(id='b'))}]".encode()
    events, rejected = parse_batch(payload, topic=BATCH_TOPIC, now=NOW)
    assert [e.id for e in events] == ["a", "b"]
    (item,) = rejected
    assert (item.index, item.error.reason) == (1, "wrong_type")
    assert item.error.detail.startswith("event 1: track_id")
    assert item.payload.decode().replace(" ", "") == bad.replace(" ", "")


@pytest.mark.parametrize(
    ("payload", "topic", "reason"),
    [
        (b"x" * (1024 * 1024 + 1), BATCH_TOPIC, "too_large"),
        (b"[" * 5000 + b"]" * 5000, BATCH_TOPIC, "malformed_json"),
        (b"[\xff]", BATCH_TOPIC, "invalid_utf8"),
        (b"[{", BATCH_TOPIC, "malformed_json"),
        (json.dumps(crossing()).encode(), BATCH_TOPIC, "bad_batch"),  # an object, not an array
        (b"[]", BATCH_TOPIC, "bad_batch"),
        (_batch(*[crossing(id=f"e{i}") for i in range(MAX_BATCH_EVENTS + 1)]), BATCH_TOPIC, "bad_batch"),
        (_batch(crossing()), "footfall/v1/store-a/batch", "topic_mismatch"),
    ],
)
def test_bad_batch_messages_get_a_reason(payload: bytes, topic: str, reason: str) -> None:
    with pytest.raises(EventError) as info:
        parse_batch(payload, topic=topic, now=NOW)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("sample", "field", "value", "reason"),
    [
        ("crossing_full", "track_id", INT64_MAX + 1, "wrong_type"),
        ("crossing_full", "frame", INT64_MAX + 1, "wrong_type"),
        ("zone_visit", "track_id", INT64_MAX + 1, "wrong_type"),
        ("heartbeat", "dropped_frames", 2**64 - 1, "wrong_type"),
        ("heartbeat", "queue_depth", INT64_MAX + 1, "wrong_type"),
        ("heartbeat", "frames", INT64_MAX + 1, "wrong_type"),
        ("wifi", "key_epoch", INT64_MAX + 1, "wrong_type"),
        ("zone_visit", "enter_ts", "0001-01-01T00:00:00Z", "ts_out_of_range"),
        ("zone_visit", "enter_ts", "2025-10-18T11:59:59Z", "ts_out_of_range"),  # 400 days and 1 s back
        ("zone_visit", "exit_ts", "2026-11-22T12:10:00.000001Z", "ts_out_of_range"),
        ("zone_visit", "exit_ts", "2262-04-12T00:00:00Z", "ts_out_of_range"),
        ("zone_visit", "enter_ts", "0001-01-01T00:00:00+01:00", "wrong_type"),  # no such UTC time
    ],
)
def test_values_influxdb_cannot_store_are_refused(
    sample: str, field: str, value: object, reason: str
) -> None:
    """An integer beyond int64, or a zone visit's enter or exit outside the window ``ts`` is held to,
    is refused here, not by InfluxDB when the point is written (HTTP 400); in a batch, only itself."""
    bad = dict(VALID[sample], **{field: value})
    with pytest.raises(EventError) as info:
        parse_event(json.dumps(bad), now=NOW)
    assert (info.value.reason, info.value.detail.partition(":")[0].partition("=")[0]) == (reason, field)
    events, rejected = parse_batch(_batch(VALID["crossing"], bad), topic=BATCH_TOPIC, now=NOW)
    assert len(events) == 1
    assert [(item.index, item.error.reason) for item in rejected] == [(1, reason)]


def _one_of_each() -> list[Event]:
    base = {"store": "store-a", "device": "cam-1", "ts": NOW}
    return [
        CrossingEvent(id="c1", line="door", kind="entrance", direction="in", track_id=3, frame=9, **base),
        CrossingEvent(id='q"uo\\te', line="door", kind="passby", direction="out", **base),
        CrossingEvent(
            id="beam", line="door", kind="entrance", direction="in", count=7, source="beam", **base
        ),
        ZoneVisitEvent(
            id="z1",
            zone="promo",
            track_id=4,
            enter_ts=NOW - timedelta(seconds=3),
            exit_ts=NOW,
            dwell_s=3,
            **base,
        ),
        OccupancyEvent(id="o1", zone="promo", count=2, **base),
        OccupancyEvent(id="o2", count=0, **base),
        HeartbeatEvent(id="h1", fps=12.5, latency_ms=40, dropped_frames=1, queue_depth=5, **base),
        HeartbeatEvent(id="h2", fps=9, latency_ms=4, dropped_frames=0, camera_issues="", **base),
        HeartbeatEvent(id="h3", fps=9, latency_ms=4, dropped_frames=0, camera_issues="dark,moved", **base),
        CameraIssueEvent(id="ci1", issue="covered", state="started", score=0.9, **base),
        CameraIssueEvent(id="ci2", issue="frozen", state="cleared", score=0, **base),
        WifiEvent(
            id="w1", sensor="sniffer-1", device_hash="ab" * 8, rssi=-60, randomized=False, key_epoch=3, **base
        ),
        WifiEvent(
            id="w2",
            sensor="s2",
            device_hash="cd" * 8,
            rssi=-70,
            randomized=True,
            key_epoch=4,
            prev_device_hash="ef" * 8,
            **base,
        ),
    ]


@pytest.mark.parametrize("event", _one_of_each(), ids=lambda e: f"{e.type}-{e.id}")
def test_fast_line_is_the_point_mapping(event: Event) -> None:
    assert event_to_line(event) == event_to_point(event).to_line()


def camera_issue(**overrides: object) -> dict[str, object]:
    fields = {"id": "i1", "issue": "covered", "state": "started", "score": 0.75}
    return {"type": "camera_issue", **EVENT_BASE, **fields, **overrides}


def test_camera_issue_round_trips_into_its_own_measurement() -> None:
    event = parse_event(json.dumps(camera_issue()), topic="footfall/v1/store-a/cam-1/camera_issue", now=NOW)
    assert isinstance(event, CameraIssueEvent)
    assert parse_event(event.to_json(), now=NOW) == event
    point = event_to_point(event)
    assert point.measurement == "camera_issue"
    assert point.tags == {"store": "store-a", "device": "cam-1", "issue": "covered"}
    assert point.fields == {"id": "i1", "state": "started", "score": 0.75}


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"issue": "foggy"}, "wrong_type"),
        ({"state": "ongoing"}, "wrong_type"),
        ({"score": 1.01}, "wrong_type"),
        ({"score": -0.1}, "wrong_type"),
        ({"score": None}, "wrong_type"),
        ({"issue": None}, "wrong_type"),
    ],
)
def test_bad_camera_issue_gets_a_reason(overrides: dict[str, object], reason: str) -> None:
    with pytest.raises(EventError) as info:
        parse_event(json.dumps(camera_issue(**overrides)), now=NOW)
    assert info.value.reason == reason


def test_camera_issue_without_score_is_missing_a_field() -> None:
    event = camera_issue()
    del event["score"]
    with pytest.raises(EventError) as info:
        parse_event(json.dumps(event), now=NOW)
    assert info.value.reason == "missing_field"


@pytest.mark.parametrize("issues", ["", "dark", "covered,frozen", "dark,covered,moved,frozen,blurred"])
def test_heartbeat_carries_the_issues_in_force(issues: str) -> None:
    beat = HeartbeatEvent(
        id="h", store="s", device="d", ts=NOW, fps=5, latency_ms=1, dropped_frames=0, camera_issues=issues
    )
    assert event_to_point(beat).fields["camera_issues"] == issues
    assert f'camera_issues="{issues}"' in event_to_line(beat)


@pytest.mark.parametrize("issues", ["dark,", ",dark", "Dark", "dark covered", "dark,,moved", "smoke"])
def test_heartbeat_refuses_malformed_issues(issues: str) -> None:
    beat = {"type": "heartbeat", "id": "h", "store": "s", "device": "d", "ts": "2026-11-22T11:59:00Z"}
    beat |= {"fps": 5, "latency_ms": 1, "dropped_frames": 0, "camera_issues": issues}
    with pytest.raises(EventError) as info:
        parse_event(json.dumps(beat), now=NOW)
    assert info.value.reason == "wrong_type"


def test_heartbeat_without_scene_monitor_leaves_the_field_out() -> None:
    beat = HeartbeatEvent(id="h", store="s", device="d", ts=NOW, fps=5, latency_ms=1, dropped_frames=0)
    assert "camera_issues" not in event_to_point(beat).to_line()
    assert "camera_issues" not in beat.to_json()
    for detector_field in ("detector_input", "person_px", "person_px_aim"):  # a sensor bridge
        assert detector_field not in event_to_point(beat).to_line()
        assert detector_field not in beat.to_json()


def test_heartbeat_carries_the_detector_input_and_the_people_size_at_it() -> None:
    beat = HeartbeatEvent(
        id="h", store="s", device="d", ts=NOW, fps=5, latency_ms=1, dropped_frames=0,
        detector_input="1088x512", person_px=41.5, person_px_aim=64,
    )  # fmt: skip
    fields = event_to_point(beat).fields
    assert (fields["detector_input"], fields["person_px"], fields["person_px_aim"]) == ("1088x512", 41.5, 64)
    assert 'detector_input="1088x512",person_px=41.5,person_px_aim=64i' in event_to_line(beat)


@pytest.mark.parametrize(
    ("changed", "value"),
    [
        ("detector_input", "1088*512"),
        ("detector_input", "1088x"),
        ("detector_input", "0x512"),
        ("detector_input", "Probing"),
        ("detector_input", "1088x512\n"),
        ("person_px", -1),
        ("person_px", "small"),
        ("person_px_aim", 0),
        ("person_px_aim", 64.5),
    ],
)
def test_heartbeat_refuses_a_malformed_detector_report(changed: str, value: object) -> None:
    beat = {"type": "heartbeat", "id": "h", "store": "s", "device": "d", "ts": "2026-11-22T11:59:00Z"}
    beat |= {"fps": 5, "latency_ms": 1, "dropped_frames": 0, "detector_input": "640x384", "person_px_aim": 64}
    with pytest.raises(EventError) as info:
        parse_event(json.dumps(beat | {changed: value}), now=NOW)
    assert info.value.reason in {"wrong_type", "out_of_range"}


def test_datetime_to_ns_is_exact() -> None:
    ts = datetime(2026, 11, 22, 11, 59, 0, 123457, tzinfo=UTC)
    assert datetime_to_ns(ts) == 1795348740_123457_000
    assert datetime_to_ns(ts.astimezone(timezone(timedelta(hours=-5)))) == datetime_to_ns(ts)


def test_line_protocol_escaping() -> None:
    p = Point("m x", {"t,a": "v=1 2"}, {"s": 'say "hi"\\', "f": 1.5, "b": True}, 5)
    assert p.to_line() == 'm\\ x,t\\,a=v\\=1\\ 2 s="say \\"hi\\"\\\\",f=1.5,b=true 5'


def test_camera_config_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "cam.yaml"
    path.write_text(
        "store: s\ncamera: c\nlines:\n  - name: door\n    start: [0, 0]\n    end: [10, 0]\n"
        "    inside: [5, 5]\n    colour: red\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, CameraConfig)
    assert str(path) in str(info.value)
    assert "lines.0.colour: unknown key" in str(info.value)


def test_camera_config_rejects_inside_point_on_the_line(tmp_path: Path) -> None:
    path = tmp_path / "cam.yaml"
    path.write_text(
        "store: s\ncamera: c\nlines:\n  - {name: d, start: [0, 0], end: [10, 0], inside: [5, 0]}\n"
    )
    with pytest.raises(ConfigError, match=r"lines\.0"):
        load_config(path, CameraConfig)


def test_mqtt_url_parsing() -> None:
    s = MqttSettings.from_url("mqtt://edge%40a:p%3Ass@broker.local:1884")
    assert (s.host, s.port, s.username, s.password, s.tls) == ("broker.local", 1884, "edge@a", "p:ss", False)
    with pytest.raises(ConfigError, match="mqtt-url"):
        MqttSettings.from_url("http://x")


@pytest.mark.parametrize(
    ("scene", "key"), [("{hold: 3}", "scene.hold: unknown key"), ("{hold_s: 0}", "scene.hold_s")]
)
def test_camera_config_scene_errors_name_file_and_key(tmp_path: Path, scene: str, key: str) -> None:
    path = tmp_path / "cam.yaml"
    path.write_text(f"store: s\ncamera: c\nscene: {scene}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, CameraConfig)
    assert str(path) in str(info.value)
    assert key in str(info.value)


def test_camera_config_scene_defaults() -> None:
    scene = CameraConfig(store="s", camera="c").scene
    assert (scene.enabled, scene.hold_s, scene.learn_s) == (True, 3.0, 5.0)
