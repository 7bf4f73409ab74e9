"""Wi-Fi probe bridge: keyed rotating MAC hashes, randomised-MAC flag, no raw MAC anywhere."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from footfall.contracts.events import DEADLETTER_TOPIC, WifiEvent
from footfall.edge.bridges import MacHasher, WifiBridge, is_locally_administered, parse_mac, redact_macs
from tests.ingest_support import (
    LoggedProcess,
    MqttTestClient,
    events_in,
)
from tests.servers import MosquittoServer

# A broker of this module's own (tests/conftest.py `mosquitto`): its sessions stay here.
OWN_BROKER = True
SECRET = b"test-secret-0123456789"
NOW = datetime(2026, 5, 20, 12, 0, tzinfo=UTC)
MAC = "3c:22:fb:12:34:56"  # globally unique (bit 1 of the first octet clear)
RANDOM_MAC = "da:a1:19:6b:0c:7e"  # locally administered: 0xda has bit 1 set


def _sighting(mac: str = MAC, ts: datetime = NOW, rssi: int = -60) -> bytes:
    return json.dumps({"mac": mac, "rssi": rssi, "ts": ts.isoformat()}).encode()


def _wifi(bridge: WifiBridge, payload: bytes, now: datetime = NOW) -> WifiEvent:
    events, letter = bridge.handle("sensors/wifi/sniffer-1", payload, now=now)
    assert letter is None
    (event,) = events
    assert isinstance(event, WifiEvent)
    return event


@pytest.mark.parametrize("spelling", ["3c:22:fb:12:34:56", "3C-22-FB-12-34-56", "3c22fb123456"])
def test_mac_spellings_hash_alike(spelling: str) -> None:
    bridge = WifiBridge("store-a", MacHasher(SECRET))
    assert _wifi(bridge, _sighting(spelling)).device_hash == _wifi(bridge, _sighting(MAC)).device_hash


def test_hash_is_stable_within_an_epoch_and_rotates_after() -> None:
    hasher = MacHasher(SECRET, epoch_days=30)
    bridge = WifiBridge("store-a", hasher)
    epoch_start = datetime.fromtimestamp(hasher.epoch(NOW) * 30 * 86400, UTC)
    early = _wifi(
        bridge, _sighting(ts=epoch_start + timedelta(hours=1)), now=epoch_start + timedelta(hours=1)
    )
    late = _wifi(bridge, _sighting(ts=epoch_start + timedelta(days=29)), now=epoch_start + timedelta(days=29))
    assert early.device_hash == late.device_hash
    assert early.key_epoch == late.key_epoch
    after = epoch_start + timedelta(days=31)
    rotated = _wifi(bridge, _sighting(ts=after), now=after)
    assert rotated.key_epoch == early.key_epoch + 1
    assert rotated.device_hash != early.device_hash
    # ... yet a repeat visit across the rotation is recognisable through the previous-epoch hash.
    assert rotated.prev_device_hash == early.device_hash


@pytest.mark.parametrize("gap_days", [1, 7, 15, 29])
def test_repeat_within_30_days_always_links(gap_days: int) -> None:
    hasher = MacHasher(SECRET, epoch_days=30)
    bridge = WifiBridge("store-a", hasher)
    for offset_days in range(0, 60, 3):  # first visit anywhere in two epochs
        first_ts = NOW + timedelta(days=offset_days)
        second_ts = first_ts + timedelta(days=gap_days)
        first = _wifi(bridge, _sighting(ts=first_ts), now=first_ts)
        second = _wifi(bridge, _sighting(ts=second_ts), now=second_ts)
        assert first.device_hash in (second.device_hash, second.prev_device_hash)


def test_other_secret_other_hash_and_different_macs_differ() -> None:
    a = _wifi(WifiBridge("store-a", MacHasher(SECRET)), _sighting())
    b = _wifi(WifiBridge("store-a", MacHasher(b"another-secret-abcdefgh")), _sighting())
    c = _wifi(WifiBridge("store-a", MacHasher(SECRET)), _sighting("3c:22:fb:12:34:57"))
    assert len({a.device_hash, b.device_hash, c.device_hash}) == 3


def test_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        MacHasher(b"short")


@pytest.mark.parametrize(
    ("mac", "randomized"), [(MAC, False), (RANDOM_MAC, True), ("02:00:00:00:00:01", True)]
)
def test_locally_administered_flag(mac: str, randomized: bool) -> None:
    assert is_locally_administered(parse_mac(mac)) is randomized
    assert _wifi(WifiBridge("store-a", MacHasher(SECRET)), _sighting(mac)).randomized is randomized


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "malformed_json"),
        (b"\xff\xfe", "invalid_utf8"),
        (b"[1]", "not_an_object"),
        (json.dumps({"mac": MAC, "ts": NOW.isoformat()}).encode(), "missing_field"),
        (json.dumps({"mac": "3c:22:fb:12:34", "rssi": -50, "ts": NOW.isoformat()}).encode(), "wrong_type"),
        (json.dumps({"mac": MAC, "rssi": 20, "ts": NOW.isoformat()}).encode(), "wrong_type"),
        (_sighting(ts=NOW + timedelta(days=2)), "ts_out_of_range"),
        (b"x" * 20_000, "too_large"),
    ],
)
def test_bad_sightings_become_dead_letters_without_the_mac(payload: bytes, reason: str) -> None:
    bridge = WifiBridge("store-a", MacHasher(SECRET))
    events, letter = bridge.handle("sensors/wifi/sniffer-1", payload, now=NOW)
    assert events == []
    assert letter is not None
    assert letter.reason == reason
    assert letter.component == "bridge-wifi"
    dumped = letter.to_json()
    for fragment in ("3c:22:fb", "3c22fb", "3C-22-FB"):
        assert fragment not in dumped
    assert bridge.stats.dead_letters == {reason: 1}


def test_redact_macs_keeps_timestamps() -> None:
    text = redact_macs(
        b'{"mac": "3c:22:fb:12:34:56", "other": "3c22fb123456 seen", "ts": "2026-05-20T12:00:00Z"}'
    )
    assert b"3c" not in text
    assert b"2026-05-20T12:00:00Z" in text


def _all_mac_spellings(mac: str) -> list[str]:
    hexes = mac.replace(":", "").lower()
    pairs = [hexes[i : i + 2] for i in range(0, 12, 2)]
    return [sep.join(pairs) for sep in (":", "-", "")] + [sep.join(pairs).upper() for sep in (":", "-", "")]


@pytest.mark.servers
def test_bridge_process_publishes_hashes_and_never_the_mac(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    watcher = MqttTestClient(mosquitto, "admin").subscribe("footfall/v1/#")
    bridge = LoggedProcess(
        ["bridge", "wifi", "--mqtt-url", mosquitto.url("bridge"), "--store", "store-a", "--device", "wifi-t",
         "--topic", "sensors/wifi-test/+", "--queue", str(tmp_path / "q.sqlite"), "--log-level", "DEBUG"],
        tmp_path / "bridge.log",
        env={"FOOTFALL_WIFI_SECRET": SECRET.decode()},
    ).start()  # fmt: skip
    sensor = MqttTestClient(mosquitto, "sensor")
    now = datetime.now(UTC)
    try:
        bridge.wait_for_log("wifi bridge ready")
        time.sleep(0.3)
        sensor.publish("sensors/wifi-test/sniffer-1", _sighting(MAC, now))
        sensor.publish("sensors/wifi-test/sniffer-1", _sighting(RANDOM_MAC, now + timedelta(seconds=1)))
        sensor.publish("sensors/wifi-test/sniffer-2", _sighting(MAC, now + timedelta(seconds=2)))
        sensor.publish(
            "sensors/wifi-test/sniffer-1", json.dumps({"mac": MAC, "rssi": "loud", "ts": 1}).encode()
        )
        assert watcher.wait_for(lambda msgs: sum(e.type == "wifi" for e in events_in(msgs)) == 3, 15)
        assert watcher.wait_for(lambda msgs: any(m.topic == DEADLETTER_TOPIC for m in msgs), 10)
    finally:
        sensor.close()
        watcher.close()
        bridge.terminate()
    events = [e for e in events_in(watcher.messages) if e.type == "wifi"]
    assert all(isinstance(e, WifiEvent) for e in events)
    first, randomized, other_sensor = sorted(events, key=lambda e: e.ts)  # type: ignore[arg-type, return-value]
    assert first.device_hash == other_sensor.device_hash  # same phone, two sniffers
    assert first.device_hash != randomized.device_hash
    assert [e.randomized for e in (first, randomized, other_sensor)] == [False, True, False]  # type: ignore[union-attr]
    assert {e.sensor for e in events} == {"sniffer-1", "sniffer-2"}  # type: ignore[union-attr]
    everything = b"\n".join(m.payload for m in watcher.messages).decode(errors="replace") + bridge.log()
    for mac in (MAC, RANDOM_MAC):
        for spelling in _all_mac_spellings(mac):
            assert spelling not in everything, f"raw MAC {spelling} leaked"
    assert re.search(r"dead letter \(wrong_type\)", bridge.log())
