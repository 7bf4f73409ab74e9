"""Valid events of every type, with optional fields both present and absent (raw JSON dicts)."""

from __future__ import annotations

from typing import Any

STORE, DEVICE = "store-a", "cam-1"
BASE = {"id": "e-1", "store": STORE, "device": DEVICE, "ts": "2026-11-22T11:59:00.250000Z"}
# Valid events of every type, with optional fields both present and absent.
VALID: dict[str, dict[str, Any]] = {
    "crossing": {**BASE, "type": "crossing", "line": "door", "kind": "entrance", "direction": "in"},
    "crossing_full": {
        **BASE,
        "type": "crossing",
        "line": "street",
        "kind": "passby",
        "direction": "out",
        "track_id": 7,
        "frame": 120,
        "count": 3,
        "source": "beam",
    },
    "zone_visit": {
        **BASE,
        "type": "zone_visit",
        "zone": "promo",
        "track_id": 4,
        "enter_ts": "2026-11-22T11:58:30.5+01:00",
        "exit_ts": "2026-11-22T11:59:00Z",
        "dwell_s": 29.75,
    },
    "occupancy_view": {**BASE, "type": "occupancy", "count": 0},
    "occupancy_zone": {**BASE, "type": "occupancy", "zone": "till:1", "count": 12},
    "heartbeat": {
        **BASE,
        "type": "heartbeat",
        "fps": 14.5,
        "latency_ms": 61,
        "dropped_frames": 0,
        "queue_depth": 3,
        "frames": 1000,
        "uptime_s": 3600.25,
    },
    "heartbeat_issues": {
        **BASE,
        "type": "heartbeat",
        "fps": 10,
        "latency_ms": 5.5,
        "dropped_frames": 2,
        "camera_issues": "dark,frozen",
    },
    "heartbeat_healthy": {
        **BASE,
        "type": "heartbeat",
        "fps": 10,
        "latency_ms": 5.5,
        "dropped_frames": 2,
        "camera_issues": "",
    },
    "camera_issue": {**BASE, "type": "camera_issue", "issue": "covered", "state": "started", "score": 0.5},
    "camera_issue_cleared": {
        **BASE,
        "type": "camera_issue",
        "issue": "moved",
        "state": "cleared",
        "score": 0,
    },
    "wifi": {
        **BASE,
        "type": "wifi",
        "sensor": "ap-1",
        "device_hash": "0123456789abcdef",
        "rssi": -70,
        "randomized": True,
        "key_epoch": 12,
    },
    "wifi_prev": {
        **BASE,
        "type": "wifi",
        "sensor": "ap-1",
        "device_hash": "0123456789abcdef0123",
        "rssi": 0,
        "randomized": False,
        "key_epoch": 0,
        "prev_device_hash": "fedcba9876543210",
    },
    "offset_and_escapes": {
        **BASE,
        "id": 'a"b\\c~',
        "ts": "2026-11-22T13:59:00.123456+02:00",
        "type": "crossing",
        "line": "door",
        "kind": "entrance",
        "direction": "in",
    },
}
