"""Bridges for store sensors that already speak MQTT: Wi-Fi probe sniffers and beam counters.

Input (documented in docs/ingest.md):
- Wi-Fi sniffer, topic ``sensors/wifi/{sensor}``: ``{"mac": "a4:5e:60:12:34:56", "rssi": -67,
  "ts": "2026-05-01T10:00:00Z"}`` (``ts`` may also be Unix seconds).
- Beam counter, topic ``sensors/beam/{sensor}``: ``{"in": 3, "out": 1, "ts": "...",
  "interval_s": 60}`` (counts of the interval ending at ``ts``; ``interval_s`` optional).

Privacy: a MAC is replaced by ``HMAC-SHA256(epoch_key, mac)`` with an epoch key derived from a secret
in the environment, rotating every ``epoch_days``. Each sighting carries the hash under the current
and the previous epoch key, so repeat visits within one epoch length (30 days by default) are still
recognised across a rotation, and a device is linkable for at most two epochs. The raw MAC is never
logged, published, or kept in a dead letter (MAC-like text is scrubbed from refused messages).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from queue import Empty, Queue
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential

from footfall.contracts.config import MqttSettings
from footfall.contracts.events import (
    DEADLETTER_TOPIC,
    MAX_FUTURE,
    MAX_PAST,
    MAX_PAYLOAD_BYTES,
    CrossingEvent,
    DeadLetter,
    DeadLetterReason,
    Event,
    WifiEvent,
    format_ts,
    stable_event_id,
)
from footfall.edge.transport import StoreAndForwardPublisher

log = logging.getLogger("footfall.bridge")

WIFI_SECRET_ENV = "FOOTFALL_WIFI_SECRET"
MIN_SECRET_BYTES = 16
DEFAULT_EPOCH_DAYS = 30
_MAC_RE = re.compile(r"^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}$", re.IGNORECASE)
# Anything that looks like a MAC, whole or mangled, inside free text: hex groups joined by 3+ separators,
# or a run of 10-16 hex digits. Timestamps (at most two ':' or '-' in a row of digits) survive.
_MAC_IN_TEXT = re.compile(
    r"(?i)(?<![0-9a-f])(?:[0-9a-f]{1,4}[:.-]){3,}[0-9a-f]{1,4}(?![0-9a-f])|(?<![0-9a-f])[0-9a-f]{10,16}(?![0-9a-f])"
)


class SensorMessageError(ValueError):
    """A sensor message the bridge cannot map; ``reason`` is a dead-letter reason."""

    def __init__(self, reason: DeadLetterReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# ---- MAC pseudonymisation --------------------------------------------------------------------------


def parse_mac(text: str) -> bytes:
    """``aa:bb:cc:dd:ee:ff``, ``AA-BB-…`` or ``aabbccddeeff`` -> 6 bytes (error text never has the MAC)."""
    if not isinstance(text, str) or not _MAC_RE.match(text.strip()):
        raise SensorMessageError("wrong_type", "mac: not a MAC address (expected 6 hex octets)")
    return bytes.fromhex(re.sub(r"[:-]", "", text.strip()))


def is_locally_administered(mac: bytes) -> bool:
    """Bit 1 of the first octet: set by phones that randomise their MAC while probing."""
    return bool(mac[0] & 0x02)


@dataclass(frozen=True)
class MacHasher:
    """Keyed, rotating MAC hashes. Key of epoch e = HMAC(secret, "footfall-wifi-key:" + e)."""

    secret: bytes
    epoch_days: int = DEFAULT_EPOCH_DAYS

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the Wi-Fi hashing secret must have at least {MIN_SECRET_BYTES} bytes")
        if self.epoch_days < 1:
            raise ValueError("epoch_days must be at least 1")

    def epoch(self, ts: datetime) -> int:
        return int(ts.timestamp() // (self.epoch_days * 86400))

    def digest(self, mac: bytes, epoch: int) -> str:
        return hmac.new(_epoch_key(self.secret, epoch), mac, hashlib.sha256).hexdigest()[:32]

    def hashes(self, mac: bytes, ts: datetime) -> tuple[int, str, str | None]:
        """(epoch, hash under this epoch's key, hash under the previous epoch's key)."""
        epoch = self.epoch(ts)
        previous = self.digest(mac, epoch - 1) if epoch > 0 else None
        return epoch, self.digest(mac, epoch), previous


@lru_cache(maxsize=64)
def _epoch_key(secret: bytes, epoch: int) -> bytes:
    return hmac.new(secret, f"footfall-wifi-key:{epoch}".encode(), hashlib.sha256).digest()


def redact_macs(payload: bytes) -> bytes:
    """The message for a dead letter: its ``mac`` value and anything MAC-like replaced (as UTF-8)."""
    text = payload.decode("utf-8", errors="replace")
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    if isinstance(obj, dict) and "mac" in obj:
        obj["mac"] = "<redacted>"
        text = json.dumps(obj)
    return _MAC_IN_TEXT.sub("<mac>", text).encode()


# ---- input messages --------------------------------------------------------------------------------


class _SensorMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    # ISO 8601 with a zone, or Unix seconds (pydantic accepts both for an aware datetime).
    ts: AwareDatetime


M = TypeVar("M", bound=_SensorMessage)
E = TypeVar("E", bound=BaseModel)


class WifiSighting(_SensorMessage):
    mac: str
    rssi: int = Field(ge=-120, le=0)


class BeamCount(_SensorMessage):
    count_in: int = Field(alias="in", ge=0, le=100_000)
    count_out: int = Field(alias="out", ge=0, le=100_000)
    interval_s: float | None = Field(default=None, gt=0)


def _validate(model: type[M], payload: bytes, now: datetime) -> M:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise SensorMessageError("too_large", f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise SensorMessageError("invalid_utf8", "payload is not UTF-8") from None
    try:
        message = model.model_validate_json(text)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        kinds = {e["type"] for e in errors}
        if "json_invalid" in kinds:
            raise SensorMessageError("malformed_json", "payload is not valid JSON") from None
        if "model_type" in kinds or "model_attributes_type" in kinds:
            raise SensorMessageError("not_an_object", "payload is not a JSON object") from None
        missing = [e for e in errors if e["type"] == "missing"]
        first = (missing or errors)[0]
        where = ".".join(str(p) for p in first["loc"]) or "(message)"
        reason: DeadLetterReason = "missing_field" if missing else "wrong_type"
        raise SensorMessageError(reason, f"{where}: {first['msg']}") from None
    if not (now - MAX_PAST <= message.ts <= now + MAX_FUTURE):
        raise SensorMessageError("ts_out_of_range", f"ts={format_ts(message.ts)} now={format_ts(now)}")
    return message


# ---- bridges ---------------------------------------------------------------------------------------


@dataclass
class BridgeStats:
    messages: int = 0
    events: int = 0
    randomized: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)


class _Bridge:
    kind = ""

    def __init__(self, store: str) -> None:
        self.store = store
        self.stats = BridgeStats()

    def handle(
        self, topic: str, payload: bytes, now: datetime | None = None
    ) -> tuple[list[Event], DeadLetter | None]:
        """Map one sensor message to events, or to a dead letter (never raises on bad input)."""
        now = now or datetime.now(UTC)
        self.stats.messages += 1
        sensor = topic.rsplit("/", 1)[-1]
        try:
            events = self._map(sensor, payload, now)
        except SensorMessageError as exc:
            self.stats.dead_letters[exc.reason] = self.stats.dead_letters.get(exc.reason, 0) + 1
            log.warning("dead letter (%s) from %s: %s", exc.reason, topic, exc.detail)
            letter = DeadLetter.build(
                reason=exc.reason,
                detail=exc.detail,
                topic=topic,
                payload=self._redact(payload),
                component=f"bridge-{self.kind}",
                received_at=now,
            )
            return [], letter
        self.stats.events += len(events)
        return events, None

    def _redact(self, payload: bytes) -> bytes:
        return payload

    def _map(self, sensor: str, payload: bytes, now: datetime) -> list[Event]:
        raise NotImplementedError


class WifiBridge(_Bridge):
    kind = "wifi"

    def __init__(self, store: str, hasher: MacHasher, *, device: str = "wifi-bridge") -> None:
        super().__init__(store)
        self.hasher = hasher
        self.device = device

    def _redact(self, payload: bytes) -> bytes:
        return redact_macs(payload)

    def _map(self, sensor: str, payload: bytes, now: datetime) -> list[Event]:
        sighting = _validate(WifiSighting, payload, now)
        mac = parse_mac(sighting.mac)
        epoch, current, previous = self.hasher.hashes(mac, sighting.ts)
        randomized = is_locally_administered(mac)
        self.stats.randomized += randomized
        return [
            _build(
                WifiEvent,
                id=stable_event_id("wifi", self.store, sensor, current, format_ts(sighting.ts)),
                store=self.store,
                device=self.device,
                ts=sighting.ts,
                sensor=sensor,
                device_hash=current,
                prev_device_hash=previous,
                rssi=sighting.rssi,
                randomized=randomized,
                key_epoch=epoch,
            )
        ]


class BeamBridge(_Bridge):
    """Interval counts of a beam counter -> crossing counts on a named entrance line.

    The counter itself is the device (topic ``footfall/v1/{store}/{sensor}/crossing``); its line is
    ``lines[sensor]`` or ``default_line``.
    """

    kind = "beam"

    def __init__(self, store: str, *, default_line: str = "entrance", lines: Mapping[str, str] | None = None):
        super().__init__(store)
        self.default_line = default_line
        self.lines = dict(lines or {})

    def _map(self, sensor: str, payload: bytes, now: datetime) -> list[Event]:
        counts = _validate(BeamCount, payload, now)
        line = self.lines.get(sensor, self.default_line)
        events: list[Event] = []
        for direction, count in (("in", counts.count_in), ("out", counts.count_out)):
            if count == 0:
                continue  # an empty interval is no crossing; the sensor's liveness is its status topic
            events.append(
                _build(
                    CrossingEvent,
                    id=stable_event_id("beam", self.store, sensor, format_ts(counts.ts), direction),
                    store=self.store,
                    device=sensor,
                    ts=counts.ts,
                    line=line,
                    kind="entrance",
                    direction=direction,
                    count=count,
                    source="beam",
                )
            )
        return events


def _build(model: type[E], **values: Any) -> E:
    """Build an event; a sensor id that is not a valid name becomes a dead letter, not a crash."""
    try:
        return model(**values)
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SensorMessageError("bad_sensor_message", f"{where}: {first['msg']}") from None


# Sensor messages the bridge holds unacknowledged at a time (MQTT v5 Receive Maximum): while the
# queue fails, the broker keeps the rest, so what waits in the bridge's memory stays bounded.
MAX_UNACKED = 500
# What may wait in memory at all: QoS 0 messages are outside the broker's Receive Maximum, and one
# beyond this is left unread (QoS 1: the broker sends it again on the next connection).
MAX_WAITING = 10 * MAX_UNACKED
# Back-off between tries to queue a sensor message while the queue fails (its disk full or locked),
# doubling up to this, as edge/multicam.py's _Outbox.
MAX_QUEUE_RETRY_S = 30.0


@dataclass(frozen=True, slots=True)
class _Received:
    """A sensor message paho delivered and the bridge has not acknowledged yet."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    connection: int  # the connection it came on: a PUBACK is only meaningful on that one


