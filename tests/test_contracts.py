"""The event schema, the measurement mapping and the strict configuration loader."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from footfall.contracts.config import CameraConfig, ConfigError, MqttSettings, load_config
from footfall.contracts.events import (
    CrossingEvent,
    EventError,
    ZoneVisitEvent,
    parse_event,
    stable_event_id,
)
from footfall.contracts.measurements import Point, event_to_point

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def crossing(**overrides: object) -> dict[str, object]:
    event: dict[str, object] = {
        "type": "crossing",
        "id": "e1",
        "store": "store-a",
        "device": "cam-1",
        "ts": "2026-11-22T11:59:00.250000Z",
        "line": "door",
        "kind": "entrance",
        "direction": "in",
        "track_id": 7,
        "frame": 120,
    }
    event.update(overrides)
    return event


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
        (json.dumps(crossing(ts="2031-01-01T00:00:00Z")).encode(), "ts_out_of_range"),
        (json.dumps(crossing(ts="2020-01-01T00:00:00Z")).encode(), "ts_out_of_range"),
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