class _Inbox:
    """Between paho's network thread and the on-disk queue.

    paho runs with ``manual_ack``: ``receive`` (network thread) only takes a message in, and a
    thread of its own maps it and queues it, acknowledging it (PUBACK) only once its events or its
    dead letter are committed. A queue that fails (its disk full, locked past SQLite's busy timeout, an
    I/O error) is retried with capped back-off, oldest message first, so order is kept; meanwhile the
    network thread goes on (keepalive, reception) and the message stays unacknowledged, so the
    broker still holds it should the bridge die. Each kind of failure is logged once.
    """

    def __init__(self, bridge: WifiBridge | BeamBridge, publisher: StoreAndForwardPublisher) -> None:
        self.bridge = bridge
        self.publisher = publisher
        self.failure: str | None = None  # why the queue fails right now; None while it works
        self.crashed: str | None = None  # the thread ended on an unexpected error
        self._waiting: Queue[_Received] = Queue()
        self._current: _Received | None = None  # the one being queued (taken off _waiting)
        self._closing = threading.Event()
        self._connection = 0
        self._ack_lock = threading.Lock()
        self._ack: Callable[[int, int], object] = lambda mid, qos: None
        self._said: set[str] = set()
        self._retry = Retrying(
            retry=retry_if_exception_type(Exception),
            wait=wait_exponential(multiplier=0.1, max=MAX_QUEUE_RETRY_S),
            stop=lambda _state: self._closing.is_set(),
            before_sleep=self._on_failure,
            sleep=self._pause,
            reraise=True,
        )
        self._thread = threading.Thread(target=self._run, name=f"footfall-bridge-{bridge.kind}", daemon=True)

    @property
    def waiting(self) -> int:
        """Sensor messages received and not yet queued (so not acknowledged)."""
        return self._waiting.qsize() + (self._current is not None)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def start(self, client: mqtt.Client) -> None:
        self._ack = client.ack
        self._thread.start()

    # ---- paho's network thread -----------------------------------------------------------------

    def receive(self, msg: mqtt.MQTTMessage) -> None:
        """Take a message in; never raises or blocks, as paho's network thread would die or stall."""
        if self._closing.is_set():
            return  # unacknowledged: the broker sends it again on the next start
        if self._waiting.qsize() >= MAX_WAITING:
            self._say_once(
                "full",
                "more than %d sensor messages wait for the queue; leaving new ones unread",
                MAX_WAITING,
            )
            return
        try:
            topic = msg.topic
        except UnicodeDecodeError:  # the broker should refuse such a topic; paho raises on reading it
            self._say_once("topic", "a sensor message with a topic that is not UTF-8 is left unread")
            return
        self._waiting.put(_Received(topic, bytes(msg.payload), msg.mid, msg.qos, self._connection))

    def new_connection(self) -> None:
        """On connect and disconnect: acknowledgements for the old connection's messages are void
        (the broker sends those again on the new one, and may reuse their packet ids)."""
        with self._ack_lock:
            self._connection += 1

    # ---- the inbox's thread --------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not (self._closing.is_set() and self._waiting.empty()):
                try:
                    item = self._waiting.get(timeout=0.2)
                except Empty:
                    continue
                self._current = item
                self._take(item)
                self._current = None
        except Exception as exc:  # the retry gives up only when closing: the broker keeps the rest
            log.warning(
                "stopping with the queue failing (%s); unqueued sensor messages stay with the broker", exc
            )
        except BaseException as exc:  # not expected at all; never end silently
            self.crashed = repr(exc)
            log.critical("the bridge stopped taking sensor messages: %r", exc)
            raise

    def _take(self, item: _Received) -> None:
        events, letter = self._map(item)
        rows: list[tuple[str, bytes]] = []
        if letter is not None:
            rows.append((DEADLETTER_TOPIC, letter.to_json().encode()))
        # One put per message, so a failed try changes nothing and a retry adds no duplicate.
        self._retry(self._store, events, rows)
        if self.failure is not None:
            log.warning("the queue takes sensor messages again (it failed with %s)", self.failure)
            self.failure = None
            self._said.clear()
        with self._ack_lock:
            if item.connection == self._connection:
                self._ack(item.mid, item.qos)

    def _map(self, item: _Received) -> tuple[list[Event], DeadLetter | None]:
        try:
            return self.bridge.handle(item.topic, item.payload)
        except Exception as exc:  # a bug: a dead letter rather than a message retried for ever
            self._say_once(
                f"map {type(exc).__name__}", "internal error mapping a sensor message: %s", type(exc).__name__
            )
            letter = DeadLetter.build(
                reason="internal_error",
                detail=type(exc).__name__,  # not str(exc): it might quote the payload (a MAC)
                topic=item.topic,
                payload=self.bridge._redact(item.payload),
                component=f"bridge-{self.bridge.kind}",
                received_at=datetime.now(UTC),
            )
            return [], letter

    def _store(self, events: list[Event], rows: list[tuple[str, bytes]]) -> None:
        if events:
            self.publisher.publish_many(events)
        if rows:
            self.publisher.publish_payloads(rows)

    def _on_failure(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        self.failure = f"{type(exc).__name__}: {exc}"
        self._say_once(
            self.failure,
            "the queue takes no sensor messages (%s); %d wait unacknowledged, retrying with back-off",
            self.failure,
            self.waiting,
        )

    def _say_once(self, key: str, message: str, *args: object) -> None:
        log.log(logging.DEBUG if key in self._said else logging.ERROR, message, *args)
        self._said.add(key)

    def _pause(self, seconds: float) -> None:
        self._closing.wait(seconds)

    def close(self, timeout_s: float = 15.0) -> None:
        """Queue (and acknowledge) what has arrived while the queue works, then end the thread;
        what is left stays unacknowledged, and the broker sends it again on the next start."""
        self._closing.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        if self.waiting:
            log.warning(
                "%d sensor messages were not queued; the broker keeps them for the next start", self.waiting
            )


def run_bridge(
    bridge: WifiBridge | BeamBridge,
    settings: MqttSettings,
    subscription: str,
    publisher: StoreAndForwardPublisher,
    stopping: threading.Event,
    *,
    client_id: str,
    session_expiry_s: int = 7 * 24 * 3600,
) -> None:
    """Subscribe to the sensors (QoS 1, persistent session) and queue what they say until ``stopping``.

    A sensor message is acknowledged only after its events (or its dead letter) are committed to the
    on-disk queue (``_Inbox``), so neither a crash of the bridge nor a failing queue loses it, and a
    failing queue does not stop the bridge from receiving.
    """
    inbox = _Inbox(bridge, publisher)
    client = _sensor_client(bridge.kind, settings, subscription, inbox, client_id)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = session_expiry_s
    props.ReceiveMaximum = MAX_UNACKED
    inbox.start(client)
    client.connect_async(settings.host, settings.port, keepalive=30, clean_start=False, properties=props)
    client.loop_start()
    try:
        while not stopping.wait(10):
            if not inbox.alive:  # exit, so that a supervisor restarts the bridge
                raise RuntimeError(f"the bridge stopped taking sensor messages: {inbox.crashed}")
            s = bridge.stats
            log.info(
                "stats: messages=%d events=%d randomized=%d dead letters=%s queued=%d waiting=%d%s",
                s.messages,
                s.events,
                s.randomized,
                s.dead_letters or "none",
                publisher.queue.depth,
                inbox.waiting,
                f" (the queue fails: {inbox.failure})" if inbox.failure else "",
            )
    finally:
        inbox.close()  # before the disconnect, so that its last PUBACKs go out first
        client.disconnect()
        client.loop_stop()


def _sensor_client(
    kind: str, settings: MqttSettings, subscription: str, inbox: _Inbox, client_id: str
) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True
    )
    settings.configure(client)

    def on_connect(
        c: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        props: Properties | None,
    ) -> None:
        inbox.new_connection()
        if reason_code.is_failure:
            log.error("broker refused the connection: %s", reason_code)
            return
        c.subscribe(subscription, qos=1)
        log.info("%s bridge ready: subscribed to %s", kind, subscription)

    def on_disconnect(
        c: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        props: Properties | None,
    ) -> None:
        inbox.new_connection()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_message = lambda c, userdata, msg: inbox.receive(msg)
    return client
